"""Crash safety for `mtserve task`: a journal beside the repository names every step of a change before the
first one is taken, so a change killed at any point (SIGKILL, OOM, power loss) is undone - or, once past its
commit point, finished - by the next `mtserve task` on that repository (or `mtserve task recover`).

    <parent>/.<repo>.mtserve-task.journal     JSON, written atomically and fsync'd before the first rename

Why a file and not only an in-memory undo list: a process killed between two renames undoes nothing, and a
repository holding a new version folder with the old config (or the reverse) fails `mtserve export --check`
and may not load at the next start. Every step of a change is one rename, one atomic file replace, or one
load/unload call, so after a kill each step is done or not done, never half done; the journal holds what undoing
needs (a rename's two names, a replaced file's previous bytes, the models the server served before) and the new
registry's hash, which says whether the commit point - registry.json, written last - was reached:

* not reached: every step is undone in reverse order (a rename is undone when its target exists and its source
  does not; a file gets its previous bytes back; the server, if one was changed, reloads what it served before
  from the restored files and drops what the change added), then the staging folders are deleted;
* reached: the change stands; what follows the commit point (the run directory's update, emptied archive folders,
  the staging folders) is done again, each part idempotent.

Only a process holding the repository lock (task_apply.repository_lock) changes a repository, and the lock dies
with its process, so a journal found by a lock holder belongs to a process that died: it is recovered at once.
Staging folders of dead processes (beside the repository: `.<repo>.task-*`, in the run directory:
`.task-<pid>-*`) are deleted too.

`MTSERVE_TASK_CRASH_AT` (comma-separated point names) makes the process SIGKILL itself at those points: the
reliability suite's fault injection (tests/reliability/test_task_crash.py), never set in normal use. Points:
`staged` (training and staging done, nothing written), `journaled` (journal written, no step taken), `step-<i>`
(before step i), `before-<op>` (before the first step of that kind: move, write, load, unload, retire, commit),
`committed` (registry.json written, run directory not yet updated), `synced` (run directory updated).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mtserve.core import registry
from mtserve.core.errors import UserError
from mtserve.lifecycle.run_sync import sync_run

FORMAT = 1
CRASH_ENV = "MTSERVE_TASK_CRASH_AT"
# the kinds of step, in the order a change takes them
OPS = ("move", "write", "load", "unload", "retire", "commit")


# ---------------------------------------------------------------- fault injection
def failpoint(name: str) -> None:
    """SIGKILL this process here when MTSERVE_TASK_CRASH_AT names this point (a real kill: no handler, no
    cleanup, no undo runs)."""
    wanted = os.environ.get(CRASH_ENV)
    if wanted and name in {w.strip() for w in wanted.split(",")}:
        print(f"mtserve task: {CRASH_ENV}={wanted}: killing myself at {name!r}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # never reached: SIGKILL cannot be caught


# ---------------------------------------------------------------- helpers
def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a rename lives in the folder's own data)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, killed but not reaped yet, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: trust kill(0)
    return state not in ("Z", "X")


def stage_prefix(repo: Path) -> str:
    """Staging folders beside the repository: `.<repo>.task-XXXX` (made only under the repository lock)."""
    return f".{Path(repo).resolve().name}.task-"


def run_stage_prefix(pid: int | None = None) -> str:
    """Staging folders inside a run directory carry their process id: a run directory may serve several
    repositories (each with its own lock), so only a dead process's folders may be deleted."""
    return f".task-{os.getpid() if pid is None else pid}-"


