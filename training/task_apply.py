"""Put a planned task change in place, or undo all of it: renames and atomic file replaces, `registry.json`
last (the commit point), one `mtserve task` per repository at a time; then keep the run directory in step.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from mtserve.serving import registry
from mtserve.serving.errors import UserError
from mtserve.serving.model_control import Live
from mtserve.training.task_plan import Change, multitask_step, say

PROG = "mtserve task"


# ---------------------------------------------------------------- safe writes
class Transaction:
    """File changes that can all be undone: folders renamed into place (never over anything), files replaced
    atomically (old bytes kept), folders moved away (to the archive). Every step is a rename or an atomic
    replace on one file system."""

    def __init__(self):
        self._undo: list = []

    def move(self, src: Path, dst: Path) -> None:
        if dst.exists():
            raise UserError(f"{dst} already exists; refusing to overwrite it")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        self._undo.append(lambda: os.rename(dst, src))

    def write(self, target: Path, data: bytes) -> bool:
        old = target.read_bytes() if target.exists() else None
        if old == data:
            return False
        registry.atomic_write(target, data)
        self._undo.append(lambda: registry.atomic_write(target, old) if old is not None else target.unlink())
        return True

    def revert(self) -> list[str]:
        errors = []
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception as e:  # noqa: BLE001 - keep undoing the rest
                errors.append(f"{type(e).__name__}: {e}")
        self._undo.clear()
        return errors


def prune_up(path: Path, stop: Path) -> None:
    """Remove `path` and its parents up to `stop` (included) while they are empty folders."""
    stop = stop.resolve()
    path = path.resolve()
    while path == stop or stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        if path == stop:
            return
        path = path.parent


@contextlib.contextmanager
def repository_lock(repo: Path):
    """One `mtserve task` at a time per repository (a lock file beside it: the repository's files stay as they are)."""
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
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def archive_slot(archive: Path, name: str) -> str:
    slot, n = name, 1
    while (archive / slot).exists():
        n += 1
        slot = f"{name}-{n}"
    return slot


def apply_change(
    repo: Path, reg: registry.Registry, change: Change, live: Live | None, log=say
) -> registry.Registry:
    """Put the change in place - new folders, configs, live loads/unloads, retired folders to the archive, and
    registry.json last (the commit point) - or undo all of it."""
    tasks_after = {n: e for n, e in reg.tasks.items() if n != change.task}
    if change.after is not None:
        tasks_after = dict(reg.tasks) | {change.task: change.after}
    mv = multitask_step(change, repo, reg, tasks_after)
    revision = reg.revision + 1
    archive = registry.archive_dir(repo)
    slot = archive_slot(archive, f"r{revision}-{change.action}-{change.task}")
    archived = {rel: f"{slot}/{rel}" for rel in dict.fromkeys(change.retire) if (repo / rel).exists()}
    new_reg = reg.copy()
    new_reg.multitask_version = mv
    if change.new_trunk:
        new_reg.trunk = change.new_trunk
    new_reg.export_checks.update(change.checks)
    extra = dict(change.extra) | ({"archived": archived} if archived else {})
    new_reg = registry.record(new_reg, change.action, change.task, change.before, change.after, **extra)
    problems = registry.validate(new_reg.to_dict())  # before anything is touched
    if problems:
        raise UserError("the change would leave an invalid registry: " + "; ".join(problems))

    tx = Transaction()
    try:
        for src, dst in change.dirs:  # new names only: nothing Triton serves changes yet
            tx.move(src, dst)
        for target, data in change.files:  # dependencies first, the multitask config last
            tx.write(target, data)
        if live is not None:
            for name, version in change.loads:
                live.load(name, version)
                log(f"  server: loaded {name}" + (f" v{version}" if version else ""))
            for name in change.unloads:
                problem = live.unload(name)
                log(f"  server: {problem}" if problem else f"  server: unloaded {name}")
        for rel, dest in archived.items():
            tx.move(repo / rel, archive / dest)
        tx.write(registry.path(repo), registry.dumps(new_reg))  # the commit point
    except BaseException as e:
        errors = tx.revert()
        for rel in archived:  # the folders created for this change's slot, now empty again
            prune_up((archive / slot / rel).parent, archive)
        if live is not None:
            errors += live.restore()
        if errors:
            log(f"{PROG}: while undoing: " + "; ".join(errors))
        if isinstance(e, UserError):
            raise UserError(
                f"{e} (nothing was changed: the repository"
                f"{' and the server are' if live else ' is'} as before)"
            ) from None
        raise
    if archived:
        log(f"  archived {', '.join(archived)} in {archive / slot}")
    for src, _ in change.dirs:  # what a rollback took back leaves empty folders in the archive
        if archive in src.parents:
            prune_up(src.parent, archive)
    return new_reg


# ---------------------------------------------------------------- the run directory
def sync_run(
    run_dir: Path | None,
    reg: registry.Registry,
    task: str,
    after: registry.TaskEntry | None,
    trained: Path | None,
    log=say,
) -> None:
    """Keep the run directory in step with the repository: tasks/<task>/ is the deployed version, every
    version ever trained is kept in history/<task>/v<N>/, run.json lists the deployed tasks."""
    if run_dir is None:
        return
    run_json = run_dir / "run.json"
    try:
        meta = json.loads(run_json.read_text())
    except (OSError, json.JSONDecodeError):
        log(f"  run dir {run_dir}: no readable run.json; not updated")
        return
    if meta.get("trunk_fingerprint") != reg.trunk.fingerprint:
        log(f"  run dir {run_dir}: not this repository's run; not updated")
        return
    versions = meta.setdefault("task_versions", {})
    current = run_dir / "tasks" / task
    hist = run_dir / "history" / task
    hist.mkdir(parents=True, exist_ok=True)
    trash = Path(tempfile.mkdtemp(prefix=".task-trash-", dir=run_dir))
    try:
        if current.exists():
            old = hist / f"v{versions.get(task, 1)}"
            os.rename(current, trash / task if old.exists() else old)
        if trained is not None:
            os.rename(trained, hist / f"v{after.head_version}")
        if after is not None:
            src = hist / f"v{after.head_version}"
            if src.is_dir():
                tmp = Path(tempfile.mkdtemp(prefix=f".{task}.", dir=current.parent))
                shutil.copytree(src, tmp / task)
                os.rename(tmp / task, current)
                tmp.rmdir()
            else:
                log(f"  run dir {run_dir}: no copy of {task} v{after.head_version}; tasks/{task} left empty")
            versions[task] = after.head_version
            if task not in meta["tasks"]:
                meta["tasks"].append(task)
        else:
            versions.pop(task, None)
            meta["tasks"] = [t for t in meta["tasks"] if t != task]
        registry.atomic_write(run_json, (json.dumps(meta, indent=2)).encode())
    finally:
        shutil.rmtree(trash, ignore_errors=True)
