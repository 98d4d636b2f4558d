"""Put a planned task change in place, or undo all of it: renames and atomic file replaces, `registry.json`
last (the commit point), one `mtserve task` per repository at a time; then keep the run directory in step.
Every step is journaled first (task_journal.py), so a change killed half-way is undone or finished later.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
from pathlib import Path

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.lifecycle import journal as task_journal
from mtserve.lifecycle.ensemble_plan import plan_ensembles
from mtserve.lifecycle.plan import Change, say
from mtserve.serving.model_control import Live

PROG = "mtserve task"


# ---------------------------------------------------------------- one change at a time
@contextlib.contextmanager
def repository_lock(repo: Path, server: str | None = None, run_dir: str | Path | None = None, log=say):
    """One `mtserve task` at a time per repository (a lock file beside it: the repository's files stay as they
    are). The lock dies with its process, so a change journal found once it is held belongs to a process that
    was killed: it is recovered (undone, or finished past its commit point) before anything else runs. Yields
    what the recovery did ('' when there was nothing to recover)."""
    r = repo.resolve()
    if not r.is_dir():
        raise UserError(f"model repository not found: {repo}")
    with open(r.parent / f".{r.name}.mtserve-task.lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `mtserve task` is changing {repo} right now; try again when it is done"
            ) from None
        try:
            yield task_journal.recover(repo, server, run_dir, log)
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def archive_slot(archive: Path, name: str) -> str:
    slot, n = name, 1
    while (archive / slot).exists():
        n += 1
        slot = f"{name}-{n}"
    return slot


def _unload_rank(model: str) -> int:
    """Unloads after the swap: what clients call first, then the graphs and ensembles, then the models they ran
    (a model still run by a served ensemble is not taken away from under it)."""
    if model.startswith((names.GROUP_PREFIX, names.PATH_PREFIX, names.SINGLE_PREFIX)):
        return 0
    if model.startswith(names.GROUP_GRAPH_PREFIX):
        return 1
    return 3 if names.segment_bounds(model) else 2


def apply_change(
    repo: Path,
    reg: registry.Registry,
    change: Change,
    live: Live | None,
    log=say,
    run_dir: Path | None = None,
    trained: Path | None = None,
) -> registry.Registry:
    """Put the change in place - new folders, configs, live loads/unloads, retired folders to the archive, and
    registry.json last (the commit point) - then bring the run directory in step (`run_dir`; `trained`: the
    newly trained task folder); or undo all of it. Every step is written to the journal (task_journal) before
    the first is taken, so a kill at any point is undone, or finished, by the next `mtserve task`."""
    task_journal.failpoint("staged")
    group_change = change.action == "group"
    tasks_after = dict(reg.tasks)
    if not group_change:
        tasks_after = {n: e for n, e in reg.tasks.items() if n != change.task}
        if change.after is not None:
            tasks_after |= {change.task: change.after}
    groups_after = copy.deepcopy(reg.groups if change.groups_after is None else change.groups_after)
    trunk = copy.deepcopy(change.new_trunk or reg.trunk)
    # the layers `multitask` runs: its deepest task's (a cut deeper than every task may stay: plan_removal)
    trunk.layers = max(e.branch_depth for e in tasks_after.values())
    # multitask gets a new version at every change: a task change changes its steps, a group change its config's
    # mtserve_groups (where clients find the groups without the repository index: serving/client.py)
    mv = plan_ensembles(change, repo, reg, tasks_after, groups_after, trunk.depths, new_multitask=True)
    if live is not None:  # every retired model folder still served, after the swap
        change.unloads += [m for m in change.retire if "/" not in m and m in live.before]
    unloads = sorted(dict.fromkeys(change.unloads), key=_unload_rank)
    revision = reg.revision + 1
    archive = registry.archive_dir(repo)
    slot = archive_slot(archive, f"r{revision}-{change.action}-{change.task}")
    archived = {rel: f"{slot}/{rel}" for rel in dict.fromkeys(change.retire) if (repo / rel).exists()}
    new_reg = reg.copy()
    new_reg.multitask_version = mv
    new_reg.trunk = trunk
    new_reg.export_checks.update(change.checks)
    extra = dict(change.extra) | ({"archived": archived} if archived else {})
    if group_change:
        g = change.task
        new_reg = registry.record_group(new_reg, g, reg.groups.get(g), groups_after.get(g), **extra)
    else:
        new_reg = registry.record(new_reg, change.action, change.task, change.before, change.after, **extra)
    problems = registry.validate(new_reg.to_dict())  # before anything is touched
    if problems:
        raise UserError("the change would leave an invalid registry: " + "; ".join(problems))

    # The whole plan, in the order it is taken: new names only first (nothing Triton serves changes yet), then
    # configs (dependencies first, the multitask config last), the live swap, the retired folders to the
    # archive, and registry.json last: the commit point.
    journal = task_journal.Journal(
        str(repo.resolve()),
        change.action,
        change.task,
        revision,
        server=live.url if live is not None else None,
        served_before=sorted(live.before) if live is not None else [],
        archive=str(archive),
        staging=[str(d) for d in [change.staging, *change.cleanup]],
        prune=[str(src.parent) for src, _ in change.dirs if archive in src.parents],
        run_sync=None
        if run_dir is None
        else {
            "run_dir": str(run_dir),
            "after": None if change.after is None else change.after.to_dict(),
            "trained": None if trained is None else str(trained),
        },
    )
    for src, dst in change.dirs:
        journal.move(src, dst)
    # A model's config is written just before that model is loaded, not with the rest: loading a model reloads
    # the ensembles around it (and an ensemble the models it runs) from whatever their files say, so a config
    # written early would be served before what it needs - e.g. a new multitask graph, by the old wrapper's
    # reload, while the old wrapper still asks for a removed task's outputs (INVALID_ARGUMENT).
    # ensemble_plan.plan_ensembles orders each wrapper and its graph so that the graph served always produces
    # what the wrapper served asks for.
    loaded = {repo / m / "config.pbtxt": m for m, _ in change.loads}
    deferred: dict[str, list] = {}
    for target, data in change.files:
        if target in loaded:
            deferred.setdefault(loaded[target], []).append((target, data))
        else:
            journal.write(target, data)
    for name, version in change.loads:
        for target, data in deferred.pop(name, []):
            journal.write(target, data)
        if live is not None:
            journal.load(name, version)
    for name in unloads if live is not None else ():
        journal.unload(name)
    for rel, dest in archived.items():
        journal.move(repo / rel, archive / dest, op="retire")
    journal.write(registry.path(repo), registry.dumps(new_reg), op="commit")
    journal.save()
    task_journal.failpoint("journaled")

    seen = set()
    try:
        for i, step in enumerate(journal.steps):
            if step["op"] not in seen:
                seen.add(step["op"])
                task_journal.failpoint(f"before-{step['op']}")
            task_journal.failpoint(f"step-{i}")
            task_journal.do_step(step, live, log)
    except BaseException as e:
        errors = task_journal.undo_files(journal)
        if live is not None:
            errors += live.restore()
        if errors:
            log(f"{PROG}: while undoing: " + "; ".join(errors))
        else:
            journal.remove()  # kept otherwise: the next `mtserve task` tries again, and says what is left
        if isinstance(e, UserError):
            raise UserError(
                f"{e} (nothing was changed: the repository"
                f"{' and the server are' if live else ' is'} as before)"
            ) from None
        raise
    task_journal.failpoint("committed")
    if archived:
        log(f"  archived {', '.join(archived)} in {archive / slot}")
    task_journal.finish_committed(journal, log)
    task_journal.failpoint("synced")
    task_journal.remove_staging(journal)
    journal.remove()
    return new_reg


# ---------------------------------------------------------------- the run directory
