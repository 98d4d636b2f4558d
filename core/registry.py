# Over 500 lines: registry.json's one owner - its types, validation, reading and writing, version history and display.
"""The task registry: `<repository>/registry.json`, what a model repository deploys.

Written by `mtserve export` (revision 1), the load test's synthetic repositories, and every
`mtserve task add|retrain|remove|rollback` (one revision each). `Registry` and `TaskEntry` are its
typed form: every writer goes through `save`/`dumps` (which refuse an invalid registry), every
reader through `load`/`read`. Standard library only: the serving side reads it without torch.

    {
      "version": 1,                      # schema version of this file
      "revision": 4,                     # +1 on every change
      "profile": "local" | "gpu", "backbone", "num_layers", "hidden_size", "max_length",
      "trunk": {"version", "depths", "layers", "fingerprint"},   # served as segments trunk_0_<d1>, trunk_<d1>_<d2>..
      "groups": {name: [task, ...]},     # each served as group_<name> (mtserve export --group, mtserve task group)
      "multitask_version": 3,            # the version folder multitask/<v>/ (and multitask_graph/<v>/) its config selects
      "tasks": {name: {"name", "labels", "metric", "is_pair", "kind", "branch_depth", "task_layers",
                       "head_version", "baseline", "dev_score", ...}},
      "history": [{"revision", "time", "action", "task", "before", "after", "multitask_version",
                   "trunk_version", ["reverts"], ["archived": {"<model>/<v>" or "<model>": "<slot>/..."}]}],
      "export_checks": {model: {"max_abs_diff"}},
      "serving": {"max_batch", "queue_delay_us", "queue_timeout_us", "instances", "buckets", "warmup",
                  "response_cache", ...}
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

import copy
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mtserve.core import names
from mtserve.core.errors import UserError

# `serving.queue_timeout_us` absent: the repository was exported before the trunk's and full models' queue timeout
# was an option, with this one (export/model_config.py ServingOptions.from_registry, the repository check).
LEGACY_QUEUE_TIMEOUT_US = 500_000

FILENAME = "registry.json"
# 2: the trunk is served as segments (trunk_<a>_<b>), every task has its path_<task>, and task groups exist.
# A version-1 repository (one `trunk` model, every request running every head) is refused with what to do.
SCHEMA_VERSION = 2
# a task change (before/after: task entries), or "group": a task group created, changed or deleted (before/after:
# its task lists, null when absent; the entry names the group, not a task)
ACTIONS = ("add", "retrain", "remove", "rollback", "group")
PROFILES = ("local", "gpu")


def layers_served(trunk_layers: int, task_layers) -> int:
    """The cost of one utterance through the multitask model, in BERT layers: the shared trunk once, plus every
    task's own branch layers. The one place this formula lives (reports, the registry, the capacity ideal)."""
    return int(trunk_layers) + sum(int(n) for n in task_layers)


