"""`mtserve task` operations: add, retrain, remove, roll back one task (the CLI is lifecycle/cli.py).

Each validates its inputs, plans the change (task_plan), applies it (task_apply) under the repository lock, and
keeps the run directory in step.
"""

from __future__ import annotations

from pathlib import Path

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.lifecycle.apply import apply_change, repository_lock
from mtserve.lifecycle.plan import (
    Change,
    baseline_steps,
    cleanup,
    order_loads,
    plan_removal,
    plan_restore,
    say,
    spec_of,
    stage_dir,
    train_and_stage,
)
from mtserve.lifecycle.run_context import RunContext
from mtserve.serving.model_control import Live, connect


# ---------------------------------------------------------------- data
def load_task_data(
    name: str,
    train: str | Path,
    dev: str | Path,
    *,
    is_pair: bool = False,
    regression: bool = False,
    metric: str | None = None,
    keep_spec=None,
    max_train: int | None = None,
    seed: int = 0,
):
    """TaskData from a task owner's TSV files (header: text, [text_pair], label). The label set comes from the
    training file; `keep_spec` (a retrained task's current spec) is kept when the label set is unchanged, so
    the label order (and the served `<task>_scores` layout) does not move."""
    from mtserve.core.tasks import TaskData, cap_training, load_tsv, with_validation

    paths = [Path(train), Path(dev)]
    for p in paths:
        if not p.is_file():
            raise UserError(f"missing data file: {p}")

    def _load(p, **kw):
        try:
            return load_tsv(p, **kw)
        except UserError as e:
            raise UserError(str(e) if str(p) in str(e) else f"{p}: {e}") from None

    spec, tr = _load(paths[0], name=name, is_pair=is_pair, regression=regression, metric=metric)
    if keep_spec is not None:
        same = (
            spec.is_regression == keep_spec.is_regression
            and spec.is_pair == keep_spec.is_pair
            and (spec.is_regression or set(spec.labels) == set(keep_spec.labels))
        )
        if same:
            spec = keep_spec
            _, tr = _load(paths[0], spec=spec)
    _, dv = _load(paths[1], spec=spec)
    # held out before the cap; the cap a seeded sample, as `mtserve train` draws it (tasks.cap_training)
    return cap_training(with_validation(TaskData(spec, tr, dv), seed), max_train, seed)


def stored_data(run_dir: Path, task: str, keep_spec, max_train: int | None, seed: int = 0):
    """The data a task was last trained on, as its run keeps it (task_file.store_task_data; runs written before
    task files: train.tsv and dev.tsv), or None."""
    from mtserve.core.task_file import STORED, load_task_file

    d = run_dir / "tasks" / task / "data"
    if (d / STORED).is_file():
        return load_task_file(d / STORED, only=[task], max_train=max_train, seed=seed)[task]
    if (d / "train.tsv").is_file() and (d / "dev.tsv").is_file():
        return load_task_data(
            task,
            d / "train.tsv",
            d / "dev.tsv",
            is_pair=keep_spec.is_pair,
            regression=keep_spec.is_regression,
            metric=keep_spec.metric,
            keep_spec=keep_spec,
            max_train=max_train,
            seed=seed,
        )
    return None


