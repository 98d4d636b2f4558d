"""The task registry: `<repository>/registry.json`, what a model repository deploys.

Written by `mtserve export` (revision 1) and by every `mtserve task add|retrain|remove|rollback`
(one revision each). Standard library only: the serving side reads it without torch.

    {
      "version": 1,                      # schema version of this file
      "revision": 4,                     # +1 on every change
      "profile": "local" | "gpu", "backbone", "num_layers", "hidden_size", "max_length",
      "trunk": {"version", "depths", "layers", "fingerprint"},
      "multitask_version": 3,            # the version folder multitask/<v>/ its config selects
      "tasks": {name: {"name", "labels", "metric", "is_pair", "kind", "branch_depth", "task_layers",
                       "head_version", "baseline", "dev_score", ...}},
      "history": [{"revision", "time", "action", "task", "before", "after", "multitask_version",
                   "trunk_version", ["reverts"], ["archived": {"<model>/<v>" or "<model>": "<slot>/..."}]}],
      "export_checks": {model: {"max_abs_diff"}}
    }

`before`/`after` are the task's whole entry before and after the change (null: absent), so any
change can be undone: `rollback_target` finds the latest change of a task not yet undone.

The repository holds exactly what is served: each model's config.pbtxt selects one version folder
(`version_policy { specific { versions: [v] } }`) and that folder is the only one present, so
Triton, `mtserve export --check` and an upload to cluster storage see only live models. Every
version a change retires (old heads and baselines, old trunk and ensemble versions, a removed
task's whole model folders) is moved - not copied - to the archive beside the repository,
`<repo>.archive/<slot>/<model>[/<v>]` (same file system: a rename), and the history entry's
`archived` map says where each went, which is how a rollback finds it. (The archive cannot live
inside the repository: Triton tries to load every folder of it, hidden ones too.)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

from mtserve.serving.errors import UserError

FILENAME = "registry.json"
SCHEMA_VERSION = 1
TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ACTIONS = ("add", "retrain", "remove", "rollback")
RESERVED_MODELS = ("tokenizer", "trunk", "multitask")
RESERVED_PREFIXES = ("full_", "single_")


def path(repo: str | Path) -> Path:
    return Path(repo) / FILENAME


def archive_dir(repo: str | Path) -> Path:
    """Where retired versions go: a sibling of the repository (`model_repository/multitask.archive`)."""
    r = Path(repo).resolve()
    return r.parent / f"{r.name}.archive"


def locate_archived(repo: str | Path, reg: dict, rel: str) -> Path | None:
    """Where the archive holds `rel` ("<model>/<v>" or "<model>"), from the newest history entry that moved
    it (or a folder holding it) there; None when it is nowhere."""
    root = archive_dir(repo)
    for h in reversed(reg.get("history", [])):
        for key, dest in (h.get("archived") or {}).items():
            if rel == key:
                candidate = root / dest
            elif rel.startswith(key + "/"):
                candidate = root / dest / rel[len(key) + 1 :]
            else:
                continue
            if candidate.is_dir():
                return candidate
    return None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------- validation
def _is_version(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def validate_task_entry(name: str, e, where: str) -> list[str]:
    if not isinstance(e, dict):
        return [f"{where}: not an object"]
    problems = []
    if e.get("name") != name:
        problems.append(f"{where}: name {e.get('name')!r} differs from its key {name!r}")
    labels = e.get("labels")
    if labels is not None and (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) for x in labels)
        or len(set(labels)) != len(labels)
    ):
        problems.append(
            f"{where}: labels must be null (regression) or at least 2 distinct strings, got {labels!r}"
        )
    if not isinstance(e.get("metric"), str):
        problems.append(f"{where}: metric missing")
    if not _is_version(e.get("head_version")):
        problems.append(f"{where}: head_version must be an integer >= 1, got {e.get('head_version')!r}")
    depth = e.get("branch_depth")
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        problems.append(f"{where}: branch_depth must be an integer >= 0, got {depth!r}")
    return problems


def validate(reg) -> list[str]:
    """Problems with a registry's content (empty: valid)."""
    if not isinstance(reg, dict):
        return ["the registry is not a JSON object"]
    problems = []
    if reg.get("version") != SCHEMA_VERSION:
        problems.append(f"schema version {reg.get('version')!r} (this mtserve reads {SCHEMA_VERSION})")
    if reg.get("profile") not in ("local", "gpu"):
        problems.append(f"profile must be 'local' or 'gpu', got {reg.get('profile')!r}")
    trunk = reg.get("trunk")
    if (
        not isinstance(trunk, dict)
        or not _is_version(trunk.get("version"))
        or not isinstance(trunk.get("depths"), list)
    ):
        problems.append("trunk: needs a version (integer >= 1) and a list of depths")
    if not _is_version(reg.get("multitask_version")):
        problems.append(f"multitask_version must be an integer >= 1, got {reg.get('multitask_version')!r}")
    tasks = reg.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        problems.append("tasks: must be a non-empty object")
        tasks = {}
    for name, e in tasks.items():
        if not TASK_NAME.match(name):
            problems.append(f"task name {name!r} must match [a-z][a-z0-9_]*")
        problems += validate_task_entry(name, e, f"tasks.{name}")
        if (
            isinstance(trunk, dict)
            and isinstance(e, dict)
            and e.get("branch_depth") not in (trunk.get("depths") or [])
        ):
            problems.append(
                f"tasks.{name}: branch depth {e.get('branch_depth')} is not a trunk output "
                f"(trunk depths {trunk.get('depths')})"
            )
    history = reg.get("history", [])
    if not isinstance(history, list):
        problems.append("history: must be a list")
        history = []
    for i, h in enumerate(history):
        where = f"history[{i}]"
        if not isinstance(h, dict):
            problems.append(f"{where}: not an object")
            continue
        if h.get("action") not in ACTIONS:
            problems.append(f"{where}: unknown action {h.get('action')!r}")
        if not _is_version(h.get("revision")):
            problems.append(f"{where}: revision must be an integer >= 1")
        for key in ("before", "after"):
            if h.get(key) is not None:
                problems += validate_task_entry(h.get("task", "?"), h[key], f"{where}.{key}")
    return problems