# ---------------------------------------------------------------- the typed registry
@dataclass
class TaskEntry:
    """One deployed task: what it predicts, where its branch leaves the trunk, which head version serves it."""

    name: str
    labels: list[str] | None  # None: regression (one float output)
    metric: str
    is_pair: bool
    branch_depth: int
    task_layers: int
    head_version: int
    baseline: str | None = None  # the per-task baseline ensemble (single_<task>), if exported
    dev_score: float | None = None
    full_score: float | None = None
    retention: float | None = None
    meets_target: bool | None = None
    train_examples: int | None = None
    dev_examples: int | None = None
    trained_at: str | None = None

    @property
    def kind(self) -> str:
        return "regression" if self.labels is None else "classification"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = self.kind
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TaskEntry:
        """From a validated entry (`validate_task_entry`); keys this version does not know are dropped."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: copy.deepcopy(v) for k, v in d.items() if k in known})


@dataclass
class TrunkEntry:
    version: int
    depths: list[int]  # every depth a head branches from: the trunk's hidden_<d> outputs
    layers: int  # layers the trunk runs: its deepest output
    fingerprint: str | None = None  # the frozen weights it was cut from (a task trained on others is refused)


@dataclass
class Registry:
    profile: str
    backbone: str | None
    num_layers: int  # the backbone's layers: a per-task baseline model's cost
    hidden_size: int
    max_length: int
    trunk: TrunkEntry
    tasks: dict[str, TaskEntry]
    multitask_version: int = 1
    revision: int = 1
    history: list[dict] = field(default_factory=list)
    export_checks: dict = field(default_factory=dict)
    onnx: dict | None = None  # how the ONNX models were built (fp16, tensorrt): later heads match it
    synthetic: dict | None = None  # set by the load test's synthetic repositories
    # how the configs serve (batching knobs, warm-up, response cache): export/model_config.py ServingOptions
    serving: dict | None = None
    groups: dict[str, list[str]] = field(default_factory=dict)  # group name -> its tasks (group_<name>)

    def layers_served(self, tasks=None) -> int:
        """What one utterance costs, in BERT layers, through a path running exactly `tasks`' heads (every task:
        `multitask`): the segments up to the deepest of them, and their heads."""
        chosen = list(self.tasks if tasks is None else tasks)
        trunk = self.trunk.layers if tasks is None else max(self.tasks[t].branch_depth for t in chosen)
        return layers_served(trunk, (self.tasks[t].task_layers for t in chosen))

    def segments(self) -> list[tuple[int, int]]:
        """The trunk's segments (start, end) as served: cut at every depth a task branches from."""
        return names.segments(self.trunk.depths)

    def layers_baseline(self, tasks=None) -> int:
        return len(self.tasks if tasks is None else tasks) * self.num_layers

    def to_dict(self) -> dict:
        d = {"version": SCHEMA_VERSION}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("onnx", "synthetic", "serving") and v is None:
                continue
            if f.name == "tasks":
                v = {n: e.to_dict() for n, e in v.items()}
            elif f.name == "trunk":
                v = asdict(v)
            d[f.name] = copy.deepcopy(v)
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "registry") -> Registry:
        problems = validate(d)
        if problems:
            raise UserError(f"{where}: " + "; ".join(problems))
        known = {f.name for f in fields(cls)}
        kw = {k: copy.deepcopy(v) for k, v in d.items() if k in known}
        t = d["trunk"]
        kw["trunk"] = TrunkEntry(
            t["version"], list(t["depths"]), int(t.get("layers", max(t["depths"]))), t.get("fingerprint")
        )
        kw["tasks"] = {n: TaskEntry.from_dict(e) for n, e in d["tasks"].items()}
        return cls(**kw)

    def copy(self) -> Registry:
        return copy.deepcopy(self)


def path(repo: str | Path) -> Path:
    return Path(repo) / FILENAME


def archive_dir(repo: str | Path) -> Path:
    """Where retired versions go: a sibling of the repository (`model_repository/multitask.archive`)."""
    r = Path(repo).resolve()
    return r.parent / f"{r.name}.archive"


def journal_path(repo: str | Path) -> Path:
    """The journal of a `mtserve task` change in progress (lifecycle/journal.py), beside the repository: it
    exists only while a change runs, or after one was killed (the next `mtserve task` then recovers it)."""
    r = Path(repo).resolve()
    return r.parent / f".{r.name}.mtserve-task.journal"


def locate_archived(repo: str | Path, reg: Registry, rel: str) -> Path | None:
    """Where the archive holds `rel` ("<model>/<v>" or "<model>"), from the newest history entry that moved
    it (or a folder holding it) there; None when it is nowhere."""
    root = archive_dir(repo)
    for h in reversed(reg.history):
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


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


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
    for key in ("branch_depth", "task_layers"):
        if not _is_count(e.get(key)):
            problems.append(f"{where}: {key} must be an integer >= 0, got {e.get(key)!r}")
    kind = "regression" if labels is None else "classification"
    if e.get("kind", kind) != kind:
        problems.append(f"{where}: kind {e.get('kind')!r} contradicts its labels {labels!r}")
    if not isinstance(e.get("is_pair"), bool):
        problems.append(f"{where}: is_pair must be true or false, got {e.get('is_pair')!r}")
    return problems


def validate_groups(groups, tasks) -> list[str]:
    """Problems with a registry's task groups: each a valid name, two tasks or more, every one deployed."""
    if not isinstance(groups, dict):
        return ["groups: must be an object (group name -> list of tasks)"]
    problems = []
    for g, members in groups.items():
        if not isinstance(g, str) or not names.TASK_NAME.match(g):
            problems.append(f"group name {g!r} must match {names.TASK_NAME_RULE}")
        if not isinstance(members, list) or len(members) < 2 or len(set(members)) != len(members):
            problems.append(f"groups.{g}: needs two or more distinct tasks, got {members!r}")
            continue
        missing = [t for t in members if t not in tasks]
        if missing:
            problems.append(f"groups.{g}: task(s) {missing} not deployed (tasks: {sorted(tasks)})")
    return problems


