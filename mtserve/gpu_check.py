"""`mtserve gpu-check` (`make gpu-check`): on a machine with an NVIDIA GPU, what the shared trunk saves there.

Exports the gpu profile of a training run (`--run-dir`) or of a synthetic repository (`--synthetic N --shape
bert-base`), then times on the GPU, with onnxruntime's CUDA execution provider (TensorRT's with --tensorrt),
the models each deployment runs for one batch of utterances: the trunk plus every head (multitask) against
every task's full BERT (one deployment per task), at the batch sizes Triton's dynamic batcher forms (the
warm-up batch sizes: 1, 4, 16, max) and one sequence bucket. It prints, per batch size, milliseconds per batch
of each side and the cost ratio multitask / per-task, beside the ideal from the layer counts.

Where there is no GPU (no CUDA execution provider in onnxruntime: `pip install onnxruntime-gpu` on a GPU
machine) it says so and exits 0 without exporting anything: the check is skipped, not failed. `--require-gpu`
makes that exit 1 instead (for a GPU CI job that must not pass vacuously). `--allow-cpu` runs the same
measurement on CPU, labelled as such: it tests the procedure, not the GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from mtserve.core import names, registry
from mtserve.core.errors import UserError

SKIPPED, NO_GPU_REQUIRED = 0, 1  # 1: a check failed (core/exit_codes.py): no GPU where one is required


def gpu_providers(tensorrt: bool = False) -> list | None:
    """onnxruntime's GPU providers in order of preference, or None where onnxruntime has no CUDA."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        return None
    chosen = ["CUDAExecutionProvider"]
    if tensorrt and "TensorrtExecutionProvider" in available:
        chosen.insert(0, ("TensorrtExecutionProvider", {"trt_fp16_enable": True}))
    return chosen


def why_no_gpu() -> str:
    import onnxruntime as ort

    smi = shutil.which("nvidia-smi")
    return (
        f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (providers: "
        f"{', '.join(ort.get_available_providers())}); "
        + ("nvidia-smi is present: install onnxruntime-gpu" if smi else "no NVIDIA driver (nvidia-smi) found")
    )


def _feeds(session, batch: int, seq: int, hidden: int, rng, vocab: int = 1000) -> dict:
    feeds = {}
    for i in session.get_inputs():
        if i.name == "hidden":
            feeds[i.name] = rng.standard_normal((batch, seq, hidden), dtype=np.float32)
        elif i.name == names.ATTENTION_MASK:
            feeds[i.name] = np.ones((batch, seq), dtype=np.int64)
        elif i.name == "input_ids":
            feeds[i.name] = rng.integers(
                1, vocab, (batch, seq), dtype=np.int64
            )  # any valid ids: cost, not values
        else:
            feeds[i.name] = np.zeros((batch, seq), dtype=np.int64)
    return feeds


def time_model(session, feeds: dict, repeats: int) -> float:
    """Median wall milliseconds of one run (after two untimed runs: kernel selection, engine builds)."""
    for _ in range(2):
        session.run(None, feeds)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure(repo: Path, providers: list, batches: list[int], seq: int, repeats: int) -> dict:
    import onnxruntime as ort

    reg = registry.load(repo)
    tasks = [t for t, e in reg.tasks.items() if e.baseline]
    if not tasks:
        raise UserError(f"{repo}: no per-task baseline models to compare with (exported with --no-baseline?)")

    def session(model: str, version: int = 1):
        path = repo / model / str(version) / "model.onnx"
        return ort.InferenceSession(str(path), providers=providers)

    trunk = session(names.TRUNK, reg.trunk.version)
    heads = {t: session(t, reg.tasks[t].head_version) for t in tasks}
    fulls = {t: session(names.full(t)) for t in tasks}
    vocab_file = next((repo / names.TOKENIZER).glob("*/vocab.txt"))
    vocab = sum(1 for _ in vocab_file.open(encoding="utf-8"))
    rng = np.random.default_rng(0)
    rows = []
    for b in batches:
        ids = _feeds(trunk, b, seq, reg.hidden_size, rng, vocab)
        t_trunk = time_model(trunk, ids, repeats)
        t_heads = sum(time_model(h, _feeds(h, b, seq, reg.hidden_size, rng), repeats) for h in heads.values())
        t_full = sum(time_model(f, ids, repeats) for f in fulls.values())
        rows.append(
            {
                "batch": b,
                "seq": seq,
                "multitask_ms": round(t_trunk + t_heads, 3),
                "trunk_ms": round(t_trunk, 3),
                "heads_ms": round(t_heads, 3),
                "per_task_ms": round(t_full, 3),
                "cost_ratio": round((t_trunk + t_heads) / t_full, 4),
            }
        )
    ideal = reg.layers_served(tasks) / reg.layers_baseline(tasks)
    return {"tasks": tasks, "ideal_cost_ratio": round(ideal, 4), "rows": rows}


def configure(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--run-dir", help="a training run to export (default: a synthetic repository)")
    src.add_argument("--repo", type=Path, help="an existing gpu-profile repository to time as it is")
    p.add_argument("--synthetic", type=int, default=8, metavar="N", help="synthetic tasks (default 8)")
    p.add_argument("--shape", default="bert-base-1l", help="synthetic shape (default bert-base-1l)")
    p.add_argument("--out", type=Path, default=Path("model_repository/gpu-check"), help="where to export")
    p.add_argument("--batches", default="1,4,16,64", help="batch sizes (default: the warm-up's 1,4,16,64)")
    p.add_argument("--seq", type=int, default=32, help="sequence bucket (default 32: short utterances)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per model and batch (default 20)")
    p.add_argument("--tensorrt", action="store_true", help="TensorRT execution provider (else CUDA)")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--require-gpu", action="store_true", help=f"exit {NO_GPU_REQUIRED} (not 0) without a GPU")
    p.add_argument(
        "--allow-cpu", action="store_true", help="without a GPU, measure on CPU (tests the procedure)"
    )


def run(args) -> int:
    providers = gpu_providers(args.tensorrt)
    device = "GPU"
    if providers is None:
        reason = why_no_gpu()
        if not args.allow_cpu:
            print(f"gpu-check: skipped: no GPU here: {reason}. Nothing was measured.")
            return NO_GPU_REQUIRED if args.require_gpu else SKIPPED
        providers, device = (
            ["CPUExecutionProvider"],
            "CPU (no GPU: a test of the procedure, not a GPU figure)",
        )
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    repo = args.repo
    if repo is None:
        if args.run_dir:
            from mtserve.export.export import export_run

            export_run(args.run_dir, args.out, profile="gpu", progress=False, tensorrt=args.tensorrt)
        else:
            from mtserve.export.synthetic import build_synthetic_repo

            build_synthetic_repo(args.out, args.synthetic, args.shape, profile="gpu", check_memory=False)
        repo = args.out
    result = measure(Path(repo), providers, batches, args.seq, args.repeats)
    result |= {
        "device": device,
        "providers": [p if isinstance(p, str) else p[0] for p in providers],
        "repo": str(repo),
    }
    print(f"gpu-check on {device}: {len(result['tasks'])} tasks, sequence {args.seq}; ms per batch")
    print(
        f"{'batch':>6} {'trunk+heads':>12} {'per-task':>10} {'ratio':>7}  (ideal {result['ideal_cost_ratio']:.3f})"
    )
    for r in result["rows"]:
        print(f"{r['batch']:>6} {r['multitask_ms']:>12.2f} {r['per_task_ms']:>10.2f} {r['cost_ratio']:>7.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
