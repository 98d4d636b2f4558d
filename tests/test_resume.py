"""An interrupted `mtserve train` resumes at the last finished task and gives what an uninterrupted run gives; a
resume with other settings is refused; a partial run is never silently discarded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtserve.core.errors import UserError
from mtserve.training import accuracy_report as report
from mtserve.training import pipeline
from mtserve.training.config import SearchConfig, TrainConfig
from mtserve.training.run_dir import Run

CFG = TrainConfig(max_length=32, epochs_full=1, epochs_partial=1, epochs_distil=1, lr_partial=1e-3, threads=1)
SEARCH = SearchConfig([1, 2], 1, 0.9)


def _results(run_dir) -> dict:
    return {
        t: json.loads((run_dir / "tasks" / t / "search.json").read_text()) for t in ("sentiment", "urgency")
    }


def _same(a: dict, b: dict) -> None:
    for t in a:
        assert a[t]["full"] == pytest.approx(b[t]["full"], abs=1e-6)
        assert [c["score"] for c in a[t]["candidates"]] == pytest.approx(
            [c["score"] for c in b[t]["candidates"]], abs=1e-6
        )
        assert {k: v for k, v in a[t]["chosen"].items() if k != "seconds"} == pytest.approx(
            {k: v for k, v in b[t]["chosen"].items() if k != "seconds"}
        )


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_result(tiny_backbone, tiny_data, tmp_path, monkeypatch):
    bert, tok = tiny_backbone
    data = {t: tiny_data[t] for t in ("sentiment", "urgency")}
    pipeline.train(data, tmp_path / "whole", "tiny-test-bert", CFG, SEARCH, None, bert, tok)

    real, calls = pipeline.train_task, []

    def interrupted(*args, **kw):
        calls.append(args[2].spec.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # a stop half-way: the first task finished, the second did not
        return real(*args, **kw)

    monkeypatch.setattr(pipeline, "train_task", interrupted)
    run = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        pipeline.train(data, run, "tiny-test-bert", CFG, SEARCH, None, bert, tok)
    assert (run / "tasks" / "sentiment" / "search.json").is_file()
    assert not (run / "tasks" / "urgency" / "search.json").exists()

    with pytest.raises(UserError, match="other settings .*config"):  # another command: refused, nothing lost
        pipeline.train(
            data, run, "tiny-test-bert", TrainConfig(epochs_full=2), SEARCH, None, bert, tok, resume=True
        )
    assert (run / "tasks" / "sentiment" / "search.json").is_file()

    calls.clear()
    monkeypatch.setattr(
        pipeline, "train_task", lambda *a, **kw: calls.append(a[2].spec.name) or real(*a, **kw)
    )
    meta = pipeline.train(data, run, "tiny-test-bert", CFG, SEARCH, None, bert, tok, resume=True)
    assert calls == ["urgency"]  # only what the interruption left undone
    assert meta["tasks"] == ["sentiment", "urgency"]
    _same(_results(tmp_path / "whole"), _results(run))


def test_a_partial_run_is_never_discarded_silently(tmp_path, capsys):
    from mtserve.cli import main

    partial = tmp_path / ".latest.partial" / "tasks" / "x"
    partial.mkdir(parents=True)
    (partial / "search.json").write_text("{}")
    rc = main(["train", "--run-dir", str(tmp_path / "latest"), "--reports", str(tmp_path / "rep")])
    assert rc == 2 and "--resume to continue it" in capsys.readouterr().err
    assert (partial / "search.json").is_file()


@pytest.mark.slow
def test_a_wider_search_keeps_full_fine_tuning_and_matches_a_run_that_searched_wide(
    tiny_backbone, tiny_data, tmp_path, monkeypatch
):
    """--from-run / --resume with other search settings: step 1 (full fine-tuning) is never repeated, an
    interruption of the new search resumes too, and the result is what one run with those settings gives."""
    bert, tok = tiny_backbone
    data = {t: tiny_data[t] for t in ("sentiment", "urgency")}
    pipeline.train(data, tmp_path / "wide", "tiny-test-bert", CFG, SEARCH, None, bert, tok)
    narrow = SearchConfig([1], 1, 0.9)
    run = tmp_path / "widened"
    pipeline.train(data, run, "tiny-test-bert", CFG, narrow, None, bert, tok)
    narrow_results = _results(run)
    for t, result in _results(run).items():  # as runs written before search.json recorded its settings
        assert {c["k"] for c in result["candidates"]} == {1}
        del result["search"]
        (run / "tasks" / t / "search.json").write_text(json.dumps(result))

    real_full, full_runs = pipeline.train_full, []
    monkeypatch.setattr(
        pipeline, "train_full", lambda *a, **kw: full_runs.append(a[1].name) or real_full(*a, **kw)
    )
    with pytest.raises(UserError, match="other settings .*config"):  # training settings still must match
        pipeline.train(
            data, run, "tiny-test-bert", TrainConfig(epochs_full=2), SEARCH, None, bert, tok, resume=True
        )
    real_task, searched = pipeline.train_task, []

    def counted(interrupt_at: int | None = None):  # train_task, recording each task it starts
        def train_task(*args, **kw):
            searched.append(args[2].spec.name)
            if len(searched) == interrupt_at:
                raise KeyboardInterrupt  # a stop before this task's search finished
            return real_task(*args, **kw)

        return train_task

    monkeypatch.setattr(pipeline, "train_task", counted(interrupt_at=2))
    with pytest.raises(KeyboardInterrupt):
        pipeline.train(data, run, "tiny-test-bert", CFG, SEARCH, None, bert, tok, resume=True)
    # urgency was to search again: its step 1 waits in baseline.json, no search.json of the old search is left
    assert not (run / "tasks" / "urgency" / "search.json").exists()
    assert (run / "tasks" / "urgency" / pipeline.BASELINE_FILE).is_file()
    searched.clear()
    monkeypatch.setattr(pipeline, "train_task", counted())
    pipeline.train(data, run, "tiny-test-bert", CFG, SEARCH, None, bert, tok, resume=True)
    assert searched == ["urgency"]  # searched wide before the interruption: kept
    assert full_runs == []
    assert not list(run.glob(f"tasks/*/{pipeline.BASELINE_FILE}"))
    widened, wide = _results(run), _results(tmp_path / "wide")
    _same(wide, widened)
    acc = report.accuracy(Run(run))
    # one per task among the report's own notes (accuracy.md lists them)
    assert sum(" kept from a run that searched k = 1 " in n for n in acc["notes"]) == 2
    for t in widened:
        assert widened[t]["search"] == SEARCH.to_dict()
        assert widened[t]["kept"]["stages"] == ["full"]
        assert widened[t]["kept"]["search"] == narrow.to_dict()
        assert any(
            "full fine-tuning kept from a run that searched k = 1 " in n for n in acc["tasks"][t]["notes"]
        )

    # and back to the narrow search on the finished run: no task is kept whole (its candidates are gone, the
    # choice across tasks needs them), each searches again from its step 1, and the result is the narrow run's
    searched.clear()
    pipeline.train(data, run, "tiny-test-bert", CFG, narrow, None, bert, tok, resume=True)
    assert searched == ["sentiment", "urgency"] and full_runs == []
    _same(narrow_results, _results(run))
    assert _results(run)["urgency"]["kept"]["search"] == narrow.to_dict()  # the run that trained step 1


@pytest.mark.slow
def test_branches_pool_as_branch_pooling_says_and_from_run_keeps_full_fine_tuning_pooled_otherwise(
    tiny_backbone, tiny_data, tmp_path, monkeypatch
):
    """--pooling cls --branch-pooling mean: full fine-tuning (every retention's denominator) pools the first
    token, every branch the search trains pools the mean. Branch pooling is a search setting: --resume (and so
    --from-run) on a run pooled cls throughout keeps its full fine-tuning and searches again, and gives what one
    run with both settings gives."""
    from dataclasses import replace

    bert, tok = tiny_backbone
    data = {"sentiment": tiny_data["sentiment"]}
    cls, mean_branches = replace(CFG, pooling="cls"), replace(SEARCH, branch_pooling="mean")

    def pooling(run: Path, checkpoint: str) -> str:
        return json.loads((run / "tasks" / "sentiment" / checkpoint).read_text())["branch"]["pooling"]

    one_run = tmp_path / "one"
    pipeline.train(data, one_run, "tiny-test-bert", cls, mean_branches, None, bert, tok)
    assert (pooling(one_run, "full.json"), pooling(one_run, "branch.json")) == ("cls", "mean")

    searched_again = tmp_path / "again"
    pipeline.train(data, searched_again, "tiny-test-bert", cls, SEARCH, None, bert, tok)
    assert (pooling(searched_again, "full.json"), pooling(searched_again, "branch.json")) == ("cls", "cls")
    real_full, full_runs = pipeline.train_full, []
    monkeypatch.setattr(
        pipeline, "train_full", lambda *a, **kw: full_runs.append(a[1].name) or real_full(*a, **kw)
    )
    pipeline.train(data, searched_again, "tiny-test-bert", cls, mean_branches, None, bert, tok, resume=True)
    assert full_runs == []
    assert (pooling(searched_again, "full.json"), pooling(searched_again, "branch.json")) == ("cls", "mean")
    result = json.loads((searched_again / "tasks" / "sentiment" / "search.json").read_text())
    assert result["search"]["branch_pooling"] == "mean" and "branch_pooling" not in result["kept"]["search"]
    a, b = json.loads((one_run / "tasks" / "sentiment" / "search.json").read_text()), result
    assert a["full"] == pytest.approx(b["full"], abs=1e-6)
    assert [c["score"] for c in a["candidates"]] == pytest.approx(
        [c["score"] for c in b["candidates"]], abs=1e-6
    )
    notes = report.accuracy(Run(searched_again))["tasks"]["sentiment"]["notes"]
    assert any("(students of up to 1 layers, branches pooled cls)" in n for n in notes)


def test_from_run_refuses_what_it_cannot_widen_before_copying_anything(tmp_path):
    from mtserve.cli import main

    finished, partial = tmp_path / "finished", tmp_path / ".new.partial"
    (finished / "tasks" / "a").mkdir(parents=True)
    (finished / "run.json").write_text("{}")
    want = pipeline._resume_record("tiny", CFG, SEARCH, {}, False)
    with pytest.raises(UserError, match="settings recorded"):  # no resume.json: nothing to check against
        pipeline._start_from(finished, partial, want, ["a"])
    (finished / pipeline.RESUME_FILE).write_text(json.dumps(want | {"config": TrainConfig().to_dict()}))
    with pytest.raises(UserError, match=r"other settings \(config differ"):
        pipeline._start_from(finished, partial, want, ["a"])
    (finished / pipeline.RESUME_FILE).write_text(json.dumps(want))
    with pytest.raises(UserError, match="searched with these settings already"):
        pipeline._start_from(finished, partial, want, ["a"])
    (finished / "run.json").write_text(json.dumps({"task_versions": {"a": 2}}))
    with pytest.raises(UserError, match="mtserve task. changed tasks"):
        pipeline._start_from(finished, partial, want | {"search": {}}, ["a"])
    assert not partial.exists()
    args = ["train", "--run-dir", str(tmp_path / "new"), "--reports", str(tmp_path / "rep")]
    assert main([*args, "--from-run", str(finished), "--resume"]) == 2  # one or the other
    assert not partial.exists()


@pytest.mark.slow
def test_from_run_on_the_command_line_widens_a_copy_and_leaves_the_source_as_it_was(
    tiny_backbone, tmp_path, capsys
):
    import hashlib

    from mtserve.cli import main

    bert, tokenizer = tiny_backbone
    bert.save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    common = ["train", "--backbone", str(tmp_path / "bert"), "--tasks", "sentiment", "--cache-dir", ""]
    common += ["--max-train-examples", "200", "--max-length", "32", "--threads", "1", "--epochs-full", "1"]
    common += ["--epochs-partial", "1", "--epochs-distil", "1", "--max-student-layers", "1"]
    source, widened = tmp_path / "runs" / "first", tmp_path / "runs" / "widened"
    assert main([*common, "--k", "1", "--run-dir", str(source), "--reports", str(tmp_path / "r1")]) == 0

    def files(d):
        return {
            p.relative_to(d): hashlib.sha256(p.read_bytes()).hexdigest() for p in d.rglob("*") if p.is_file()
        }

    before = files(source)
    wider = [*common, "--run-dir", str(widened), "--reports", str(tmp_path / "r2"), "--from-run", str(source)]
    assert (
        main([*wider[:-2], "--epochs-full", "2", *wider[-2:], "--k", "1,2"]) == 2
    )  # other training settings
    assert "other settings (config differ)" in capsys.readouterr().err
    assert not (tmp_path / "runs" / ".widened.partial").exists() and not widened.exists()

    assert main([*wider, "--k", "1,4"]) == 2  # refused once the backbone is read: k = 4 of 4 layers
    assert "--k values [4] outside 1..3" in capsys.readouterr().err
    assert not (tmp_path / "runs" / ".widened.partial").exists()  # the copy did not stay behind

    assert main([*wider, "--k", "1,2"]) == 0
    assert files(source) == before  # only read
    assert not (tmp_path / "runs" / ".widened.partial").exists()
    result = json.loads((widened / "tasks" / "sentiment" / "search.json").read_text())
    assert {c["k"] for c in result["candidates"]} == {1, 2}
    assert result["kept"]["search"]["k_values"] == [1]
    first = json.loads((source / "tasks" / "sentiment" / "search.json").read_text())
    assert result["full"] == first["full"]
    same_full = files(widened)[Path("tasks/sentiment/full.safetensors")]
    assert same_full == before[Path("tasks/sentiment/full.safetensors")]  # the served baseline itself, kept
    acc = json.loads((tmp_path / "r2" / "accuracy.json").read_text())
    assert any("kept from a run that searched k = 1 " in n for n in acc["tasks"]["sentiment"]["notes"])
