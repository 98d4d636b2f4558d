"""The one repository writer. A RepositoryPlan (the tokenizer, the trunk, each task's head and baseline, the
serving options) becomes a Triton model repository and its registry.json here, and nowhere else:

    mtserve export          a training run -> a plan (export/export.py) -> write_repository
    synthetic repositories  random weights of a shape -> a plan (export/synthetic.py) -> write_repository
    mtserve task            one task's new models -> write_models into a staging folder (lifecycle/plan.py),
                            swapped in live by the lifecycle; its registry entry from task_entry

so every repository is laid out, configured (Triton's protobuf, export/model_config.py; the ensembles,
export/ensembles.py) and recorded (task_entry) the same way. The repository is written to a temporary folder
and renamed into place: a failed write never leaves half a repository.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.core.tasks import TaskSpec
from mtserve.export.ensembles import ServedTask, ensemble_configs, write_ensemble
from mtserve.export.model_config import (
    F32,
    I64,
    ID_TENSORS,
    TEXT_INPUTS,
    ServingOptions,
    apply_batching,
    base_config,
    onnx_config,
    read_config,
    sequence_buckets,
    task_outputs,
    tensor_spec,
    write_config,
)
from mtserve.export.onnx_export import export_full, export_head, export_segment, infer_shapes

if TYPE_CHECKING:
    from mtserve.training.backbone import Branch, TaskModel, Trunk


# ---------------------------------------------------------------- the plan
@dataclass(frozen=True)
class TaskScores:
    """What training measured of a task; a synthetic task has none."""

    dev_score: float | None = None  # the served branch on dev
    full_score: float | None = None  # its full fine-tuning on dev
    meets_target: bool | None = None  # the branch reached the retention target on validation
    full_learned: bool | None = None  # False: full fine-tuning did not beat chance (training/chance.py)
    train_examples: int | None = None
    dev_examples: int | None = None
    trained_at: str | None = None


def task_entry(
    spec: TaskSpec,
    depth: int,
    task_layers: int,
    head_version: int = 1,
    baseline: bool = True,
    scores: TaskScores | None = None,
) -> registry.TaskEntry:
    """A task's registry entry, filled the same way by every writer: the retention is the branch's dev score over
    full fine-tuning's, where both exist, the latter is positive and full fine-tuning learned (a ratio to zero,
    or to chance, would read as a result)."""
    s = scores or TaskScores()
    retention = (
        s.dev_score / s.full_score
        if s.dev_score is not None
        and s.full_score is not None
        and s.full_score > 0
        and s.full_learned is not False
        else None
    )
    return registry.TaskEntry(
        **spec.to_dict(),
        branch_depth=depth,
        task_layers=task_layers,
        head_version=head_version,
        baseline=names.single(spec.name) if baseline else None,
        dev_score=s.dev_score,
        full_score=s.full_score,
        retention=retention,
        meets_target=s.meets_target,
        train_examples=s.train_examples,
        dev_examples=s.dev_examples,
        trained_at=s.trained_at,
    )


@dataclass
class HeadPlan:
    """One task: its head (the branch) and its baseline's full model. A task whose head (or full model) has the
    same shape and weights as another's names that task in `same_as` (`full_same_as`) instead: its version
    folder is hard-linked, only its config differs (the synthetic repositories' many identical tasks)."""

    spec: TaskSpec
    depth: int
    task_layers: int
    branch: Branch | None = None
    full: TaskModel | None = None
    same_as: str | None = None
    full_same_as: str | None = None
    scores: TaskScores | None = None


@dataclass
class RepositoryPlan:
    """Everything a repository is made of. `trunk` outputs every depth a task branches from."""

    profile: str  # "local" (python backend running the ONNX files) or "gpu" (onnxruntime backend)
    backbone: str | None
    num_layers: int
    hidden_size: int
    vocab_size: int
    max_length: int
    tokenizer_dir: Path  # a Hugging Face tokenizer folder
    trunk: Trunk
    fingerprint: str | None  # the frozen weights the trunk was cut from
    tasks: dict[str, HeadPlan]
    baseline: bool = True  # full_<task> and single_<task> for every task
    serving: ServingOptions = field(default_factory=ServingOptions)
    fp16: bool = False
    tensorrt: bool = False
    synthetic: dict | None = None  # a synthetic repository's settings (registry.json `synthetic`)
    groups: dict[str, list[str]] = field(default_factory=dict)  # group_<name> paths (mtserve export --group)

    def depths(self) -> list[int]:
        return sorted({t.depth for t in self.tasks.values()})

    def segments(self) -> list[tuple[int, int]]:
        return names.segments(self.depths())

    def served(self) -> dict[str, ServedTask]:
        return {name: ServedTask(t.spec, t.depth, t.task_layers) for name, t in self.tasks.items()}

    def check(self) -> None:
        if self.profile not in ("local", "gpu"):
            raise UserError(f"--profile must be 'local' or 'gpu', got {self.profile!r}")
        if self.tensorrt and self.profile != "gpu":
            raise UserError("--tensorrt applies to --profile gpu only (the python backend has no TensorRT)")
        missing = sorted(d for d in self.depths() if d not in self.trunk.out_depths)
        if missing:
            raise UserError(f"the trunk has no output at depth(s) {missing} that a task branches from")
        self.segments()  # every depth >= 1
        problems = registry.validate_groups(self.groups, self.tasks)
        if problems:
            raise UserError("; ".join(problems))
        for name, t in self.tasks.items():
            if (t.branch is None) == (t.same_as is None):
                raise UserError(f"task {name}: give its branch or the task whose head it copies, not both")
            if self.baseline and (t.full is None) == (t.full_same_as is None):
                raise UserError(f"task {name}: a baseline needs its full model or the task whose it copies")


# ---------------------------------------------------------------- the whole repository
def write_repository(plan: RepositoryPlan, out: str | Path, progress: bool = True) -> registry.Registry:
    """The repository of `plan` at `out`, replacing what was there in one step. Returns its registry."""
    plan.check()
    out = Path(out)
    with atomic_repository(out) as tmp:
        checks = write_models(plan, tmp, progress=progress)
        for cfg in ensemble_configs(plan.served(), plan.groups, plan.serving, plan.baseline).values():
            write_ensemble(cfg, tmp)
        depths = plan.depths()
        reg = registry.Registry(
            profile=plan.profile,
            backbone=plan.backbone,
            num_layers=plan.num_layers,
            hidden_size=plan.hidden_size,
            max_length=plan.max_length,
            trunk=registry.TrunkEntry(1, depths, max(depths), plan.fingerprint),
            tasks={
                name: task_entry(t.spec, t.depth, t.task_layers, 1, plan.baseline, t.scores)
                for name, t in plan.tasks.items()
            },
            export_checks=checks,
            # how the ONNX models were built: a later head export (mtserve task) matches it
            onnx={"precision": "fp16" if plan.fp16 else "fp32", "tensorrt": plan.tensorrt}
            if plan.fp16 or plan.tensorrt
            else None,
            serving=plan.serving.to_registry(),
            synthetic=plan.synthetic,
            groups={g: list(m) for g, m in plan.groups.items()},
        )
        registry.save(tmp, reg)
    return reg


def write_models(
    plan: RepositoryPlan,
    repo: Path,
    models: list[str] | None = None,
    version: int = 1,
    progress: bool = False,
) -> dict:
    """The plan's models (every one, or those named: tokenizer, trunk_<a>_<b>, <task>, full_<task>) into `repo`
    at `version`, each with its config. Returns each ONNX model's export check (max abs diff against PyTorch)."""
    from tqdm.auto import tqdm

    every = (
        [names.TOKENIZER]
        + [names.segment(a, b) for a, b in plan.segments()]
        + list(plan.tasks)
        + ([names.full(t) for t in plan.tasks] if plan.baseline else [])
    )
    unknown = sorted(set(models or []) - set(every))
    if unknown:
        raise UserError(f"the plan has no model(s) {unknown}")
    steps = every if models is None else [m for m in every if m in models]
    onnx_opts = {"fp16": plan.fp16, "tensorrt": plan.tensorrt, "serving": plan.serving}
    checks = {}
    bar = tqdm(steps, desc="export", disable=None if progress else True, leave=False)
    for step in bar:
        bar.set_postfix_str(step)
        full_of = names.task_of_full(step)
        if step == names.TOKENIZER:
            tok = write_tokenizer(plan.tokenizer_dir, repo, plan.max_length, plan.serving)
            plan.serving.buckets = sequence_buckets(tok)  # before the models that warm up on them
        elif names.segment_bounds(step):
            a, b = names.segment_bounds(step)
            checks[step] = write_segment(
                plan.trunk, a, b, repo, plan.profile, plan.vocab_size, version, **onnx_opts
            )
        elif full_of:
            t = plan.tasks[full_of]
            if t.full_same_as is not None:
                clone_model(repo / names.full(t.full_same_as), repo / step, step)
            else:
                checks[step] = write_full(
                    full_of, t.spec, t.full, repo, plan.profile, plan.vocab_size, version, **onnx_opts
                )
        else:
            t = plan.tasks[step]
            if t.same_as is not None:
                clone_model(repo / t.same_as, repo / step, step)
            else:
                checks[step] = write_head(step, t.spec, t.branch, repo, plan.profile, version, **onnx_opts)
    return checks


SERVING_DIR = Path(__file__).resolve().parent.parent / "serving"


def _copy_python_model(src: str, version_dir: Path, extra: tuple[str, ...] = ()) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SERVING_DIR / "models" / src, version_dir / "model.py")
    for name in extra:
        shutil.copy(SERVING_DIR / name, version_dir / Path(name).name)


