"""Training progress that can be watched without a terminal: timestamped stage lines with task i of n and the time
left, a line at least every `--progress-every` seconds inside a stage, each task's loss log and its plot; and a
full fine-tuning that did not learn, flagged in the console and the reports."""

from __future__ import annotations

import io
import json
import re

import pytest
import torch

from mtserve.training.config import ProgressConfig, SearchConfig, TrainConfig
from mtserve.training.progress import LOG_FILE, NORMAL, QUIET, Progress, read_log

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "


class Clock:
    """A clock the test moves: a stage of many minutes in no time."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_long_stage_writes_a_line_at_least_every_minute():
    out, clock = io.StringIO(), Clock()
    p = Progress(NORMAL, every_s=60.0, stream=out, clock=clock)
    p.plan({"a": 100.0, "b": 100.0})
    with p.task("b"), p.stage("full fine-tuning", units=100.0):
        steps = p.loop(range(200), 200, "full fine-tuning", units=100.0)
        for _ in steps:
            clock.t += 20.0  # a 20-second training step
            steps.record(torch.tensor(0.5), 1e-4)
    lines = out.getvalue().splitlines()
    assert all(re.match(STAMP, line) for line in lines)
    beats = [int(re.search(r"step (\d+) of 200", line)[1]) for line in lines if "step " in line]
    # 200 steps of 20 s: a line every third step (60 s), never a longer silence
    assert beats == list(range(3, 201, 3))
    line = next(line for line in lines if "step 90 of 200" in line)
    assert "b (task 2 of 2): full fine-tuning: step 90 of 200 (45%), loss 0.5000, lr 1.00e-04" in line
    # the stage: 110 steps of 20 s to go; the run: 1800 s x 155 units left / 45 done (task a still to go)
    assert "this stage about 36m40s more; about 1h43m left of the run (22% of its work done)" in line
    assert re.search(r"b \(task 2 of 2\): full fine-tuning done in 1h06m; about 1h06m left", lines[-2])
    assert "b (task 2 of 2): done in 1h06m" in lines[-1]
    quiet = io.StringIO()
    clock = Clock()
    q = Progress(QUIET, every_s=60.0, stream=quiet, clock=clock)
    with q.task("a"), q.stage("full fine-tuning"):
        for _ in q.loop(range(50), 50, "full fine-tuning"):
            clock.t += 20.0
        q.warn("shown")
    assert quiet.getvalue().count("\n") == 1 and "WARNING: shown" in quiet.getvalue()


def test_the_time_left_paces_each_kind_of_stage_on_its_own():
    """A search step on cached features costs less than a full fine-tuning step through as many layers: after the
    first task, each kind of stage is paced by what it took there, not by the run's average."""
    out, clock = io.StringIO(), Clock()
    p = Progress(NORMAL, every_s=60.0, stream=out, clock=clock)
    plan = {"full": 100.0, "search": 100.0}
    p.plan({"a": plan, "b": plan})
    with p.task("a"):
        for kind, seconds in (("full", 100.0), ("search", 10.0)):
            with p.stage(kind, plan[kind], kind=kind):
                clock.t += seconds
    # task b: 100 units of full at 1 s each, 100 of search at 0.1 s each (the run's average would say 55 s each)
    assert p.time_left() == "about 1m50s left of the run (50% of its work done)"
    with p.task("b"), p.stage("full", 100.0, kind="full"):
        for _ in p.loop(range(10), 10, "full fine-tuning", units=100.0):
            clock.t += 5.0  # full fine-tuning at half its first pace now: the current stage counts too
            if clock.t == 135.0:  # 4 steps done: full at (100 + 25 s) / (100 + 40 units), 60 units of it left
                assert p.time_left() == "about 1m04s left of the run (60% of its work done)"


def test_quiet_and_verbose_are_generated_flags():
    import argparse

    from mtserve.core.errors import UserError
    from mtserve.core.options import add_dataclass_arguments, from_args

    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, ProgressConfig)
    assert from_args(ProgressConfig, parser.parse_args([])).progress().level == NORMAL
    assert from_args(ProgressConfig, parser.parse_args(["--quiet"])).progress().level == QUIET
    p = from_args(ProgressConfig, parser.parse_args(["--verbose", "--progress-every", "5"])).progress()
    assert p.level == 2 and p.every_s == 5.0
    with pytest.raises(UserError, match="give --quiet or --verbose, not both"):
        from_args(ProgressConfig, parser.parse_args(["--quiet", "--verbose"]))
    assert "--quiet" in parser.format_help() and "--progress-every FLOAT" in parser.format_help()


def _small(tiny_data, names, rows=120):
    from mtserve.core.tasks import TaskData

    return {n: TaskData(tiny_data[n].spec, tiny_data[n].train.head(rows), tiny_data[n].dev) for n in names}


