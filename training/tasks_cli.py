"""`mtserve task`: add, retrain, remove or roll back ONE task of an existing run and repository, live.

A task owner changes their task without touching anyone else's:

    mtserve task add NAME --train FILE --dev FILE [--pair] [--regression]   [--server URL]
    mtserve task retrain NAME [--train FILE --dev FILE]                      [--server URL]
    mtserve task remove NAME                                                 [--server URL]
    mtserve task rollback NAME                                               [--server URL]
    mtserve task list [--history] [--json]

Training runs the same steps as `mtserve train` (full fine-tuning, partial fine-tuning on the
cached frozen trunk, distillation, choice) for that task alone, on the run's frozen trunk (its
fingerprint must match the repository's). What changes in the repository:

  <task>/<v>/, config.pbtxt    the new head version; the config selects it with
                               version_policy { specific { versions: [v] } }
  full_<task>/<v>/, single_<task>/   the task's baseline, same version number (when the repository has baselines)
  trunk/<t>/                   only if the task branches at a depth the trunk does not output yet: the same
                               weights with one more output; every other output is bit-identical
  multitask/<m>/ + config      a new ensemble version for the new task set
  registry.json                the new entry, revision + 1, one history entry (before/after, what was archived)

The repository holds exactly what is served. What a change retires (the previous head and baseline
versions, the previous trunk and ensemble versions, a removed task's model folders) is moved to the
archive beside it, `<repo>.archive/r<rev>-<action>-<task>/...`, where `rollback` finds it again.
Every other file stays byte-identical. Inputs (registry, run, data files, server) are validated before
anything is written; new files are written under temporary names and renamed; on any failure every
change is undone (files and, with --server, the models already swapped), so the repository and the
server are as they were.

Live (`--server URL`, a Triton in explicit model-control mode on the same repository): after the files
are in place, each changed model is loaded in dependency order - trunk, head, baseline, then the
`multitask` ensemble last. Triton's load of an already-loaded model brings the new version up while the
old keeps serving, then retires the old one when its in-flight requests are done, so no request fails.
A removed task's models are unloaded only after the ensemble that no longer uses them is serving.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mtserve.serving import registry
from mtserve.serving.errors import UserError

PROG = "mtserve task"


def _say(msg: str) -> None:
    print(msg, flush=True)


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
):
    """TaskData from a task owner's TSV files (header: text, [text_pair], label). The label set comes from the
    training file; `keep_spec` (a retrained task's current spec) is kept when the label set is unchanged, so
    the label order (and the served `<task>_scores` layout) does not move."""
    from mtserve.training.tasks import TaskData, load_tsv

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
    notes = []
    if max_train and len(tr) > max_train:
        notes.append(f"training set capped at {max_train} of {len(tr)} rows")
        tr = tr.head(max_train)
    return TaskData(spec, tr, dv, notes)


# ---------------------------------------------------------------- the training run
class RunContext:
    """The training run a repository was exported from: its frozen trunk, tokenizer and settings."""

    def __init__(self, run_dir: str | Path, reg: dict):
        from mtserve.training.pipeline import Run

        self.root = Path(run_dir)
        self.run = Run(self.root)
        self.meta = self.run.meta  # UserError when there is no run.json
        for f in ("bert_config.json", "trunk.safetensors", "tokenizer"):
            if not (self.root / f).exists():
                raise UserError(f"{self.root}: {f} missing (not a complete training run)")
        fp, want = self.meta.get("trunk_fingerprint"), reg["trunk"].get("fingerprint")
        if fp != want:
            raise UserError(
                f"run {self.root} (trunk fingerprint {fp}) is not the run repository was exported from "
                f"(trunk fingerprint {want}): give the matching --run-dir"
            )

    def config(self, overrides: dict | None = None):
        from mtserve.training.finetune import TrainConfig
        from mtserve.training.pipeline import SearchConfig

        o = {k: v for k, v in (overrides or {}).items() if v is not None}
        cfg = TrainConfig(
            **{
                **self.meta["config"],
                **{k: o[k] for k in ("epochs_full", "epochs_partial", "epochs_distil", "seed") if k in o},
            }
        )
        search = SearchConfig(
            **{
                **self.meta["search"],
                **{k: o[k] for k in ("k_values", "max_student_layers", "retention_target") if k in o},
            }
        )
        n = self.meta["num_layers"]
        bad = [k for k in search.k_values if not 1 <= k <= n]
        if bad or not search.k_values:
            raise UserError(f"--k values {bad or '(none)'} outside 1..{n} for this {n}-layer backbone")
        return cfg, search

    def backbone(self):
        """(BertModel without pooler holding the run's frozen weights, tokenizer, full trunk, fingerprint)."""
        from mtserve.training.backbone import make_trunk
        from mtserve.training.features import trunk_fingerprint
        from safetensors.torch import load_file
        from transformers import AutoTokenizer, BertModel

        cfg = self.run.bert_config()
        cfg._attn_implementation = "eager"  # the trunk/branch pass BertLayer an additive mask
        bert = BertModel(cfg, add_pooling_layer=False).eval()
        bert.load_state_dict(load_file(str(self.root / "trunk.safetensors")), strict=False)
        n = cfg.num_hidden_layers
        trunk = make_trunk(bert, n, list(range(n + 1)))
        fp = trunk_fingerprint(trunk)
        if fp != self.meta["trunk_fingerprint"]:
            raise UserError(
                f"{self.root}/trunk.safetensors does not hold the weights run.json was trained on "
                f"(fingerprint {fp}, expected {self.meta['trunk_fingerprint']})"
            )
        tokenizer = AutoTokenizer.from_pretrained(str(self.root / "tokenizer"), local_files_only=True)
        return bert, tokenizer, trunk, fp


def stored_data(run_dir: Path, task: str) -> tuple[Path, Path] | None:
    d = run_dir / "tasks" / task / "data"
    if (d / "train.tsv").is_file() and (d / "dev.tsv").is_file():
        return d / "train.tsv", d / "dev.tsv"
    return None


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


def _prune_up(path: Path, stop: Path) -> None:
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


# ---------------------------------------------------------------- the live server
def expected_outputs(tasks: dict) -> set[str]:
    outs = set()
    for name, e in tasks.items():
        outs.add(f"{name}_scores")
        if e.get("labels") is not None:
            outs.add(f"{name}_label")
    return outs


class Live:
    """A running Triton (explicit model control) serving this repository; loads and unloads in order and can
    put back what it changed."""

    def __init__(self, url: str, reg: dict, timeout: float = 600.0):
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        self.url, self.timeout, self._exc = url, timeout, InferenceServerException
        self.client = None
        try:
            self.client = grpcclient.InferenceServerClient(url=url)
            self._check(reg)
        except BaseException:
            self.close()
            raise
        self.touched: list[str] = []  # models this run loaded, in order
        self.unloaded: list[str] = []

    def _check(self, reg: dict) -> None:
        url = self.url
        try:
            if not self.client.is_server_live(client_timeout=10):
                raise UserError(f"Triton at {url} is not live")
            self.before = self.ready_versions()
            if "multitask" not in self.before:
                raise UserError(
                    f"Triton at {url} does not serve `multitask` (ready: {sorted(self.before) or 'none'})"
                )
            cfg = self.client.get_model_config("multitask", as_json=True, client_timeout=30)["config"]
        except UserError:
            raise
        except Exception as e:  # connection refused, DNS, timeouts: one line
            raise UserError(f"cannot reach Triton at {url}: {e}") from None
        served = {o["name"] for o in cfg.get("output", [])}
        if served != expected_outputs(reg["tasks"]):
            raise UserError(
                f"Triton at {url} serves a `multitask` with outputs {sorted(served)}, but the registry "
                f"lists tasks {sorted(reg['tasks'])}: is it serving this repository (and has it loaded "
                "changes made without --server? then restart it, or `load` multitask first)?"
            )

    def ready_versions(self) -> dict[str, set[int]]:
        index = self.client.get_model_repository_index(as_json=True, client_timeout=30).get("models", [])
        out: dict[str, set[int]] = {}
        for m in index:
            if m.get("state") == "READY":
                out.setdefault(m["name"], set()).add(int(m.get("version") or 0))
        return out

    def load(self, name: str, version: int | None = None) -> None:
        self.touched.append(name)  # even if it fails: restore() then reloads it from the reverted files
        try:
            self.client.load_model(name, client_timeout=self.timeout)
            if version is not None and not self.client.is_model_ready(name, str(version), client_timeout=30):
                raise UserError(f"Triton at {self.url} loaded {name} but version {version} is not ready")
        except self._exc as e:
            if "not allowed" in (e.message() or ""):  # Triton refused before doing anything
                self.touched.pop()
                raise UserError(
                    f"Triton at {self.url} does not allow loading models ({e.message()}): a live change "
                    "needs `--model-control explicit`"
                ) from None
            raise UserError(f"Triton at {self.url} failed to load {name}: {e.message()}") from None

    def unload(self, name: str) -> str | None:
        try:
            self.client.unload_model(name, client_timeout=self.timeout)
            self.unloaded.append(name)
            return None
        except self._exc as e:
            return f"could not unload {name}: {e.message()}"

    def restore(self) -> list[str]:
        """After the files were reverted, put the server back: reload what this run unloaded, reload what it
        loaded in reverse order (the ensemble first, back to its old version), then unload the models that
        were not there before (nothing uses them any more)."""
        errors = []
        steps = [("load", m) for m in reversed(self.unloaded)]  # full_<task> before single_<task>
        steps += [("load", m) for m in dict.fromkeys(reversed(self.touched)) if m in self.before]
        steps += [("unload", m) for m in dict.fromkeys(reversed(self.touched)) if m not in self.before]
        for what, m in steps:
            try:
                if what == "load":
                    self.client.load_model(m, client_timeout=self.timeout)
                else:
                    self.client.unload_model(m, client_timeout=self.timeout)
            except self._exc as e:
                errors.append(f"{what} {m}: {e.message()}")
        self.touched, self.unloaded = [], []
        return errors

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()


def connect(url: str | None, reg: dict) -> Live | None:
    return Live(url, reg) if url else None


# ---------------------------------------------------------------- configs
def _text(cfg) -> bytes:
    from google.protobuf import text_format

    return text_format.MessageToString(cfg).encode()


def _versioned(cfg, version: int):
    cfg.version_policy.specific.versions[:] = [version]
    return cfg


def _with_outputs(cfg, name: str, spec):
    from mtserve.training.export import task_outputs

    del cfg.output[:]
    for t in task_outputs(name, spec, prefix=False):
        cfg.output.add(**t)
    return cfg


def _spec(entry: dict):
    from mtserve.training.tasks import TaskSpec

    return TaskSpec.from_dict(entry)


def multitask_bytes(tasks: dict, version: int) -> bytes:
    from mtserve.training.export import multitask_config

    return _text(
        _versioned(multitask_config({n: (_spec(e), e["branch_depth"]) for n, e in tasks.items()}), version)
    )


def single_bytes(name: str, entry: dict) -> bytes:
    from mtserve.training.export import single_config

    return _text(single_config(name, _spec(entry)))


# ---------------------------------------------------------------- a change
@dataclass
class Change:
    """One task's transition, planned (and its new files staged) before the repository is touched."""

    action: str
    task: str
    before: dict | None
    after: dict | None
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
    new_trunk: dict | None = None
    checks: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # more history fields (reverts)
    cleanup: list[Path] = field(default_factory=list)  # staging folders outside the repository


def _stage(repo: Path) -> Path:
    r = repo.resolve()
    return Path(tempfile.mkdtemp(prefix=f".{r.name}.task-", dir=r.parent))


def _baselines_served(live: Live | None) -> bool:
    return live is not None and any(m.startswith("single_") for m in live.before)


def _multitask_step(change: Change, repo: Path, reg: dict, tasks_after: dict) -> int:
    """A new multitask version (an empty folder and the config naming it), swapped in after everything it uses."""
    old = reg["multitask_version"]
    mv = registry.next_version(old, registry.version_dirs(repo / "multitask"))
    d = change.staging / "multitask_version"
    d.mkdir()
    (d / ".keep").touch()  # see export.write_ensemble
    change.dirs.append((d, repo / "multitask" / str(mv)))
    change.files.append((repo / "multitask" / "config.pbtxt", multitask_bytes(tasks_after, mv)))
    change.loads.append(("multitask", mv))
    if (repo / "multitask" / str(old)).is_dir():
        change.retire.append(f"multitask/{old}")
    return mv


def _slot(archive: Path, name: str) -> str:
    slot, n = name, 1
    while (archive / slot).exists():
        n += 1
        slot = f"{name}-{n}"
    return slot


def _apply(repo: Path, reg: dict, change: Change, live: Live | None, log=_say) -> dict:
    """Put the change in place - new folders, configs, live loads/unloads, retired folders to the archive, and
    registry.json last (the commit point) - or undo all of it."""
    tasks_after = {n: e for n, e in reg["tasks"].items() if n != change.task}
    if change.after is not None:
        tasks_after = dict(reg["tasks"]) | {change.task: change.after}
    mv = _multitask_step(change, repo, reg, tasks_after)
    revision = int(reg.get("revision", 1)) + 1
    archive = registry.archive_dir(repo)
    slot = _slot(archive, f"r{revision}-{change.action}-{change.task}")
    archived = {rel: f"{slot}/{rel}" for rel in dict.fromkeys(change.retire) if (repo / rel).exists()}
    new_reg = json.loads(json.dumps(reg))
    new_reg["multitask_version"] = mv
    if change.new_trunk:
        new_reg["trunk"] = change.new_trunk
    new_reg.setdefault("export_checks", {}).update(change.checks)
    extra = dict(change.extra) | ({"archived": archived} if archived else {})
    new_reg = registry.record(new_reg, change.action, change.task, change.before, change.after, **extra)
    problems = registry.validate(new_reg)
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
            _prune_up((archive / slot / rel).parent, archive)
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
            _prune_up(src.parent, archive)
    return new_reg


# ---------------------------------------------------------------- the run directory
def _sync_run(
    run_dir: Path | None, reg: dict, task: str, after: dict | None, trained: Path | None, log=_say
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
    if meta.get("trunk_fingerprint") != reg["trunk"].get("fingerprint"):
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
            os.rename(trained, hist / f"v{after['head_version']}")
        if after is not None:
            src = hist / f"v{after['head_version']}"
            if src.is_dir():
                tmp = Path(tempfile.mkdtemp(prefix=f".{task}.", dir=current.parent))
                shutil.copytree(src, tmp / task)
                os.rename(tmp / task, current)
                tmp.rmdir()
            else:
                log(
                    f"  run dir {run_dir}: no copy of {task} v{after['head_version']}; tasks/{task} left empty"
                )
            versions[task] = after["head_version"]
            if task not in meta["tasks"]:
                meta["tasks"].append(task)
        else:
            versions.pop(task, None)
            meta["tasks"] = [t for t in meta["tasks"] if t != task]
        registry.atomic_write(run_json, (json.dumps(meta, indent=2)).encode())
    finally:
        shutil.rmtree(trash, ignore_errors=True)


# ---------------------------------------------------------------- operations
def _train_and_stage(
    repo: Path,
    reg: dict,
    ctx: RunContext,
    data,
    version: int,
    baseline: bool,
    change: Change,
    overrides: dict | None,
    cache_dir: str | None,
    data_files: tuple[Path, Path],
    log=_say,
) -> Path:
    """Train the task on the run's frozen trunk and export its new head (and baseline, and trunk if needed)
    into the staging folder. Returns the trained task folder (for the run directory)."""
    import torch
    from mtserve.training.backbone import load_branch
    from mtserve.training.export import read_config, write_full, write_head, write_trunk
    from mtserve.training.features import FeatureCache
    from mtserve.training.pipeline import load_full, train_task

    name, spec = change.task, data.spec
    cfg, search = ctx.config(overrides)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    bert, tokenizer, trunk, fp = ctx.backbone()
    stage_run = Path(tempfile.mkdtemp(prefix=".task-", dir=ctx.root))
    change.cleanup.append(stage_run)
    log(
        f"training {name} ({len(data.train)} train / {len(data.dev)} dev rows; k in {search.k_values}, "
        f"students up to {search.max_student_layers} layers) on the frozen trunk of {ctx.root}"
    )
    cache = FeatureCache(Path(cache_dir) / "features" if cache_dir else None)
    result = train_task(bert, tokenizer, data, cfg, search, cache, trunk, fp, stage_run)
    task_dir = stage_run / "tasks" / name
    (task_dir / "data").mkdir()
    shutil.copyfile(data_files[0], task_dir / "data" / "train.tsv")
    shutil.copyfile(data_files[1], task_dir / "data" / "dev.tsv")
    bert_cfg = ctx.run.bert_config()
    branch, bmeta = load_branch(bert_cfg, task_dir / "branch.safetensors")
    chosen = bmeta["chosen"]
    depth = branch.config.depth
    log(
        f"  full fine-tuning {result['full']:.4f}; chosen: {chosen['kind']} k={chosen['k']} l={chosen['l']} at depth "
        f"{depth}, {spec.metric} {chosen['score']:.4f}"
        + ("" if chosen["meets_target"] else " (below the target)")
    )

    profile, srepo = reg["profile"], change.staging / "repo"
    # built like the rest of the repository (`mtserve export --fp16/--tensorrt` records it); only passed when
    # set, so an fp32 repository needs nothing beyond the plain export functions
    onnx_opts = reg.get("onnx") or {}
    opts = {
        k: v
        for k, v in {
            "fp16": onnx_opts.get("precision") == "fp16",
            "tensorrt": bool(onnx_opts.get("tensorrt")),
        }.items()
        if v
    }
    # the trunk: a new version only if it does not output this depth yet (same weights, one more output)
    depths = list(reg["trunk"]["depths"])
    if depth not in depths:
        old_tv = reg["trunk"]["version"]
        tv = registry.next_version(old_tv, registry.version_dirs(repo / "trunk"))
        new_depths = sorted(set(depths) | {depth})
        change.checks["trunk"] = write_trunk(
            ctx.run.trunk(new_depths), srepo, profile, bert_cfg.vocab_size, version=tv, **opts
        )
        change.dirs.append((srepo / "trunk" / str(tv), repo / "trunk" / str(tv)))
        change.files.append(
            (repo / "trunk" / "config.pbtxt", _text(_versioned(read_config(srepo / "trunk"), tv)))
        )
        change.loads.append(("trunk", tv))
        change.retire.append(f"trunk/{old_tv}")
        change.new_trunk = {**reg["trunk"], "version": tv, "depths": new_depths, "layers": max(new_depths)}
        log(f"  trunk v{tv}: adds an output at depth {depth} (outputs {new_depths}), same weights")
    # the head, and the baseline's full model (write_full always writes folder 1: renamed when placed)
    change.checks[name] = write_head(name, spec, branch, srepo, profile, version=version, **opts)
    change.loads.append((name, version))
    staged = [(name, srepo / name / str(version))]
    if baseline:
        full = load_full(bert_cfg, task_dir / "full.safetensors")
        change.checks[f"full_{name}"] = write_full(
            name, spec, full, srepo, profile, bert_cfg.vocab_size, **opts
        )
        staged.append((f"full_{name}", srepo / f"full_{name}" / "1"))
    for model, vdir in staged:
        cfg_bytes = _text(_versioned(read_config(srepo / model), version))
        if (repo / model).exists():
            change.dirs.append((vdir, repo / model / str(version)))
            change.files.append((repo / model / "config.pbtxt", cfg_bytes))
            if change.before:
                change.retire.append(f"{model}/{change.before['head_version']}")
        else:  # a new model folder, complete (config + version) before it appears in the repository
            os.rename(vdir, srepo / model / f".v{version}")
            os.rename(srepo / model / f".v{version}", srepo / model / str(version))
            (srepo / model / "config.pbtxt").write_bytes(cfg_bytes)
            change.dirs.append((srepo / model, repo / model))
    log(
        f"  exported head {name} v{version}"
        + (f" and baseline full_{name} v{version}" if baseline else "")
        + f" (ONNX vs PyTorch max abs diff {max(c['max_abs_diff'] for c in change.checks.values()):.1e})"
    )

    change.after = {
        **spec.to_dict(),
        "kind": "regression" if spec.is_regression else "classification",
        "branch_depth": depth,
        "task_layers": branch.config.num_layers,
        "head_version": version,
        "baseline": f"single_{name}" if baseline else None,
        "dev_score": chosen["score"],
        "full_score": result["full"],
        "retention": (chosen["score"] / result["full"]) if result["full"] > 0 else None,
        "meets_target": chosen["meets_target"],
        "train_examples": len(data.train),
        "dev_examples": len(data.dev),
        "trained_at": registry.now(),
    }
    return task_dir


def _baseline_steps(change: Change, repo: Path, live: Live | None, new_task: bool) -> None:
    """single_<task>: a new ensemble folder (new task) or its config rewritten when the task's outputs changed;
    the baseline is (re)loaded when the server serves baselines (new task) or this one (existing task)."""
    name, after = change.task, change.after
    if not after or not after.get("baseline"):
        return
    single = f"single_{name}"
    data = single_bytes(name, after)
    if (repo / single).exists():
        change.files.append((repo / single / "config.pbtxt", data))  # written only if it differs
    else:
        d = change.staging / "repo" / single
        (d / "1").mkdir(parents=True, exist_ok=True)
        (d / "1" / ".keep").touch()  # see export.write_ensemble
        (d / "config.pbtxt").write_bytes(data)
        change.dirs.append((d, repo / single))
    if _baselines_served(live) if new_task else bool(live and f"full_{name}" in live.before):
        change.loads += [(f"full_{name}", after["head_version"]), (single, None)]


def _order_loads(change: Change) -> None:
    """trunk, then the head, then the baseline's full model and its ensemble; `multitask` comes last (_apply)."""
    rank = {"trunk": 0, change.task: 1, f"full_{change.task}": 2, f"single_{change.task}": 3}
    ordered = {}
    for m, v in sorted(change.loads, key=lambda mv: rank.get(mv[0], 9)):
        ordered.setdefault(m, v)
    change.loads = list(ordered.items())


def add_task(
    repo: str | Path,
    run_dir: str | Path,
    name: str,
    train: str | Path,
    dev: str | Path,
    *,
    is_pair: bool = False,
    regression: bool = False,
    metric: str | None = None,
    server: str | None = None,
    overrides: dict | None = None,
    cache_dir: str | None = "cache",
    log=_say,
) -> dict:
    """Train a new task on the run's frozen trunk and add it to the repository (and the server). Returns the
    new registry."""
    repo = Path(repo)
    with repository_lock(repo):
        reg = registry.load(repo)
        registry.check_new_task_name(name, reg)
        for model in (name, f"full_{name}", f"single_{name}"):
            if (repo / model).exists():
                raise UserError(
                    f"{repo / model} exists but task {name!r} is not in the registry; move it away first"
                )
        data = load_task_data(
            name,
            train,
            dev,
            is_pair=is_pair,
            regression=regression,
            metric=metric,
            max_train=(overrides or {}).get("max_train_examples"),
        )
        ctx = RunContext(run_dir, reg)
        ctx.config(overrides)  # bad --k etc. before anything runs
        version = registry.next_version(registry.versions_used(reg, name))
        baseline = any(e.get("baseline") for e in reg["tasks"].values())
        live = connect(server, reg)
        change = Change("add", name, None, None, _stage(repo))
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
            (Path(train), Path(dev)),
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
    log=_say,
) -> dict:
    """Train a new version of a deployed task (on new data, or the data it was added with) and swap it in."""
    repo = Path(repo)
    with repository_lock(repo):
        reg = registry.load(repo)
        if name not in reg["tasks"]:
            raise UserError(f"task {name!r} is not deployed in {repo} (tasks: {', '.join(reg['tasks'])})")
        before = reg["tasks"][name]
        if (train is None) != (dev is None):
            raise UserError("give both --train and --dev, or neither (the data the task was added with)")
        ctx = RunContext(run_dir, reg)
        if train is None:
            found = stored_data(ctx.root, name)
            if found is None:
                raise UserError(
                    f"task {name!r} has no stored training data in {ctx.root / 'tasks' / name / 'data'} "
                    "(it was trained by `mtserve train`): give --train FILE --dev FILE"
                )
            train, dev = found
        spec = _spec(before)
        data = load_task_data(
            name,
            train,
            dev,
            is_pair=spec.is_pair,
            regression=spec.is_regression,
            metric=spec.metric,
            keep_spec=spec,
            max_train=(overrides or {}).get("max_train_examples"),
        )
        ctx.config(overrides)
        version = registry.next_version(
            registry.versions_used(reg, name),
            registry.version_dirs(repo / name),
            registry.version_dirs(repo / f"full_{name}"),
        )
        live = connect(server, reg)
        change = Change("retrain", name, before, None, _stage(repo))
        return _train_and_swap(
            repo,
            reg,
            ctx,
            data,
            version,
            bool(before.get("baseline")),
            change,
            live,
            overrides,
            cache_dir,
            (Path(train), Path(dev)),
            log,
        )


def _train_and_swap(
    repo: Path,
    reg: dict,
    ctx: RunContext,
    data,
    version: int,
    baseline: bool,
    change: Change,
    live: Live | None,
    overrides: dict | None,
    cache_dir: str | None,
    files: tuple[Path, Path],
    log,
) -> dict:
    """add and retrain alike: train and stage the task, swap it in, record it in the run; the stage and the
    server connection are released whatever happens. Returns the new registry."""
    try:
        trained = _train_and_stage(
            repo, reg, ctx, data, version, baseline, change, overrides, cache_dir, files, log
        )
        _baseline_steps(change, repo, live, new_task=change.action == "add")
        _order_loads(change)
        new_reg = _apply(repo, reg, change, live, log)
        _sync_run(ctx.root, new_reg, change.task, change.after, trained, log)
    finally:
        _cleanup(change, live)
    return new_reg


def _removal(change: Change, repo: Path, live: Live | None) -> None:
    """The task leaves the ensemble; after the swap its models are unloaded and its folders archived."""
    name = change.task
    folders = [m for m in (name, f"single_{name}", f"full_{name}") if (repo / m).exists()]
    if live is not None:
        change.unloads = [m for m in folders if m in live.before]
    change.retire += folders


def remove_task(
    repo: str | Path, name: str, *, run_dir: str | Path | None = None, server: str | None = None, log=_say
) -> dict:
    """Stop serving a task; its model folders go to the archive (`mtserve task rollback` brings them back)."""
    repo = Path(repo)
    with repository_lock(repo):
        reg = registry.load(repo)
        if name not in reg["tasks"]:
            raise UserError(f"task {name!r} is not deployed in {repo} (tasks: {', '.join(reg['tasks'])})")
        if len(reg["tasks"]) == 1:
            raise UserError(f"{name!r} is the repository's only task; an ensemble needs at least one")
        live = connect(server, reg)
        change = Change("remove", name, reg["tasks"][name], None, _stage(repo))
        try:
            _removal(change, repo, live)
            new_reg = _apply(repo, reg, change, live, log)
            _sync_run(_run_dir_or_none(run_dir, log), new_reg, name, None, None, log)
        finally:
            _cleanup(change, live)
        return new_reg


def _restore(change: Change, repo: Path, reg: dict, live: Live | None) -> None:
    """Plan bringing `change.after` (an earlier entry of the task) back: its version folders from the archive,
    configs selecting them, the current version retired."""
    from mtserve.training.export import read_config

    name, want, current = change.task, change.after, change.before
    if want["branch_depth"] not in reg["trunk"]["depths"]:
        raise UserError(
            f"{name} v{want['head_version']} branches at depth {want['branch_depth']}, which trunk "
            f"v{reg['trunk']['version']} does not output"
        )
    v = want["head_version"]
    models = [name] + ([f"full_{name}"] if want.get("baseline") else [])
    folders = models + ([f"single_{name}"] if want.get("baseline") else [])
    spec = _spec(want)
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
                    _text(_versioned(_with_outputs(read_config(source), name, spec), v)),
                )
            )
            if (
                current is not None
                and current["head_version"] != v
                and (repo / m / str(current["head_version"])).is_dir()
            ):
                change.retire.append(f"{m}/{current['head_version']}")
        else:
            change.files.append((repo / m / "config.pbtxt", single_bytes(name, want)))
    if live is not None:
        change.loads.append((name, v))
        serve = (f"full_{name}" in live.before) if current else _baselines_served(live)
        if want.get("baseline") and serve:
            change.loads += [(f"full_{name}", v), (f"single_{name}", None)]
    _order_loads(change)


