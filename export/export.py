"""`mtserve export`: a training run -> a Triton model repository.

    tokenizer/        python backend (numpy + stdlib): text, text_pair -> input_ids, token_type_ids, attention_mask
    trunk_<a>_<b>/    ONNX: the frozen layers a+1..b, cut at every depth a task branches from (0: from the ids)
    <task>/           ONNX: one head per task: hidden, attention_mask -> scores, label
    full_<task>/      ONNX: the per-task baseline, one fully fine-tuned BERT
    multitask/        ensemble: text -> every task's <task>_scores / <task>_label (and multitask_graph/)
    path_<task>/      ensemble: text -> one task's outputs, through its segments and its head only
    group_<g>/        ensemble: text -> a group's outputs (--group g=a,b,c; and graph_<g>/)
    single_<task>/    ensemble: text -> the baseline's <task>_scores / <task>_label
    registry.json     what is deployed: tasks, groups, branch depths, versions, labels, metrics

Profiles: `gpu` (onnxruntime backend, KIND_GPU: what production loads) and `local` (the same .onnx
files run by a python-backend model on CPU, for the pip-installed Triton). Only the backend line
and the instance kind differ between them. Configs are written through Triton's own protobuf.
Options: `--fp16` converts every exported ONNX model to fp16 inside, fp32 at its inputs and outputs
(so configs do not change); `--tensorrt` (gpu profile only) adds onnxruntime's TensorRT execution
accelerator to each onnxruntime model: the one allowed config difference beyond backend and kind.
`mtserve export --check REPO` validates a repository (export/repository_check.py). This module turns the run into
a plan; export/writer.py writes it (the ONNX graphs from export/onnx_export.py, the configs from
export/model_config.py and export/ensembles.py), to a temporary folder renamed into place: a failed export never
leaves half a repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtserve.core import registry, routing
from mtserve.core.errors import UserError
from mtserve.core.options import add_dataclass_arguments, from_args
from mtserve.export.model_config import (
    ServingOptions,
)
from mtserve.export.writer import HeadPlan, RepositoryPlan, TaskScores, write_repository
from mtserve.training.search import Candidate


def run_plan(
    run_dir: str | Path,
    profile: str = "local",
    with_baseline: bool = True,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
    groups: dict[str, list[str]] | None = None,
) -> RepositoryPlan:
    """A training run (training/run_dir.py's Run) as a repository plan: its frozen trunk cut at every branch
    depth, each task's chosen branch and full fine-tuning, and what the run measured of each (search.json)."""
    from mtserve.training.run_dir import Run

    run = Run(run_dir)
    record = run.record
    bert_cfg = run.bert_config()
    tasks: dict[str, HeadPlan] = {}
    for name in record.tasks:
        branch, bmeta = run.branch(name)
        result = run.search(name)
        chosen = Candidate.from_dict(bmeta["chosen"])
        tasks[name] = HeadPlan(
            spec=run.spec(name),
            depth=branch.config.depth,
            task_layers=branch.config.num_layers,
            branch=branch,
            full=run.full(name) if with_baseline else None,
            scores=TaskScores(
                dev_score=chosen.dev_score,
                full_score=result.full,
                meets_target=chosen.meets_target,
                full_learned=result.full_learned,
                train_examples=result.train_examples,
                dev_examples=result.dev_examples,
            ),
        )
    depths = sorted({t.depth for t in tasks.values()})
    return RepositoryPlan(
        profile=profile,
        backbone=record.backbone,
        num_layers=record.num_layers,
        hidden_size=record.hidden_size,
        vocab_size=bert_cfg.vocab_size,
        max_length=record.config["max_length"],
        tokenizer_dir=run.root / "tokenizer",
        trunk=run.trunk(depths),
        fingerprint=record.trunk_fingerprint,
        tasks=tasks,
        baseline=with_baseline,
        # warm-up by default on the gpu profile (the first request must not pay for kernel selection), off on
        # local (CPU, started often)
        serving=ServingOptions(warmup=profile == "gpu") if serving is None else serving,
        fp16=fp16,
        tensorrt=tensorrt,
        groups=dict(groups or {}),
    )


def export_run(
    run_dir: str | Path,
    out: str | Path,
    profile: str = "local",
    with_baseline: bool = True,
    progress: bool = True,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
    groups: dict[str, list[str]] | None = None,
) -> registry.Registry:
    """Export a training run as a model repository at `out` (the one writer, export/writer.py).

    fp16: every ONNX model (trunk, heads and the full_* baselines alike, so capacity comparisons stay fair)
    computes in fp16 with fp32 inputs and outputs. tensorrt: gpu profile only, see add_tensorrt.
    serving: batching knobs, warm-up, response cache (ServingOptions)."""
    if profile not in ("local", "gpu"):  # before loading any weights (the plan checks them again)
        raise UserError(f"--profile must be 'local' or 'gpu', got {profile!r}")
    if tensorrt and profile != "gpu":
        raise UserError("--tensorrt applies to --profile gpu only (the python backend has no TensorRT)")
    plan = run_plan(
        run_dir, profile, with_baseline, fp16=fp16, tensorrt=tensorrt, serving=serving, groups=groups
    )
    return write_repository(plan, out, progress=progress)


# ---------------------------------------------------------------- CLI
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default="runs/latest", help="the training run to export")
    p.add_argument("--out", default="model_repository/multitask", help="repository folder to (re)write")
    p.add_argument(
        "--profile",
        choices=["local", "gpu"],
        default="local",
        help="local: python backend running the ONNX files on CPU; gpu: onnxruntime backend, KIND_GPU",
    )
    p.add_argument(
        "--no-baseline", action="store_true", help="skip the per-task baseline models (full_*, single_*)"
    )
    p.add_argument(
        "--fp16",
        action="store_true",
        help="ONNX models compute in fp16 (fp32 inputs/outputs kept, configs unchanged)",
    )
    p.add_argument(
        "--tensorrt",
        action="store_true",
        help="gpu profile: add onnxruntime's TensorRT execution accelerator (FP16) to the ONNX models, with "
        "an engine cache (--trt-cache-path) and optimisation profiles for batch 1..--max-batch and every "
        "sequence bucket",
    )
    p.add_argument(
        "--group",
        action="append",
        metavar="NAME=a,b,c",
        help="a task group served as group_NAME: one request for these tasks runs the trunk up to the deepest "
        "of them and their heads only (repeatable; change later with `mtserve task group`)",
    )
    g = p.add_argument_group("serving options (written into the configs and registry.json)")
    add_dataclass_arguments(g, ServingOptions)
    p.add_argument(
        "--check",
        metavar="REPO",
        nargs="?",
        const="",
        default=None,
        help="validate a repository strictly instead of exporting (default: --out)",
    )


