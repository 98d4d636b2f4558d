"""`mtserve loadtest --repeats N`: N capacity searches one after another, reported as the median one.

One search's saving moved from run to run on a shared machine by more than its own interval: five `--short` runs
saved 67.1, 64.7, 46.0, 65.8 and 64.2% (docs/results/capacity-stability-pooled.md), the machine slowing during the
third. The median of several runs is the figure to plan on (docs/loadtest.md, "How stable it is here"); this runs
them and reports that one:

- each repeat is a whole `run_capacity` (with --repo, its own Triton: a pod starts its own server too), its
  reports in OUT/repeats/<i>/;
- OUT/capacity.json, capacity.md, capacity_steps.json and latency_vs_rate.png are those of the repeat whose saving
  is the median (the lower middle one for an even N), so every figure in them comes from one measured search;
- capacity.json's `repeats` holds every repeat's maximum rates and saving, and how far the farthest lies from the
  median; capacity.md shows them as a table.
"""

from __future__ import annotations

import math
from pathlib import Path

from mtserve.loadtest.capacity import run_capacity


def median_repeat(savings: list[float | None]) -> int:
    """Index of the repeat whose saving is the median (the lower middle one for an even count). A repeat with no
    saving (multitask met the SLO at no rate) sorts lowest."""
    order = sorted(range(len(savings)), key=lambda i: -math.inf if savings[i] is None else savings[i])
    return order[(len(savings) - 1) // 2]


def repeats_summary(capacities: list[dict], chosen: int) -> dict:
    """capacity.json's `repeats`: every repeat's figures and where the chosen (median) one lies among them."""
    savings = [c["cost_reduction"] for c in capacities]
    known = [s for s in savings if s is not None]
    median = savings[chosen]
    return {
        "n": len(capacities),
        "median_repeat": chosen + 1,
        "cost_reduction": savings,
        "cost_reduction_range": [min(known), max(known)] if known else None,
        "farthest_from_median_points": (
            round(100 * max(abs(s - median) for s in known), 2) if known and median is not None else None
        ),
        "multitask_max_rps": [c["multitask"]["max_rps"] for c in capacities],
        "per_task_max_rps": [c["per_task"]["max_rps"] for c in capacities],
        "folders": [f"repeats/{i}" for i in range(1, len(capacities) + 1)],
    }


def run_repeats(n: int, *, out_dir: str | Path | None = "reports", log=print, **run_kwargs) -> dict:
    """`n` searches with `run_capacity`'s arguments, one after another; returns the median one's result, its
    capacity carrying `repeats`, and writes its reports into `out_dir` (each repeat's into out_dir/repeats/<i>)."""
    from mtserve.loadtest.capacity_report import write_capacity_reports

    if n < 1:
        raise ValueError(f"need n >= 1 repeats, got {n}")
    results = []
    for i in range(1, n + 1):
        log(f"loadtest: repeat {i} of {n}")
        sub = None if out_dir is None else Path(out_dir) / "repeats" / str(i)
        r = run_capacity(out_dir=sub, log=log, **run_kwargs)
        results.append(r)
        c = r["capacity"]
        saving = "undefined" if c["cost_reduction"] is None else f"{c['cost_reduction']:.1%}"
        log(
            f"loadtest: repeat {i} of {n}: multitask {c['multitask']['max_rps']:.1f}/s, "
            f"per-task {c['per_task']['max_rps']:.1f}/s, saving {saving}"
        )
    chosen = median_repeat([r["capacity"]["cost_reduction"] for r in results])
    result = results[chosen]
    result["capacity"]["repeats"] = repeats_summary([r["capacity"] for r in results], chosen)
    rep = result["capacity"]["repeats"]
    log(
        f"loadtest: the median of {n} repeats is repeat {chosen + 1}"
        + (
            f"; savings {rep['cost_reduction_range'][0]:.1%} to {rep['cost_reduction_range'][1]:.1%}, the farthest "
            f"{rep['farthest_from_median_points']:g} points from it"
            if rep["farthest_from_median_points"] is not None
            else ""
        )
    )
    if out_dir is not None:
        sizing = result["capacity"]["sizing"]
        paths = write_capacity_reports(
            result, out_dir, target_rps=sizing["target_rps"], utilisation=sizing["utilisation"]
        )
        result["paths"] = {k: str(v) for k, v in paths.items()}
        log(f"loadtest: wrote {', '.join(str(p) for p in paths.values())}")
    return result
