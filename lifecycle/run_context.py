"""The training run a repository was exported from, as `mtserve task` uses it: its frozen trunk, tokenizer and
settings (RunContext), and which of the run's settings a task may change (TASK_TRAIN_OPTIONS). Its own module
because the plan (lifecycle/plan.py) and the operations (lifecycle/ops.py) both need it."""

from __future__ import annotations

from pathlib import Path

from mtserve.core import registry
from mtserve.core.errors import UserError
from mtserve.core.options import options
from mtserve.training.config import SearchConfig, TrainConfig

# What a task may change of the run's TrainConfig (every SearchConfig option too). The rest stays the run's:
# max_length above all, which the served tokenizer shares with every head.
TASK_TRAIN_OPTIONS = ("epochs_full", "epochs_partial", "epochs_distil", "seed")


class RunContext:
    """The training run a repository was exported from: its frozen trunk, tokenizer and settings."""

    def __init__(self, run_dir: str | Path, reg: registry.Registry):
        from mtserve.training.run_dir import Run

        self.root = Path(run_dir)
        self.run = Run(self.root)
        self.record = self.run.record  # UserError when there is no run.json
        for f in ("bert_config.json", "trunk.safetensors", "tokenizer"):
            if not (self.root / f).exists():
                raise UserError(f"{self.root}: {f} missing (not a complete training run)")
        fp, want = self.record.trunk_fingerprint, reg.trunk.fingerprint
        if fp != want:
            raise UserError(
                f"run {self.root} (trunk fingerprint {fp}) is not the run repository was exported from "
                f"(trunk fingerprint {want}): give the matching --run-dir"
            )

    def config(self, overrides: dict | None = None):
        """The run's own settings (run.json), with the task's overrides (None: not given), checked as
        `mtserve train` checks them: the same option checks, the same k rule."""
        o = {k: v for k, v in (overrides or {}).items() if v is not None}
        cfg = TrainConfig.from_dict({**self.record.config, **{k: o[k] for k in TASK_TRAIN_OPTIONS if k in o}})
        search = SearchConfig.from_dict(
            {**self.record.search, **{f.name: o[f.name] for f in options(SearchConfig) if f.name in o}}
        )
        search.check_against(self.record.num_layers)
        return cfg, search

    def backbone(self):
        """(BertModel without pooler holding the run's frozen weights, tokenizer, full trunk, fingerprint)."""
        from transformers import AutoTokenizer

        from mtserve.training.backbone import make_trunk
        from mtserve.training.features import trunk_fingerprint

        bert = self.run.bert()
        n = bert.config.num_hidden_layers
        trunk = make_trunk(bert, n, list(range(n + 1)))
        fp = trunk_fingerprint(trunk)
        if fp != self.record.trunk_fingerprint:
            raise UserError(
                f"{self.root}/trunk.safetensors does not hold the weights run.json was trained on "
                f"(fingerprint {fp}, expected {self.record.trunk_fingerprint})"
            )
        tokenizer = AutoTokenizer.from_pretrained(str(self.root / "tokenizer"), local_files_only=True)
        return bert, tokenizer, trunk, fp
