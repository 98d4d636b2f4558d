"""Does a local Triton serve less after an overload? Closed-loop throughput of both workloads on one server, each
measurement after either an overload or a rest of the same length, alternating.

    python scripts/throughput_after_overload.py model_repository/multitask OUT [--cycles 8]

A `--short` search alternates workloads step by step, and a failing step there is an overload (queue timeouts,
UNAVAILABLE). Within one run a rate that passed early failed later (docs/results/capacity-stability-pooled.md,
run 3). This asks whether the overloads themselves leave the server slower: one Triton; each cycle measures
multitask then per-task closed-loop (`--concurrency` callers, `--seconds` each; loadtest/closed_loop.py), then
either overloads it (`--overload-concurrency` callers on each workload, `--overload-seconds` each: the queue
timeout rejects) or rests as long, in turn. Writes OUT.json, OUT.md and OUT.png (every measurement over time, by
what came before it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mtserve.loadtest.closed_loop import closed_loop, utterance_caller
from mtserve.loadtest.protocol import make_plan
from mtserve.loadtest.workload import build_pool
from mtserve.serving.triton import TritonServer

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("multitask", "per-task")


def measure(url: str, plan, pool, workload: str, callers: int, seconds: float) -> dict:
    def caller(k: int):  # caller k sends utterances k, k + callers, ... of the pool
        order = itertools.count(k, callers)
        return utterance_caller(url, plan, workload, lambda: pool[next(order) % len(pool)])

    run = closed_loop(callers, seconds, caller)
    p99 = run.percentile_ms(99)
    return {
        "workload": workload,
        "callers": callers,
        "utterances_per_s": round(run.utterances_per_s, 1),
        "p99_ms": None if p99 is None else round(p99, 1),
        "failed": len(run.failed()),
    }


def summarize(points: list[dict]) -> dict:
    out = {}
    for w in WORKLOADS:
        rates = {
            after: [p["utterances_per_s"] for p in points if p["workload"] == w and p["after"] == after]
            for after in ("overload", "rest")
        }
        every = [p["utterances_per_s"] for p in points if p["workload"] == w]
        out[w] = {
            "mean_after_overload": round(statistics.mean(rates["overload"]), 1)
            if rates["overload"]
            else None,
            "mean_after_rest": round(statistics.mean(rates["rest"]), 1) if rates["rest"] else None,
            "min": min(every),
            "max": max(every),
            "spread_pct": round(100 * (max(every) - min(every)) / statistics.median(every), 1),
        }
    return out


def markdown(doc: dict) -> str:
    s = doc["summary"]
    lines = [
        "# Does a local Triton serve less after an overload?",
        "",
        f"Command: `{doc['script']}` ({doc['date']}, commit {doc['commit']}). Machine: {doc['machine']}. "
        f"Closed loop, {doc['settings']['concurrency']} callers, {doc['settings']['seconds']:g} s per measurement; "
        f"overloads of {doc['settings']['overload_concurrency']} callers, {doc['settings']['overload_seconds']:g} s "
        "per workload; rests as long as an overload.",
        "",
        "| # | s from start | after | multitask utt/s | p99 ms | per-task utt/s | p99 ms |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for i, (m, p) in enumerate(zip(doc["points"][::2], doc["points"][1::2], strict=True), 1):
        lines.append(
            f"| {i} | {m['t_s']:.0f} | {m['after']} | {m['utterances_per_s']:.1f} | {m['p99_ms']} | "
            f"{p['utterances_per_s']:.1f} | {p['p99_ms']} |"
        )
    lines += ["", "| overload | callers | workload | utt/s answered | failed |", "|---:|---:|---|---:|---:|"]
    for o in doc["overloads"]:
        lines.append(
            f"| {o['cycle']} | {o['callers']} | {o['workload']} | {o['utterances_per_s']:.1f} | {o['failed']} |"
        )
    lines.append("")
    for w in WORKLOADS:
        x = s[w]
        lines.append(
            f"- {w}: {x['mean_after_overload']} utterances/s on average after an overload, {x['mean_after_rest']} "
            f"after a rest; every measurement {x['min']:.1f} to {x['max']:.1f} ({x['spread_pct']}% of the median)."
        )
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    marker = {"start": "s", "overload": "x", "rest": "o"}
    for w, color in zip(WORKLOADS, ("tab:blue", "tab:orange"), strict=True):
        pts = [p for p in doc["points"] if p["workload"] == w]
        ax.plot([p["t_s"] for p in pts], [p["utterances_per_s"] for p in pts], "-", color=color, alpha=0.4)
        for after, m in marker.items():
            sel = [p for p in pts if p["after"] == after]
            ax.plot(
                [p["t_s"] for p in sel],
                [p["utterances_per_s"] for p in sel],
                m,
                color=color,
                label=f"{w}, after {after}",
            )
    ax.set_xlabel("seconds from the first measurement (one Triton)")
    ax.set_ylabel("closed-loop utterances per second")
    ax.set_title(f"Closed loop, {doc['settings']['concurrency']} callers: after an overload or a rest")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("repo")
    p.add_argument("out", help="OUT: writes OUT.json, OUT.md, OUT.png")
    p.add_argument("--cycles", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--overload-concurrency", type=int, default=64)
    p.add_argument("--overload-seconds", type=float, default=15.0)
    args = p.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    pool = build_pool(size=2000)
    points, overloads = [], []
    with TritonServer(args.repo) as server:
        url = server.grpc_url
        plan = make_plan(url, None)
        for w in WORKLOADS:  # every model warm before the first measurement
            measure(url, plan, pool, w, 2, 2.0)
        t0, after = time.monotonic(), "start"
        for cycle in range(1, args.cycles + 1):
            for w in WORKLOADS:
                m = measure(url, plan, pool, w, args.concurrency, args.seconds)
                m.update(cycle=cycle, after=after, t_s=round(time.monotonic() - t0, 1))
                points.append(m)
                print(
                    f"{time.strftime('%H:%M:%S')} cycle {cycle}/{args.cycles} after {after}: {m}", flush=True
                )
            if cycle == args.cycles:
                break
            after = "overload" if cycle % 2 else "rest"
            if after == "overload":
                for w in WORKLOADS:
                    o = measure(url, plan, pool, w, args.overload_concurrency, args.overload_seconds)
                    o["cycle"] = cycle
                    overloads.append(o)
            else:
                time.sleep(len(WORKLOADS) * args.overload_seconds)
    doc = {
        "what": "closed-loop throughput of both workloads on one Triton, after an overload or a rest, alternating",
        "script": shlex.join(["python", "scripts/throughput_after_overload.py", *sys.argv[1:]]),
        "commit": commit.stdout.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": "2-core CPU shared with other engineers",
        "settings": {
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "overload_concurrency": args.overload_concurrency,
            "overload_seconds": args.overload_seconds,
        },
        "summary": summarize(points),
        "points": points,
        "overloads": overloads,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    plot(doc, out.with_suffix(".png"))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
