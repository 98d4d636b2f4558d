"""Consecutive `mtserve loadtest --repo REPO --short` runs: how far their savings move, and against the ideal.

    python scripts/capacity_stability.py model_repository/multitask docs/results/capacity-stability --runs 5

Each run is the plain command line (its own Triton, started and stopped), its reports kept in a temporary folder;
/proc/loadavg is read just before and just after each, since the machine is shared. Writes OUT.json (every run's
maximum rates and saving with their intervals, the load averages, the spread against the median and the fraction
of the ideal, and per run the searches' outcomes, the paired check's verdicts and every step in short), OUT.md,
and OUT.png (each run's saving with its interval, the median band +-3 points, 0.95 x the ideal).

With --one-server, one Triton is started for all the runs and each run calls it (`--url`): set beside a set
without it, it asks whether a server's start moves the saving, apart from time on the shared machine
(scripts/start_to_start.py asks the same of throughput alone).

With --from-repeats DIR it runs nothing and reads the repeats of one `mtserve loadtest --short --repeats N --out
DIR` (DIR/repeats/<i>/) the same way: N searches one after another, each on its own Triton (no load averages).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtserve.loadtest import cpu_steal

ROOT = Path(__file__).resolve().parent.parent


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def one_run(repo: str, out: Path, extra: list[str], url: str | None = None) -> dict:
    target = ["--url", url, "--registry", str(Path(repo) / "registry.json")] if url else ["--repo", repo]
    cmd = [str(ROOT / ".venv/bin/mtserve"), "loadtest", *target, "--short", "--out", str(out), *extra]
    before = loadavg()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = loadavg()
    (out / "stdout.log").parent.mkdir(parents=True, exist_ok=True)
    (out / "stdout.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    return read_run(out, before, after, wall)


def read_run(
    out: Path, before: list[float] | None = None, after: list[float] | None = None, wall: float | None = None
) -> dict:
    """One run's figures from the reports it wrote into `out` (wall time: the search's own, when not given)."""
    cap = json.loads((out / "capacity.json").read_text())
    details = json.loads((out / "capacity_steps.json").read_text())
    steps = details["steps"]
    steals = [v for v in map(cpu_steal.of_step, steps) if v is not None]
    return {
        "loadavg_before": before,
        "loadavg_after": after,
        "wall_s": round(details["wall_s"] if wall is None else wall, 1),
        "multitask_rps": cap["multitask"]["max_rps"],
        "multitask_rps_interval": cap["multitask"]["max_rps_interval"],
        "per_task_rps": cap["per_task"]["max_rps"],
        "per_task_rps_interval": cap["per_task"]["max_rps_interval"],
        "cost_reduction": cap["cost_reduction"],
        "cost_reduction_interval": cap["cost_reduction_interval"],
        "ideal_cost_reduction": cap["ideal_cost_reduction"],
        "sizing": cap["sizing"],
        "steps": len(steps),
        "unstable_steps": sum(1 for s in steps if s.get("stability") == "unstable"),
        # the share of CPU time the hypervisor gave other guests during each step (loadtest/cpu_steal.py)
        "cpu_steal_median": round(statistics.median(steals), 4) if steals else None,
        "cpu_steal_max": round(max(steals), 4) if steals else None,
        "windows": sum(len(s.get("windows") or []) for s in steps),
        "outcomes": {w: r["outcome"] for w, r in details["results"].items()},
        "paired_check": [r["verdict"] for r in details.get("paired_check") or []],
        # every step in the order it ran, short: what a run's figure rests on, once its folder is gone
        "search": [
            {
                "workload": s["workload"],
                "offered_rps": round(s["offered_rps"], 2),
                "passed": s["passed"],
                "stability": s.get("stability", ""),
                "errors": s["errors"],
                "cpu_steal": cpu_steal.of_step(s),
                "window_p99_ms": [
                    round(w["p99_ms"]) if math.isfinite(w["p99_ms"]) else None for w in s.get("windows") or []
                ],
            }
            for s in steps
        ],
    }


def summarize(runs: list[dict]) -> dict:
    savings = [r["cost_reduction"] for r in runs]
    ideal = runs[0]["ideal_cost_reduction"]
    median = statistics.median(savings)
    return {
        "median_cost_reduction": median,
        "min_cost_reduction": min(savings),
        "max_cost_reduction": max(savings),
        "largest_distance_from_median_points": round(100 * max(abs(s - median) for s in savings), 2),
        "within_3_points_of_median": all(abs(s - median) <= 0.03 for s in savings),
        "ideal_cost_reduction": ideal,
        "fraction_of_ideal": [round(s / ideal, 4) for s in savings] if ideal else None,
        "each_at_least_0.95_of_ideal": bool(ideal) and all(s >= 0.95 * ideal for s in savings),
        "multitask_rps": [r["multitask_rps"] for r in runs],
        "per_task_rps": [r["per_task_rps"] for r in runs],
    }


def _steal(run: dict) -> str:
    """A run's CPU steal, as the table shows it (n/a for sets measured before steps recorded it)."""
    if run.get("cpu_steal_median") is None:
        return "n/a"
    return f"{run['cpu_steal_median']:.0%}, {run['cpu_steal_max']:.0%}"


