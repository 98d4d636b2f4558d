# Over 500 lines: the task-file schema's one owner - its fields, every data format, and every problem of both.
"""Task files: a team's own tasks, described once (`mtserve train --tasks-file tasks.yaml`).

    root: data                      # optional: relative paths are read from here (default: the file's folder)
    tasks:
      - name: intent                # [a-z][a-z0-9_]*
        train: intent/train.csv     # csv | tsv | jsonl, from the extension unless `format` says
        dev: intent/dev.csv         # scored for the reports; the branch choice never sees it
        validation: intent/val.csv  # optional: the branch choice's data (default: a seeded 10% of train)
        text: utterance             # column names (a header's names, a JSONL key, or a 0-based index
        label: intent               #   when `header: false`)
        text_pair: null             # a second text column: a sentence-pair task
        kind: classification        # or regression
        labels: [alarm, lights]     # optional: the output order (default: the sorted labels found in train)
        label_map: {"0": alarm}     # optional: a raw value in the file -> its label name
        metric: accuracy            # accuracy | f1 | macro_f1 | mcc | pearson | spearman
        max_rows: 20000             # optional: cap the training set (a seeded random sample)

The whole file is checked before anything trains, and every problem is reported with the file, the row and the
column it is about: all of them in one run (every field, every data file; the first few bad rows of each file,
the rest counted), with "did you mean" for a misspelt key, column, label or file name. `core/glue.yaml` describes GLUE's own files in this schema (`--glue-dir`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from mtserve.core import names
from mtserve.core.errors import UserError
from mtserve.core.problems import Problems, did_you_mean
from mtserve.core.tasks import (
    METRICS,
    Split,
    TaskData,
    TaskSpec,
    cap_training,
    parse_target,
    with_validation,
)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
KINDS = ("classification", "regression")
GLUE_FILE = Path(__file__).with_name("glue.yaml")
FIELDS = {
    "name", "train", "dev", "validation", "format", "header", "quoting", "text", "text_pair", "label", "kind",
    "labels", "label_map", "metric", "max_rows", "split_dev",
}  # fmt: skip


@dataclass
class TaskEntrySpec:
    """One task of a task file, checked field by field (not yet its data)."""

    name: str
    train: Path | None
    dev: Path
    validation: Path | None
    format: str | None
    header: bool
    quoting: str  # "minimal" (csv's own quoting) or "none" (GLUE: quote characters are plain text)
    text: str | int
    text_pair: str | int | None
    label: str | int
    kind: str
    labels: list[str] | None
    label_map: dict[str, str]
    metric: str
    max_rows: int | None
    split_dev: float | None  # no train file: train on this share of dev (seeded), score on the rest
    where: str = ""  # "<file>: tasks[i] (name)", for messages

    def spec(self, train_labels: list[str] | None = None) -> TaskSpec:
        if self.kind == "regression":
            return TaskSpec(self.name, None, self.metric, self.text_pair is not None)
        labels = self.labels or sorted(set(train_labels or ()))
        if len(labels) < 2:
            raise UserError(f"{self.where}: a classification task needs at least 2 labels, found {labels}")
        return TaskSpec(self.name, tuple(labels), self.metric, self.text_pair is not None)


@dataclass
class Rows:
    """A data file's rows as (line number, text, pair, raw label)."""

    path: Path
    items: list[tuple[int, str, str | None, str]] = field(default_factory=list)


# ---------------------------------------------------------------- the file
TOP_LEVEL = {"root", "tasks"}


def _column(v, where: str, key: str, header: bool, optional: bool = False):
    if v is None and optional:
        return None
    if header and isinstance(v, str) and v:
        return v
    if not header and isinstance(v, int) and not isinstance(v, bool):
        return v
    want = "a 0-based column index (header: false)" if not header else "a column name"
    raise UserError(f"{where}.{key}: expected {want}, got {v!r}")


