"""The settings of `mtserve train` (and of `mtserve task add/retrain`, which start from a run's own): each
field's default, help and check declared once, and the command-line flags generated from them
(core/options.py). Saved in run.json as TrainConfig.to_dict() / SearchConfig.to_dict().

Standard library only: the task commands build their flags without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mtserve.core.errors import UserError
from mtserve.core.options import NON_NEGATIVE, POSITIVE, Options, option


@dataclass
class TrainConfig(Options):
    """Hyper-parameters shared by every stage; saved with every run so a result traces to its settings.
    Each field is also a `mtserve train` flag (core/options.py)."""

    # `extra` (a free-form dict, never read) was dropped; run.json files written before still hold it.
    RETIRED: ClassVar[frozenset[str]] = frozenset({"extra"})

    max_length: int = option(
        128, "tokens per input, longer ones truncated (the served tokenizer's length too)", check=POSITIVE
    )
    batch_size: int = option(32, "examples per training step", check=POSITIVE)
    epochs_full: float = option(
        3.0, "epochs of full fine-tuning (the reference and the baseline)", check=POSITIVE
    )
    epochs_partial: float = option(4.0, "epochs of partial fine-tuning of the top k layers", check=POSITIVE)
    epochs_distil: float = option(4.0, "epochs of distillation into each student", check=POSITIVE)
    lr_full: float = option(5e-5, "peak learning rate of full fine-tuning", check=POSITIVE)
    lr_partial: float = option(2e-4, "peak learning rate of partial fine-tuning", check=POSITIVE)
    lr_distil: float = option(2e-4, "peak learning rate of distillation", check=POSITIVE)
    weight_decay: float = option(0.01, "AdamW weight decay (weight matrices only)", check=NON_NEGATIVE)
    warmup: float = option(
        0.1,
        "fraction of the steps the learning rate warms up over",
        check=(lambda w: 0 <= w <= 1, "must be in [0, 1]"),
    )
    temperature: float = option(2.0, "distillation temperature T", check=POSITIVE)
    pooling: str = option(
        "mean",
        "how full fine-tuning pools its tokens: mean over real tokens, or the first (cls); the search's "
        "branches too, unless --branch-pooling says otherwise",
        choices=("mean", "cls"),
    )
    seed: int = option(
        0,
        "seed of initialisation and batch order (and of the --max-train-examples sample)",
        check=NON_NEGATIVE,
    )
    threads: int = option(0, "torch intra-op threads (0: torch's default)", check=NON_NEGATIVE)
    device: str = option(
        "auto",
        "where every stage runs: auto (cuda when present), cpu, cuda or cuda:N",
        check=(
            lambda d: d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit()),
            "auto, cpu, cuda or cuda:N",
        ),
    )
    precision: str = option(
        "fp32",
        "training and feature-pass precision: fp32, or bf16/fp16 under autocast (weights stay fp32)",
        choices=("fp32", "bf16", "fp16"),
    )

    def compute(self):
        """The resolved device and precision (training/device.py): checked against this machine."""
        from mtserve.training.device import resolve

        return resolve(self.device, self.precision)


def parse_k_values(text: str) -> list[int]:
    try:
        return sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise ValueError(f"comma-separated integers, got {text!r}") from None


SAME_POOLING = "same"  # --branch-pooling: as full fine-tuning (--pooling)


@dataclass
class SearchConfig(Options):
    """Which branches each task's search trains, and which of them qualify."""

    k_values: list[int] = option(
        [1, 2, 3],
        "numbers of fine-tuned top layers to try, comma-separated, each in 1 .. backbone layers - 1",
        flag="--k",
        parse=parse_k_values,
        show=lambda ks: ",".join(map(str, ks)),
        check=(bool, "must name at least one k"),
        metavar="K,...",
    )
    max_student_layers: int = option(
        3,
        "largest student distilled from each k-layer teacher (students have fewer than k layers; 0: none)",
        check=NON_NEGATIVE,
    )
    retention_target: float = option(
        0.995,
        "a branch qualifies when its validation score reaches this x full fine-tuning's (on the same rows)",
        check=(lambda t: 0 < t <= 1, "must be in (0, 1]"),
    )
    # A search setting, not a training one: full fine-tuning (the denominator of every retention, and what
    # the peer column checks) does not depend on it, so --from-run keeps a run's full fine-tuning and searches
    # again with other branch pooling.
    branch_pooling: str = option(
        SAME_POOLING,
        "how the search's branches (partial and distilled) pool their tokens: mean, cls, or same (as --pooling)",
        choices=(SAME_POOLING, "mean", "cls"),
    )

    def pooling_of_branches(self, cfg: TrainConfig) -> str:
        return cfg.pooling if self.branch_pooling == SAME_POOLING else self.branch_pooling

    def to_dict(self) -> dict:
        d = super().to_dict()
        if d["branch_pooling"] == SAME_POOLING:
            # runs recorded before the setting existed pooled their branches as --pooling: they compare equal
            del d["branch_pooling"]
        return d

    def check_against(self, num_layers: int) -> None:
        """The one rule for k on a backbone of `num_layers` layers: 1 <= k < num_layers. k = num_layers would
        train a branch holding every layer on a depth-0 trunk: that is full fine-tuning, the baseline itself,
        which every search trains anyway. `mtserve train` and `mtserve task add/retrain` both call this."""
        bad = [k for k in self.k_values if not 1 <= k < num_layers]
        if bad:
            raise UserError(
                f"--k values {bad} outside 1..{num_layers - 1} for this {num_layers}-layer backbone "
                f"(k = {num_layers} would fine-tune every layer: that is the full fine-tuning baseline)"
            )


@dataclass
class ProgressConfig(Options):
    """What `mtserve train` tells while it works (training/progress.py). Not a training setting: run.json does not
    keep it, and a resumed run may change it."""

    quiet: bool = option(
        False, "no progress lines: only warnings (e.g. a fine-tuning that did not learn) and results"
    )
    verbose: bool = option(
        False, "also a line when each candidate branch of the search starts and ends, with its scores"
    )
    progress_every: float = option(
        60.0, "seconds between progress lines (steps done, loss) during a long stage", check=POSITIVE
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.quiet and self.verbose:
            raise UserError("give --quiet or --verbose, not both")

    def progress(self):
        from mtserve.training.progress import NORMAL, QUIET, VERBOSE, Progress

        return Progress(QUIET if self.quiet else VERBOSE if self.verbose else NORMAL, self.progress_every)
