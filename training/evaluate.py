"""Dev scores of what Triton serves: each task's dev set sent through the ensemble over gRPC.

Each task's dev set asks `multitask` for that task's outputs alone; every head runs all the same (the one-step
wrapper that keeps cancelled requests from crashing Triton: docs/overload.md), so a row costs one trunk pass plus
every head. The result is compared with the in-process scores that
reports/accuracy.json holds.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from mtserve.serving import names
from mtserve.training.tasks import TaskData, score


def served_scores(
    url: str,
    datasets: dict[str, TaskData],
    model: str = names.MULTITASK,
    batch_size: int = 32,
    single: bool = False,
) -> dict[str, float]:
    """{task: dev score through Triton}. single=True uses each task's `single_<task>` baseline instead."""
    from mtserve.serving.client import MultitaskClient

    out = {}
    with MultitaskClient(url, timeout=120) as client:
        for name, data in datasets.items():
            dev = data.dev
            target = names.single(name) if single else model
            chunks = []
            for start in tqdm(
                range(0, len(dev), batch_size), desc=f"served dev: {name}", leave=False, disable=None
            ):
                texts = dev.texts[start : start + batch_size]
                pairs = None if dev.pairs is None else dev.pairs[start : start + batch_size]
                chunks.append(client.infer(texts, pairs, tasks=[name], model=target)[name]["scores"])
            out[name] = score(data.spec, np.concatenate(chunks), dev.labels)
    return out


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
