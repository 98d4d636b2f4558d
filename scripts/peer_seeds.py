"""Our full fine-tuning against the peer's (Hugging Face Trainer) over several seeds: is a gap noise?

python scripts/peer_seeds.py OUT_STEM SEED=REPORTS_DIR [SEED=REPORTS_DIR ...] [--command CMD]
    [--variant LABEL SEED=REPORTS_DIR ...]

Each REPORTS_DIR holds the accuracy.json of one `mtserve train --peer-baseline` run with its own `--seed` (the
seed draws the validation split, the training order and the classifier's initialisation, for ours and the peer's
alike). Writes OUT_STEM.json and OUT_STEM.md: per task and seed, our full fine-tuning's dev score, the peer's, and
the difference; per task their means over the seeds, the mean difference, and the spread of each model over the
seeds (sample standard deviation), which says how far one seed's difference can move by chance.

--variant: our full fine-tuning trained with another setting (LABEL, e.g. "--pooling cls"), from a run without
the peer: set against the peer's score of the same seed and task from the runs above, which the setting does not
change (the peer trains its own model).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from mtserve.core.machine import describe
from mtserve.core.registry import atomic_write

TOLERANCE = 0.01  # issue 14: our full fine-tuning within 0.01 of the peer's, or above


def read_run(arg: str, peers: dict | None = None) -> dict:
    """One run's scores. `peers` ((seed, task) -> the peer's score): a variant run, scored against these."""
    seed, sep, reports = arg.partition("=")
    if not sep or not seed.isdigit():
        sys.exit(f"{arg!r}: give each run as SEED=REPORTS_DIR (the --seed it was trained with)")
    path = Path(reports) / "accuracy.json"
    try:
        acc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"{path}: cannot read it ({e})")
    tasks = {}
    for name, t in acc["tasks"].items():
        peer = t.get("peer") if peers is None else peers.get((int(seed), name))
        if peer is None:
            sys.exit(
                f"{path}: task {name!r} has no peer score (was the run made with --peer-baseline?)"
                if peers is None
                else f"{path}: no run above gives the peer's score of task {name!r} with seed {seed}"
            )
        tasks[name] = {
            "metric": t["metric"],
            "full": t["full"],
            "peer": peer,
            "full_vs_peer": t["full"] - peer,
        }
    return {"reports": reports, "seed": int(seed), "tasks": tasks}


def sd(xs: list[float]) -> float | None:
    """The sample standard deviation over seeds, or None from one seed."""
    return statistics.stdev(xs) if len(xs) > 1 else None


def summarise(runs: list[dict]) -> dict:
    out = {}
    for name in sorted({n for r in runs for n in r["tasks"]}):
        rows = [(r["seed"], r["tasks"][name]) for r in runs if name in r["tasks"]]
        full = [t["full"] for _, t in rows]
        peer = [t["peer"] for _, t in rows]
        diff = [t["full_vs_peer"] for _, t in rows]
        out[name] = {
            "metric": rows[0][1]["metric"],
            "seeds": [s for s, _ in rows],
            "full": full,
            "peer": peer,
            "full_vs_peer": diff,
            "full_mean": statistics.fmean(full),
            "peer_mean": statistics.fmean(peer),
            "full_vs_peer_mean": statistics.fmean(diff),
            "full_sd": sd(full),
            "peer_sd": sd(peer),
            "within_tolerance_on_mean": statistics.fmean(diff) >= -TOLERANCE,
            "seeds_within_tolerance": sum(d >= -TOLERANCE for d in diff),
        }
    return out


def fmt4(x: float | None) -> str:
    """A score with 4 decimals, or an empty cell."""
    return "" if x is None else f"{x:.4f}"


def summary_table(tasks: dict) -> list[str]:
    lines = [
        "| task | seeds | full FT mean (sd) | peer mean (sd) | mean difference | seeds within 0.01 or above |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in tasks.items():
        lines.append(
            f"| {name} | {len(t['seeds'])} | {fmt4(t['full_mean'])} ({fmt4(t['full_sd'])}) | {fmt4(t['peer_mean'])} "
            f"({fmt4(t['peer_sd'])}) | {t['full_vs_peer_mean']:+.4f} | {t['seeds_within_tolerance']} of {len(t['seeds'])} |"
        )
    return lines


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Our full fine-tuning against Hugging Face's Trainer, over seeds (issue 14)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores. Command(s):",
        "",
        "```",
        *result["commands"],
        "```",
        "",
        "Each seed draws the validation split held out of train, the training order and the classifier's "
        "initialisation, for both models alike; dev rows are the same for every seed. A difference below "
        f"-{TOLERANCE} on one seed is a miss of issue 14's target only if it is larger than what the seed alone moves.",
        "",
        "| task | metric | seed | full FT | peer | full - peer |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in result["tasks"].items():
        for s, a, b, d in zip(t["seeds"], t["full"], t["peer"], t["full_vs_peer"], strict=True):
            lines.append(f"| {name} | {t['metric']} | {s} | {fmt4(a)} | {fmt4(b)} | {d:+.4f} |")
    lines += ["", *summary_table(result["tasks"])]
    for label, tasks in result.get("variants", {}).items():
        lines += [
            "",
            f"## Our full fine-tuning with {label}",
            "",
            "Against the same seed's peer from the runs above (the setting changes only ours).",
            "",
            "| task | seed | full FT, default | full FT, with the setting | peer | with the setting - peer |",
            "|---|---|---|---|---|---|",
        ]
        for name, t in tasks.items():
            default = result["tasks"].get(name, {})
            by_seed = dict(zip(default.get("seeds", []), default.get("full", []), strict=True))
            for s, a, b, d in zip(t["seeds"], t["full"], t["peer"], t["full_vs_peer"], strict=True):
                lines.append(f"| {name} | {s} | {fmt4(by_seed.get(s))} | {fmt4(a)} | {fmt4(b)} | {d:+.4f} |")
        lines += ["", *summary_table(tasks)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_stem")
    p.add_argument("runs", nargs="+", metavar="SEED=REPORTS_DIR")
    p.add_argument("--command", action="append", default=[], help="the training command(s), for the report")
    p.add_argument(
        "--variant",
        nargs=2,
        action="append",
        default=[],
        metavar=("LABEL", "SEED=REPORTS_DIR"),
        help="our full fine-tuning with another setting, from a run without the peer (repeat per seed)",
    )
    args = p.parse_args(argv)
    runs = [read_run(r) for r in args.runs]
    result = {"machine": describe(), "commands": args.command, "runs": runs, "tasks": summarise(runs)}
    peers = {(r["seed"], name): t["peer"] for r in runs for name, t in r["tasks"].items()}
    variants: dict[str, list[dict]] = {}
    for label, arg in args.variant:
        variants.setdefault(label, []).append(read_run(arg, peers))
    if variants:
        result["variant_runs"] = variants
        result["variants"] = {label: summarise(vr) for label, vr in variants.items()}
    stem = Path(args.out_stem)
    atomic_write(stem.with_suffix(".json"), (json.dumps(result, indent=1) + "\n").encode())
    atomic_write(stem.with_suffix(".md"), markdown(result).encode())
    print(markdown(result))


if __name__ == "__main__":
    main()
