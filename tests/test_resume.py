"""An interrupted `mtserve train` resumes at the last finished task and gives what an uninterrupted run gives; a
resume with other settings is refused; a partial run is never silently discarded."""

from __future__ import annotations

import json

import pytest

from mtserve.serving.errors import UserError
from mtserve.training import pipeline
from mtserve.training.config import SearchConfig, TrainConfig

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
