"""`mtserve loadtest --workers 1` against `--workers 2`, alternated, to tell a change from run-to-run noise.

python scripts/loadtest_workers.py REPO OUT_JSON [--pairs 3] [--keep DIR]

Runs `mtserve loadtest --repo REPO --short --workers W` 2 x PAIRS times, alternating 1, 2, 1, 2, ... (so a drift
of the machine hits both), and writes each run's capacities and saving, the largest single call of every passing
step, and per worker count the median, minimum and maximum saving. Run it on a quiet machine: the load generator
and Triton share the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(repo: str, workers: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "mtserve", "loadtest", "--repo", repo, "--short", "--workers", str(workers)]
    t0 = time.perf_counter()
    subprocess.run([*cmd, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return {**read_run(out, workers), "wall_s": round(time.perf_counter() - t0, 1)}


def read_run(out: Path, workers: int) -> dict:
    """One run's capacities and saving (capacity.json), and the largest single call of its passing steps."""
    cap = json.loads((out / "capacity.json").read_text())
    steps = json.loads((out / "capacity_steps.json").read_text())["steps"]
    passing_max = {
        w: max((s["extra"]["max_ms"] for s in steps if s["workload"] == w and s["passed"]), default=None)
        for w in ("multitask", "per-task")
    }
    return {
        "workers": workers,
        "multitask_rps": round(cap["multitask"]["max_rps"], 1),
        "per_task_rps": round(cap["per_task"]["max_rps"], 1),
        "cost_reduction": round(cap["cost_reduction"], 4),
        "largest_call_in_a_passing_step_ms": {w: v and round(v, 1) for w, v in passing_max.items()},
    }


def summary(values: list[float]) -> dict:
    return {"values": values, "median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo")
    ap.add_argument("out_json")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--keep", help="keep each run's reports under this folder")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="loadtest-workers-"))
    runs = []
    for i in range(2 * args.pairs):
        workers = 1 + i % 2
        r = {"run": f"run{i + 1}-w{workers}", **one_run(args.repo, workers, base / f"run{i + 1}-w{workers}")}
        print(json.dumps(r), flush=True)
        runs.append(r)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    out = {
        "command": f"python scripts/loadtest_workers.py {args.repo} {args.out_json} --pairs {args.pairs}",
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "runs": runs,
        **{
            f"workers_{w}": {
                k: summary([r[k] for r in runs if r["workers"] == w])
                for k in ("cost_reduction", "multitask_rps", "per_task_rps")
            }
            for w in (1, 2)
        },
    }
    tmp = Path(args.out_json).with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(args.out_json)


if __name__ == "__main__":
    main()