# ---------------------------------------------------------------- one model each
def write_tokenizer(tokenizer_dir: Path, repo: Path, max_length: int, serving: ServingOptions | None = None):
    """The tokenizer model, from a Hugging Face tokenizer folder; returns the serving tokenizer (its padding rule
    gives the sequence buckets)."""
    from transformers import AutoTokenizer

    from mtserve.export.tokenizer_export import export_tokenizer

    version = repo / names.TOKENIZER / "1"
    _copy_python_model("tokenizer.py", version, ("wordpiece.py",))
    hf = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
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


def _place_onnx(
    model: str,
    repo: Path,
    version: int,
    export,
    inputs: list[dict],
    outputs: list[dict],
    profile: str,
    kind: str,
    *,
    fp16: bool,
    tensorrt: bool,
    serving: ServingOptions | None,
) -> dict:
    """One ONNX model at <repo>/<model>/<version>/model.onnx (export(path) writes it and returns its max abs diff
    against PyTorch), the python-backend runner beside it on the local profile, and its config."""
    vdir = repo / model / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    diff = export(vdir / "model.onnx")
    if tensorrt:
        infer_shapes(vdir / "model.onnx")
    if profile == "local":
        _copy_python_model("onnx_runner.py", vdir)
    cfg = onnx_config(
        model, inputs, outputs, profile, tensorrt, kind=kind, serving=serving, model_dir=repo / model
    )
    write_config(cfg, repo / model)
    return {"max_abs_diff": diff, **({"precision": "fp16"} if fp16 else {})}


