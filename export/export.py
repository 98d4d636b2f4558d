"""`mtserve export`: a training run -> a Triton model repository.

    tokenizer/      python backend (numpy + stdlib): text, text_pair -> input_ids, token_type_ids, attention_mask
    trunk/          ONNX: the frozen layers, outputs hidden_<d> at every depth a task branches from
    <task>/         ONNX: one head per task: hidden, attention_mask -> scores, label
    full_<task>/    ONNX: the per-task baseline, one fully fine-tuned BERT
    multitask/      ensemble: text -> every task's <task>_scores / <task>_label
    single_<task>/  ensemble: text -> the baseline's <task>_scores / <task>_label
    registry.json   what is deployed: tasks, branch depths, versions, labels, metrics

Profiles: `gpu` (onnxruntime backend, KIND_GPU: what production loads) and `local` (the same .onnx
files run by a python-backend model on CPU, for the pip-installed Triton). Only the backend line
and the instance kind differ between them. Configs are written through Triton's own protobuf.
Options: `--fp16` converts every exported ONNX model to fp16 inside, fp32 at its inputs and outputs
(so configs do not change); `--tensorrt` (gpu profile only) adds onnxruntime's TensorRT execution
accelerator to each onnxruntime model: the one allowed config difference beyond backend and kind.
`mtserve export --check REPO` validates a repository (export/repository_check.py). The ONNX graphs come from
export/onnx_export.py, the configs from export/model_config.py; this module places them.
The repository is written to a temporary folder and renamed into place: a failed export never
leaves half a repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.core.tasks import TaskSpec
from mtserve.export.ensembles import single_config, write_ensemble, write_multitask
from mtserve.export.model_config import (
    F32,
    I64,
    ID_TENSORS,
    MAX_BATCH,
    QUEUE_DELAY_US,
    QUEUE_TIMEOUT_US,
    TEXT_INPUTS,
    TRT_CACHE_PATH,
    ServingOptions,
    apply_batching,
    base_config,
    onnx_config,
    parse_instances,
    sequence_buckets,
    task_outputs,
    tensor_spec,
    write_config,
)
from mtserve.export.onnx_export import export_full, export_head, export_trunk, infer_shapes
from mtserve.training.backbone import Branch, TaskModel, Trunk
from mtserve.training.search import Candidate

SERVING_DIR = Path(__file__).resolve().parent.parent / "serving"


def _copy_python_model(src: str, version_dir: Path, extra: tuple[str, ...] = ()) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SERVING_DIR / "models" / src, version_dir / "model.py")
    for name in extra:
        shutil.copy(SERVING_DIR / name, version_dir / Path(name).name)


# ---------------------------------------------------------------- the repository
def write_tokenizer(run_root: Path, repo: Path, max_length: int, serving: ServingOptions | None = None):
    """The tokenizer model; returns the serving tokenizer (its padding rule gives the sequence buckets)."""
    from transformers import AutoTokenizer

    from mtserve.export.tokenizer_export import export_tokenizer

    version = repo / names.TOKENIZER / "1"
    _copy_python_model("tokenizer.py", version, ("wordpiece.py",))
    hf = AutoTokenizer.from_pretrained(str(run_root / "tokenizer"), local_files_only=True)
    tok = export_tokenizer(hf, version, max_length)
    # No queue policy on the tokenizer: any policy turns off the dynamic batcher's prefetching, and Triton's
    # batcher (core r24.10 to today, src/dynamic_batch_scheduler.cc WaitForPayloadSlotAvailable) then waits for
    # a free instance with a 500 ms timeout whose wake-up can be missed. The tokenizer, shared by every
    # single_<task> ensemble, gets several requests at once for each utterance of the per-task path: 11 of 84
    # utterances stalled about 500 ms at 3 utterances/s (docs/overload.md). It is a small fraction of the work,
    # so its queue never holds the backlog: the trunk's and full models' REJECT timeouts bound that.
    cfg = base_config(
        names.TOKENIZER, TEXT_INPUTS, ID_TENSORS, "local", python_model=True, bounded_queue=False
    )
    write_config(apply_batching(cfg, serving or ServingOptions(), "tokenizer"), repo / names.TOKENIZER)
    return tok


def _precision(fp16: bool) -> dict:
    return {"precision": "fp16"} if fp16 else {}


def write_trunk(
    trunk: Trunk,
    repo: Path,
    profile: str,
    vocab_size: int,
    version: int = 1,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    h = trunk.embeddings.word_embeddings.embedding_dim
    vdir = repo / names.TRUNK / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    diff = export_trunk(trunk, vdir / "model.onnx", vocab_size, fp16=fp16)
    if tensorrt:
        infer_shapes(vdir / "model.onnx")
    if profile == "local":
        _copy_python_model("onnx_runner.py", vdir)
    outs = [tensor_spec(names.hidden(d), F32, [-1, h]) for d in trunk.out_depths]
    cfg = onnx_config(
        names.TRUNK,
        ID_TENSORS,
        outs,
        profile,
        tensorrt,
        kind="trunk",
        serving=serving,
        model_dir=repo / names.TRUNK,
    )
    write_config(cfg, repo / names.TRUNK)
    return {"max_abs_diff": diff, **_precision(fp16)}


def write_head(
    name: str,
    spec: TaskSpec,
    branch: Branch,
    repo: Path,
    profile: str,
    version: int = 1,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    h = branch.config.hidden_size
    vdir = repo / name / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    diff = export_head(
        branch, None if spec.labels is None else list(spec.labels), vdir / "model.onnx", fp16=fp16
    )
    if tensorrt:
        infer_shapes(vdir / "model.onnx")
    if profile == "local":
        _copy_python_model("onnx_runner.py", vdir)
    inputs = [tensor_spec("hidden", F32, [-1, h]), tensor_spec("attention_mask", I64, [-1])]
    outputs = task_outputs(name, spec, prefix=False)
    cfg = onnx_config(
        name, inputs, outputs, profile, tensorrt, kind="heads", serving=serving, model_dir=repo / name
    )
    write_config(cfg, repo / name)
    return {"max_abs_diff": diff, **_precision(fp16)}


def write_full(
    name: str,
    spec: TaskSpec,
    model: TaskModel,
    repo: Path,
    profile: str,
    vocab_size: int,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    vdir = repo / names.full(name) / "1"
    vdir.mkdir(parents=True, exist_ok=True)
    diff = export_full(
        model, None if spec.labels is None else list(spec.labels), vdir / "model.onnx", vocab_size, fp16=fp16
    )
    if tensorrt:
        infer_shapes(vdir / "model.onnx")
    if profile == "local":
        _copy_python_model("onnx_runner.py", vdir)
    model_dir = repo / names.full(name)
    outputs = task_outputs(name, spec, prefix=False)
    # a baseline is a whole BERT, sized like the trunk: it takes the trunk's instance count
    cfg = onnx_config(
        names.full(name),
        ID_TENSORS,
        outputs,
        profile,
        tensorrt,
        kind="trunk",
        serving=serving,
        model_dir=model_dir,
    )
    write_config(cfg, model_dir)
    return {"max_abs_diff": diff, **_precision(fp16)}


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system or the file system
    cannot (then the caller renames twice)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def atomic_repository(out: Path):
    """Context manager: yields a temporary folder beside `out`; on success it replaces `out` in one step, so
    a failure (a full disk, a kill) at any point leaves the previous repository as it was."""
    import contextlib
    import errno

    @contextlib.contextmanager
    def _cm():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            yield tmp
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                free = shutil.disk_usage(out.parent).free
                raise UserError(
                    f"no space left on the device of {out.parent} while writing the repository "
                    f"({e.filename or 'a model file'}); {free / 2**20:.1f} MiB free now that the partial copy is "
                    f"removed. {out} is untouched"
                    + (" (the previous repository, as it was)" if out.exists() else "")
                    + ": free space, or export to another place with --out"
                ) from None
            raise
        if out.exists() and _exchange(tmp, out):  # the new repository in place, the old one now at tmp
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    return _cm()


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
) -> dict:
    """Export a training run (training/run_dir.py's Run) as a model repository at `out`.

    fp16: every ONNX model (trunk, heads and the full_* baselines alike, so capacity comparisons stay fair)
    computes in fp16 with fp32 inputs and outputs. tensorrt: gpu profile only, see add_tensorrt.
    serving: batching knobs, warm-up, response cache (ServingOptions); by default warm-up is on for the gpu
    profile (the first request must not pay for kernel selection) and off for local (CPU, started often)."""
    from tqdm.auto import tqdm

    from mtserve.training.run_dir import Run

    if profile not in ("local", "gpu"):
        raise UserError(f"--profile must be 'local' or 'gpu', got {profile!r}")
    if tensorrt and profile != "gpu":
        raise UserError("--tensorrt applies to --profile gpu only (the python backend has no TensorRT)")
    serving = ServingOptions(warmup=profile == "gpu") if serving is None else serving
    opts = {"fp16": fp16, "tensorrt": tensorrt, "serving": serving}
    run = Run(run_dir)
    meta = run.meta
    bert_cfg = run.bert_config()
    tasks: dict[str, tuple[TaskSpec, int]] = {}
    branches = {}
    for name in meta["tasks"]:
        branch, bmeta = run.branch(name)
        tasks[name] = (run.spec(name), branch.config.depth)
        branches[name] = (branch, bmeta)
    depths = sorted({d for _, d in tasks.values()})
    trunk = run.trunk(depths)
    out = Path(out)
    checks = {}
    steps = (
        [names.TOKENIZER, names.TRUNK]
        + list(tasks)
        + ([names.full(t) for t in tasks] if with_baseline else [])
    )
    bar = tqdm(steps, desc="export", disable=None if progress else True, leave=False)
    with atomic_repository(out) as tmp:
        for step in bar:
            bar.set_postfix_str(step)
            if step == names.TOKENIZER:
                tok = write_tokenizer(run.root, tmp, meta["config"]["max_length"], serving)
                serving.buckets = sequence_buckets(tok)  # before the models that warm up on them
            elif step == names.TRUNK:
                checks[names.TRUNK] = write_trunk(trunk, tmp, profile, bert_cfg.vocab_size, **opts)
            elif names.task_of_full(step):
                name = names.task_of_full(step)
                checks[step] = write_full(
                    name, tasks[name][0], run.full(name), tmp, profile, bert_cfg.vocab_size, **opts
                )
            else:
                checks[step] = write_head(step, tasks[step][0], branches[step][0], tmp, profile, **opts)
        write_multitask(tasks, tmp, serving)
        if with_baseline:
            for name, (spec, _) in tasks.items():
                write_ensemble(single_config(name, spec, serving), tmp)
        reg = registry.Registry(
            profile=profile,
            backbone=meta["backbone"],
            num_layers=meta["num_layers"],
            hidden_size=meta["hidden_size"],
            max_length=meta["config"]["max_length"],
            trunk=registry.TrunkEntry(1, depths, max(depths), meta["trunk_fingerprint"]),
            tasks={
                name: registry.TaskEntry(
                    **spec.to_dict(),
                    branch_depth=depth,
                    task_layers=branches[name][0].config.num_layers,
                    head_version=1,
                    baseline=names.single(name) if with_baseline else None,
                    dev_score=Candidate.from_dict(branches[name][1]["chosen"]).dev_score,
                )
                for name, (spec, depth) in tasks.items()
            },
            export_checks=checks,
            # how the ONNX models were built: a later head export should match
            onnx={"precision": "fp16" if fp16 else "fp32", "tensorrt": tensorrt}
            if fp16 or tensorrt
            else None,
            serving=serving.to_registry(),
        )
        registry.save(tmp, reg)
    return reg


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
    g = p.add_argument_group("serving options (written into the configs and registry.json)")
    g.add_argument(
        "--max-batch", type=int, default=MAX_BATCH, help=f"largest batch of every model (default {MAX_BATCH})"
    )
    g.add_argument(
        "--queue-delay-us",
        type=int,
        default=QUEUE_DELAY_US,
        help=f"how long the dynamic batcher waits to fill a batch, in microseconds (default {QUEUE_DELAY_US})",
    )
    g.add_argument(
        "--queue-timeout-us",
        type=int,
        default=QUEUE_TIMEOUT_US,
        help=f"a request that waited this long in the trunk's or a full model's queue is answered UNAVAILABLE, "
        f"in microseconds (default {QUEUE_TIMEOUT_US}; shorter: faster rejections and a tighter tail under "
        f"overload, longer: fewer rejections in a brief stall at moderate load; docs/overload.md)",
    )
    g.add_argument(
        "--instances",
        type=parse_instances,
        default={},
        metavar="KIND=N,...",
        help="model instances per kind, e.g. trunk=2,heads=1,tokenizer=4 (default trunk=2,heads=2,tokenizer=1: "
        "a second trunk instance avoids the batcher's 500 ms stall under its queue policy, a second head instance "
        "keeps the slowest head from queueing behind the trunk under overload, docs/overload.md; "
        "the full_<task> baselines take the trunk's count)",
    )
    g.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="model_warmup for every sequence bucket and a few batch sizes (default: on for --profile gpu)",
    )
    g.add_argument(
        "--response-cache",
        action="store_true",
        help="enable Triton's response cache on the ensembles (serve with --cache-config local,size=...)",
    )
    g.add_argument(
        "--trt-cache-path",
        default=TRT_CACHE_PATH,
        help=f"with --tensorrt: engine cache folder in the container (default {TRT_CACHE_PATH}, mounted by k8s/)",
    )
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
    serving = ServingOptions(
        max_batch=args.max_batch,
        queue_delay_us=args.queue_delay_us,
        queue_timeout_us=args.queue_timeout_us,
        instances=args.instances,
        warmup=args.profile == "gpu" if args.warmup is None else args.warmup,
        response_cache=args.response_cache,
        trt_cache_path=args.trt_cache_path,
    )
    reg = export_run(
        args.run_dir,
        args.out,
        args.profile,
        not args.no_baseline,
        fp16=fp16,
        tensorrt=tensorrt,
        serving=serving,
    )
    worst = max(c["max_abs_diff"] for c in reg.export_checks.values())
    print(
        f"exported {len(reg.tasks)} task(s) to {args.out} (profile {args.profile}); trunk {reg.trunk.layers} "
        f"layers, branch depths {reg.trunk.depths}; ONNX vs PyTorch max abs diff {worst:.2e}"
        + (" (fp16 vs fp32)" if fp16 else "")
        + ("; TensorRT accelerator" if tensorrt else "")
    )
    return 0