def parse_task_file(
    path: str | Path,
    root: str | Path | None = None,
    only: list[str] | None = None,
    check_files: bool = True,
    problems: Problems | None = None,
) -> list[TaskEntrySpec]:
    """The task file's entries (or `only` those), every field checked, and (check_files) every data file present;
    the data is not read yet (`load_task_file` does). Every problem of every entry is collected: into `problems`
    (the caller raises), or raised here together."""
    own = problems is None
    problems = Problems() if own else problems
    path = Path(path)
    if not path.is_file():
        raise UserError(f"task file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {e}") from None
    if isinstance(doc, dict):
        for key in sorted(set(doc) - TOP_LEVEL, key=str):
            problems.add(f"{path}: unknown key {key!r}{did_you_mean(key, TOP_LEVEL)} (known: root, tasks)")
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), list) or not doc["tasks"]:
        problems.add(f"{path}: expected a mapping with a non-empty list `tasks:`")
        problems.raise_if_any(str(path))
    base = Path(root) if root is not None else path.parent / str(doc.get("root") or ".")
    entries: list[tuple[int, str, dict]] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(doc["tasks"]):
        where = f"{path}: tasks[{i}]"
        if not isinstance(t, dict):
            problems.add(f"{where}: expected a mapping, got {t!r}")
            continue
        try:
            name = names.check_task_name(t.get("name"), f"{where}.name")
            where = f"{path}: tasks[{i}] ({name})"
        except UserError as e:
            problems.capture(e)
            name = None
        unknown = sorted(set(t) - FIELDS, key=str)
        if unknown:
            problems.add(
                f"{where}: unknown field(s) {', '.join(f'{k}{did_you_mean(k, FIELDS)}' for k in unknown)} "
                f"(known: {', '.join(sorted(FIELDS))})"
            )
        if name is None:
            continue
        if name in seen:
            problems.add(f"{where}: task name {name!r} appears twice (tasks[{seen[name]}] and tasks[{i}])")
            continue
        seen[name] = i
        entries.append((i, where, t))
    if only is not None:
        for n in only:
            if n not in seen:
                problems.add(f"{path}: no task {n!r}{did_you_mean(n, seen)} (it has {', '.join(seen)})")
        entries = [(i, w, t) for i, w, t in entries if t["name"] in only]
    parsed = [_entry(t, t["name"], base, where, check_files, problems) for _, where, t in entries]
    if own:
        problems.raise_if_any(str(path))
    return [e for e in parsed if e is not None]