def rollback_task(
    repo: str | Path, name: str, *, run_dir: str | Path | None = None, server: str | None = None, log=_say
) -> dict:
    """Undo the task's latest change not undone yet: a retrain goes back to the previous head version, an add
    removes the task, a remove brings it back from the archive exactly as it was. Repeat to go further back."""
    repo = Path(repo)
    with repository_lock(repo):
        reg = registry.load(repo)
        target = registry.rollback_target(reg, name)
        current, want = reg["tasks"].get(name), target["before"]
        if want is None and len(reg["tasks"]) == 1:
            raise UserError(f"rolling back would remove {name!r}, the repository's only task")
        live = connect(server, reg)
        change = Change("rollback", name, current, want, _stage(repo), extra={"reverts": target["revision"]})
        try:
            if want is None:
                _removal(change, repo, live)
            else:
                _restore(change, repo, reg, live)
            new_reg = _apply(repo, reg, change, live, log)
            _sync_run(_run_dir_or_none(run_dir, log), new_reg, name, want, None, log)
        finally:
            _cleanup(change, live)
        return new_reg


def _run_dir_or_none(run_dir, log) -> Path | None:
    if run_dir is None:
        return None
    p = Path(run_dir)
    if not (p / "run.json").is_file():
        log(f"  run dir {p}: not found; only the repository was changed")
        return None
    return p


