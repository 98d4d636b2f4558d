"""A training run directory, as `mtserve train` writes it and export, reports and `mtserve task` read it:

    run.json                     backbone, settings (TrainConfig, SearchConfig), tasks, trunk fingerprint, notes
    bert_config.json, trunk.safetensors, tokenizer/      the frozen backbone (save_backbone)
    tasks/<task>/spec.json       the task (TaskSpec)
    tasks/<task>/search.json     full fine-tuning's score, every Candidate, the chosen one, timings
    tasks/<task>/branch.safetensors (+ .json)    the served branch (backbone.save_branch)
    tasks/<task>/full.safetensors (+ .json)      the full fine-tuned baseline (backbone.save_full)
    tasks/<task>/train_log.jsonl the loss and learning rate of every training loop (training/progress.py)

run.json and search.json have one owner each: RunRecord and SearchRecord below, the one place that reads and
writes them, and the one place that reads files older versions wrote (their `from_dict`). Their schema is
docs/design.md's "The training run directory".

Reading a run's metadata imports no torch: the weights' readers import it when called.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mtserve.core.errors import UserError
from mtserve.core.registry import atomic_write

if TYPE_CHECKING:
    from transformers import BertConfig, BertModel

    from mtserve.core.tasks import TaskSpec
    from mtserve.training.backbone import Branch, TaskModel, Trunk


# The version of run.json and search.json this code writes. A file without `schema_version` is version 1 (every
# file written before the field existed); one newer than this is refused, never half read.
# 2: schema_version added (the keys are version 1's).
SCHEMA_VERSION = 2


def _file_version(d: dict, path: str | Path) -> int:
    v = d.get("schema_version", 1)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise UserError(f"{path}: schema_version {v!r} is not a version number")
    if v > SCHEMA_VERSION:
        raise UserError(
            f"{path}: schema_version {v} is newer than this mtserve reads (up to {SCHEMA_VERSION}): "
            "it was written by a later version; upgrade mtserve to read it"
        )
    return v


def _from_dict(cls, d: Any, path: str | Path, older: dict):
    """`cls` from a stored dict: `older` fills the keys files of older versions may lack; a key this code does
    not know goes to `extra` (written back as it was); a required key missing is an error naming the file."""
    if not isinstance(d, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(d).__name__}")
    _file_version(d, path)
    d = {k: v for k, v in d.items() if k != "schema_version"}
    known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    d = {k: _fresh(v) for k, v in older.items() if k not in d} | d
    missing = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.name in known
        and f.name not in d
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)} (not a {cls.__name__[:-6].lower()} record)")
    return cls(
        **{k: v for k, v in d.items() if k in known}, extra={k: v for k, v in d.items() if k not in known}
    )


def _fresh(v):
    return json.loads(json.dumps(v))  # a fresh copy of a default list/dict


def _to_dict(rec, optional: tuple[str, ...]) -> dict:
    """schema_version, then the fields in the order the files have always held them (an optional one only where
    it applies: None is left out, as the writers always left it), then the extra keys."""
    out: dict = {"schema_version": SCHEMA_VERSION}
    for f in dataclasses.fields(rec):
        v = getattr(rec, f.name)
        if f.name == "extra" or (f.name in optional and v is None):
            continue
        out[f.name] = v
    return out | rec.extra


def _read(cls, path: Path):
    try:
        d = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    return cls.from_dict(d, path)


@dataclass(kw_only=True)
class RunRecord:
    """run.json: the run as `mtserve train` wrote it and `mtserve task` keeps it (lifecycle/run_sync.py)."""

    backbone: str  # its id, or a path
    backbone_path: str = ""
    num_layers: int
    hidden_size: int
    config: dict  # TrainConfig.to_dict() (kept as stored: TrainConfig.from_dict reads it, dropping old keys)
    search: dict  # SearchConfig.to_dict()
    tasks: list[str]  # the deployed tasks, in order
    trunk_fingerprint: str
    notes: list[str] = field(default_factory=list)
    task_versions: dict[str, int] | None = (
        None  # task -> deployed head version, once `mtserve task` changed one
    )
    extra: dict = field(default_factory=dict)  # keys this code does not know, kept as they were

    OPTIONAL: ClassVar[tuple[str, ...]] = ("task_versions",)
    # what files of older versions may lack (version 1: written before the key existed)
    OLDER: ClassVar[dict] = {"backbone_path": "", "notes": []}

    @classmethod
    def from_dict(cls, d: dict, path: str | Path = "run.json") -> RunRecord:
        """The one place that reads run.json, whichever version wrote it."""
        return _from_dict(cls, d, path, cls.OLDER)

    def to_dict(self) -> dict:
        return _to_dict(self, self.OPTIONAL)

    @classmethod
    def read(cls, path: str | Path) -> RunRecord:
        return _read(cls, Path(path))

    def write(self, path: str | Path) -> None:
        atomic_write(Path(path), json.dumps(self.to_dict(), indent=2).encode())


@dataclass(kw_only=True)
class SearchRecord:
    """tasks/<task>/search.json: the task's full fine-tuning, its search, its choice (training/pipeline.py)."""

    task: dict  # TaskSpec.to_dict()
    metric: str
    full: float  # full fine-tuning's dev score
    full_validation: float | None = None  # ... and validation score (None: a run before validation splits)
    full_chance: dict | None = None  # training/chance.py's check (None: a run before it)
    chosen: dict  # Candidate.to_dict() of the served branch (Candidate owns its format)
    candidates: list[dict]
    train_examples: int
    validation_examples: int | None = None
    dev_examples: int
    notes: list[str] = field(default_factory=list)
    search: dict | None = None  # SearchConfig.to_dict() (None: searched with resume.json's settings)
    seconds: dict  # per stage
    kept: dict | None = (
        None  # stages kept from an earlier run (--from-run, --resume with other search settings)
    )
    peer: dict | None = None  # --peer-baseline
    uncached: dict | None = None  # --measure-uncached
    chosen_alone: dict | None = None  # the task's own choice, where the choice across tasks differs
    extra: dict = field(default_factory=dict)  # keys this code does not know, kept as they were

    OPTIONAL: ClassVar[tuple[str, ...]] = (
        "full_validation",
        "full_chance",
        "validation_examples",
        "search",
        "kept",
        "peer",
        "uncached",
        "chosen_alone",
    )
    # what files of older versions may lack beyond the optional keys (None where left out)
    OLDER: ClassVar[dict] = {"notes": []}

    @classmethod
    def from_dict(cls, d: dict, path: str | Path = "search.json") -> SearchRecord:
        """The one place that reads search.json, whichever version wrote it."""
        return _from_dict(cls, d, path, cls.OLDER)

    def to_dict(self) -> dict:
        return _to_dict(self, self.OPTIONAL)

    @classmethod
    def read(cls, path: str | Path) -> SearchRecord:
        return _read(cls, Path(path))

    def write(self, path: str | Path) -> None:
        atomic_write(Path(path), json.dumps(self.to_dict(), indent=2).encode())

    @property
    def full_learned(self) -> bool | None:
        """Whether full fine-tuning beat what no learning scores (None: a run before the check)."""
        return None if self.full_chance is None else self.full_chance["learned"]

    @property
    def choice_score(self) -> float:
        """Full fine-tuning's score the choice compared: on validation (runs before validation splits: dev)."""
        return self.full if self.full_validation is None else self.full_validation