def _entry(
    t: dict, name: str, base: Path, where: str, check_files: bool, problems: Problems
) -> TaskEntrySpec | None:
    """One task's fields, each checked (every problem to `problems`); None when any has one."""
    found = len(problems)

    def check(key: str, ok: bool, message: str) -> bool:
        if not ok:
            problems.add(f"{where}.{key}: {message}")
        return ok

    split_dev = t.get("split_dev")
    if not check(
        "split_dev",
        split_dev is None or (isinstance(split_dev, float) and 0 < split_dev < 1),
        f"expected a fraction between 0 and 1, got {split_dev!r}",
    ):
        split_dev = None

    def file(key: str, required: bool) -> Path | None:
        v = t.get(key)
        if v is None:
            check(key, not required, "missing (a data file)")
            return None
        p = Path(str(v)) if Path(str(v)).is_absolute() else base / str(v)
        if check_files and not p.is_file():
            if key == "train" and split_dev is not None:  # no train file: train on a share of dev
                return None
            near = did_you_mean(p.name, [f.name for f in p.parent.iterdir()]) if p.parent.is_dir() else ""
            check(key, False, f"file not found: {p}{near}")
        return p

    train = file("train", required=split_dev is None)
    dev = file("dev", required=True)
    validation = file("validation", required=False)
    fmt = t.get("format")
    check("format", fmt is None or fmt in FORMATS.values(), f"{fmt!r} is not one of csv, tsv, jsonl")
    header = t.get("header", True)
    if not check("header", isinstance(header, bool), f"expected true or false, got {header!r}"):
        header = True
    quoting = t.get("quoting", "minimal")
    check("quoting", quoting in ("minimal", "none"), f"expected 'minimal' or 'none', got {quoting!r}")
    kind = t.get("kind", "classification")
    check("kind", kind in KINDS, f"{kind!r} is not one of {', '.join(KINDS)}{did_you_mean(kind, KINDS)}")
    metric = t.get("metric", "pearson" if kind == "regression" else "accuracy")
    check(
        "metric",
        metric in METRICS,
        f"{metric!r} is not one of {', '.join(METRICS)}{did_you_mean(metric, METRICS)}",
    )
    labels = t.get("labels")
    if labels is not None and (
        check("labels", kind != "regression", "a regression task has no label list")
        and check(
            "labels",
            isinstance(labels, list) and all(isinstance(x, str) and x for x in labels),
            f"expected a list of label names, got {labels!r}",
        )
    ):
        check("labels", len(set(labels)) == len(labels), f"duplicate labels in {labels}")
    label_map = t.get("label_map") or {}
    if check(
        "label_map",
        isinstance(label_map, dict),
        f"expected a mapping raw value -> label name, got {label_map!r}",
    ):
        label_map = {str(k): str(v) for k, v in label_map.items()}
        if isinstance(labels, list):
            check(
                "label_map",
                not set(label_map.values()) - set(labels),
                f"maps to {sorted(set(label_map.values()) - set(labels))}, not in labels {labels}",
            )
    max_rows = t.get("max_rows")
    check(
        "max_rows",
        max_rows is None or (isinstance(max_rows, int) and not isinstance(max_rows, bool) and max_rows > 0),
        f"expected a positive integer, got {max_rows!r}",
    )
    columns = {}
    for key, optional in (("text", False), ("text_pair", True), ("label", False)):
        try:
            columns[key] = _column(t.get(key), where, key, header, optional)
        except UserError as e:
            problems.capture(e)
    if len(problems) > found:
        return None
    entry = TaskEntrySpec(
        name=name,
        train=train,
        dev=dev,
        validation=validation,
        format=fmt,
        header=header,
        quoting=quoting,
        text=columns["text"],
        text_pair=columns["text_pair"],
        label=columns["label"],
        kind=kind,
        labels=labels,
        label_map=label_map,
        metric=metric,
        max_rows=max_rows,
        split_dev=split_dev,
        where=where,
    )
    try:  # the metric against the kind and label count, as TaskSpec checks it
        if kind == "regression" or labels is not None:
            entry.spec()
    except UserError as e:
        problems.add(f"{where}: {e}")
        return None
    return entry


# ---------------------------------------------------------------- the data files
def _format_of(entry: TaskEntrySpec, path: Path) -> str:
    if entry.format:
        return entry.format
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{entry.where}: cannot tell the format of {path} from its extension: set `format:`")
    return fmt


def read_rows(entry: TaskEntrySpec, path: Path, problems: Problems | None = None) -> Rows:
    """The (text, pair, raw label) of every row of one data file. Each problem names the file, row and column: a
    problem of the whole file (no such column) ends the reading, a bad row is left out and reading goes on.
    Problems go to `problems` (the caller raises), or are raised here together."""
    own = problems is None
    problems = Problems() if own else problems
    out = Rows(path)
    try:
        _read(entry, path, out, problems)
    except UserError as e:
        problems.capture(e)
    if own:
        problems.raise_if_any(str(path))
    return out


