"""`mtserve demo` (`make demo`): the whole pipeline on the embedded corpus, end to end.

1. train      full fine-tuning, partial fine-tuning and distillation per task -> reports/accuracy.*
2. export     the Triton repository (local profile) -> model_repository/multitask
3. serve      a real Triton on it
4. check      every task's dev set through gRPC reproduces accuracy.json; a few example utterances
5. load test  a short capacity search, multitask against one deployment per task -> reports/capacity.*
6. stop       the server, print where everything is
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mtserve.core.errors import UserError

EXAMPLES = [
    "turn on the lights in the kitchen",
    "ugh, play some jazz, you never get this right",
    "urgent: book a flight to tokyo tomorrow",
    "thanks so much, what's on my calendar next week",
]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default="runs/latest")
    p.add_argument("--repo", default="model_repository/multitask")
    p.add_argument("--reports", default="reports")
    p.add_argument("--train-examples", type=int, default=2000, help="utterances in the generated train split")
    p.add_argument("--dev-examples", type=int, default=500)
    p.add_argument("--slo-p99-ms", type=float, default=500.0, help="latency SLO of the short capacity search")
    p.add_argument("--skip-train", action="store_true", help="reuse --run-dir instead of training again")
    p.add_argument("--skip-loadtest", action="store_true")


def _say(message: str) -> None:
    """A stage line, timestamped like training's progress lines (training/progress.py) and flushed at once, so a
    log file shows each stage as it starts."""
    from mtserve.training.progress import stamp

    print(stamp(message), flush=True)


def run(args) -> int:
    from mtserve.core import corpus
    from mtserve.export.export import export_run
    from mtserve.training import accuracy_report as report
    from mtserve.training.config import SearchConfig, TrainConfig
    from mtserve.training.evaluate import compare, served_scores
    from mtserve.training.pipeline import train
    from mtserve.training.run_dir import Run

    t0 = time.perf_counter()
    timings = {}
    datasets = corpus.generate(args.train_examples, args.dev_examples)
    run_dir = Path(args.run_dir)
    if not args.skip_train:
        _say(
            f"[1/5] training {len(datasets)} tasks on the embedded corpus "
            f"({args.train_examples} train / {args.dev_examples} dev utterances)"
        )
        # Demo budget: full fine-tuning for 2 epochs; the search tries the top 1 and 2 layers and a
        # 1-layer student of the 2-layer teacher, all on cached trunk features.
        cfg = TrainConfig(epochs_full=2, epochs_partial=3, epochs_distil=3, max_length=64)
        train(datasets, run_dir, cfg=cfg, search=SearchConfig([1, 2], 1, 0.995), measure_uncached=False)
    timings["train_s"] = time.perf_counter() - t0
    datasets = {t: datasets[t] for t in Run(run_dir).tasks()}  # a reused run may hold a subset
    acc = report.write_accuracy(Run(run_dir), args.reports)
    print(report.accuracy_table(acc))
    for warning in report.not_learned(acc):
        _say(f"WARNING: {warning}")

    t1 = time.perf_counter()
    _say(f"[2/5] exporting {run_dir} -> {args.repo}")
    export_run(run_dir, args.repo, profile="local")
    timings["export_s"] = time.perf_counter() - t1

    from mtserve.serving.triton import TritonServer

    _say("[3/5] starting Triton")
    with TritonServer(args.repo) as server:
        print(f"      ready: grpc {server.grpc_url}")
        from mtserve.serving.client import MultitaskClient, format_predictions

        with MultitaskClient(server.grpc_url) as client:
            print(format_predictions(EXAMPLES, client.infer(EXAMPLES)))
        t2 = time.perf_counter()
        _say("[4/5] dev sets through gRPC vs in-process scores")
        rows = compare(acc, served_scores(server.grpc_url, datasets))
        for r in rows:
            print(
                f"      {r['task']:<12} in-process {r['in_process']:.4f}  triton {r['triton']:.4f}  "
                f"{'ok' if r['ok'] else 'MISMATCH'}"
            )
        timings["served_eval_s"] = time.perf_counter() - t2
        (Path(args.reports) / "served_check.json").write_text(json.dumps(rows, indent=2))
        if not all(r["ok"] for r in rows):
            raise UserError("served dev scores differ from the in-process ones by more than 0.001")
        if not args.skip_loadtest:
            t3 = time.perf_counter()
            _say("[5/5] short capacity search: multitask vs one deployment per task")
            from mtserve.loadtest.capacity import short_capacity

            # the server already running is the one measured; the registry gives the layer counts for the ideal
            cap = short_capacity(
                server.grpc_url,
                args.reports,
                slo_p99_ms=args.slo_p99_ms,
                registry_path=Path(args.repo) / "registry.json",
            )["capacity"]
            timings["loadtest_s"] = time.perf_counter() - t3
            reduction = "n/a" if cap["cost_reduction"] is None else f"{cap['cost_reduction']:.1%}"
            print(
                f"      multitask {cap['multitask']['max_rps']:.1f} utt/s, per-task {cap['per_task']['max_rps']:.1f} "
                f"utt/s: cost reduction {reduction} (ideal {cap['ideal_cost_reduction']:.1%})"
            )
    timings["total_s"] = time.perf_counter() - t0
    (Path(args.reports) / "demo_timings.json").write_text(
        json.dumps({k: round(v, 1) for k, v in timings.items()}, indent=2)
    )
    _say(f"done in {timings['total_s'] / 60:.1f} min; reports in {args.reports}/, repository in {args.repo}/")
    return 0
