"""Did a fine-tuning learn? Its dev score against what no learning scores, on the same rows and metric.

Two references, both for whatever the task's metric is:
- the constant prediction: the best score of predicting one class for every row (the majority class, for
  accuracy), or one value for every row (a regression: its correlation is 0);
- chance: the model's own predictions scored against the dev labels shuffled, SHUFFLES times; a score below
  the 95th percentile of those is one a model that learned nothing about the labels reaches 1 time in 20.

A score at or below either did not learn. Retention (served / full fine-tuning) is then meaningless: it divides by
a score that says nothing, and the reports say so instead of printing the ratio (training/accuracy_report.py).
"""

from __future__ import annotations

import numpy as np

from mtserve.core.tasks import TaskSpec, score

SHUFFLES = 200
PERCENTILE = 95


def constant_score(spec: TaskSpec, gold) -> float:
    """The best dev score of one prediction for every row."""
    n = len(gold)
    if spec.is_regression:
        return score(spec, np.zeros(n), gold)
    best = -np.inf
    for c in range(spec.num_labels):
        onehot = np.zeros((n, spec.num_labels))
        onehot[:, c] = 1.0
        best = max(best, score(spec, onehot, gold))
    return float(best)


def check(spec: TaskSpec, outputs, gold, seed: int = 0) -> dict:
    """{"score", "constant", "chance_p95", "learned"} of a model's dev outputs (class scores or values)."""
    gold = np.asarray(gold)
    rng = np.random.default_rng(seed)
    shuffled = [score(spec, outputs, gold[rng.permutation(len(gold))]) for _ in range(SHUFFLES)]
    s, constant = score(spec, outputs, gold), constant_score(spec, gold)
    p95 = float(np.percentile(shuffled, PERCENTILE))
    return {
        "score": s,
        "constant": round(constant, 6),
        "chance_p95": round(p95, 6),
        "learned": bool(s > max(constant, p95)),
    }


def describe(metric: str, c: dict) -> str:
    """Why a score counts as not learned, for the console and the reports."""
    return (
        f"dev {metric} {c['score']:.4f} is not above what no learning scores (constant prediction "
        f"{c['constant']:.4f}; chance, the 95th percentile against shuffled labels, {c['chance_p95']:.4f})"
    )
