"""fp32 against bf16 (or fp16 on a GPU) on this machine: one task's whole `mtserve train`, stage by stage.

    python scripts/bench_precision.py --glue-dir ../shared/glue --task sst2 --rows 2000 \
        [--precisions fp32,bf16] [--device cpu] [--out docs/results/precision-cpu.json]

Runs the real pipeline (training/pipeline.py: full fine-tuning, the trunk feature pass, the search over every k and
student) once per precision on the same rows, the feature cache in memory only (so each run computes its
features), and reports what each stage took (search.json's `seconds`) and every dev score, so a speed-up is read
beside what it does to accuracy. The served score is fp32 whatever the training precision. Time it on an
otherwise idle machine: the report records the load average.

Why not a micro-benchmark of one step: an earlier one (a single padded batch, timed from its first call) said bf16
was 2x slower than fp32 for full fine-tuning and the feature pass on this CPU and 5x faster for a branch step;
the pipeline itself measured otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from mtserve.core.machine import describe as describe_machine
from mtserve.core.task_file import load_glue
from mtserve.training.config import SearchConfig, TrainConfig
from mtserve.training.pipeline import DEFAULT_BACKBONE, train
from mtserve.training.run_dir import Run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--glue-dir", required=True)
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--rows", type=int, default=2000, help="training rows (a seeded sample)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backbone", default=DEFAULT_BACKBONE)
    ap.add_argument("--out")
    args = ap.parse_args()
    data = {args.task: load_glue(args.task, args.glue_dir, args.rows)}
    runs = {}
    for precision in args.precisions.split(","):
        cfg = TrainConfig(device=args.device, precision=precision)
        with tempfile.TemporaryDirectory(prefix="bench-precision-") as d:
            load = os.getloadavg()[0]
            t = time.perf_counter()
            train(data, d, args.backbone, cfg, SearchConfig(), cache_dir=None)
            wall = time.perf_counter() - t
            r = Run(Path(d)).task_result(args.task)
        runs[precision] = {
            "wall_s": round(wall, 1),
            "seconds": r["seconds"],
            "loadavg_1m_at_start": round(load, 2),
            "full_dev": r["full"],
            "served_dev": r["chosen"].get("served"),
            "chosen": {k: r["chosen"][k] for k in ("kind", "k", "l", "branch_depth")},
            "candidates_dev": {
                f"{c['kind']}-k{c['k']}-l{c['l']}": c.get("dev", c["score"]) for c in r["candidates"]
            },
        }
    out = {
        "command": "python scripts/bench_precision.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
        "machine": describe_machine(),
        "task": args.task,
        "train_examples": len(data[args.task].train),
        "validation_examples": len(data[args.task].validation),
        "dev_examples": len(data[args.task].dev),
        "runs": runs,
    }
    base = runs.get("fp32")
    if base:
        out["speedup_vs_fp32"] = {
            p: {k: round(base["seconds"][k] / r["seconds"][k], 2) for k in base["seconds"]}
            | {"wall_s": round(base["wall_s"] / r["wall_s"], 2)}
            for p, r in runs.items()
            if p != "fp32"
        }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