def run(args) -> int:
    if args.check is not None:
        from mtserve.export.repository_check import check_repository

        repo = Path(args.check or args.out)
        problems = check_repository(repo)
        for p in problems:
            print(p)
        if problems:
            print(f"{repo}: {len(problems)} problem(s)")
            return 1
        print(f"{repo}: ok")
        return 0
    fp16, tensorrt = getattr(args, "fp16", False), getattr(args, "tensorrt", False)
    if args.warmup is None:  # warm-up by default where the first request would pay for kernel selection
        args.warmup = args.profile == "gpu"
    serving = from_args(ServingOptions, args)
    reg = export_run(
        args.run_dir,
        args.out,
        args.profile,
        not args.no_baseline,
        fp16=fp16,
        tensorrt=tensorrt,
        serving=serving,
        groups=routing.parse_groups(getattr(args, "group", None)),
    )
    worst = max(c["max_abs_diff"] for c in reg.export_checks.values())
    print(
        f"exported {len(reg.tasks)} task(s) to {args.out} (profile {args.profile}); trunk {reg.trunk.layers} "
        f"layers in {len(reg.segments())} segment(s) at branch depths {reg.trunk.depths}"
        + (f"; groups {', '.join(reg.groups)}" if reg.groups else "")
        + f"; ONNX vs PyTorch max abs diff {worst:.2e}"
        + (" (fp16 vs fp32)" if fp16 else "")
        + ("; TensorRT accelerator" if tensorrt else "")
    )
    return 0
