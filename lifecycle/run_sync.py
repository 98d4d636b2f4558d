"""Keeps a training run's directory in step with the repository after a task change: the deployed version in
tasks/<task>/, every trained version in history/<task>/v<N>/, run.json's task versions. Both the change
(lifecycle/apply.py) and its recovery after a crash (lifecycle/journal.py) call it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mtserve.core import registry
from mtserve.core.errors import UserError


def sync_run(
    run_dir: Path | None,
    reg: registry.Registry,
    task: str,
    after: registry.TaskEntry | None,
    trained: Path | None,
    log=lambda msg: print(msg, flush=True),
) -> None:
    """Keep the run directory in step with the repository: tasks/<task>/ is the deployed version, every
    version ever trained is kept in history/<task>/v<N>/, run.json lists the deployed tasks."""
    if run_dir is None:
        return
    from mtserve.training.run_dir import RunRecord

    run_json = run_dir / "run.json"
    try:
        record = RunRecord.read(run_json)
    except OSError:
        log(f"  run dir {run_dir}: no readable run.json; not updated")
        return
    except UserError as e:  # not a run record, or one a later mtserve wrote: left as it is
        log(f"  run dir {run_dir}: {e}; not updated")
        return
    if record.trunk_fingerprint != reg.trunk.fingerprint:
        log(f"  run dir {run_dir}: not this repository's run; not updated")
        return
    if record.task_versions is None:
        record.task_versions = {}
    versions = record.task_versions
    current = run_dir / "tasks" / task
    hist = run_dir / "history" / task
    hist.mkdir(parents=True, exist_ok=True)
    trash = Path(tempfile.mkdtemp(prefix=f".task-trash-{os.getpid()}-", dir=run_dir))
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
            if task not in record.tasks:
                record.tasks.append(task)
        else:
            versions.pop(task, None)
            record.tasks = [t for t in record.tasks if t != task]
        record.write(run_json)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