# ---------------------------------------------------------------- operations
def add_task(
    repo: str | Path,
    run_dir: str | Path,
    name: str,
    train: str | Path | None = None,
    dev: str | Path | None = None,
    *,
    spec_file: str | Path | None = None,
    is_pair: bool = False,
    regression: bool = False,
    metric: str | None = None,
    server: str | None = None,
    overrides: dict | None = None,
    cache_dir: str | None = "cache",
    log=say,
) -> registry.Registry:
    """Train a new task on the run's frozen trunk and add it to the repository (and the server). Its data: TSV
    files (`train`, `dev`) or the entry named `name` of a task file (`spec_file`). Returns the new registry."""
    repo = Path(repo)
    if (spec_file is None) == (train is None or dev is None) or (train is None) != (dev is None):
        raise UserError("give the task's data as --train FILE --dev FILE, or as --spec TASKS.yaml (not both)")
    with repository_lock(repo, server, run_dir, log):
        reg = registry.load(repo)
        registry.check_new_task_name(name, reg)
        for model in (name, names.full(name), names.single(name), names.path(name)):
            if (repo / model).exists():
                raise UserError(
                    f"{repo / model} exists but task {name!r} is not in the registry; move it away first"
                )
        max_train = (overrides or {}).get("max_train_examples")
        ctx = RunContext(run_dir, reg)
        seed = ctx.config(overrides)[0].seed  # bad --k etc. before anything runs
        if spec_file is not None:
            from mtserve.core.task_file import load_task_file

            data = load_task_file(spec_file, only=[name], max_train=max_train, seed=seed)[name]
        else:
            data = load_task_data(
                name,
                train,
                dev,
                is_pair=is_pair,
                regression=regression,
                metric=metric,
                max_train=max_train,
                seed=seed,
            )
        version = registry.next_version(registry.versions_used(reg, name))
        baseline = any(e.baseline for e in reg.tasks.values())
        live = connect(server, reg)
        change = Change("add", name, None, None, stage_dir(repo))
        return _train_and_swap(
            repo,
            reg,
            ctx,
            data,
            version,
            baseline,
            change,
            live,
            overrides,
            cache_dir,
            log,
        )


def retrain_task(
    repo: str | Path,
    run_dir: str | Path,
    name: str,
    train: str | Path | None = None,
    dev: str | Path | None = None,
    *,
    server: str | None = None,
    overrides: dict | None = None,
    cache_dir: str | None = "cache",
    log=say,
) -> registry.Registry:
    """Train a new version of a deployed task (on new data, or the data it was added with) and swap it in."""
    repo = Path(repo)
    with repository_lock(repo, server, run_dir, log):
        reg = registry.load(repo)
        if name not in reg.tasks:
            raise UserError(f"task {name!r} is not deployed in {repo} (tasks: {', '.join(reg.tasks)})")
        before = reg.tasks[name]
        if (train is None) != (dev is None):
            raise UserError("give both --train and --dev, or neither (the data the task was added with)")
        ctx = RunContext(run_dir, reg)
        spec, max_train = spec_of(before), (overrides or {}).get("max_train_examples")
        seed = ctx.config(overrides)[0].seed
        if train is None:
            data = stored_data(ctx.root, name, spec, max_train, seed)
            if data is None:
                raise UserError(
                    f"task {name!r} has no stored training data in {ctx.root / 'tasks' / name / 'data'}: "
                    "give --train FILE --dev FILE"
                )
        else:
            data = load_task_data(
                name,
                train,
                dev,
                is_pair=spec.is_pair,
                regression=spec.is_regression,
                metric=spec.metric,
                keep_spec=spec,
                max_train=max_train,
                seed=seed,
            )
        version = registry.next_version(
            registry.versions_used(reg, name),
            registry.version_dirs(repo / name),
            registry.version_dirs(repo / names.full(name)),
        )
        live = connect(server, reg)
        change = Change("retrain", name, before, None, stage_dir(repo))
        return _train_and_swap(
            repo,
            reg,
            ctx,
            data,
            version,
            bool(before.baseline),
            change,
            live,
            overrides,
            cache_dir,
            log,
        )


def _train_and_swap(
    repo: Path,
    reg: registry.Registry,
    ctx: RunContext,
    data,
    version: int,
    baseline: bool,
    change: Change,
    live: Live | None,
    overrides: dict | None,
    cache_dir: str | None,
    log,
) -> registry.Registry:
    """add and retrain alike: train and stage the task, swap it in, record it in the run; the stage and the
    server connection are released whatever happens. Returns the new registry."""
    try:
        trained = train_and_stage(repo, reg, ctx, data, version, baseline, change, overrides, cache_dir, log)
        baseline_steps(change, repo, live, new_task=change.action == "add")
        order_loads(change)
        new_reg = apply_change(repo, reg, change, live, log, run_dir=ctx.root, trained=trained)
    finally:
        cleanup(change, live)
    return new_reg


