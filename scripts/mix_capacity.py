"""Issue 28's mix measurement: a synthetic repository on BERT-base's shape with tasks at two depths and four task
groups, Zipf traffic over the groups and a few single tasks, measured with `mtserve loadtest --mix`.

    python scripts/mix_capacity.py docs/results/bert-base-mix [--tasks 16] [--depths 4,8] [--zipf 1.0]

1. builds (or reuses, under cache/) the repository: export/synthetic.py on the chosen shape (random weights,
   real shapes), N tasks whose branch depths cycle over --depths, heads of 1-2 layers, the per-task baseline
   (N full models), the groups below; one instance of every model (--instances: a full BERT-base per task is
   what fills the memory), checked against the memory estimate first;
2. writes the mix file (the four groups, then a few single tasks and one task pair, Zipf shares in that order)
   beside OUT;
3. runs the plain command line, `mtserve loadtest --repo REPO --mix MIX --short ...` (its own Triton, started and
   stopped), reading /proc/loadavg just before and after, since the machine is shared;
4. writes OUT.json (capacity.json, cost_reduction and ideal_cost_reduction at its top, plus how it was run),
   OUT.md (capacity.md under a header saying how busy the machine was), OUT.png (the saving per entry and for the
   mix, beside the ideal), OUT-latency.png and OUT-steps.json (every step, the settings: capacity_steps.json).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Groups over 16 tasks (t00..t15; with depths 4,8 the even tasks branch at 4 with 1 layer, the odd at 8 with 2):
# sizes 6, 4, 3 and 2, mixing depths.
GROUPS = {
    "support": ["t00", "t01", "t02", "t03", "t04", "t05"],
    "search": ["t06", "t08", "t10", "t12"],
    "moderation": ["t07", "t09", "t11"],
    "ranking": ["t13", "t14"],
}
# The mix, in Zipf rank order: the groups, then single tasks at each depth and a pair no group covers.
ENTRIES = [
    {"group": "support"},
    {"group": "search"},
    {"group": "moderation"},
    {"group": "ranking"},
    {"tasks": ["t15"]},
    {"tasks": ["t04"]},
    {"tasks": ["t02", "t07"]},
]


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or "unknown"


def build(args) -> Path:
    from mtserve.core import registry
    from mtserve.core.errors import UserError
    from mtserve.export import synthetic
    from mtserve.export.model_config import ServingOptions, parse_instances

    depths = tuple(int(d) for d in args.depths.split(","))
    name = (
        f"mix-{args.shape}-n{args.tasks}-d{'-'.join(map(str, depths))}"
        f"-i{args.instances.replace(',', '-').replace('=', '')}-q{args.queue_timeout_us}"
    )
    repo = Path(args.cache) / name / "model_repository"
    want_groups = {g: [t for t in m if int(t[1:]) < args.tasks] for g, m in GROUPS.items()}
    want_groups = {g: m for g, m in want_groups.items() if len(m) >= 2}
    try:
        reg = registry.load(repo)
        if reg.groups == want_groups and reg.synthetic and reg.synthetic.get("n_tasks") == args.tasks:
            print(f"mix: reusing {repo}", flush=True)
            return repo
    except UserError:
        pass
    shutil.rmtree(repo.parent, ignore_errors=True)
    repo.parent.mkdir(parents=True, exist_ok=True)
    serving = ServingOptions(
        instances=parse_instances(args.instances), queue_timeout_us=args.queue_timeout_us
    )
    t0 = time.monotonic()
    synthetic.build_synthetic_repo(
        repo,
        args.tasks,
        args.shape,
        max_length=args.max_length,
        depths=depths,
        groups=want_groups,
        serving=serving,
        log=lambda m: print(m, flush=True),
    )
    print(f"mix: exported {repo} in {time.monotonic() - t0:.0f} s", flush=True)
    return repo


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="OUT: writes OUT.json, OUT.md, OUT.png, OUT-latency.png and OUT-mix.yaml")
    p.add_argument("--tasks", type=int, default=16)
    p.add_argument("--shape", default="bert-base")
    p.add_argument("--depths", default="4,8")
    p.add_argument("--zipf", type=float, default=1.0)
    p.add_argument("--instances", default="trunk=1,heads=1,tokenizer=1")
    p.add_argument("--max-length", type=int, default=128)
    # the trunk segments' and full models' queue timeout: at least the SLO, so that a machine shared with other
    # work queues a request under the SLO instead of answering UNAVAILABLE (the export's default is 500 ms)
    p.add_argument("--queue-timeout-us", type=int, default=500_000)
    p.add_argument("--cache", default="cache")
    p.add_argument("--build-only", action="store_true")
    args, loadtest_args = p.parse_known_args()
    repo = build(args)
    if args.build_only:
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mix_file = out.with_name(out.name + "-mix.yaml")
    entries = [e for e in ENTRIES if all(int(t[1:]) < args.tasks for t in e.get("tasks", []))]
    from mtserve.core import registry

    groups = registry.load(repo).groups
    entries = [e for e in entries if "group" not in e or e["group"] in groups]
    mix_file.write_text(
        f"# {args.tasks} synthetic tasks on {args.shape}'s shape (scripts/mix_capacity.py): Zipf shares in this order\n"
        + json.dumps({"zipf": args.zipf, "entries": entries}, indent=2)
        + "\n"
    )
    with tempfile.TemporaryDirectory(prefix="mix-capacity-") as tmp:
        report = Path(tmp) / "report"
        rel_repo = repo.resolve().relative_to(ROOT) if repo.resolve().is_relative_to(ROOT) else repo
        cmd = [
            sys.executable,
            "-m",
            "mtserve.cli",
            "loadtest",
            "--repo",
            str(rel_repo),
            "--mix",
            str(mix_file),
        ]
        cmd += ["--short", "--out", str(report), *loadtest_args]
        shown = ["mtserve", *cmd[3:]]
        shown[shown.index("--out") + 1] = "REPORT"
        print("mix: " + shlex.join(shown), flush=True)
        before = loadavg()
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, text=True)
        wall = time.monotonic() - t0
        after = loadavg()
        if proc.returncode not in (0, 1):
            print(f"mix: the load test failed (exit {proc.returncode})", file=sys.stderr)
            return proc.returncode
        cap = json.loads((report / "capacity.json").read_text())
        run = {
            "command": shlex.join(shown),
            "script": "python scripts/mix_capacity.py " + shlex.join(sys.argv[1:]),
            "commit": git_commit(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg_before": before,
            "loadavg_after": after,
            "wall_s": round(wall, 1),
            "repository": {
                "tasks": args.tasks,
                "shape": args.shape,
                "depths": args.depths,
                "groups": groups,
                "instances": args.instances,
                "max_length": args.max_length,
                "queue_timeout_us": args.queue_timeout_us,
            },
        }
        head = {k: cap[k] for k in ("cost_reduction", "ideal_cost_reduction")}
        ratio = (
            cap["cost_reduction"] / cap["ideal_cost_reduction"] if cap["cost_reduction"] is not None else None
        )
        result = {
            **head,
            "fraction_of_ideal": ratio,
            **{k: v for k, v in cap.items() if k not in head},
            "run": run,
        }
        out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        md = (report / "capacity.md").read_text().replace(str(report), "REPORT")
        header = [
            f"# The mix on a synthetic repository: {args.tasks} tasks on {args.shape}'s shape, depths {args.depths}",
            "",
            f"Measured saving {cap['cost_reduction']:.1%} against the ideal {cap['ideal_cost_reduction']:.1%} "
            f"for this mix: **{ratio:.2f} x the ideal**. Every head for every utterance (`multitask`): "
            f"{cap['every_head_reduction']:.1%}."
            if ratio is not None
            else "No saving measured.",
            "",
            f"`{shlex.join(shown)}` (from `{run['script']}`), commit {run['commit']}, {run['date']}; "
            f"{run['wall_s']:.0f} s. Load average before {before}, after {after}, on 2 cores shared with other "
            "engineers' work.",
            "",
        ]
        out.with_suffix(".md").write_text("\n".join(header) + "\n" + md)
        shutil.copy(report / "mix.png", out.with_suffix(".png"))
        # the Locust report paths inside name the temporary folder: REPORT, as in the .md
        steps = (report / "capacity_steps.json").read_text().replace(str(report), "REPORT")
        out.with_name(out.name + "-steps.json").write_text(steps)
        shutil.copy(report / "latency_vs_rate.png", out.with_name(out.name + "-latency.png"))
    print(f"mix: wrote {out}.json / .md / .png; load {before} -> {after}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
