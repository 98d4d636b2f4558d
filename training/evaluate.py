"""Dev scores of what Triton serves: each task's dev set sent through the ensemble over gRPC.

Each task's dev set asks `multitask` for that task's outputs alone; every head runs all the same (the one-step
wrapper that keeps cancelled requests from crashing Triton: docs/overload.md), so a row costs one trunk pass plus
every head. The result is compared with the in-process scores that
reports/accuracy.json holds.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from mtserve.core import names
from mtserve.core.tasks import TaskData, TaskSpec, score


def served_outputs(
    url: str,
    datasets: dict[str, TaskData],
    model: str = names.MULTITASK,
    batch_size: int = 32,
    single: bool = False,
) -> dict[str, np.ndarray]:
    """{task: its outputs for every dev row, through Triton}. single=True asks each task's `single_<task>`
    baseline (its full fine-tuning) instead."""
    from mtserve.serving.client import MultitaskClient

    out = {}
    with MultitaskClient(url, timeout=120) as client:
        for name, data in datasets.items():
            dev = data.dev
            target = names.single(name) if single else model
            chunks = []
            for start in tqdm(
                range(0, len(dev), batch_size), desc=f"served dev: {target} {name}", leave=False, disable=None
            ):
                texts = dev.texts[start : start + batch_size]
                pairs = None if dev.pairs is None else dev.pairs[start : start + batch_size]
                chunks.append(client.infer(texts, pairs, tasks=[name], model=target)[name]["scores"])
            out[name] = np.concatenate(chunks)
    return out


def served_scores(
    url: str,
    datasets: dict[str, TaskData],
    model: str = names.MULTITASK,
    batch_size: int = 32,
    single: bool = False,
) -> dict[str, float]:
    """{task: dev score through Triton}. single=True uses each task's `single_<task>` baseline instead."""
    outputs = served_outputs(url, datasets, model, batch_size, single)
    return {name: score(datasets[name].spec, outputs[name], datasets[name].dev.labels) for name in outputs}


def retention_interval(
    spec: TaskSpec,
    served: np.ndarray,
    full: np.ndarray,
    gold,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Retention (served score / full fine-tuning's) on the dev rows, and its paired-bootstrap interval.

    Both models are scored on the same resampled rows each time, so what the two get right together cancels:
    the interval is how far the dev set alone could move the ratio. A dev set of a few hundred rows cannot
    tell a 0.985 retention from a 1.0 one; this says by how much it cannot. Returns (point, low, high)."""
    gold = np.asarray(gold)
    served, full = np.asarray(served), np.asarray(full)
    if not (len(served) == len(full) == len(gold)) or len(gold) == 0:
        raise ValueError(
            f"{spec.name}: outputs and labels differ in length ({len(served)}, {len(full)}, {len(gold)})"
        )

    def ratio(rows) -> float:
        f = score(spec, full[rows], gold[rows])
        return score(spec, served[rows], gold[rows]) / f if f > 0 else float("nan")

    rng = np.random.default_rng(seed)
    draws = np.array([ratio(rng.integers(0, len(gold), len(gold))) for _ in range(resamples)])
    draws = draws[np.isfinite(draws)]
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail]) if len(draws) else (float("nan"),) * 2
    return ratio(np.arange(len(gold))), float(low), float(high)


def compare(accuracy: dict, served: dict[str, float], tolerance: float = 1e-3) -> list[dict]:
    rows = []
    for task, s in served.items():
        expected = accuracy["tasks"][task]["served"]
        rows.append(
            {
                "task": task,
                "in_process": expected,
                "triton": s,
                "abs_diff": abs(s - expected),
                "ok": abs(s - expected) <= tolerance,
            }
        )
    return rows
