"""A training run directory, as `mtserve train` writes it and export, reports and `mtserve task` read it:

    run.json                     backbone, settings (TrainConfig, SearchConfig), tasks, trunk fingerprint, notes
    bert_config.json, trunk.safetensors, tokenizer/      the frozen backbone (save_backbone)
    tasks/<task>/spec.json       the task (TaskSpec)
    tasks/<task>/search.json     full fine-tuning's score, every Candidate, the chosen one, timings
    tasks/<task>/branch.safetensors (+ .json)    the served branch (backbone.save_branch)
    tasks/<task>/full.safetensors (+ .json)      the full fine-tuned baseline (backbone.save_full)
    tasks/<task>/train_log.jsonl the loss and learning rate of every training loop (training/progress.py)

Reading a run's metadata imports no torch: the weights' readers import it when called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mtserve.core.errors import UserError

if TYPE_CHECKING:
    from transformers import BertConfig, BertModel

    from mtserve.core.tasks import TaskSpec
    from mtserve.training.backbone import Branch, TaskModel, Trunk


class Run:
    """A run directory: the frozen trunk, the tokenizer, and each task's checkpoints."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def meta(self) -> dict:
        p = self.root / "run.json"
        if not p.is_file():
            raise UserError(f"{self.root} is not a training run (no run.json); run `mtserve train` first")
        return json.loads(p.read_text())

    def tasks(self) -> list[str]:
        return list(self.meta["tasks"])

    def task_dir(self, task: str) -> Path:
        return self.root / "tasks" / task

    def spec(self, task: str) -> TaskSpec:
        from mtserve.core.tasks import TaskSpec

        return TaskSpec.from_dict(json.loads((self.task_dir(task) / "spec.json").read_text()))

    def task_result(self, task: str) -> dict:
        """search.json: {full, chosen, candidates, [chosen_alone, uncached], seconds, notes, ...}."""
        return json.loads((self.task_dir(task) / "search.json").read_text())

    def bert_config(self) -> BertConfig:
        from transformers import BertConfig

        cfg = BertConfig(**json.loads((self.root / "bert_config.json").read_text()))
        cfg._attn_implementation = "eager"  # our trunk/branch pass BertLayer an additive mask
        return cfg

    def bert(self) -> BertModel:
        """The frozen backbone (no pooler) with the run's weights: embeddings and every layer."""
        from safetensors.torch import load_file
        from transformers import BertModel

        bert = BertModel(self.bert_config(), add_pooling_layer=False).eval()
        bert.load_state_dict(load_file(str(self.root / "trunk.safetensors")), strict=False)
        return bert

    def trunk(self, out_depths: list[int], depth: int | None = None) -> Trunk:
        from mtserve.training.backbone import make_trunk

        return make_trunk(self.bert(), max(out_depths) if depth is None else depth, out_depths)

    def branch(self, task: str) -> tuple[Branch, dict]:
        from mtserve.training.backbone import load_branch

        return load_branch(self.bert_config(), self.task_dir(task) / "branch.safetensors")

    def full(self, task: str) -> TaskModel:
        from mtserve.training.backbone import load_full

        return load_full(self.bert_config(), self.task_dir(task) / "full.safetensors")


def save_backbone(bert, tokenizer, run_dir: Path) -> None:
    """bert_config.json, trunk.safetensors (embeddings and every layer) and tokenizer/: what Run.bert reads."""
    from safetensors.torch import save_file

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "bert_config.json").write_text(
        json.dumps(
            bert.config.to_diff_dict()
            | {
                "hidden_size": bert.config.hidden_size,
                "num_hidden_layers": bert.config.num_hidden_layers,
                "num_attention_heads": bert.config.num_attention_heads,
                "intermediate_size": bert.config.intermediate_size,
                "vocab_size": bert.config.vocab_size,
            },
            indent=2,
            default=str,
        )
    )
    state = {
        k: v.contiguous() for k, v in bert.state_dict().items() if k.startswith(("embeddings.", "encoder."))
    }
    save_file(state, str(run_dir / "trunk.safetensors"))
    tokenizer.save_pretrained(str(run_dir / "tokenizer"))
