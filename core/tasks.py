"""Tasks and their data: the task table, GLUE's TSV loaders, a generic TSV loader, and metrics.

A task is a name, how its rows map to (text, text_pair, label), its label set (None for
regression) and the metric its dev score is reported in. Everything downstream (training,
export, serving, reports) reads these fields and nothing else.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mtserve.core import names
from mtserve.core.errors import UserError


@dataclass(frozen=True)
class TaskSpec:
    name: str
    labels: tuple[str, ...] | None  # None: regression (one float output)
    metric: str  # accuracy | f1 | macro_f1 | mcc | pearson | spearman
    is_pair: bool = False

    def __post_init__(self) -> None:
        names.check_task_name(self.name)
        if self.metric not in METRICS:
            raise UserError(f"task {self.name}: unknown metric {self.metric!r} (one of {sorted(METRICS)})")
        if self.labels is not None:
            if len(self.labels) < 2:
                raise UserError(
                    f"task {self.name}: a classification task needs at least 2 labels, got {list(self.labels)}"
                )
            if len(set(self.labels)) != len(self.labels):
                raise UserError(f"task {self.name}: duplicate labels in {list(self.labels)}")
            if self.metric in ("f1", "mcc") and len(self.labels) != 2:
                raise UserError(
                    f"task {self.name}: metric {self.metric} is for two labels, got {len(self.labels)}"
                )
        elif self.metric not in ("pearson", "spearman"):
            raise UserError(
                f"task {self.name}: a regression task is scored by pearson or spearman, not {self.metric}"
            )

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "labels": None if self.labels is None else list(self.labels),
            "metric": self.metric,
            "is_pair": self.is_pair,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        labels = d.get("labels")
        return cls(
            d["name"], None if labels is None else tuple(labels), d["metric"], bool(d.get("is_pair", False))
        )


@dataclass
class Split:
    """One split of one task. `labels` are class indices (classification) or floats (regression)."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[float] | list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int | None) -> Split:
        if n is None or n >= len(self):
            return self
        return Split(self.texts[:n], None if self.pairs is None else self.pairs[:n], self.labels[:n])

    def take(self, idx) -> Split:
        """The rows at these indices, in this order."""
        return Split(
            [self.texts[j] for j in idx],
            None if self.pairs is None else [self.pairs[j] for j in idx],
            [self.labels[j] for j in idx],
        )


@dataclass
class TaskData:
    spec: TaskSpec
    train: Split
    dev: Split
    notes: list[str] = field(default_factory=list)  # e.g. "training set capped at 4000 of 67349 rows"
    validation: Split | None = None  # what the branch choice scores on (with_validation)


# What the branch choice scores on when a task has no validation file: this share of its training rows (at most
# VALIDATION_MAX_ROWS), drawn with the run's seed and removed from training. So the dev scores the reports give
# come from rows neither training nor the choice saw. (The paper chose on dev.)
VALIDATION_FRACTION = 0.1
VALIDATION_MAX_ROWS = 10_000
# Fewer training rows than this: nothing is held out (a handful of rows chooses nothing) and the choice scores
# on the training rows, with a note saying so.
VALIDATION_MIN_TRAIN = 20


def with_validation(data: TaskData, seed: int = 0) -> TaskData:
    """`data` with a validation split: its own, or a seeded share of train held out of it (and a note)."""
    if data.validation is not None:
        return data
    n = len(data.train)
    if n < VALIDATION_MIN_TRAIN:
        note = f"only {n} training rows: nothing held out, the branch choice scored on the training rows"
        return replace(data, validation=data.train, notes=[*data.notes, note])
    n_val = min(VALIDATION_MAX_ROWS, max(1, round(n * VALIDATION_FRACTION)))
    order = np.random.default_rng(seed).permutation(n)
    note = (
        f"branch chosen on {n_val} of the {n} training rows (held out of training, seed {seed}); "
        "dev scores come from rows the choice never saw"
    )
    return replace(
        data,
        train=data.train.take(np.sort(order[n_val:])),
        validation=data.train.take(np.sort(order[:n_val])),
        notes=[*data.notes, note],
    )


def cap_training(data: TaskData, max_train: int | None, seed: int = 0) -> TaskData:
    """At most `max_train` training rows: a seeded random sample, never the file's first rows (a file sorted by
    label or source would give a biased cap), in the sample's order; with a note. The one meaning of
    `--max-train-examples` and a task file's `max_rows`, wherever a training set is capped. Call it after
    with_validation, so a capped task loses none of its cap to the validation split."""
    n = len(data.train)
    if max_train is None or n <= max_train:
        return data
    keep = np.random.default_rng(seed).permutation(n)[:max_train]
    return replace(
        data,
        train=data.train.take(keep),
        notes=[
            *data.notes,
            f"training set capped at {max_train} of {n} rows (a sample drawn with seed {seed})",
        ],
    )


# ---------------------------------------------------------------- metrics
def _accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float((pred == gold).mean())