def markdown(doc: dict) -> str:
    s = doc["summary"]
    lines = [
        "# Capacity search stability: consecutive `--short` runs",
        "",
        f"Command, each run: `{doc['command']}` ({doc['runs_n']} runs one after another, {doc['date']}, "
        f"commit {doc['commit']}). Machine: {doc['machine']}."
        + (" One Triton, started once, served every run." if doc.get("one_server") else ""),
        "",
        "| run | load avg before (1/5/15 min) | after | multitask/s | interval | per-task/s | interval | saving "
        "| interval | of ideal | steps (unstable) | windows | CPU steal (median, most) | s |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for i, r in enumerate(doc["runs"], 1):
        mi, pi, ci = r["multitask_rps_interval"], r["per_task_rps_interval"], r["cost_reduction_interval"]
        lines.append(
            f"| {i} | {' '.join(map(str, r['loadavg_before'] or ['n/a']))} | "
            f"{' '.join(map(str, r['loadavg_after'] or ['n/a']))} | "
            f"{r['multitask_rps']:.1f} | {mi[0]:.1f}-{mi[1]:.1f} | {r['per_task_rps']:.1f} | {pi[0]:.1f}-{pi[1]:.1f} | "
            f"{r['cost_reduction']:.1%} | {ci[0]:.1%} to {ci[1]:.1%} | "
            f"{r['cost_reduction'] / r['ideal_cost_reduction']:.3f} | {r['steps']} ({r['unstable_steps']}) | "
            f"{r['windows']} | {_steal(r)} | {r['wall_s']:.0f} |"
        )
    lines += [
        "",
        f"Savings: median **{s['median_cost_reduction']:.1%}**, {s['min_cost_reduction']:.1%} to "
        f"{s['max_cost_reduction']:.1%}; the farthest from the median is {s['largest_distance_from_median_points']:.1f} "
        f"points ({'within' if s['within_3_points_of_median'] else 'NOT within'} 3). Ideal (layer count) "
        f"{s['ideal_cost_reduction']:.1%}: each run at {', '.join(f'{f:.3f}' for f in s['fraction_of_ideal'])} of it "
        f"({'each' if s['each_at_least_0.95_of_ideal'] else 'NOT each'} at least 0.95).",
        "",
    ]
    return "\n".join(lines)


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, s = doc["runs"], doc["summary"]
    xs = list(range(1, len(runs) + 1))
    ys = [100 * r["cost_reduction"] for r in runs]
    lo = [100 * (r["cost_reduction"] - r["cost_reduction_interval"][0]) for r in runs]
    hi = [100 * (r["cost_reduction_interval"][1] - r["cost_reduction"]) for r in runs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=4, label="measured saving (interval)")
    m = 100 * s["median_cost_reduction"]
    ax.axhspan(m - 3, m + 3, color="tab:blue", alpha=0.12, label="median +- 3 points")
    ideal = 100 * s["ideal_cost_reduction"]
    ax.axhline(ideal, color="gray", linestyle="--", label=f"ideal (layer count) {ideal:.1f}%")
    ax.axhline(0.95 * ideal, color="red", linestyle=":", label=f"0.95 x ideal {0.95 * ideal:.1f}%")
    ax.set_xticks(xs)
    ax.set_xlabel("run (consecutive `mtserve loadtest --short`)")
    ax.set_ylabel("cost reduction, multitask vs per-task (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Saving per run, with the interval of its two capacities")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("repo")
    p.add_argument("out", help="OUT: writes OUT.json, OUT.md, OUT.png")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "--one-server", action="store_true", help="start one Triton for every run (runs call it by --url)"
    )
    p.add_argument(
        "--from-repeats",
        metavar="DIR",
        help="run nothing: read the repeats of one `mtserve loadtest --short --repeats N --out DIR` instead",
    )
    p.epilog = "More `mtserve loadtest` arguments go after `--`, e.g. `-- --duration 3 --max-time 360`."
    args, extra = p.parse_known_args()
    # a positional nargs="*" after `--` is refused once repo and out are taken: pass the rest on as given
    args.extra = extra[1:] if extra[:1] == ["--"] else extra
    out = Path(args.out)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    runs = []
    if args.from_repeats:
        where = Path(args.from_repeats, "repeats")
        folders = sorted(where.iterdir(), key=lambda f: int(f.name)) if where.is_dir() else []
        if not folders:
            raise SystemExit(
                f"{where}: no repeats (the folder `mtserve loadtest --repeats N --out DIR` writes)"
            )
        runs = [read_run(f) for f in folders]
        args.runs = len(runs)
    with tempfile.TemporaryDirectory(prefix="capacity-stability-") as tmp, contextlib.ExitStack() as stack:
        url = None
        if args.one_server and not args.from_repeats:
            from mtserve.serving.triton import TritonServer

            url = stack.enter_context(TritonServer(Path(args.repo)).start(timeout=300)).grpc_url
        for i in range(0 if args.from_repeats else args.runs):
            r = one_run(args.repo, Path(tmp) / f"run{i + 1}", args.extra, url)
            runs.append(r)
            print(
                f"run {i + 1}/{args.runs}: multitask {r['multitask_rps']:.1f}/s, per-task {r['per_task_rps']:.1f}/s, "
                f"saving {r['cost_reduction']:.1%} (interval {r['cost_reduction_interval'][0]:.1%} to "
                f"{r['cost_reduction_interval'][1]:.1%}); load {r['loadavg_before']} -> {r['loadavg_after']}",
                flush=True,
            )
    doc = {
        "what": f"{args.runs} consecutive `mtserve loadtest --short` runs on one repository",
        "command": shlex.join(
            ["mtserve", "loadtest"]
            + (
                ["--url", "URL", "--registry", f"{args.repo}/registry.json"]
                if args.one_server
                else ["--repo", args.repo]
            )
            + ["--short", *args.extra]
            + (["--repeats", str(args.runs)] if args.from_repeats else [])
        ),
        "one_server": args.one_server and not args.from_repeats,
        "script": shlex.join(["python", "scripts/capacity_stability.py", *sys.argv[1:]]),
        "commit": commit.stdout.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": "2-core CPU shared with other engineers"
        + (" (load averages per run below)" if not args.from_repeats else ""),
        "runs_n": args.runs,
        "runs": runs,
        "summary": summarize(runs),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    plot(doc, out.with_suffix(".png"))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