# ---------------------------------------------------------------- the journal
@dataclass
class Journal:
    """One change's plan, as written to disk before its first step."""

    repo: str
    action: str
    task: str
    revision: int  # the registry revision the change commits
    steps: list[dict] = field(default_factory=list)
    server: str | None = None  # the Triton the change loads models on (None: files only)
    served_before: list[str] = field(default_factory=list)  # models that Triton served before the change
    archive: str | None = None
    staging: list[str] = field(default_factory=list)  # folders to delete when the change is over
    prune: list[str] = field(default_factory=list)  # archive folders a restore empties (after the commit)
    run_sync: dict | None = None  # {"run_dir", "after", "trained"}: the run directory's update (after commit)
    pid: int = field(default_factory=os.getpid)
    started: str = field(default_factory=registry.now)

    # -- building the plan
    def move(self, src: Path, dst: Path, op: str = "move") -> None:
        self.steps.append({"op": op, "src": str(src), "dst": str(dst)})

    def write(self, target: Path, data: bytes, op: str = "write") -> bool:
        """A file replace; False (no step) when the file already holds exactly `data`. The previous bytes are
        read where the file is now: a folder an earlier step moves in (from the archive) brings it along."""
        now = self._where_now(Path(target))
        old = now.read_bytes() if now.exists() else None
        if old == data and op != "commit":
            return False
        self.steps.append({"op": op, "path": str(target), "old": _b64(old), "new": _b64(data)})
        return True

    def _where_now(self, path: Path) -> Path:
        for step in reversed(self.steps):
            if step["op"] in ("move", "retire"):
                dst = Path(step["dst"])
                if path == dst or dst in path.parents:
                    return Path(step["src"]) / path.relative_to(dst)
        return path

    def load(self, model: str, version: int | None) -> None:
        self.steps.append({"op": "load", "model": model, "version": version})

    def unload(self, model: str) -> None:
        self.steps.append({"op": "unload", "model": model})

    # -- on disk
    @staticmethod
    def path(repo: str | Path) -> Path:
        return registry.journal_path(repo)

    def to_dict(self) -> dict:
        return {"format": FORMAT, **{k: getattr(self, k) for k in self.__dataclass_fields__}}

    def save(self) -> Path:
        """Written atomically and fsync'd (file and folder): it must exist on disk before the first step."""
        p = self.path(self.repo)
        registry.atomic_write(p, (json.dumps(self.to_dict(), indent=1) + "\n").encode())
        fsync_dir(p.parent)
        return p

    def remove(self) -> None:
        p = self.path(self.repo)
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
        fsync_dir(p.parent)

    @classmethod
    def read(cls, repo: str | Path) -> Journal | None:
        p = cls.path(repo)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            # atomic_write never leaves a half-written journal: this is damage from outside
            raise UserError(f"{p}: unreadable journal of an unfinished `mtserve task` change ({e})") from None
        if d.get("format") != FORMAT:
            raise UserError(f"{p}: journal format {d.get('format')!r}, this mtserve reads {FORMAT}")
        d.pop("format")
        try:
            return cls(**d)
        except TypeError as e:
            raise UserError(f"{p}: not a journal of this mtserve ({e})") from None

    # -- state
    def commit_step(self) -> dict:
        return next(s for s in self.steps if s["op"] == "commit")

    def committed(self) -> bool:
        """Whether registry.json holds the registry this change writes (the commit point was passed)."""
        step = self.commit_step()
        try:
            return sha256(Path(step["path"]).read_bytes()) == sha256(_unb64(step["new"]))
        except FileNotFoundError:
            return False

    def describe(self) -> str:
        return (
            f"`mtserve task {self.action} {self.task}` (pid {self.pid}, started {self.started}, "
            f"revision {self.revision})"
        )


# ---------------------------------------------------------------- taking and undoing steps
def do_step(step: dict, live=None, log=print) -> None:
    """Take one step (live: a model_control.Live, or None for a change to the files only)."""
    op = step["op"]
    if op in ("move", "retire"):
        src, dst = Path(step["src"]), Path(step["dst"])
        if dst.exists():
            raise UserError(f"{dst} already exists; refusing to overwrite it")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        fsync_dir(dst.parent)
    elif op in ("write", "commit"):
        registry.atomic_write(Path(step["path"]), _unb64(step["new"]))
        fsync_dir(Path(step["path"]).parent)
    elif op == "load":
        if live is not None:
            live.load(step["model"], step["version"])
            log(f"  server: loaded {step['model']}" + (f" v{step['version']}" if step["version"] else ""))
    elif op == "unload":
        if live is not None:
            problem = live.unload(step["model"])
            log(f"  server: {problem}" if problem else f"  server: unloaded {step['model']}")
    else:
        raise ValueError(f"unknown journal step {op!r}")


def undo_files(journal: Journal) -> list[str]:
    """Put every file and folder back as it was before the change, whatever subset of its steps was taken.
    Returns problems (empty: the repository is exactly as before)."""
    problems = []
    for step in reversed(journal.steps):
        op = step["op"]
        try:
            if op in ("move", "retire"):
                src, dst = Path(step["src"]), Path(step["dst"])
                if dst.exists() and not src.exists():  # taken: rename it back
                    src.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(dst, src)
                    fsync_dir(src.parent)
                elif not src.exists():
                    problems.append(f"neither {src} nor {dst} exists (moved away by something else?)")
                # else: not taken (a kill before it), nothing to undo
            elif op in ("write", "commit"):
                target, old = Path(step["path"]), _unb64(step["old"])
                for tmp in target.parent.glob(f".{target.name}.tmp-*"):  # a write the kill cut short
                    tmp.unlink(missing_ok=True)
                if old is None:
                    target.unlink(missing_ok=True)
                elif target.exists() and target.read_bytes() != old:
                    registry.atomic_write(target, old)
                # else: as before, or not there - in a folder whose move in was not taken: nothing to undo
                fsync_dir(target.parent)
        except OSError as e:
            problems.append(f"undoing {op} {step.get('dst') or step.get('path')}: {e}")
    if journal.archive:  # the archive slot folders the retired folders went to, empty again
        archive = Path(journal.archive)
        for step in journal.steps:
            if step["op"] == "retire":
                prune_up(Path(step["dst"]).parent, archive)
    return problems


