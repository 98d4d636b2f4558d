"""Does a server's start change the saving? Closed-loop throughput of both workloads over several Triton starts.

    python scripts/start_to_start.py model_repository/multitask docs/results/capacity-start-to-start \
        [--starts 5] [--concurrency 8] [--seconds 10] [--rounds 3] [--from DIR]

Each start is one `scripts/cpu_per_utterance.py REPO DIR/runI.json CONCURRENCY SECONDS ROUNDS`: its own Triton,
both workloads closed-loop, alternating, ROUNDS windows each. Writes OUT.json (every window, and per start the
ratio of the two throughputs), OUT.md and OUT.png (the ratio per window and per start). The spread of the
starts' ratios set beside the spread between windows of one start says whether the start moves the throughput
ratio. `--from DIR` summarises the runI.json files of an earlier run instead of starting servers.

Throughput at a fixed concurrency, not the SLO-bound capacity of `mtserve loadtest`: what it rules in or out is
the servers' speed, not the p99 at the knee.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("multitask", "per-task")


def one_start(repo: str, out: Path, concurrency: int, seconds: float, rounds: int) -> None:
    cmd = [sys.executable, str(ROOT / "scripts/cpu_per_utterance.py"), repo, str(out)]
    subprocess.run([*cmd, str(concurrency), str(seconds), str(rounds)], check=True)


def summarize_start(i: int, raw: dict, source: Path) -> dict:
    rates = {w: [x["utterances_per_s"] for x in raw["windows"] if x["workload"] == w] for w in WORKLOADS}
    mt, pt = rates["multitask"], rates["per-task"]
    if not mt or len(mt) != len(pt):  # the ratio per round pairs the two workloads' windows of one round
        raise SystemExit(
            f"{source}: {len(mt)} multitask and {len(pt)} per-task windows; rounds need one of each"
        )
    ratio = statistics.mean(mt) / statistics.mean(pt)
    return {
        "start": i,
        # what cpu_per_utterance.py ran with, from its own file (with --from, not this script's flags)
        "settings": {"concurrency": raw["concurrency"], "window_s": raw["seconds"], "rounds": len(mt)},
        "loadavg_at_end": [float(x) for x in raw["loadavg"]],
        "multitask_utt_per_s": mt,
        "per_task_utt_per_s": pt,
        "ratio_per_round": [round(a / b, 3) for a, b in zip(mt, pt, strict=True)],
        "ratio_of_means": round(ratio, 3),
        "throughput_saving": round(1 - 1 / ratio, 4),
        "windows": raw["windows"],
    }


def spread_pct(xs: list[float]) -> float:
    return round(100 * (max(xs) - min(xs)) / statistics.median(xs), 1)


def summarize(starts: list[dict]) -> dict:
    ratios = [s["ratio_of_means"] for s in starts]
    within = [spread_pct(s["ratio_per_round"]) for s in starts]
    return {
        "ratio_of_means_per_start": ratios,
        "ratio_spread_between_starts_pct": spread_pct(ratios),
        "ratio_spread_within_a_start_pct": within,
        "throughput_saving_per_start": [s["throughput_saving"] for s in starts],
        "multitask_spread_between_starts_pct": spread_pct(
            [statistics.mean(s["multitask_utt_per_s"]) for s in starts]
        ),
        "per_task_spread_between_starts_pct": spread_pct(
            [statistics.mean(s["per_task_utt_per_s"]) for s in starts]
        ),
    }


def markdown(doc: dict) -> str:
    s = doc["summary"]
    lines = [
        "# Does a server's start move the saving? Closed-loop throughput over several Triton starts",
        "",
        f"Command: `{doc['script']}` ({doc['date']}, commit {doc['commit']}); each start: `{doc['each_start']}`. "
        f"Machine: {doc['machine']}.",
        "",
        "| start | multitask utterances/s per window | per-task | ratio per window | ratio of the means | "
        "saving by throughput | load at the end |",
        "|---:|---|---|---|---:|---:|---|",
    ]
    for st in doc["starts"]:
        lines.append(
            f"| {st['start']} | {', '.join(f'{x:.1f}' for x in st['multitask_utt_per_s'])} | "
            f"{', '.join(f'{x:.1f}' for x in st['per_task_utt_per_s'])} | "
            f"{', '.join(f'{x:.2f}' for x in st['ratio_per_round'])} | {st['ratio_of_means']:.3f} | "
            f"{st['throughput_saving']:.1%} | {' '.join(f'{x:g}' for x in st['loadavg_at_end'])} |"
        )
    lines += [
        "",
        f"The ratio of the means moved by {s['ratio_spread_between_starts_pct']}% between starts; between the "
        f"windows of one start, by {min(s['ratio_spread_within_a_start_pct'])}% to "
        f"{max(s['ratio_spread_within_a_start_pct'])}%. Multitask's mean moved by "
        f"{s['multitask_spread_between_starts_pct']}% and per-task's by {s['per_task_spread_between_starts_pct']}% "
        "between starts.",
        "",
    ]
    return "\n".join(lines)


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for st in doc["starts"]:
        xs = [st["start"]] * len(st["ratio_per_round"])
        ax.plot(xs, st["ratio_per_round"], "o", color="tab:blue", alpha=0.5)
        ax.plot([st["start"]], [st["ratio_of_means"]], "_", color="black", markersize=24)
    ax.plot([], [], "o", color="tab:blue", alpha=0.5, label="one window (alternating rounds)")
    ax.plot([], [], "_", color="black", markersize=16, label="ratio of the start's means")
    ax.set_xticks([st["start"] for st in doc["starts"]])
    ax.set_xlabel("Triton start (one after another)")
    ax.set_ylabel("multitask / per-task utterances per second")
    ax.set_title(f"Closed loop, concurrency {doc['settings']['concurrency']}: the ratio per start")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("repo")
    p.add_argument("out", help="OUT: writes OUT.json, OUT.md, OUT.png")
    p.add_argument("--starts", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--from", dest="from_dir", help="summarise DIR/run1.json ... of an earlier run")
    args = p.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    with tempfile.TemporaryDirectory(prefix="start-to-start-") as tmp:
        raw_dir = Path(args.from_dir or tmp)
        if not args.from_dir:
            for i in range(1, args.starts + 1):
                print(f"start {i}/{args.starts} ({time.strftime('%H:%M:%S')})", flush=True)
                one_start(args.repo, raw_dir / f"run{i}.json", args.concurrency, args.seconds, args.rounds)
        files = sorted(raw_dir.glob("run*.json"), key=lambda f: int(f.stem[3:]))
        if not files:
            raise SystemExit(f"no run*.json in {raw_dir}")
        starts = [summarize_start(i, json.loads(f.read_text()), f) for i, f in enumerate(files, 1)]
    settings = starts[0]["settings"]
    for f, st in zip(files, starts, strict=True):
        if st["settings"] != settings:  # one summary across starts needs one way of measuring them
            raise SystemExit(f"{f}: measured with {st['settings']}, {files[0].name} with {settings}")
    doc = {
        "what": "closed-loop throughput of both workloads over several Triton starts, one after another",
        "script": shlex.join(["python", "scripts/start_to_start.py", *sys.argv[1:]]),
        "each_start": (
            f"python scripts/cpu_per_utterance.py {args.repo} runI.json {settings['concurrency']} "
            f"{settings['window_s']:g} {settings['rounds']}"
        ),
        "commit": commit.stdout.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": "2-core CPU shared with other engineers (load averages per start in the table)",
        "settings": settings,
        "summary": summarize(starts),
        "starts": starts,
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