def check_files(repo: Path, reg: dict) -> list[str]:
    """Problems between the registry and the folders it names (empty: consistent)."""
    problems = []
    tv = reg["trunk"]["version"]
    if not (repo / "trunk" / str(tv)).is_dir():
        problems.append(f"trunk/{tv}/ missing (the registry's trunk version)")
    if not (repo / "multitask" / "config.pbtxt").is_file():
        problems.append("multitask/config.pbtxt missing")
    for name, e in reg["tasks"].items():
        v = e["head_version"]
        if not (repo / name / str(v)).is_dir() or not (repo / name / "config.pbtxt").is_file():
            problems.append(f"{name}/{v}/ or {name}/config.pbtxt missing (task {name}'s head version)")
        if e.get("baseline") and not (repo / e["baseline"] / "config.pbtxt").is_file():
            problems.append(f"{e['baseline']}/config.pbtxt missing (task {name}'s baseline)")
    return problems


# ---------------------------------------------------------------- read / write
def load(repo: str | Path, check: bool = True) -> dict:
    """The registry of `repo`, validated (UserError naming every problem)."""
    repo = Path(repo)
    p = path(repo)
    if not repo.is_dir():
        raise UserError(f"model repository not found: {repo}")
    if not p.is_file():
        raise UserError(f"{repo}: no {FILENAME} (is this a model repository written by `mtserve export`?)")
    try:
        reg = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: not valid JSON: {e}") from None
    problems = validate(reg)
    if not problems and check:
        problems = check_files(repo, reg)
    if problems:
        raise UserError(f"{p}: " + "; ".join(problems))
    reg.setdefault("revision", 1)
    reg.setdefault("history", [])
    return reg


