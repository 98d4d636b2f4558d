"""run.json and search.json through their one owner (training/run_dir.py's RunRecord and SearchRecord): a real
run's files read and written back unchanged, a version-1 file (no schema_version, keys older runs lacked) read
with its defaults, a version newer than the code refused naming the file."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from mtserve.core.errors import UserError
from mtserve.training.run_dir import SCHEMA_VERSION, Run, RunRecord, SearchRecord


def test_a_real_runs_files_round_trip(tiny_run, tmp_path):
    run = Run(tiny_run)
    stored = json.loads((tiny_run / "run.json").read_text())
    assert stored["schema_version"] == SCHEMA_VERSION  # the writer records it
    record = run.record
    assert record.tasks == ["domain", "intent", "sentiment", "urgency"] and record.extra == {}
    assert record.to_dict() == stored and list(record.to_dict()) == list(stored)  # key for key, in order
    record.write(tmp_path / "run.json")
    assert json.loads((tmp_path / "run.json").read_text()) == stored
    for task in record.tasks:
        path = run.task_dir(task) / "search.json"
        stored = json.loads(path.read_text())
        assert stored["schema_version"] == SCHEMA_VERSION
        result = run.search(task)
        assert result.extra == {}  # every key the pipeline writes is a field
        assert result.search == record.search and result.metric == stored["task"]["metric"]
        assert result.to_dict() == stored and list(result.to_dict()) == list(stored)
        SearchRecord.from_dict(stored, path).write(tmp_path / f"{task}.json")
        assert json.loads((tmp_path / f"{task}.json").read_text()) == stored


def test_keys_this_code_does_not_know_are_kept(tiny_run, tmp_path):
    stored = json.loads((tiny_run / "run.json").read_text()) | {"written_by_someone_else": {"x": 1}}
    record = RunRecord.from_dict(stored)
    assert record.extra == {"written_by_someone_else": {"x": 1}}
    record.write(tmp_path / "run.json")
    assert json.loads((tmp_path / "run.json").read_text()) == stored


def test_a_version_1_file_is_read_with_the_defaults(tiny_run, tmp_path):
    """Files written before schema_version, and before the keys older versions lacked: run.json without notes
    or backbone_path; search.json without search, full_validation, validation_examples, full_chance, notes."""
    run_dir = tmp_path / "old"
    shutil.copytree(tiny_run, run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    for k in ("schema_version", "notes", "backbone_path"):
        del meta[k]
    (run_dir / "run.json").write_text(json.dumps(meta))
    path = run_dir / "tasks" / "sentiment" / "search.json"
    result = json.loads(path.read_text())
    for k in ("schema_version", "search", "full_validation", "validation_examples", "full_chance", "notes"):
        result.pop(k, None)
    path.write_text(json.dumps(result))

    run = Run(run_dir)
    assert run.record.notes == [] and run.record.backbone_path == "" and run.record.task_versions is None
    old = run.search("sentiment")
    assert old.search is None  # searched with resume.json's settings (training/pipeline.py _searched_with)
    assert old.full_validation is None and old.choice_score == old.full  # the choice compared dev scores
    assert old.full_learned is None and old.notes == [] and old.validation_examples is None
    # written back as the current version: the defaults filled, the keys that do not apply still left out
    assert old.to_dict() == {"schema_version": SCHEMA_VERSION, **result, "notes": []}
    # the reports read it as the run it is: its choice compared dev scores, no chance check
    from mtserve.training.accuracy_report import accuracy

    acc = accuracy(run)["tasks"]["sentiment"]
    assert acc["choice_on"] == "dev" and acc["full_learned"] is None and acc["retention"] is not None


def test_a_missing_key_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"metric": "accuracy"}))
    with pytest.raises(UserError, match=rf"{re.escape(str(path))}: missing .*candidates.*chosen"):
        SearchRecord.read(path)
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match=rf"{re.escape(str(path))}: expected a JSON object"):
        SearchRecord.read(path)


def test_a_newer_schema_version_is_refused_naming_the_file(tiny_run, tmp_path):
    run_dir = tmp_path / "new"
    shutil.copytree(tiny_run, run_dir)
    for path in (run_dir / "run.json", run_dir / "tasks" / "urgency" / "search.json"):
        d = json.loads(path.read_text()) | {"schema_version": SCHEMA_VERSION + 1}
        path.write_text(json.dumps(d))
    with pytest.raises(
        UserError,
        match=rf"{re.escape(str(run_dir / 'run.json'))}: schema_version {SCHEMA_VERSION + 1} is newer",
    ):
        Run(run_dir).tasks()
    path = run_dir / "tasks" / "urgency" / "search.json"
    with pytest.raises(
        UserError,
        match=rf"{re.escape(str(path))}: schema_version {SCHEMA_VERSION + 1} is newer.*upgrade mtserve",
    ):
        Run(run_dir).search("urgency")
    # `mtserve task` leaves a run.json it cannot read as it is, rather than writing it as an older version
    from types import SimpleNamespace

    from mtserve.lifecycle.run_sync import sync_run

    before, said = (run_dir / "run.json").read_text(), []
    reg = SimpleNamespace(trunk=SimpleNamespace(fingerprint="whatever"))
    sync_run(run_dir, reg, "urgency", None, None, log=said.append)
    assert (run_dir / "run.json").read_text() == before
    assert "schema_version" in said[0] and "not updated" in said[0]