def write_segment(
    trunk: Trunk,
    start: int,
    end: int,
    repo: Path,
    profile: str,
    vocab_size: int,
    version: int = 1,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    """trunk_<start>_<end>: the trunk's layers start+1..end (core/names.py `segments`)."""
    h = trunk.embeddings.word_embeddings.embedding_dim
    inputs = (
        ID_TENSORS
        if start == 0
        else [tensor_spec(names.SEGMENT_INPUT, F32, [-1, h]), tensor_spec(names.ATTENTION_MASK, I64, [-1])]
    )
    return _place_onnx(
        names.segment(start, end),
        repo,
        version,
        lambda path: export_segment(trunk, start, end, path, vocab_size, fp16=fp16),
        inputs,
        [tensor_spec(names.SEGMENT_OUTPUT, F32, [-1, h])],
        profile,
        "trunk",
        fp16=fp16,
        tensorrt=tensorrt,
        serving=serving,
    )


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
    labels = None if spec.labels is None else list(spec.labels)
    return _place_onnx(
        name,
        repo,
        version,
        lambda path: export_head(branch, labels, path, fp16=fp16),
        [tensor_spec("hidden", F32, [-1, h]), tensor_spec("attention_mask", I64, [-1])],
        task_outputs(name, spec, prefix=False),
        profile,
        "heads",
        fp16=fp16,
        tensorrt=tensorrt,
        serving=serving,
    )


def write_full(
    name: str,
    spec: TaskSpec,
    model: TaskModel,
    repo: Path,
    profile: str,
    vocab_size: int,
    version: int = 1,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    labels = None if spec.labels is None else list(spec.labels)
    # a baseline is a whole BERT, sized like the trunk: it takes the trunk's instance count
    return _place_onnx(
        names.full(name),
        repo,
        version,
        lambda path: export_full(model, labels, path, vocab_size, fp16=fp16),
        ID_TENSORS,
        task_outputs(name, spec, prefix=False),
        profile,
        "trunk",
        fp16=fp16,
        tensorrt=tensorrt,
        serving=serving,
    )


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


def clone_model(src: Path, dst: Path, name: str) -> None:
    """Another task's model of the same shape: the version folders hard-linked, config.pbtxt renamed."""
    for f in src.rglob("*"):
        if not f.is_file() or f.name == "config.pbtxt" or "__pycache__" in f.parts:
            continue
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, target)
        except OSError:
            shutil.copy2(f, target)
    cfg = read_config(src)
    cfg.name = name
    write_config(cfg, dst)