class Run:
    """A run directory: the frozen trunk, the tokenizer, and each task's checkpoints."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def record(self) -> RunRecord:
        """run.json."""
        p = self.root / "run.json"
        if not p.is_file():
            raise UserError(f"{self.root} is not a training run (no run.json); run `mtserve train` first")
        return RunRecord.read(p)

    @property
    def meta(self) -> dict:
        """run.json as a dict (read through RunRecord: older files with their defaults), for scripts and tests."""
        return self.record.to_dict()

    def tasks(self) -> list[str]:
        return list(self.record.tasks)

    def task_dir(self, task: str) -> Path:
        return self.root / "tasks" / task

    def spec(self, task: str) -> TaskSpec:
        from mtserve.core.tasks import TaskSpec

        return TaskSpec.from_dict(json.loads((self.task_dir(task) / "spec.json").read_text()))

    def search(self, task: str) -> SearchRecord:
        """The task's search.json."""
        p = self.task_dir(task) / "search.json"
        if not p.is_file():
            raise UserError(f"{p} missing: task {task} of run {self.root} did not finish training")
        return SearchRecord.read(p)

    def task_result(self, task: str) -> dict:
        """search.json as a dict (read through SearchRecord: older files with their defaults), for scripts."""
        return self.search(task).to_dict()

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