def _read(entry: TaskEntrySpec, path: Path, out: Rows, problems: Problems) -> None:
    fmt = _format_of(entry, path)
    cols = {"text": entry.text, "text_pair": entry.text_pair, "label": entry.label}
    wanted = {k: v for k, v in cols.items() if v is not None}

    def row(n: int, values: dict) -> None:
        try:
            out.items.append(_row(entry, path, n, values))
        except UserError as e:
            problems.row(path, str(e))

    if fmt == "jsonl":
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    problems.row(path, f"{path}:{n}: not valid JSON: {e}")
                    continue
                if not isinstance(obj, dict):
                    problems.row(path, f"{path}:{n}: expected a JSON object per line")
                    continue
                missing = [(key, col) for key, col in wanted.items() if col not in obj]
                for key, col in missing:
                    problems.row(
                        path, f"{path}:{n}: no key {col!r}{did_you_mean(col, obj)} ({entry.where}.{key})"
                    )
                if not missing:
                    row(n, {key: obj[col] for key, col in wanted.items()})
        return
    # utf-8-sig: a byte-order mark (MRPC's files start with one) is not part of the first column's name
    with open(path, encoding="utf-8-sig", newline="") as f:
        quoting = csv.QUOTE_NONE if entry.quoting == "none" else csv.QUOTE_MINIMAL
        reader = csv.reader(f, delimiter="\t" if fmt == "tsv" else ",", quoting=quoting)
        rows = list(reader)
    start = 1
    if entry.header:
        if not rows:
            raise UserError(f"{path}: empty file (expected a header)")
        header = [h.strip() for h in rows[0]]
        index, missing = {}, []
        for key, col in wanted.items():
            if col in header:
                index[key] = header.index(col)
            else:
                missing.append(
                    f"{path}: no column {col!r}{did_you_mean(col, header)} ({entry.where}.{key}); "
                    f"the header has {header}"
                )
        if missing:  # every missing column of the file, then nothing more of it
            for m in missing[:-1]:
                problems.add(m)
            raise UserError(missing[-1])
        rows, start = rows[1:], 2
    else:
        index = dict(wanted)
    width = max(abs(i) + (0 if i >= 0 else -1) for i in index.values()) + 1
    for n, r in enumerate(rows, start=start):
        if not r or (len(r) == 1 and not r[0].strip()):
            continue
        if len(r) < width:
            problems.row(path, f"{path}:{n}: {len(r)} column(s), expected at least {width}")
            continue
        row(n, {key: r[i] for key, i in index.items()})


def _row(entry: TaskEntrySpec, path: Path, n: int, values: dict) -> tuple[int, str, str | None, str]:
    for key in ("text", "text_pair"):
        if key in values and (not isinstance(values[key], str) or not values[key].strip()):
            col = getattr(entry, key)
            what = "a pair task needs both texts" if key == "text_pair" else "every row needs a text"
            raise UserError(f"{path}:{n}: column {col!r} is empty or not text ({what})")
    label = values["label"]
    if label is None or (isinstance(label, str) and not label.strip()):
        raise UserError(f"{path}:{n}: column {entry.label!r}: empty label")
    return n, values["text"], values.get("text_pair"), str(label).strip()


def _to_split(
    entry: TaskEntrySpec, spec: TaskSpec, rows: Rows, what: str, problems: Problems
) -> Split | None:
    """The rows as a Split; None (each bad label to `problems`) when any label is not the task's."""
    if not rows.items:
        if not problems.rows[rows.path]:  # rows that were all bad are listed already
            problems.add(f"{rows.path}: no rows ({entry.where}, {what})")
        return None
    labels: list[int | float] = []
    bad = 0
    for n, _, _, raw in rows.items:
        where = f"{rows.path}:{n}: column {entry.label!r}"
        if spec.is_regression:
            try:
                labels.append(parse_target(raw, where, entry.name))
            except UserError as e:
                problems.row(rows.path, str(e))
                bad += 1
            continue
        name = entry.label_map.get(raw, raw)
        if name not in spec.labels:
            near = did_you_mean(name, spec.labels)
            problems.row(
                rows.path, f"{where}: label {raw!r} is not in the task's labels {list(spec.labels)}{near}"
            )
            bad += 1
            continue
        labels.append(spec.labels.index(name))
    if bad:
        return None
    pairs = [p for _, _, p, _ in rows.items] if spec.is_pair else None
    return Split([t for _, t, _, _ in rows.items], pairs, labels)