def validate(reg) -> list[str]:
    """Problems with a registry's content (empty: valid)."""
    if not isinstance(reg, dict):
        return ["the registry is not a JSON object"]
    problems = []
    if reg.get("version") == 1:
        return [
            "schema version 1: a repository exported before the trunk was served as segments (one `trunk` "
            "model; every request ran every head). This mtserve serves and changes version-2 repositories: "
            "export it again from its run directory (`mtserve export --run-dir RUN --out REPO`)"
        ]
    if reg.get("version") != SCHEMA_VERSION:
        problems.append(f"schema version {reg.get('version')!r} (this mtserve reads {SCHEMA_VERSION})")
    if reg.get("profile") not in PROFILES:
        problems.append(f"profile must be 'local' or 'gpu', got {reg.get('profile')!r}")
    for key in ("num_layers", "hidden_size", "max_length"):
        if not _is_version(reg.get(key)):
            problems.append(f"{key} must be an integer >= 1, got {reg.get(key)!r}")
    if not isinstance(reg.get("backbone"), (str, type(None))):
        problems.append(f"backbone must be a string, got {reg.get('backbone')!r}")
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
        if not names.TASK_NAME.match(name):
            problems.append(f"task name {name!r} must match {names.TASK_NAME_RULE}")
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
    problems += validate_groups(reg.get("groups", {}), tasks)
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
        if h.get("action") == "group" and not isinstance(h.get("group"), str):
            problems.append(f"{where}: a group change names its group")
        for key in ("before", "after"):
            if h.get(key) is None:
                continue
            if h.get("action") == "group":
                if not isinstance(h[key], list) or not all(isinstance(t, str) for t in h[key]):
                    problems.append(f"{where}.{key}: a group's tasks, a list of names, got {h[key]!r}")
            else:
                problems += validate_task_entry(h.get("task", "?"), h[key], f"{where}.{key}")
    return problems


def check_files(repo: Path, reg: Registry) -> list[str]:
    """Problems between the registry and the folders it names (empty: consistent)."""
    problems = []
    for a, b in reg.segments():
        seg = names.segment(a, b)
        if not (repo / seg / "1").is_dir():
            problems.append(
                f"{seg}/1/ missing (the trunk's layers {a + 1}-{b}, a segment of depths {reg.trunk.depths})"
            )
    if not (repo / names.MULTITASK / "config.pbtxt").is_file():
        problems.append(f"{names.MULTITASK}/config.pbtxt missing")
    for g in reg.groups:
        if not (repo / names.group(g) / "config.pbtxt").is_file():
            problems.append(f"{names.group(g)}/config.pbtxt missing (group {g})")
    for name, e in reg.tasks.items():
        v = e.head_version
        if not (repo / name / str(v)).is_dir() or not (repo / name / "config.pbtxt").is_file():
            problems.append(f"{name}/{v}/ or {name}/config.pbtxt missing (task {name}'s head version)")
        if not (repo / names.path(name) / "config.pbtxt").is_file():
            problems.append(f"{names.path(name)}/config.pbtxt missing (task {name}'s path)")
        if e.baseline and not (repo / e.baseline / "config.pbtxt").is_file():
            problems.append(f"{e.baseline}/config.pbtxt missing (task {name}'s baseline)")
    return problems


# ---------------------------------------------------------------- read / write
def read(p: str | Path) -> Registry:
    """A registry file on its own (e.g. a deployment's copy given to the load test), validated."""
    p = Path(p)
    if not p.is_file():
        raise UserError(f"{p}: no such registry file")
    try:
        raw = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: not valid JSON: {e}") from None
    return Registry.from_dict(raw, where=str(p))


def load(repo: str | Path, check: bool = True) -> Registry:
    """The registry of `repo`, validated, and (check) consistent with its folders: UserError naming every
    problem."""
    repo = Path(repo)
    p = path(repo)
    if not repo.is_dir():
        raise UserError(f"model repository not found: {repo}")
    if not p.is_file():
        raise UserError(f"{repo}: no {FILENAME} (is this a model repository written by `mtserve export`?)")
    reg = read(p)
    problems = check_files(repo, reg) if check else []
    if problems:
        raise UserError(f"{p}: " + "; ".join(problems))
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


def dumps(reg: Registry) -> bytes:
    """The file's bytes; refuses a registry this module could not read back."""
    d = reg.to_dict()
    problems = validate(d)
    if problems:
        raise ValueError("refusing to write an invalid registry: " + "; ".join(problems))
    return (json.dumps(d, indent=2) + "\n").encode()


def save(repo: str | Path, reg: Registry) -> None:
    """The one writer of registry.json (export, synthetic repositories; task changes write `dumps` inside
    their transaction)."""
    atomic_write(path(repo), dumps(reg))


