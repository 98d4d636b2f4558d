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
column it is about. `core/glue.yaml` describes GLUE's own files in this schema (`--glue-dir`).
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
from mtserve.core.tasks import METRICS, Split, TaskData, TaskSpec, parse_target, with_validation

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
    path: str | Path, root: str | Path | None = None, only: list[str] | None = None, check_files: bool = True
) -> list[TaskEntrySpec]:
    """The task file's entries (or `only` those), every field checked, and (check_files) every data file present;
    the data is not read yet (`load_task_file` does)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"task file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), list) or not doc["tasks"]:
        raise UserError(f"{path}: expected a mapping with a non-empty list `tasks:`")
    base = Path(root) if root is not None else path.parent / str(doc.get("root") or ".")
    entries: list[tuple[int, str, dict]] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(doc["tasks"]):
        where = f"{path}: tasks[{i}]"
        if not isinstance(t, dict):
            raise UserError(f"{where}: expected a mapping, got {t!r}")
        unknown = sorted(set(t) - FIELDS)
        if unknown:
            raise UserError(
                f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(FIELDS))})"
            )
        name = names.check_task_name(t.get("name"), f"{where}.name")
        where = f"{path}: tasks[{i}] ({name})"
        if name in seen:
            raise UserError(f"{where}: task name {name!r} appears twice (tasks[{seen[name]}] and tasks[{i}])")
        seen[name] = i
        entries.append((i, where, t))
    if only is not None:
        missing = [n for n in only if n not in seen]
        if missing:
            raise UserError(f"{path}: no task(s) {', '.join(missing)} (it has {', '.join(seen)})")
        entries = [(i, w, t) for i, w, t in entries if t["name"] in only]
    return [_entry(t, t["name"], base, where, check_files) for _, where, t in entries]


def _entry(t: dict, name: str, base: Path, where: str, check_files: bool) -> TaskEntrySpec:
    split_dev = t.get("split_dev")
    if split_dev is not None and not (isinstance(split_dev, float) and 0 < split_dev < 1):
        raise UserError(f"{where}.split_dev: expected a fraction between 0 and 1, got {split_dev!r}")

    def file(key: str, required: bool) -> Path | None:
        v = t.get(key)
        if v is None:
            if required:
                raise UserError(f"{where}.{key}: missing (a data file)")
            return None
        p = Path(str(v)) if Path(str(v)).is_absolute() else base / str(v)
        if check_files and not p.is_file():
            if key == "train" and split_dev is not None:  # no train file: train on a share of dev
                return None
            raise UserError(f"{where}.{key}: file not found: {p}")
        return p

    train = file("train", required=split_dev is None)
    dev = file("dev", required=True)
    fmt = t.get("format")
    if fmt is not None and fmt not in FORMATS.values():
        raise UserError(f"{where}.format: {fmt!r} is not one of csv, tsv, jsonl")
    header = t.get("header", True)
    if not isinstance(header, bool):
        raise UserError(f"{where}.header: expected true or false, got {header!r}")
    quoting = t.get("quoting", "minimal")
    if quoting not in ("minimal", "none"):
        raise UserError(f"{where}.quoting: expected 'minimal' or 'none', got {quoting!r}")
    kind = t.get("kind", "classification")
    if kind not in KINDS:
        raise UserError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    metric = t.get("metric", "pearson" if kind == "regression" else "accuracy")
    if metric not in METRICS:
        raise UserError(f"{where}.metric: {metric!r} is not one of {', '.join(METRICS)}")
    labels = t.get("labels")
    if labels is not None:
        if kind == "regression":
            raise UserError(f"{where}.labels: a regression task has no label list")
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise UserError(f"{where}.labels: expected a list of label names, got {labels!r}")
        if len(set(labels)) != len(labels):
            raise UserError(f"{where}.labels: duplicate labels in {labels}")
    label_map = t.get("label_map") or {}
    if not isinstance(label_map, dict):
        raise UserError(f"{where}.label_map: expected a mapping raw value -> label name, got {label_map!r}")
    label_map = {str(k): str(v) for k, v in label_map.items()}
    if labels is not None and set(label_map.values()) - set(labels):
        raise UserError(
            f"{where}.label_map: maps to {sorted(set(label_map.values()) - set(labels))}, not in labels {labels}"
        )
    max_rows = t.get("max_rows")
    if max_rows is not None and not (
        isinstance(max_rows, int) and not isinstance(max_rows, bool) and max_rows > 0
    ):
        raise UserError(f"{where}.max_rows: expected a positive integer, got {max_rows!r}")
    entry = TaskEntrySpec(
        name=name,
        train=train,
        dev=dev,
        validation=file("validation", required=False),
        format=fmt,
        header=header,
        quoting=quoting,
        text=_column(t.get("text"), where, "text", header),
        text_pair=_column(t.get("text_pair"), where, "text_pair", header, optional=True),
        label=_column(t.get("label"), where, "label", header),
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
        raise UserError(f"{where}: {e}") from None
    return entry


# ---------------------------------------------------------------- the data files
def _format_of(entry: TaskEntrySpec, path: Path) -> str:
    if entry.format:
        return entry.format
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{entry.where}: cannot tell the format of {path} from its extension: set `format:`")
    return fmt


def read_rows(entry: TaskEntrySpec, path: Path) -> Rows:
    """The (text, pair, raw label) of every row of one data file, naming the file, row and column of a problem."""
    fmt = _format_of(entry, path)
    cols = {"text": entry.text, "text_pair": entry.text_pair, "label": entry.label}
    wanted = {k: v for k, v in cols.items() if v is not None}
    out = Rows(path)
    if fmt == "jsonl":
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}:{n}: not valid JSON: {e}") from None
                if not isinstance(obj, dict):
                    raise UserError(f"{path}:{n}: expected a JSON object per line")
                for key, col in wanted.items():
                    if col not in obj:
                        raise UserError(f"{path}:{n}: no key {col!r} ({entry.where}.{key})")
                values = {key: obj[col] for key, col in wanted.items()}
                out.items.append(_row(entry, path, n, values))
        return out
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
        index = {}
        for key, col in wanted.items():
            if col not in header:
                raise UserError(f"{path}: no column {col!r} ({entry.where}.{key}); the header has {header}")
            index[key] = header.index(col)
        rows, start = rows[1:], 2
    else:
        index = dict(wanted)
    width = max(abs(i) + (0 if i >= 0 else -1) for i in index.values()) + 1
    for n, row in enumerate(rows, start=start):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) < width:
            raise UserError(f"{path}:{n}: {len(row)} column(s), expected at least {width}")
        out.items.append(_row(entry, path, n, {key: row[i] for key, i in index.items()}))
    return out


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


def _to_split(entry: TaskEntrySpec, spec: TaskSpec, rows: Rows, what: str) -> Split:
    if not rows.items:
        raise UserError(f"{rows.path}: no rows ({entry.where}, {what})")
    labels: list[int | float] = []
    for n, _, _, raw in rows.items:
        where = f"{rows.path}:{n}: column {entry.label!r}"
        if spec.is_regression:
            value = parse_target(raw, where, entry.name)
            labels.append(value)
            continue
        name = entry.label_map.get(raw, raw)
        if name not in spec.labels:
            raise UserError(f"{where}: label {raw!r} is not in the task's labels {list(spec.labels)}")
        labels.append(spec.labels.index(name))
    pairs = [p for _, _, p, _ in rows.items] if spec.is_pair else None
    return Split([t for _, t, _, _ in rows.items], pairs, labels)


def load_entry(entry: TaskEntrySpec, seed: int = 0, max_train: int | None = None) -> TaskData:
    """One task's data: train, dev and the validation split the branch choice uses."""
    notes: list[str] = []
    train_rows = read_rows(entry, entry.train) if entry.train is not None else None
    dev_rows = read_rows(entry, entry.dev)
    raw_train = [r[3] for r in (train_rows or dev_rows).items]
    spec = entry.spec([entry.label_map.get(r, r) for r in raw_train])
    dev = _to_split(entry, spec, dev_rows, "dev")
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
        train = _to_split(entry, spec, train_rows, "train")
    validation = None
    if entry.validation is not None:
        validation = _to_split(entry, spec, read_rows(entry, entry.validation), "validation")
    # held out before the cap: a capped task's validation rows come from what its training leaves out anyway
    data = with_validation(TaskData(spec, train, dev, notes, validation=validation), seed)
    cap = min(c for c in (entry.max_rows, max_train, len(data.train)) if c is not None)
    if cap < len(data.train):
        # a seeded shuffle before capping, so a cap is a random sample rather than the file's first rows
        data.notes.append(f"training set capped at {cap} of {len(data.train)} rows")
        data.train = data.train.take(np.random.default_rng(seed).permutation(len(data.train))[:cap])
    return data


def load_task_file(
    path: str | Path,
    *,
    root: str | Path | None = None,
    only: list[str] | None = None,
    seed: int = 0,
    max_train: int | None = None,
) -> dict[str, TaskData]:
    """Every task of the file (or `only` those), every data file read and checked before any is returned."""
    entries = parse_task_file(path, root, only)
    return {e.name: load_entry(e, seed, max_train) for e in entries}


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