def _cleanup(change: Change, live: Live | None) -> None:
    for d in [change.staging, *change.cleanup]:
        shutil.rmtree(d, ignore_errors=True)
    if live is not None:
        live.close()


# ---------------------------------------------------------------- CLI
def _common(p: argparse.ArgumentParser, run_dir_default: str | None) -> None:
    p.add_argument("--repo", default="model_repository/multitask", help="the model repository to change")
    p.add_argument(
        "--run-dir",
        default=run_dir_default,
        help="the training run the repository was exported from"
        + ("" if run_dir_default else " (kept in step when given)"),
    )
    p.add_argument(
        "--server",
        metavar="URL",
        help="Triton gRPC address (explicit model control) serving --repo: swap the models live",
    )


def _training(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (default: the run's own settings, from its run.json)")
    g.add_argument("--k", help="comma-separated numbers of fine-tuned top layers to try")
    g.add_argument("--max-student-layers", type=int)
    g.add_argument("--retention-target", type=float)
    g.add_argument("--epochs-full", type=float)
    g.add_argument("--epochs-partial", type=float)
    g.add_argument("--epochs-distil", type=float)
    g.add_argument("--max-train-examples", type=int, help="cap the training set (its first rows)")
    g.add_argument("--cache-dir", default="cache", help="feature cache folder ('' for memory only)")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "add",
        help="train a new task on the frozen trunk and deploy it",
        description="Train a new task (full fine-tuning, partial fine-tuning, distillation, choice) "
        "on the run's frozen trunk; add its head and a new multitask version.",
    )
    p.add_argument("name", help="task name, [a-z][a-z0-9_]*")
    p.add_argument(
        "--train", required=True, metavar="FILE", help="TSV with a header: text, [text_pair], label"
    )
    p.add_argument("--dev", required=True, metavar="FILE", help="TSV, same columns")
    p.add_argument("--pair", action="store_true", help="sentence-pair task (needs a text_pair column)")
    p.add_argument("--regression", action="store_true", help="labels are numbers; one float output")
    p.add_argument("--metric", help="accuracy (default), f1, mcc; pearson (default for regression), spearman")
    _common(p, "runs/latest")
    _training(p)

    p = sub.add_parser(
        "retrain",
        help="train a new version of one task",
        description="Train a new version of one task (on new data or the data it was added with) "
        "and deploy it; the previous version stays for rollback.",
    )
    p.add_argument("name")
    p.add_argument(
        "--train", metavar="FILE", help="new training TSV (default: the one the task was added with)"
    )
    p.add_argument("--dev", metavar="FILE", help="new dev TSV")
    _common(p, "runs/latest")
    _training(p)

    p = sub.add_parser(
        "remove",
        help="stop serving one task (archived for rollback)",
        description="Remove a task from multitask; its model folders move to the archive beside "
        "the repository (<repo>.archive/), from where `rollback` brings them back.",
    )
    p.add_argument("name")
    _common(p, None)

    p = sub.add_parser(
        "rollback",
        help="undo the task's latest change (repeat to go further back)",
        description="Undo the task's latest change not undone yet: a retrain goes back to the "
        "previous head version, an add removes the task, a remove restores it.",
    )
    p.add_argument("name")
    _common(p, None)

    p = sub.add_parser(
        "list",
        help="what the repository deploys (registry.json)",
        description="The deployed tasks, their branch depths, head versions, labels and metrics.",
    )
    p.add_argument("--repo", default="model_repository/multitask")
    p.add_argument("--history", action="store_true", help="also print every change")
    p.add_argument("--task", help="with --history: only this task's changes")
    p.add_argument("--json", action="store_true", help="print registry.json")


def _overrides(args) -> dict:
    k_values = None
    if args.k:
        try:
            k_values = sorted({int(k) for k in args.k.split(",") if k.strip()})
        except ValueError:
            raise UserError(f"--k must be comma-separated integers, got {args.k!r}") from None
    return {
        "k_values": k_values,
        "max_student_layers": args.max_student_layers,
        "retention_target": args.retention_target,
        "epochs_full": args.epochs_full,
        "epochs_partial": args.epochs_partial,
        "epochs_distil": args.epochs_distil,
        "max_train_examples": args.max_train_examples,
    }


def _summary(reg: dict, name: str) -> str:
    e = reg["tasks"].get(name)
    where = (
        f"revision {reg['revision']}, multitask v{reg['multitask_version']}, trunk v{reg['trunk']['version']}"
    )
    if e is None:
        return f"{name}: not served ({where})"
    score = f"{e['metric']} {e['dev_score']:.4f}" if isinstance(e.get("dev_score"), (int, float)) else ""
    return f"{name}: head v{e['head_version']} at depth {e['branch_depth']}, {score} ({where})"


def run(args) -> int:
    if args.action == "list":
        reg = registry.load(args.repo)
        if args.json:
            print(json.dumps(reg, indent=2))
            return 0
        print(registry.format_table(reg))
        if args.history:
            print()
            print(registry.format_history(reg, args.task))
        return 0
    if args.action == "add":
        reg = add_task(
            args.repo,
            args.run_dir,
            args.name,
            args.train,
            args.dev,
            is_pair=args.pair,
            regression=args.regression,
            metric=args.metric,
            server=args.server,
            overrides=_overrides(args),
            cache_dir=args.cache_dir or None,
        )
    elif args.action == "retrain":
        reg = retrain_task(
            args.repo,
            args.run_dir,
            args.name,
            args.train,
            args.dev,
            server=args.server,
            overrides=_overrides(args),
            cache_dir=args.cache_dir or None,
        )
    elif args.action == "remove":
        reg = remove_task(args.repo, args.name, run_dir=args.run_dir, server=args.server)
    elif args.action == "rollback":
        reg = rollback_task(args.repo, args.name, run_dir=args.run_dir, server=args.server)
    else:  # argparse refuses anything else
        raise UserError(f"unknown action {args.action!r}")
    print(
        f"{args.action} {args.name}: "
        + _summary(reg, args.name)
        + (" - live on " + args.server if args.server else "")
    )
    return 0


if __name__ == "__main__":
    from mtserve.cli import main

    sys.exit(main(["task", *sys.argv[1:]]))