# ---------------------------------------------------------------- names, versions, history
def check_new_task_name(name: str, reg: Registry) -> None:
    names.check_task_name(name)
    if name in names.RESERVED_MODELS or name.startswith(names.RESERVED_PREFIXES):
        raise UserError(
            f"task name {name!r} is taken by the repository's own models "
            f"({', '.join(names.RESERVED_MODELS)} and the prefixes {', '.join(names.RESERVED_PREFIXES)})"
        )
    if name in reg.tasks:
        raise UserError(
            f"task {name!r} already exists (head version {reg.tasks[name].head_version}); "
            f"use `mtserve task retrain {name}` to train a new version"
        )


def task_history(reg: Registry, task: str) -> list[dict]:
    return [h for h in reg.history if h.get("task") == task]


def versions_used(reg: Registry, task: str) -> set[int]:
    """Every head version the registry ever gave `task` (current and in its history)."""
    used = set()
    if task in reg.tasks:
        used.add(reg.tasks[task].head_version)
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


def rollback_target(reg: Registry, task: str) -> dict:
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


def record(
    reg: Registry, action: str, task: str, before: TaskEntry | None, after: TaskEntry | None, **extra
) -> Registry:
    """The registry after one change: the task's new entry, revision + 1, one history entry."""
    new = reg.copy()
    new.revision = reg.revision + 1
    if after is None:
        new.tasks.pop(task, None)
    else:
        new.tasks[task] = copy.deepcopy(after)
    new.history.append(
        {
            "revision": new.revision,
            "time": now(),
            "action": action,
            "task": task,
            "before": None if before is None else before.to_dict(),
            "after": None if after is None else after.to_dict(),
            "multitask_version": new.multitask_version,
            "trunk_version": new.trunk.version,
            **extra,
        }
    )
    return new


def record_group(
    reg: Registry, group: str, before: list[str] | None, after: list[str] | None, **extra
) -> Registry:
    """The registry after a group change (`mtserve task group`): its new members (None: deleted), revision + 1,
    one history entry."""
    new = reg.copy()
    new.revision = reg.revision + 1
    if after is None:
        new.groups.pop(group, None)
    else:
        new.groups[group] = list(after)
    new.history.append(
        {
            "revision": new.revision,
            "time": now(),
            "action": "group",
            "group": group,
            "before": None if before is None else list(before),
            "after": None if after is None else list(after),
            "multitask_version": new.multitask_version,
            "trunk_version": new.trunk.version,
            **extra,
        }
    )
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


def format_table(reg: Registry) -> str:
    t = reg.trunk
    lines = [
        f"revision {reg.revision}   profile {reg.profile}   backbone {reg.backbone or '?'}   "
        f"trunk v{t.version} (outputs at depths {', '.join(map(str, t.depths))})   "
        f"multitask v{reg.multitask_version}",
        f"{'task':<16} {'kind':<14} {'labels':>6} {'depth':>5} {'layers':>6} {'head':>5} {'metric':<9} "
        f"{'dev':>7} {'full':>7}  baseline",
    ]
    for name, e in reg.tasks.items():
        labels = "-" if e.labels is None else str(len(e.labels))
        lines.append(
            f"{name:<16} {e.kind:<14} {labels:>6} {e.branch_depth:>5} {_fmt(e.task_layers, 'd'):>6} "
            f"{'v' + str(e.head_version):>5} {e.metric:<9} {_fmt(e.dev_score):>7} "
            f"{_fmt(e.full_score):>7}  {e.baseline or '-'}"
        )
    return "\n".join(lines)


def format_history(reg: Registry, task: str | None = None) -> str:
    rows = [h for h in reg.history if task is None or h.get("task") == task]
    if not rows:
        return "no changes since export" + (f" for task {task}" if task else "")
    lines = []
    for h in rows:
        b, a = h.get("before"), h.get("after")
        if h["action"] == "group":
            change = (",".join(b) if b else "-") + " -> " + (",".join(a) if a else "-")
            lines.append(
                f"r{h['revision']:<4} {h.get('time', ''):<21} {'group':<9} {h['group']:<16} {change}"
            )
            continue
        change = f"v{b['head_version']}" if b else "-"
        change += " -> " + (f"v{a['head_version']}" if a else "-")
        extra = f" (undoes r{h['reverts']})" if h.get("reverts") else ""
        lines.append(
            f"r{h['revision']:<4} {h.get('time', ''):<21} {h['action']:<9} {h['task']:<16} {change}{extra}"
        )
    return "\n".join(lines)
