"""`mtserve task` killed at every step of a change (no server, no training: seconds).

Each case forks a child that runs a real change with MTSERVE_TASK_CRASH_AT naming one point, where the child
SIGKILLs itself (a real kill: no handler, no undo). Recovery (what the next `mtserve task` runs first) must leave
the repository, its archive and the run directory byte for byte as before the change, or - once the change
passed its commit point - exactly as an uninterrupted change leaves them; and a rerun must complete the change.
The live version (a server under load, real training, real `mtserve task` processes) is the reliability
suite's tests/reliability/test_task_crash.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from mtserve.core import registry
from mtserve.core.errors import UserError
from mtserve.lifecycle import journal as task_journal

VOLATILE = ("time", "trained_at", "started")  # wall-clock fields: differ between two runs of one change


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def snapshot(ws) -> dict:
    """Every file of the repository, its archive and the run directory (registry.json and run.json without
    their timestamps), and the folders (empty ones count: Triton loads any version folder)."""
    out = {}
    for name, root in (("repo", ws.repo), ("archive", registry.archive_dir(ws.repo)), ("run", ws.run)):
        if not root.exists():
            continue
        for p in sorted(root.rglob("*")):
            rel = f"{name}/{p.relative_to(root)}"
            if p.is_dir():
                out[rel] = "dir"
            elif p.name in ("registry.json", "run.json"):
                out[rel] = _strip(json.loads(p.read_text()))
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def leftovers(ws) -> list[str]:
    """What an interrupted change may leave behind and recovery must remove."""
    r = ws.repo.resolve()
    found = [p.name for p in r.parent.iterdir() if p.name.startswith((f".{r.name}.task-", f"..{r.name}"))]
    found += [p.name for p in ws.run.glob(".task-*")]
    found += [str(p) for p in ws.repo.rglob(".*.tmp-*")]
    if registry.journal_path(ws.repo).exists():
        found.append(registry.journal_path(ws.repo).name)
    return found


@pytest.fixture
def fresh(tiny_run, tiny_repo, tmp_path):
    """A factory of private copies of the shared run and repository (those fixtures are never modified)."""
    n = [0]

    def make():
        n[0] += 1
        d = tmp_path / f"ws{n[0]}"
        ws = SimpleNamespace(run=d / "run", repo=d / "repo" / "model_repository")
        shutil.copytree(tiny_run, ws.run)
        shutil.copytree(tiny_repo, ws.repo)
        return ws

    return make


# ---------------------------------------------------------------- the changes (no training)
def remove_domain(ws):
    from mtserve.lifecycle.ops import remove_task

    remove_task(ws.repo, "domain", run_dir=ws.run, log=lambda m: None)


def new_head_version(ws, task="sentiment", depth_of=None):
    """A retrain without the training: the head's current weights as a new version, through the same planning
    and apply code (new version folder, config, the old version archived, the run directory updated).
    `depth_of(registry)`: the depth the new version branches at (a head reads the same hidden size at every
    depth), the trunk's new segments planned and exported by the lifecycle's own code."""
    from mtserve.export.model_config import read_config
    from mtserve.lifecycle.apply import apply_change, repository_lock
    from mtserve.lifecycle.plan import Change, config_bytes, stage_dir, versioned

    with repository_lock(ws.repo, None, ws.run, log=lambda m: None):
        reg = registry.load(ws.repo)
        before = reg.tasks[task]
        v = before.head_version + 1
        depth = before.branch_depth if depth_of is None else depth_of(reg)
        after = dataclasses.replace(before, head_version=v, branch_depth=depth)
        change = Change("retrain", task, before, after, stage_dir(ws.repo))
        if depth not in reg.trunk.depths:
            new_segments(ws, reg, change, depth)
        staged = change.staging / "repo" / task / str(v)
        shutil.copytree(ws.repo / task / str(before.head_version), staged)
        change.dirs.append((staged, ws.repo / task / str(v)))
        cfg = config_bytes(versioned(read_config(ws.repo / task), v))
        change.files.append((ws.repo / task / "config.pbtxt", cfg))
        change.retire.append(f"{task}/{before.head_version}")
        run_stage = ws.run / f"{task_journal.run_stage_prefix()}x"
        shutil.copytree(ws.run / "tasks" / task, run_stage / "tasks" / task)
        change.cleanup.append(run_stage)
        try:
            apply_change(
                ws.repo, reg, change, None, lambda m: None, run_dir=ws.run, trained=run_stage / "tasks" / task
            )
        finally:
            shutil.rmtree(change.staging, ignore_errors=True)


def new_segments(ws, reg, change, depth):
    from mtserve.export.model_config import ServingOptions
    from mtserve.export.writer import RepositoryPlan
    from mtserve.lifecycle.plan import segment_steps
    from mtserve.lifecycle.run_context import RunContext

    ctx = RunContext(ws.run, reg)
    new_depths = sorted({*reg.trunk.depths, depth})
    plan = RepositoryPlan(
        profile=reg.profile,
        backbone=reg.backbone,
        num_layers=reg.num_layers,
        hidden_size=reg.hidden_size,
        vocab_size=ctx.run.bert_config().vocab_size,
        max_length=reg.max_length,
        tokenizer_dir=ctx.root / "tokenizer",
        trunk=ctx.run.trunk(new_depths),
        fingerprint=reg.trunk.fingerprint,
        tasks={},
        serving=ServingOptions.from_registry(reg.serving),
    )
    segment_steps(change, ws.repo, reg, plan, change.staging / "repo", new_depths, log=lambda m: None)


def split_segment(ws):
    """sentiment moves to depth 1, inside the first segment: it is split in two, every path rewritten."""
    new_head_version(ws, depth_of=lambda reg: 1)


def add_segment(ws):
    """sentiment moves beyond the deepest cut: one segment more, no other path changes."""
    new_head_version(ws, depth_of=lambda reg: max(reg.trunk.depths) + 1)


def restore_domain(ws):
    from mtserve.lifecycle.ops import rollback_task

    rollback_task(ws.repo, "domain", run_dir=ws.run, log=lambda m: None)


def two_tasks(ws) -> list[str]:
    return sorted(registry.load(ws.repo).tasks)[:2]


def create_group(ws):
    from mtserve.lifecycle.groups import change_group

    change_group(ws.repo, "pair", two_tasks(ws), log=lambda m: None)


def delete_group(ws):
    from mtserve.lifecycle.groups import change_group

    change_group(ws.repo, "pair", None, log=lambda m: None)


ROOT = Path(__file__).resolve().parent.parent


def killed_at(point: str, change, ws) -> bool:
    """Run `change` in a forked child told to SIGKILL itself at `point`; True when it died there, False when it
    finished (the point lies past the change's last step). A change that exports with torch runs in a new
    process instead: torch is not fork-safe (a forked child of this process, whose fixtures trained with torch,
    waits forever on a lock one of the parent's threads held at the fork)."""
    if change in (split_segment, add_segment):
        return killed_in_new_process(point, change, ws)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.environ[task_journal.CRASH_ENV] = point
            change(ws)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"{point}: the change failed instead of dying"
    return False


def killed_in_new_process(point: str, change, ws) -> bool:
    code = (
        "import pathlib, types, tests.test_task_crash as t; "
        f"t.{change.__name__}(types.SimpleNamespace(run=pathlib.Path({str(ws.run)!r}), "
        f"repo=pathlib.Path({str(ws.repo)!r})))"
    )
    env = os.environ | {task_journal.CRASH_ENV: point}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode == -signal.SIGKILL:
        return True
    assert r.returncode == 0, f"{point}: the change failed instead of dying: {r.stderr[-2000:]}"
    return False


CASES = {
    "remove": (None, remove_domain),
    "retrain": (None, new_head_version),
    "rollback of a remove": (remove_domain, restore_domain),  # folders come back out of the archive
    "segment split": (None, split_segment),  # new segments, every path rewritten, the split one retired
    "segment added": (None, add_segment),
    "group created": (None, create_group),  # new folders only
    "group deleted": (create_group, delete_group),  # folders to the archive
}


@pytest.mark.parametrize("case", CASES)
def test_a_change_killed_at_any_step_is_undone_or_finished(fresh, case):
    from mtserve.export.repository_check import check_repository
    from mtserve.lifecycle.ops import recover_change

    setup, change = CASES[case]

    def prepared():
        ws = fresh()
        if setup:
            setup(ws)
        return ws

    ref = prepared()
    before = snapshot(ref)
    change(ref)
    after = snapshot(ref)
    assert after != before and check_repository(ref.repo) == []

    points = ["staged", "journaled"] + [f"step-{i}" for i in range(40)]
    outcomes = {}
    for point in points:
        ws = prepared()
        if not killed_at(point, change, ws):
            assert point.startswith("step-") and int(point[5:]) > 2, f"{point} never reached"
            break  # past the last step: the remaining points are the post-commit ones below
        state = snapshot(ws)
        assert state != before or point in ("staged", "journaled", "step-0"), point  # a change half-made
        recover_change(ws.repo, run_dir=ws.run, log=lambda m: None)
        assert leftovers(ws) == [], f"{point}: {leftovers(ws)}"
        state = snapshot(ws)
        if state == before:
            outcomes[point] = "undone"
            change(ws)  # the rerun completes the change
            assert snapshot(ws) == after, f"{point}: the rerun left another state"
        else:
            outcomes[point] = "finished"
            assert state == after, f"{point}: neither the state before nor after the change"
    else:
        pytest.fail("more than 40 steps")
    for point in ("committed", "synced"):
        ws = prepared()
        assert killed_at(point, change, ws)
        assert registry.journal_path(ws.repo).exists()
        assert "unfinished `mtserve task` change" in " ".join(check_repository(ws.repo))
        recover_change(ws.repo, run_dir=ws.run, log=lambda m: None)
        assert leftovers(ws) == [] and snapshot(ws) == after, point
        outcomes[point] = "finished"
    # a kill before any step, the registry write included, is undone; a kill after it, finished
    assert {p: o for p, o in outcomes.items() if o == "finished"}.keys() == {"committed", "synced"}, outcomes
    assert check_repository(ws.repo) == []


def test_recovery_puts_back_a_partly_written_file_and_refuses_what_it_cannot_undo(fresh):
    """A kill inside atomic_write leaves its temporary file; a folder moved away by hand cannot be put back:
    the journal stays and every `mtserve task` says what is wrong instead of running."""
    from mtserve.lifecycle.ops import recover_change, remove_task

    ws = fresh()
    before = snapshot(ws)
    assert killed_at("step-2", remove_domain, ws)  # new multitask folder and config in place
    (ws.repo / "multitask" / ".config.pbtxt.tmp-dead").write_text("half a config")
    recover_change(ws.repo, run_dir=ws.run, log=lambda m: None)
    assert snapshot(ws) == before and leftovers(ws) == []

    ws = fresh()
    assert killed_at("before-retire", remove_domain, ws)
    journal = task_journal.Journal.read(ws.repo)
    moved = next(Path(s["dst"]) for s in journal.steps if s["op"] == "move")
    shutil.rmtree(moved)  # someone deleted the new multitask version by hand
    for _ in range(2):  # refused, and refused again: nothing runs on a repository in an unknown state
        with pytest.raises(UserError, match=r"could not undo the interrupted `mtserve task remove domain`"):
            remove_task(ws.repo, "urgency", log=lambda m: None)
    assert registry.journal_path(ws.repo).exists()


def test_a_second_change_fails_at_once_while_one_runs(fresh):
    from mtserve.lifecycle.apply import repository_lock
    from mtserve.lifecycle.ops import remove_task

    ws = fresh()
    before = snapshot(ws)
    with repository_lock(ws.repo):
        with pytest.raises(UserError, match="another `mtserve task` is changing"):
            remove_task(ws.repo, "domain", log=lambda m: None)
    assert snapshot(ws) == before
