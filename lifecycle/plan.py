"""Plan one task change: stage its new files beside the repository and list what to load, write and retire.

Nothing here touches the repository or the server: `task_apply.apply_change` puts a planned `Change` in place.
Staged folders live beside the repository (same file system), so placing them is a rename.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.lifecycle.journal import run_stage_prefix
from mtserve.serving.model_control import Live

if TYPE_CHECKING:
    from mtserve.lifecycle.run_context import RunContext


def say(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- configs
def config_bytes(cfg) -> bytes:
    from google.protobuf import text_format

    return text_format.MessageToString(cfg).encode()


def versioned(cfg, version: int):
    cfg.version_policy.specific.versions[:] = [version]
    return cfg


def with_outputs(cfg, name: str, spec):
    from mtserve.export.model_config import task_outputs

    del cfg.output[:]
    for t in task_outputs(name, spec, prefix=False):
        cfg.output.add(**t)
    return cfg


def spec_of(entry: registry.TaskEntry):
    """The TaskSpec (what export writes) of a deployed task."""
    from mtserve.core.tasks import TaskSpec

    return TaskSpec.from_dict(entry.to_dict())


def single_bytes(name: str, entry: registry.TaskEntry, serving: dict | None = None) -> bytes:
    from mtserve.export.ensembles import single_config
    from mtserve.export.model_config import ServingOptions

    return config_bytes(single_config(name, spec_of(entry), ServingOptions.from_registry(serving)))


# ---------------------------------------------------------------- a change
@dataclass
class Change:
    """One task's transition (or, action "group", one task group's: `task` names the group), planned (and its new
    files staged) before the repository is touched."""

    action: str
    task: str
    before: registry.TaskEntry | None
    after: registry.TaskEntry | None
    staging: Path  # beside the repository (same file system)
    dirs: list[tuple[Path, Path]] = field(
        default_factory=list
    )  # staged/archived folder -> new repository path
    files: list[tuple[Path, bytes]] = field(default_factory=list)  # repository file -> new content
    loads: list[tuple[str, int | None]] = field(default_factory=list)  # models to (re)load, in order
    unloads: list[str] = field(default_factory=list)  # after the ensemble swap
    retire: list[str] = field(
        default_factory=list
    )  # "<model>/<v>" or "<model>": to the archive, after the swap
    new_trunk: registry.TrunkEntry | None = None  # the trunk cut at new depths (new segments)
    groups_after: dict[str, list[str]] | None = None  # the task groups after the change (None: as before)
    checks: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # more history fields (reverts)
    cleanup: list[Path] = field(default_factory=list)  # staging folders outside the repository


def stage_dir(repo: Path) -> Path:
    r = repo.resolve()
    return Path(tempfile.mkdtemp(prefix=f".{r.name}.task-", dir=r.parent))


def baselines_served(live: Live | None) -> bool:
    return live is not None and any(m.startswith(names.SINGLE_PREFIX) for m in live.before)


def train_and_stage(
    repo: Path,
    reg: registry.Registry,
    ctx: RunContext,
    data,
    version: int,
    baseline: bool,
    change: Change,
    overrides: dict | None,
    cache_dir: str | None,
    log=say,
) -> Path:
    """Train the task on the run's frozen trunk and export its new head (and baseline, and trunk if needed)
    into the staging folder. Returns the trained task folder (for the run directory)."""
    import torch

    from mtserve.core.task_file import store_task_data
    from mtserve.export.model_config import ServingOptions, read_config
    from mtserve.export.writer import HeadPlan, RepositoryPlan, TaskScores, task_entry, write_models
    from mtserve.training.backbone import load_branch, load_full
    from mtserve.training.features import FeatureCache
    from mtserve.training.pipeline import train_task
    from mtserve.training.search import Candidate

    name, spec = change.task, data.spec
    cfg, search = ctx.config(overrides)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    bert, tokenizer, trunk, fp = ctx.backbone()
    stage_run = Path(tempfile.mkdtemp(prefix=run_stage_prefix(), dir=ctx.root))  # pid: see sweep_stale
    change.cleanup.append(stage_run)
    log(
        f"training {name} ({len(data.train)} train / {len(data.dev)} dev rows; k in {search.k_values}, "
        f"students up to {search.max_student_layers} layers) on the frozen trunk of {ctx.root}"
    )
    cache = FeatureCache(Path(cache_dir) / "features" if cache_dir else None)
    result = train_task(bert, tokenizer, data, cfg, search, cache, trunk, fp, stage_run)
    task_dir = stage_run / "tasks" / name
    store_task_data(data, task_dir / "data")
    bert_cfg = ctx.run.bert_config()
    branch, bmeta = load_branch(bert_cfg, task_dir / "branch.safetensors")
    chosen = Candidate.from_dict(bmeta["chosen"])
    depth = branch.config.depth
    log(
        f"  full fine-tuning {result.full:.4f}; chosen: {chosen.kind} k={chosen.k} l={chosen.task_layers} "
        f"at depth {depth}, {spec.metric} {chosen.dev_score:.4f} on dev"
        + ("" if chosen.meets_target else " (below the target)")
    )

    # the trunk: new segments only if the task branches where the trunk is not cut yet
    depths = list(reg.trunk.depths)
    new_depths = sorted(set(depths) | {depth})
    full = load_full(bert_cfg, task_dir / "full.safetensors") if baseline else None
    scores = TaskScores(
        dev_score=chosen.dev_score,
        full_score=result.full,
        meets_target=chosen.meets_target,
        full_learned=result.full_learned,
        train_examples=len(data.train),
        dev_examples=len(data.dev),
        trained_at=registry.now(),
    )
    # The change's models, written by the repository writer as `mtserve export` writes them: built like the
    # rest of the repository (registry.json `onnx`: --fp16/--tensorrt) with its serving options (`serving`).
    onnx_opts = reg.onnx or {}
    plan = RepositoryPlan(
        profile=reg.profile,
        backbone=reg.backbone,
        num_layers=reg.num_layers,
        hidden_size=reg.hidden_size,
        vocab_size=bert_cfg.vocab_size,
        max_length=reg.max_length,
        tokenizer_dir=ctx.root / "tokenizer",
        trunk=ctx.run.trunk(new_depths),
        fingerprint=reg.trunk.fingerprint,
        tasks={
            name: HeadPlan(spec, depth, branch.config.num_layers, branch=branch, full=full, scores=scores)
        },
        baseline=baseline,
        serving=ServingOptions.from_registry(reg.serving),
        fp16=onnx_opts.get("precision") == "fp16",
        tensorrt=bool(onnx_opts.get("tensorrt")),
    )
    srepo = change.staging / "repo"
    if depth not in depths:
        segment_steps(change, repo, reg, plan, srepo, new_depths, log)
    # the head, and the baseline's full model
    staged_models = [name] + ([names.full(name)] if baseline else [])
    change.checks.update(write_models(plan, srepo, staged_models, version=version))
    change.loads.append((name, version))
    for model in staged_models:
        vdir = srepo / model / str(version)
        cfg_bytes = config_bytes(versioned(read_config(srepo / model), version))
        if (repo / model).exists():
            change.dirs.append((vdir, repo / model / str(version)))
            change.files.append((repo / model / "config.pbtxt", cfg_bytes))
            if change.before:
                change.retire.append(f"{model}/{change.before.head_version}")
        else:  # a new model folder, complete (config + version) before it appears in the repository
            (srepo / model / "config.pbtxt").write_bytes(cfg_bytes)
            change.dirs.append((srepo / model, repo / model))
    log(
        f"  exported head {name} v{version}"
        + (f" and baseline {names.full(name)} v{version}" if baseline else "")
        + f" (ONNX vs PyTorch max abs diff {max(c['max_abs_diff'] for c in change.checks.values()):.1e})"
    )
    change.after = task_entry(spec, depth, branch.config.num_layers, version, baseline, scores)
    return task_dir


def segment_steps(
    change: Change,
    repo: Path,
    reg: registry.Registry,
    plan,
    srepo: Path,
    new_depths: list[int],
    log=say,
) -> None:
    """The trunk cut at one more depth: the segment that depth falls in is split in two (or, beyond the deepest
    cut, one segment is added). Each new segment is a new model named by its layer range, exported from the run's
    frozen trunk at version 1 (a name always means the same weights: the trunk never changes); the split one is
    retired to the archive after the swap, once no ensemble runs it. Every other segment stays as it is."""
    from mtserve.export.writer import write_segment

    before, after = set(reg.segments()), set(names.segments(new_depths))
    for a, b in sorted(after - before):
        seg = names.segment(a, b)
        if (repo / seg).exists():
            raise UserError(
                f"{repo / seg} exists, but the registry's trunk is not cut there (depths {reg.trunk.depths}); "
                "move it away first"
            )
        # the writer's own segment export (the plan's tasks alone would cut elsewhere: write_models refuses)
        change.checks[seg] = write_segment(
            plan.trunk,
            a,
            b,
            srepo,
            plan.profile,
            plan.vocab_size,
            1,
            fp16=plan.fp16,
            tensorrt=plan.tensorrt,
            serving=plan.serving,
        )
        change.dirs.append((srepo / seg, repo / seg))  # complete (config + version) before it appears
        change.loads.append((seg, 1))
    retired = [names.segment(a, b) for a, b in sorted(before - after)]
    change.retire += retired
    change.new_trunk = registry.TrunkEntry(
        reg.trunk.version + 1, new_depths, reg.trunk.layers, reg.trunk.fingerprint
    )
    log(
        f"  trunk v{change.new_trunk.version}: cut at depths {new_depths}: "
        f"{', '.join(names.segment(a, b) for a, b in sorted(after - before))} new"
        + (f", {', '.join(retired)} retired" if retired else "")
        + " (the same frozen weights)"
    )


def baseline_steps(change: Change, repo: Path, live: Live | None, new_task: bool) -> None:
    """single_<task>: a new ensemble folder (new task) or its config rewritten when the task's outputs changed;
    the baseline is (re)loaded when the server serves baselines (new task) or this one (existing task)."""
    name, after = change.task, change.after
    if not after or not after.baseline:
        return
    single = names.single(name)
    # the repository's serving options (response cache, max batch) hold for every change: read them from it
    data = single_bytes(name, after, registry.read(registry.path(repo)).serving)
    if (repo / single).exists():
        change.files.append((repo / single / "config.pbtxt", data))  # written only if it differs
    else:
        d = change.staging / "repo" / single
        (d / "1").mkdir(parents=True, exist_ok=True)
        (d / "1" / names.ENSEMBLE_PLACEHOLDER).touch()
        (d / "config.pbtxt").write_bytes(data)
        change.dirs.append((d, repo / single))
    if baselines_served(live) if new_task else bool(live and names.full(name) in live.before):
        change.loads += [(names.full(name), after.head_version), (single, None)]


def order_loads(change: Change) -> None:
    """New trunk segments, then the head, then the baseline's full model and its ensemble; the paths, groups and
    `multitask` come last (ensemble_plan.plan_ensembles)."""
    rank = {change.task: 1, names.full(change.task): 2, names.single(change.task): 3}

    def key(mv):
        return 0 if names.segment_bounds(mv[0]) else rank.get(mv[0], 9)

    ordered = {}
    for m, v in sorted(change.loads, key=key):
        ordered.setdefault(m, v)
    change.loads = list(ordered.items())


def plan_removal(change: Change, repo: Path, live: Live | None) -> None:
    """The task leaves the ensembles; after the swap its models are unloaded and its folders archived (its path:
    ensemble_plan). The trunk's segments stay as they are: a cut no task uses any more costs a step boundary, not
    a layer, and keeping it needs no export (a serving host without torch removes tasks)."""
    name = change.task
    change.retire += [m for m in (name, names.single(name), names.full(name)) if (repo / m).exists()]


def plan_restore(change: Change, repo: Path, reg: registry.Registry, live: Live | None) -> None:
    """Plan bringing `change.after` (an earlier entry of the task) back: its version folders from the archive,
    configs selecting them, the current version retired."""
    from mtserve.export.model_config import read_config

    name, want, current = change.task, change.after, change.before
    if want.branch_depth not in reg.trunk.depths:
        # Unreachable through `mtserve task` (the trunk's cuts only ever grow); a hand-edited registry, say.
        raise UserError(
            f"{name} v{want.head_version} branches at depth {want.branch_depth}, where trunk "
            f"v{reg.trunk.version} is not cut (depths {reg.trunk.depths}): no segment ends there"
        )
    v = want.head_version
    models = [name] + ([names.full(name)] if want.baseline else [])
    folders = models + ([names.single(name)] if want.baseline else [])
    spec = spec_of(want)
    for m in folders:
        if (repo / m).is_dir():
            source = repo / m
        else:  # the whole folder was archived (the task was removed)
            source = registry.locate_archived(repo, reg, m)
            if source is None:
                raise UserError(
                    f"{m}/ is neither in {repo} nor in its archive {registry.archive_dir(repo)}: "
                    f"cannot roll {name} back"
                )
            change.dirs.append((source, repo / m))
        if m in models:
            vdir = source / str(v)
            if not vdir.is_dir():
                vdir = registry.locate_archived(repo, reg, f"{m}/{v}")
                if vdir is None:
                    raise UserError(
                        f"{m}/{v}/ is neither in {repo} nor in its archive: cannot roll {name} back to v{v}"
                    )
                change.dirs.append((vdir, repo / m / str(v)))
            change.files.append(
                (
                    repo / m / "config.pbtxt",
                    config_bytes(versioned(with_outputs(read_config(source), name, spec), v)),
                )
            )
            if (
                current is not None
                and current.head_version != v
                and (repo / m / str(current.head_version)).is_dir()
            ):
                change.retire.append(f"{m}/{current.head_version}")
        else:
            change.files.append((repo / m / "config.pbtxt", single_bytes(name, want, reg.serving)))
    if live is not None:
        change.loads.append((name, v))
        serve = (names.full(name) in live.before) if current else baselines_served(live)
        if want.baseline and serve:
            change.loads += [(names.full(name), v), (names.single(name), None)]
    order_loads(change)


def cleanup(change: Change, live: Live | None) -> None:
    for d in [change.staging, *change.cleanup]:
        shutil.rmtree(d, ignore_errors=True)
    if live is not None:
        live.close()
