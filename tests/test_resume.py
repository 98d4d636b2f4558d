"""An interrupted `mtserve train` resumes at the last finished task and gives what an uninterrupted run gives; a
resume with other settings is refused; a partial run is never silently discarded."""

from __future__ import annotations

import json

import pytest

from mtserve.serving.errors import UserError
from mtserve.training import pipeline, report
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
    """--from-run / --resume with other search settings: step 1 (full fine-tuning) is not repeated, an
    interruption of the wider search resumes too, and the result is what one run with the wider search gives."""
    bert, tok = tiny_backbone
    data = {t: tiny_data[t] for t in ("sentiment", "urgency")}
    pipeline.train(data, tmp_path / "wide", "tiny-test-bert", CFG, SEARCH, None, bert, tok)
    narrow = SearchConfig([1], 1, 0.9)
    run = tmp_path / "widened"
    pipeline.train(data, run, "tiny-test-bert", CFG, narrow, None, bert, tok)
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

    def interrupted(*args, **kw):
        searched.append(args[2].spec.name)
        if len(searched) == 2:
            raise KeyboardInterrupt  # the wider search stopped half-way
        return real_task(*args, **kw)

    monkeypatch.setattr(pipeline, "train_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.train(data, run, "tiny-test-bert", CFG, SEARCH, None, bert, tok, resume=True)
    searched.clear()
    monkeypatch.setattr(
        pipeline, "train_task", lambda *a, **kw: searched.append(a[2].spec.name) or real_task(*a, **kw)
    )
    pipeline.train(data, run, "tiny-test-bert", CFG, SEARCH, None, bert, tok, resume=True)
    assert searched == ["urgency"]  # searched wide before the interruption: kept; urgency still had k=1 only
    assert full_runs == []
    widened, wide = _results(run), _results(tmp_path / "wide")
    _same(wide, widened)
    acc = report.accuracy(Run(run))
    for t in widened:
        assert widened[t]["search"] == SEARCH.to_dict()
        assert widened[t]["kept"]["stages"] == ["full"]
        assert widened[t]["kept"]["search"] == narrow.to_dict()
        assert any("full kept from a run that searched k = 1 " in n for n in acc["tasks"][t]["notes"])


def test_from_run_refuses_what_it_cannot_widen(tmp_path):
    from mtserve.cli import main

    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "run.json").write_text("{}")
    args = ["train", "--run-dir", str(tmp_path / "new"), "--reports", str(tmp_path / "rep"), "--from-run"]
    with pytest.raises(UserError, match="settings recorded"):  # no resume.json: nothing to check against
        pipeline._start_from(finished, tmp_path / ".new.partial", SEARCH)
    (finished / pipeline.RESUME_FILE).write_text(json.dumps({"search": SEARCH.to_dict()}))
    with pytest.raises(UserError, match="searched with these settings already"):
        pipeline._start_from(finished, tmp_path / ".new.partial", SEARCH)
    assert main([*args, str(finished), "--resume"]) == 2  # one or the other
    assert not (tmp_path / ".new.partial").exists()