def restore_server(journal: Journal, url: str, timeout: float = 600.0) -> list[str]:
    """After the files were put back: the server reloads what it served before (from the restored files) and
    drops what the change added - the order of model_control.Live.restore: the models the change unloaded
    first, then the ones it loaded, in reverse (the ensemble first, back to its old version), then the new
    ones, which nothing uses any more. Loading a model whose files did not change is a no-op for Triton."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    before = set(journal.served_before)
    loads = [s["model"] for s in journal.steps if s["op"] == "load"]
    unloads = [s["model"] for s in journal.steps if s["op"] == "unload"]
    plan = [("load", m) for m in reversed(unloads)]
    plan += [("load", m) for m in dict.fromkeys(reversed(loads)) if m in before]
    plan += [("unload", m) for m in dict.fromkeys(reversed(loads)) if m not in before]
    errors = []
    try:
        client = grpcclient.InferenceServerClient(url)
        if not client.is_server_live(client_timeout=10):
            return [f"Triton at {url} is not live"]
    except Exception as e:  # noqa: BLE001 - refused, DNS, timeout: one line
        return [f"cannot reach Triton at {url}: {e}"]
    try:
        for what, m in plan:
            try:
                if what == "load":
                    client.load_model(m, client_timeout=timeout)
                else:
                    client.unload_model(m, client_timeout=timeout)
            except InferenceServerException as e:
                errors.append(f"{what} {m}: {e.message()}")
    finally:
        with contextlib.suppress(Exception):
            client.close()
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


def finish_committed(journal: Journal, log=print) -> None:
    """What follows the commit point, each part idempotent: the run directory, emptied archive folders."""
    if journal.archive:
        for p in journal.prune:
            prune_up(Path(p), Path(journal.archive))
    rs = journal.run_sync
    if rs is not None:
        trained = Path(rs["trained"]) if rs.get("trained") else None
        after = registry.TaskEntry.from_dict(rs["after"]) if rs.get("after") else None
        reg = registry.load(journal.repo, check=False)
        sync_run(
            Path(rs["run_dir"]),
            reg,
            journal.task,
            after,
            trained if trained is not None and trained.is_dir() else None,
            log,
        )


def remove_staging(journal: Journal) -> None:
    for d in journal.staging:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- recovery
def sweep_stale(repo: Path, run_dir: Path | None = None, log=print) -> list[str]:
    """Delete staging folders no live process uses: beside the repository every `.<repo>.task-*` (only a lock
    holder makes them, and the caller holds the lock), in the run directory `.task-<pid>-*` of dead pids."""
    removed = []
    r = Path(repo).resolve()
    for d in r.parent.glob(stage_prefix(r) + "*"):
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    if run_dir is not None and Path(run_dir).is_dir():
        for d in Path(run_dir).glob(".task-*"):
            parts = d.name.split("-")  # .task-<pid>-XXXX, .task-trash-<pid>-XXXX
            pid = next((int(p) for p in parts[1:3] if p.isdigit()), None)
            if d.is_dir() and pid is not None and not pid_alive(pid):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(str(d))
    if removed:
        log(f"mtserve task: removed {len(removed)} staging folder(s) of interrupted changes")
    return removed


def recover(repo: str | Path, server: str | None = None, run_dir: str | Path | None = None, log=print) -> str:
    """Finish or undo an interrupted change of `repo`. The caller holds the repository lock. Returns what was
    done, in one line ('' when there was nothing to recover). UserError when the repository cannot be put back
    (the journal is then kept, and every `mtserve task` refuses to run until it is resolved)."""
    repo = Path(repo)
    journal = Journal.read(repo)
    outcome = ""
    if journal is not None:
        if Path(journal.repo) != repo.resolve():
            raise UserError(
                f"{Journal.path(repo)} records a change of {journal.repo}, not {repo.resolve()}: the repository "
                "was moved during a change; move it back and run `mtserve task recover`"
            )
        if journal.committed():
            finish_committed(journal, log)
            outcome = f"finished {journal.describe()}: it had passed its commit point (registry.json written)"
        else:
            problems = undo_files(journal)
            if problems:
                raise UserError(
                    f"could not undo the interrupted {journal.describe()}: {'; '.join(problems)}. The journal "
                    f"{Journal.path(repo)} lists every step; put those paths back by hand, then delete it"
                )
            url = server or journal.server
            if url and any(s["op"] in ("load", "unload") for s in journal.steps):
                errors = restore_server(journal, url)
                if errors:
                    log(
                        f"mtserve task: the repository is back as before, but the server at {url} was not: "
                        + "; ".join(errors)
                        + " (restart it, or load `multitask` and the models listed by hand)"
                    )
            outcome = f"undid {journal.describe()}: the repository is as it was before it"
        remove_staging(journal)
        journal.remove()
        log(f"mtserve task: {outcome}")
    run = Path(run_dir) if run_dir else None
    if run is None and journal is not None and journal.run_sync:
        run = Path(journal.run_sync["run_dir"])
    sweep_stale(repo, run, log)
    return outcome