def test_a_logged_run_shows_its_stages_and_keeps_every_tasks_loss(tiny_backbone, tiny_data, tmp_path, capsys):
    from mtserve.training import accuracy_report as report
    from mtserve.training.pipeline import train
    from mtserve.training.run_dir import Run

    bert, tok = tiny_backbone
    cfg = TrainConfig(max_length=32, epochs_full=1, epochs_partial=1, epochs_distil=1, batch_size=16)
    run = tmp_path / "run"
    train(
        _small(tiny_data, ["sentiment", "urgency"]),
        run,
        "tiny-test-bert",
        cfg,
        SearchConfig([1, 2], 1, 0.9),
        None,
        bert,
        tok,
        progress=Progress(NORMAL, every_s=0.0),  # a line every step: stands in for a minute of a real run
    )
    err = capsys.readouterr().err  # stderr is not a terminal here: no tqdm bar, the lines alone
    lines = err.splitlines()
    assert lines and all(re.match(STAMP, line) for line in lines), err
    for task, i in (("sentiment", 1), ("urgency", 2)):
        where = f"{task} (task {i} of 2): "
        for stage in ("full fine-tuning", "trunk features", "search"):
            assert any(line.endswith(where + f"{stage} started") for line in lines), (stage, err)
            # each stage's end carries the estimate; a stage ended within the run's first second has none yet
            # (a tiny BERT on a fast machine): the paced estimate itself is tested on a simulated clock below
            assert any(
                where + f"{stage} done in " in line
                and ("left of the run" in line or line.endswith("time left: not known yet"))
                for line in lines
            ), (stage, err)
        assert any(where + "full fine-tuning: step " in line and ", loss " in line for line in lines)
        assert any(where + "partial k=2: step " in line for line in lines)
        log = read_log(run / "tasks" / task / LOG_FILE)
        stages = {r["stage"] for r in log}
        assert stages == {"full fine-tuning", "partial k=1", "partial k=2", "distil k=2->l=1"}
        full = [r for r in log if r["stage"] == "full fine-tuning"]
        # 108 training rows (12 held out for validation) in batches of 16: 7 steps, each recorded
        assert [r["step"] for r in full] == list(range(1, 8)) and all(r["steps"] == 7 for r in full)
        assert all(r["loss"] > 0 and r["task"] == task for r in full)
        lrs = [r["lr"] for r in full]
        assert lrs[0] == pytest.approx(cfg.lr_full) and lrs[-1] < lrs[0]  # warm-up of one step, then decay
    reports = tmp_path / "reports"
    report.write_accuracy(Run(run), reports)
    png = (reports / "training_loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "training_loss.png" in (reports / "accuracy.md").read_text()


def test_a_full_fine_tuning_that_did_not_learn_is_flagged(
    tiny_backbone, tiny_data, tiny_run, tmp_path, capsys
):
    """Learning rate 0 (refused on the command line, set here on purpose): the weights never move, the dev score
    is chance, and the console and both reports say so; its retention is no number."""
    from mtserve.training import accuracy_report as report
    from mtserve.training.pipeline import train
    from mtserve.training.run_dir import Run

    bert, tok = tiny_backbone
    cfg = TrainConfig(max_length=32, epochs_full=1, epochs_partial=2, epochs_distil=1, lr_partial=1e-3)
    cfg.lr_full = 0.0  # deliberately broken: TrainConfig refuses it when built
    run = tmp_path / "run"
    train(
        {"urgency": tiny_data["urgency"]},
        run,
        "tiny-test-bert",
        cfg,
        SearchConfig([1], 0, 0.9),
        None,
        bert,
        tok,
        progress=Progress(QUIET),
    )
    err = capsys.readouterr().err
    assert "WARNING: urgency: full fine-tuning did not learn: dev pearson" in err
    assert "its retentions are meaningless" in err and err.count("\n") == 1  # quiet: the warning alone
    check = Run(run).task_result("urgency")["full_chance"]
    assert check["learned"] is False and check["score"] <= max(check["constant"], check["chance_p95"])
    acc = report.write_accuracy(Run(run), tmp_path / "reports")
    t = acc["tasks"]["urgency"]
    assert t["full_learned"] is False and t["retention"] is None and acc["average_retention"] is None
    assert acc["retention_left_out"] == ["urgency"]
    md = (tmp_path / "reports" / "accuracy.md").read_text()
    assert "**Warning:**" in md and "urgency: full fine-tuning did not learn" in md
    assert "meaningless: full FT did not learn" in md
    saved = json.loads((tmp_path / "reports" / "accuracy.json").read_text())["tasks"]["urgency"]
    assert saved["retention"] is None and saved["full_chance"]["learned"] is False
    # the same task and settings at a learning rate that trains (the session's tiny run): not flagged
    learned = report.accuracy(Run(tiny_run))["tasks"]["urgency"]
    assert learned["full_learned"] is True and isinstance(learned["retention"], float)