def remove_task(
    repo: str | Path, name: str, *, run_dir: str | Path | None = None, server: str | None = None, log=say
) -> registry.Registry:
    """Stop serving a task; its model folders go to the archive (`mtserve task rollback` brings them back)."""
    repo = Path(repo)
    with repository_lock(repo, server, run_dir, log):
        reg = registry.load(repo)
        if name not in reg.tasks:
            raise UserError(f"task {name!r} is not deployed in {repo} (tasks: {', '.join(reg.tasks)})")
        if len(reg.tasks) == 1:
            raise UserError(f"{name!r} is the repository's only task; an ensemble needs at least one")
        refuse_grouped(reg, name, f"cannot remove {name!r}")
        live = connect(server, reg)
        change = Change("remove", name, reg.tasks[name], None, stage_dir(repo))
        try:
            plan_removal(change, repo, live)
            new_reg = apply_change(repo, reg, change, live, log, run_dir=_run_dir_or_none(run_dir, log))
        finally:
            cleanup(change, live)
        return new_reg


def rollback_task(
    repo: str | Path, name: str, *, run_dir: str | Path | None = None, server: str | None = None, log=say
) -> registry.Registry:
    """Undo the task's latest change not undone yet: a retrain goes back to the previous head version, an add
    removes the task, a remove brings it back from the archive exactly as it was. Repeat to go further back."""
    repo = Path(repo)
    with repository_lock(repo, server, run_dir, log):
        reg = registry.load(repo)
        target = registry.rollback_target(reg, name)
        current = reg.tasks.get(name)
        want = None if target["before"] is None else registry.TaskEntry.from_dict(target["before"])
        if want is None and len(reg.tasks) == 1:
            raise UserError(f"rolling back would remove {name!r}, the repository's only task")
        if want is None:
            refuse_grouped(
                reg,
                name,
                f"rolling {name!r} back undoes r{target['revision']} ({target['action']}), removing it",
            )
        live = connect(server, reg)
        change = Change(
            "rollback", name, current, want, stage_dir(repo), extra={"reverts": target["revision"]}
        )
        try:
            if want is None:
                plan_removal(change, repo, live)
            else:
                plan_restore(change, repo, reg, live)
            new_reg = apply_change(repo, reg, change, live, log, run_dir=_run_dir_or_none(run_dir, log))
        finally:
            cleanup(change, live)
        return new_reg


def refuse_grouped(reg: registry.Registry, name: str, why: str) -> None:
    """A task some group serves is not removed under it: group_<g> is a path other clients call, so the group
    changes first, by its own command (one change, one revision, one thing changed: docs/tasks.md)."""
    groups = {g: [t for t in m if t != name] for g, m in reg.groups.items() if name in m}
    if groups:
        todo = [
            f"`mtserve task group {g} " + (f"--tasks {','.join(rest)}`" if len(rest) >= 2 else "--delete`")
            for g, rest in groups.items()
        ]
        raise UserError(
            f"{why}: it is in group(s) {', '.join(groups)} (served as "
            f"{', '.join(names.group(g) for g in groups)}); take it out of them first: {'; '.join(todo)}"
        )


def _run_dir_or_none(run_dir, log) -> Path | None:
    if run_dir is None:
        return None
    p = Path(run_dir)
    if not (p / "run.json").is_file():
        log(f"  run dir {p}: not found; only the repository was changed")
        return None
    return p


def recover_change(
    repo: str | Path, *, server: str | None = None, run_dir: str | Path | None = None, log=say
) -> str:
    """`mtserve task recover`: undo (or finish, past its commit point) a change that was killed half-way, and
    delete the staging folders of dead processes. Any other `mtserve task` on the repository does this first
    too. Returns what was done ('' when nothing was left over)."""
    with repository_lock(Path(repo), server, run_dir, log) as outcome:
        return outcome