def atomic_write(target: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, fsync, rename over `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def dumps(reg: dict) -> bytes:
    return (json.dumps(reg, indent=2) + "\n").encode()


def save(repo: str | Path, reg: dict) -> None:
    problems = validate(reg)
    if problems:  # never write a registry this module could not read back
        raise ValueError("refusing to write an invalid registry: " + "; ".join(problems))
    atomic_write(path(repo), dumps(reg))


# ---------------------------------------------------------------- names, versions, history
def check_new_task_name(name: str, reg: dict) -> None:
    if not TASK_NAME.match(name or ""):
        raise UserError(f"task name {name!r} must match [a-z][a-z0-9_]*")
    if name in RESERVED_MODELS or name.startswith(RESERVED_PREFIXES):
        raise UserError(
            f"task name {name!r} is taken by the repository's own models "
            f"({', '.join(RESERVED_MODELS)}, full_<task>, single_<task>)"
        )
    if name in reg["tasks"]:
        raise UserError(
            f"task {name!r} already exists (head version {reg['tasks'][name]['head_version']}); "
            f"use `mtserve task retrain {name}` to train a new version"
        )


def task_history(reg: dict, task: str) -> list[dict]:
    return [h for h in reg.get("history", []) if h.get("task") == task]


def versions_used(reg: dict, task: str) -> set[int]:
    """Every head version the registry ever gave `task` (current and in its history)."""
    used = set()
    if task in reg["tasks"]:
        used.add(reg["tasks"][task]["head_version"])
    for h in task_history(reg, task):
        for key in ("before", "after"):
            if h.get(key):
                used.add(h[key]["head_version"])
    return used


def version_dirs(model_dir: Path) -> set[int]:
    if not model_dir.is_dir():
        return set()
    return {int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()}


def next_version(*used: set[int] | int) -> int:
    values = set()
    for u in used:
        values |= {u} if isinstance(u, int) else set(u)
    return max(values, default=0) + 1


def rollback_target(reg: dict, task: str) -> dict:
    """The history entry a rollback of `task` undoes: its latest change not undone yet.
    Rolling back again goes one change further back."""
    undone: set[int] = set()
    for h in reversed(task_history(reg, task)):
        if h["action"] == "rollback":
            undone.add(h["reverts"])
            continue
        if h["revision"] in undone:
            continue
        return h
    done = ", ".join(f"r{h['revision']} {h['action']}" for h in task_history(reg, task)) or "none"
    raise UserError(
        f"task {task!r} has no change to roll back (its history: {done}; "
        "the versions `mtserve export` wrote are the first)"
    )


def record(reg: dict, action: str, task: str, before: dict | None, after: dict | None, **extra) -> dict:
    """The registry after one change: the task's new entry, revision + 1, one history entry."""
    new = json.loads(json.dumps(reg))  # a deep copy
    new["revision"] = int(reg.get("revision", 1)) + 1
    tasks = new["tasks"]
    if after is None:
        tasks.pop(task, None)
    else:
        tasks[task] = after
    entry = {
        "revision": new["revision"],
        "time": now(),
        "action": action,
        "task": task,
        "before": before,
        "after": after,
        "multitask_version": new["multitask_version"],
        "trunk_version": new["trunk"]["version"],
        **extra,
    }
    new.setdefault("history", []).append(entry)
    return new


# ---------------------------------------------------------------- display
def _fmt(v, spec: str = ".3f") -> str:
    return (
        "-"
        if v is None
        else format(v, spec)
        if isinstance(v, (int, float)) and not isinstance(v, bool)
        else str(v)
    )


def format_table(reg: dict) -> str:
    t = reg["trunk"]
    lines = [
        f"revision {reg.get('revision', 1)}   profile {reg['profile']}   backbone {reg.get('backbone', '?')}   "
        f"trunk v{t['version']} (outputs at depths {', '.join(map(str, t['depths']))})   "
        f"multitask v{reg['multitask_version']}",
        f"{'task':<16} {'kind':<14} {'labels':>6} {'depth':>5} {'layers':>6} {'head':>5} {'metric':<9} "
        f"{'dev':>7} {'full':>7}  baseline",
    ]
    for name, e in reg["tasks"].items():
        kind = e.get("kind") or ("regression" if e.get("labels") is None else "classification")
        labels = "-" if e.get("labels") is None else str(len(e["labels"]))
        lines.append(
            f"{name:<16} {kind:<14} {labels:>6} {e['branch_depth']:>5} {_fmt(e.get('task_layers'), 'd'):>6} "
            f"{'v' + str(e['head_version']):>5} {e['metric']:<9} {_fmt(e.get('dev_score')):>7} "
            f"{_fmt(e.get('full_score')):>7}  {e.get('baseline') or '-'}"
        )
    return "\n".join(lines)


def format_history(reg: dict, task: str | None = None) -> str:
    rows = [h for h in reg.get("history", []) if task is None or h.get("task") == task]
    if not rows:
        return "no changes since export" + (f" for task {task}" if task else "")
    lines = []
    for h in rows:
        b, a = h.get("before"), h.get("after")
        change = f"v{b['head_version']}" if b else "-"
        change += " -> " + (f"v{a['head_version']}" if a else "-")
        extra = f" (undoes r{h['reverts']})" if h.get("reverts") else ""
        lines.append(
            f"r{h['revision']:<4} {h.get('time', ''):<21} {h['action']:<9} {h['task']:<16} {change}{extra}"
        )
    return "\n".join(lines)
