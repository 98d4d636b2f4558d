"""Task files: a team's own tasks in CSV, TSV and JSONL with its own column names; every bad file named by row
and column before anything trains; the tasks train, export and serve on a real Triton with the same scores."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from mtserve.core.errors import UserError
from mtserve.core.task_file import load_task_file, parse_task_file

AREAS = ("weather", "music", "calendar", "shopping", "travel", "smart_home")


def _write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


def write_task_file(root: Path, n_train: int = 160, n_dev: int = 60) -> Path:
    """Four tasks from the demo corpus, each in another format and with its own column names:
    area (CSV, 6 classes), same_area (JSONL pairs), urgency (TSV regression), urgency5 (CSV, 5 classes)."""
    from mtserve.core import corpus

    data = corpus.generate(n_train=n_train, n_dev=n_dev)
    dom, urg = data["domain"], data["urgency"]
    for split in ("train", "dev"):
        d, u = getattr(dom, split), getattr(urg, split)
        _write_csv(
            root / f"area_{split}.csv",
            ["utterance", "area"],
            [[t, AREAS[y]] for t, y in zip(d.texts, d.labels, strict=True)],
        )
        with open(root / f"pairs_{split}.jsonl", "w", encoding="utf-8") as f:
            for i in range(len(d.texts)):
                j = (i * 7 + 3) % len(d.texts)
                same = "yes" if d.labels[i] == d.labels[j] else "no"
                f.write(json.dumps({"first": d.texts[i], "second": d.texts[j], "same": same}) + "\n")
        _write_csv(
            root / f"urgency_{split}.tsv",
            ["sentence", "score"],
            list(zip(u.texts, u.labels, strict=True)),
            "\t",
        )
        _write_csv(
            root / f"urgency5_{split}.csv",
            ["text", "level"],
            [[t, f"level{min(int(y * 5), 4)}"] for t, y in zip(u.texts, u.labels, strict=True)],
        )
    spec = {
        "tasks": [
            {
                "name": "area",
                "train": "area_train.csv",
                "dev": "area_dev.csv",
                "text": "utterance",
                "label": "area",
            },
            {
                "name": "same_area",
                "train": "pairs_train.jsonl",
                "dev": "pairs_dev.jsonl",
                "text": "first",
                "text_pair": "second",
                "label": "same",
                "labels": ["no", "yes"],
                "metric": "f1",
            },
            {
                "name": "urgency",
                "train": "urgency_train.tsv",
                "dev": "urgency_dev.tsv",
                "text": "sentence",
                "label": "score",
                "kind": "regression",
                "metric": "spearman",
            },
            {
                "name": "urgency5",
                "train": "urgency5_train.csv",
                "dev": "urgency5_dev.csv",
                "text": "text",
                "label": "level",
                "metric": "macro_f1",
            },
        ]
    }
    path = root / "tasks.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_task_file_reads_every_format_with_its_own_columns(tmp_path):
    data = load_task_file(write_task_file(tmp_path))
    assert list(data) == ["area", "same_area", "urgency", "urgency5"]
    area = data["area"]
    assert (
        area.spec.labels == tuple(sorted(AREAS)) and not area.spec.is_pair
    )  # default: sorted labels of train
    header, row1 = list(csv.reader(open(tmp_path / "area_dev.csv")))[:2]
    assert header == ["utterance", "area"]
    assert area.dev.texts[0] == row1[0] and area.spec.labels[area.dev.labels[0]] == row1[1]
    pairs = data["same_area"]
    assert pairs.spec.is_pair and pairs.spec.labels == ("no", "yes") and pairs.spec.metric == "f1"
    assert len(pairs.train.pairs) == len(pairs.train.texts) and set(pairs.dev.labels) <= {0, 1}
    reg = data["urgency"]
    assert reg.spec.is_regression and all(isinstance(v, float) for v in reg.train.labels)
    five = data["urgency5"]
    assert five.spec.labels == tuple(f"level{i}" for i in range(5)) and five.spec.metric == "macro_f1"


def test_row_cap_and_validation_split(tmp_path):
    path = write_task_file(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["tasks"][0]["max_rows"] = 50
    doc["tasks"][0]["validation"] = "area_dev.csv"
    path.write_text(yaml.safe_dump(doc))
    area = load_task_file(path, only=["area"])["area"]
    assert len(area.train) == 50 and any("capped at 50" in n for n in area.notes)
    assert area.validation is not None and area.validation.texts == area.dev.texts
    # without a validation file: a seeded 10% of the training rows, held out before the cap (so a capped task
    # loses none of its cap to it), never trained on
    del doc["tasks"][0]["validation"]
    path.write_text(yaml.safe_dump(doc))
    area = load_task_file(path, only=["area"], seed=1)["area"]
    del doc["tasks"][0]["max_rows"]
    path.write_text(yaml.safe_dump(doc))
    full = load_task_file(path, only=["area"], seed=1)["area"]
    assert len(area.train) == 50 and len(area.validation) == 16 and len(full.train) == 160 - 16
    assert area.validation.texts == full.validation.texts
    assert set(area.train.texts) <= set(full.train.texts)  # the cap samples what training has


def _bad(tmp_path: Path, edit) -> Path:
    """The good task file with one thing broken by `edit(doc, root)`."""
    path = write_task_file(tmp_path, n_train=40, n_dev=20)
    doc = yaml.safe_load(path.read_text())
    edit(doc, tmp_path)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _append(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)


BAD = {
    "missing file": (lambda d, r: d["tasks"][0].update(train="nope.csv"), r"tasks\[0\] \(area\)\.train: file not found: .*nope\.csv"),
    "missing column": (lambda d, r: d["tasks"][0].update(text="sentence"), r"area_train\.csv: no column 'sentence' \(.*tasks\[0\] \(area\)\.text\)"),
    "empty split": (lambda d, r: (r / "area_dev.csv").write_text("utterance,area\n"), r"area_dev\.csv: no rows \(.*\(area\), dev\)"),
    "dev label outside the list": (lambda d, r: _append(r / "area_dev.csv", "play it,karaoke\n"), r"area_dev\.csv:22: column 'area': label 'karaoke' is not in the task's labels"),
    "non-numeric regression target": (lambda d, r: _append(r / "urgency_dev.tsv", "soon please\tvery\n"), r"urgency_dev\.tsv:22: column 'score': 'very' is not a number \(urgency is a regression task\)"),
    "duplicate task names": (lambda d, r: d["tasks"][3].update(name="area"), r"tasks\[3\] \(area\): task name 'area' appears twice \(tasks\[0\] and tasks\[3\]\)"),
    "bad task name": (lambda d, r: d["tasks"][1].update(name="Same-Area"), r"tasks\[1\]\.name: task name 'Same-Area' must match"),
    "empty pair column": (lambda d, r: _append(r / "pairs_dev.jsonl", json.dumps({"first": "a", "second": " ", "same": "no"}) + "\n"), r"pairs_dev\.jsonl:21: column 'second' is empty"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_every_bad_file_is_named_by_row_and_column_and_nothing_is_written(case, tmp_path, capsys):
    from mtserve.cli import main

    edit, message = BAD[case]
    path = _bad(tmp_path, edit)
    with pytest.raises(UserError, match=message):
        load_task_file(path)
    run_dir = tmp_path / "runs" / "x"
    rc = main(
        ["train", "--tasks-file", str(path), "--run-dir", str(run_dir), "--reports", str(tmp_path / "rep")]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("mtserve train: error:") == 1  # one message, listing every problem
    # one problem each, but a missing column: a problem of train and dev alike (a count, then both)
    assert len(err.strip().splitlines()) == (3 if case == "missing column" else 1)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "rep").exists()  # nothing written


def test_every_problem_of_every_file_in_one_run(tmp_path, capsys):
    """Three broken data files, a misspelt key and a misspelt column: one run reports them all, each with its
    file, row and column, a "did you mean" where a name is close, and at most a few rows of a file broken
    throughout; nothing is written."""
    from mtserve.cli import main

    def edit(doc, root):
        doc["tasks"][1]["text_pair"] = "secnd"  # pairs_*.jsonl have "second"
        doc["tasks"][3]["lable"] = doc["tasks"][3].pop("label")
        _append(root / "area_dev.csv", "play it,karaoke\n")  # 1: a label the task does not have
        _append(root / "area_train.csv", ",music\n")  # 2: a row without text
        rows = (root / "urgency_train.tsv").read_text().splitlines()
        (root / "urgency_train.tsv").write_text(  # 3: every target a word, not a number
            "\n".join([rows[0]] + [r.split("\t")[0] + "\tvery" for r in rows[1:]]) + "\n"
        )

    path = _bad(tmp_path, edit)
    with pytest.raises(UserError) as e:
        load_task_file(path)
    text = str(e.value)
    expected = [
        r"tasks\[3\] \(urgency5\): unknown field\(s\) lable \(did you mean 'label'\?\)",
        r"tasks\[3\] \(urgency5\)\.label: expected a column name, got None",
        r"area_train\.csv:42: column 'utterance' is empty or not text",
        r"area_dev\.csv:22: column 'area': label 'karaoke' is not in the task's labels",
        r"pairs_train\.jsonl:1: no key 'secnd' \(did you mean 'second'\?\)",
        r"urgency_train\.tsv:2: column 'score': 'very' is not a number",
        r"urgency_train\.tsv:4: column 'score': 'very' is not a number",
        r"urgency_train\.tsv: 37 more row\(s\) with problems \(the first 3 are listed\)",
    ]
    for pattern in expected:
        assert re.search(pattern, text), (pattern, text)
    assert "urgency_train.tsv:5:" not in text  # at most 3 rows of a file
    assert len(re.findall(r"pairs_train\.jsonl:\d+", text)) == 3 and "pairs_dev.jsonl:1:" in text
    rc = main(["train", "--tasks-file", str(path), "--run-dir", str(tmp_path / "runs" / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("mtserve train: error:") == 1
    assert re.match(r"mtserve train: error: .*tasks\.yaml: \d+ problems\n  - ", err)
    for name in ("area_train.csv", "area_dev.csv", "pairs_train.jsonl", "urgency_train.tsv", "lable"):
        assert name in err
    assert not (tmp_path / "runs").exists()


def test_schema_errors_name_the_field(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("tasks:\n  - {name: a, train: x.csv, dev: x.csv, text: t, label: l, colour: red}\n")
    with pytest.raises(UserError, match=r"tasks\[0\] \(a\): unknown field\(s\) colour"):
        parse_task_file(path)
    path.write_text("tasks: []\n")
    with pytest.raises(UserError, match="non-empty list"):
        parse_task_file(path)


@pytest.mark.triton
@pytest.mark.slow
def test_task_file_tasks_train_export_and_serve_their_dev_scores(tiny_backbone, tmp_path):
    """The four tasks train on the tiny BERT, export, and Triton reproduces every dev score over gRPC."""
    from mtserve.export.export import export_run
    from mtserve.serving.triton import TritonServer
    from mtserve.training import accuracy_report as report
    from mtserve.training.config import SearchConfig, TrainConfig
    from mtserve.training.evaluate import compare, served_scores
    from mtserve.training.pipeline import train
    from mtserve.training.run_dir import Run

    data = load_task_file(write_task_file(tmp_path))
    bert, tokenizer = tiny_backbone
    cfg = TrainConfig(
        max_length=32,
        epochs_full=1,
        epochs_partial=1,
        epochs_distil=1,
        lr_full=1e-3,
        lr_partial=1e-3,
        lr_distil=1e-3,
    )
    run_dir = tmp_path / "run"
    train(data, run_dir, "tiny-test-bert", cfg, SearchConfig([1], 1, 0.9), None, bert, tokenizer)
    acc = report.accuracy(Run(run_dir))
    repo = tmp_path / "repo"
    export_run(run_dir, repo, profile="local", with_baseline=False, progress=False)
    with TritonServer(repo) as server:
        rows = compare(acc, served_scores(server.grpc_url, data), tolerance=1e-4)
    assert [r["task"] for r in rows] == list(data)
    bad = [r for r in rows if not r["ok"]]
    assert not bad, bad


@pytest.mark.slow
def test_task_add_from_a_task_file_then_retrain_on_what_the_run_kept(tiny_run, tiny_repo, tmp_path):
    """`mtserve task add NAME --spec tasks.yaml`: the CSV task with its own columns joins a repository; the run keeps
    its data in canonical form, so `retrain` without files trains on exactly that again."""
    import shutil

    from mtserve.core import registry
    from mtserve.export.repository_check import check_repository
    from mtserve.lifecycle.ops import add_task, retrain_task

    run, repo = tmp_path / "run", tmp_path / "repo" / "model_repository"
    shutil.copytree(tiny_run, run)
    shutil.copytree(tiny_repo, repo)
    (tmp_path / "data").mkdir()
    spec_file = write_task_file(tmp_path / "data", n_train=120, n_dev=40)
    quick = {
        "k_values": [1],
        "max_student_layers": 1,
        "epochs_full": 1,
        "epochs_partial": 1,
        "epochs_distil": 1,
    }
    with pytest.raises(UserError, match="not both"):
        add_task(repo, run, "area", tmp_path / "x.tsv", tmp_path / "y.tsv", spec_file=spec_file)
    reg = add_task(
        repo, run, "area", spec_file=spec_file, overrides=quick, cache_dir=None, log=lambda *_: None
    )
    e = reg.tasks["area"]
    # 12 of the 120 training rows held out: the branch choice's validation split
    assert e.labels == sorted(AREAS) and e.head_version == 1 and e.train_examples == 108
    assert check_repository(repo) == [] and registry.load(repo) == reg
    kept = load_task_file(run / "tasks" / "area" / "data" / "task.yaml")["area"]
    original = load_task_file(spec_file, only=["area"])["area"]
    assert (kept.train.texts, kept.train.labels) == (original.train.texts, original.train.labels)
    assert (kept.validation.texts, kept.validation.labels) == (
        original.validation.texts,
        original.validation.labels,
    )
    assert kept.spec == original.spec
    reg2 = retrain_task(repo, run, "area", overrides=quick, cache_dir=None, log=lambda *_: None)
    assert reg2.tasks["area"].head_version == 2 and reg2.tasks["area"].labels == e.labels
    assert check_repository(repo) == []


def test_max_train_examples_is_one_seeded_sample_everywhere(tmp_path):
    """`--max-train-examples` on `mtserve train` (embedded corpus or a task file) and on `mtserve task add
    --train`: the same seeded random sample of what training keeps after the validation split, never the file's
    first rows."""
    from mtserve.core import corpus
    from mtserve.core.tasks import cap_training, with_validation
    from mtserve.lifecycle.ops import load_task_data
    from mtserve.training.pipeline import load_datasets

    whole = with_validation(corpus.generate()["sentiment"], 3)
    capped = load_datasets(["sentiment"], None, 50, seed=3)["sentiment"]
    assert capped.train == cap_training(whole, 50, 3).train and len(capped.train) == 50
    assert capped.train.texts != whole.train.texts[:50] and set(capped.train.texts) <= set(whole.train.texts)
    assert capped.validation == whole.validation and "capped at 50 of" in capped.notes[-1]
    assert (
        load_datasets(["sentiment"], None, 50, seed=4)["sentiment"].train != capped.train
    )  # the seed draws it
    # task add --train TSV files: the same rule on the same rows
    for split, s in (("train", whole.train), ("dev", whole.dev)):
        labels = [whole.spec.labels[y] for y in s.labels]
        _write_csv(
            tmp_path / f"{split}.tsv", ["text", "label"], list(zip(s.texts, labels, strict=True)), "\t"
        )
    added = load_task_data("sentiment", tmp_path / "train.tsv", tmp_path / "dev.tsv", max_train=20, seed=3)
    direct = with_validation(
        load_task_data("sentiment", tmp_path / "train.tsv", tmp_path / "dev.tsv", seed=3), 3
    )
    assert added.train == cap_training(direct, 20, 3).train and added.train.texts != direct.train.texts[:20]