def load_entry(
    entry: TaskEntrySpec, seed: int = 0, max_train: int | None = None, problems: Problems | None = None
) -> TaskData | None:
    """One task's data: train, dev and the validation split the branch choice uses. Every problem of its files
    goes to `problems` (then None), or is raised here, together."""
    own = problems is None
    problems = Problems() if own else problems
    found = len(problems)
    notes: list[str] = []
    train_rows = read_rows(entry, entry.train, problems) if entry.train is not None else None
    dev_rows = read_rows(entry, entry.dev, problems)
    val_rows = read_rows(entry, entry.validation, problems) if entry.validation is not None else None
    raw_train = [r[3] for r in (train_rows or dev_rows).items]
    try:
        spec = entry.spec([entry.label_map.get(r, r) for r in raw_train])
    except UserError as e:
        if raw_train or len(problems) == found:  # no rows at all: the files' own problems say why
            problems.capture(e)
        spec = None
    splits = {}
    if spec is not None:
        for what, rows in (("train", train_rows), ("dev", dev_rows), ("validation", val_rows)):
            if rows is not None:
                splits[what] = _to_split(entry, spec, rows, what, problems)
    if own:
        problems.raise_if_any(entry.where)
    if len(problems) > found or spec is None:
        return None
    dev = splits["dev"]
    if train_rows is None:  # e.g. QNLI here: its train file is not distributed
        order = np.random.default_rng(seed).permutation(len(dev))
        cut = int(len(dev) * entry.split_dev)
        train, dev = dev.take(order[:cut]), dev.take(order[cut:])
        share = round(entry.split_dev * 100)
        notes.append(
            f"no train file: the {len(order)}-row dev file was split {share}/{100 - share} (seed {seed}) "
            f"into train {len(train)} / dev {len(dev)}"
        )
    else:
        train = splits["train"]
    # held out before the cap: a capped task's validation rows come from what its training leaves out anyway
    data = with_validation(TaskData(spec, train, dev, notes, validation=splits.get("validation")), seed)
    return cap_training(
        data, min((c for c in (entry.max_rows, max_train) if c is not None), default=None), seed
    )


def load_task_file(
    path: str | Path,
    *,
    root: str | Path | None = None,
    only: list[str] | None = None,
    seed: int = 0,
    max_train: int | None = None,
) -> dict[str, TaskData]:
    """Every task of the file (or `only` those), every data file read and checked before any is returned: every
    problem of the file and of every data file (at most a few rows each) in one error."""
    problems = Problems()
    entries = parse_task_file(path, root, only, problems=problems)
    data = {e.name: load_entry(e, seed, max_train, problems) for e in entries}
    problems.raise_if_any(str(path))
    return data


# ---------------------------------------------------------------- GLUE, as a task file
GLUE = {e.name: e for e in parse_task_file(GLUE_FILE, check_files=False)}


def load_glue(name: str, glue_dir: str | Path, max_train: int | None = None, seed: int = 0) -> TaskData:
    """One GLUE task from GLUE's own files in `glue_dir` (core/glue.yaml says where and how)."""
    if name not in GLUE:
        raise UserError(f"unknown GLUE task {name!r} (known: {', '.join(GLUE)})")
    folder = (Path(glue_dir) / GLUE[name].dev.relative_to(GLUE_FILE.parent)).parent
    if not folder.is_dir():
        raise UserError(f"GLUE folder not found: {folder}")
    return load_task_file(GLUE_FILE, root=glue_dir, only=[name], seed=seed, max_train=max_train)[name]


# ---------------------------------------------------------------- a task's data, kept with its run
STORED = "task.yaml"


def store_task_data(data: TaskData, folder: Path) -> Path:
    """Write a task's data as JSONL with a one-task task file beside it, so a later `mtserve task retrain` reads
    exactly what it was trained on, whatever format the owner gave. Returns the task file."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = data.spec
    splits = {"train": data.train, "dev": data.dev} | (
        {"validation": data.validation} if data.validation else {}
    )
    for split, s in splits.items():
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for i, text in enumerate(s.texts):
                label = s.labels[i] if spec.is_regression else spec.labels[s.labels[i]]
                row = {"text": text, "label": label} | ({"text_pair": s.pairs[i]} if spec.is_pair else {})
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    entry = {
        "name": spec.name,
        **{split: f"{split}.jsonl" for split in splits},
        "text": "text",
        "label": "label",
        "kind": "regression" if spec.is_regression else "classification",
        "metric": spec.metric,
    }
    if spec.is_pair:
        entry["text_pair"] = "text_pair"
    if not spec.is_regression:
        entry["labels"] = list(spec.labels)  # the served output order stays as it is
    path = folder / STORED
    path.write_text(yaml.safe_dump({"tasks": [entry]}, sort_keys=False))
    return path