def _f1(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float(((pred == 1) & (gold == 1)).sum())
    fp = float(((pred == 1) & (gold == 0)).sum())
    fn = float(((pred == 0) & (gold == 1)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _mcc(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float(((pred == 1) & (gold == 1)).sum())
    tn = float(((pred == 0) & (gold == 0)).sum())
    fp = float(((pred == 1) & (gold == 0)).sum())
    fn = float(((pred == 0) & (gold == 1)).sum())
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if den == 0 else (tp * tn - fp * fn) / den


def _macro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    """The unweighted mean of every class's F1 (classes absent from both count as 0): intent sets are skewed."""
    classes = np.union1d(np.unique(gold), np.unique(pred))
    return float(np.mean([_f1((pred == c).astype(int), (gold == c).astype(int)) for c in classes]))


def _pearson(pred: np.ndarray, gold: np.ndarray) -> float:
    if pred.std() == 0 or gold.std() == 0:
        return 0.0
    return float(np.corrcoef(pred, gold)[0, 1])


def _spearman(pred: np.ndarray, gold: np.ndarray) -> float:
    def rank(x: np.ndarray) -> np.ndarray:
        order = x.argsort(kind="stable")
        r = np.empty(len(x), dtype=np.float64)
        r[order] = np.arange(len(x))
        # ties share their mean rank
        _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return (sums / counts)[inv]

    return _pearson(rank(pred), rank(gold))


METRICS = {
    "accuracy": _accuracy,
    "f1": _f1,
    "macro_f1": _macro_f1,
    "mcc": _mcc,
    "pearson": _pearson,
    "spearman": _spearman,
}


def score(spec: TaskSpec, outputs: np.ndarray, gold: Sequence) -> float:
    """Dev score from model outputs: class scores [N, C] (argmax) or regression values [N] / [N, 1]."""
    outputs = np.asarray(outputs, dtype=np.float64)
    gold_arr = np.asarray(gold)
    if spec.is_regression:
        return METRICS[spec.metric](outputs.reshape(-1), gold_arr.astype(np.float64))
    return METRICS[spec.metric](outputs.argmax(-1), gold_arr.astype(np.int64))


# ---------------------------------------------------------------- TSV (task owners' own data; GLUE: task_file.py)
def _read_tsv_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise UserError(f"missing data file: {path}")
    # utf-8-sig: MRPC starts with a byte-order mark. QUOTE_NONE: some rows hold bare quote characters.
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def parse_target(raw: str, where: str, task: str) -> float:
    """A regression task's label: a finite number, or a UserError naming `where` (file, row, column)."""
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{where}: {raw!r} is not a number ({task} is a regression task)") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: {raw!r} is not finite")
    return value


def _parse_label(
    spec: TaskSpec, raw: str, where: str, raw_labels: Sequence[str] | None = None
) -> int | float:
    raw = raw.strip()
    if spec.is_regression:
        return parse_target(raw, f"{where}: label", spec.name)
    names = list(raw_labels or spec.labels)
    if raw in names:
        return names.index(raw)
    assert spec.labels is not None
    if raw in spec.labels:
        return spec.labels.index(raw)
    raise UserError(f"{where}: unknown label {raw!r} for task {spec.name} (expected one of {names})")


# ---------------------------------------------------------------- generic TSV (task owners' own data)
def load_tsv(
    path: str | Path,
    spec: TaskSpec | None = None,
    *,
    name: str = "",
    is_pair: bool = False,
    regression: bool = False,
    metric: str | None = None,
) -> tuple[TaskSpec, Split]:
    """A TSV with a header naming `text`, optional `text_pair`, and `label`.

    With no `spec`, one is inferred: labels are the sorted distinct label strings (classification)
    or floats (regression)."""
    path = Path(path)
    rows = _read_tsv_rows(path)
    if not rows:
        raise UserError(f"{path}: empty file")
    header = [h.strip() for h in rows[0]]
    for col in ("text", "label") + (("text_pair",) if (spec.is_pair if spec else is_pair) else ()):
        if col not in header:
            raise UserError(f"{path}: header must name a {col!r} column, got {header}")
    ti, li = header.index("text"), header.index("label")
    pi = header.index("text_pair") if "text_pair" in header else None
    body = rows[1:]
    if not body:
        raise UserError(f"{path}: no data rows")
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise UserError(
                f"{path}:{i}: bad row, expected {len(header)} tab-separated columns, got {len(row)}"
            )
        if not row[li].strip():
            raise UserError(f"{path}:{i}: empty label")
    if spec is None:
        labels = None if regression else tuple(sorted({r[li].strip() for r in body}))
        spec = TaskSpec(name, labels, metric or ("pearson" if regression else "accuracy"), is_pair)
    if spec.is_pair and pi is None:
        raise UserError(
            f"{path}: task {spec.name} takes sentence pairs: the header needs a 'text_pair' column"
        )
    split = Split(
        [r[ti] for r in body],
        [r[pi] for r in body] if spec.is_pair else None,
        [_parse_label(spec, r[li], f"{path}:{i}") for i, r in enumerate(body, start=2)],
    )
    return spec, split
