"""The one repository writer (export/writer.py): every repository's registry entries are filled the same way,
and a plan that cannot be written is refused before anything is."""

from __future__ import annotations

import json

import pytest

from mtserve.core import registry
from mtserve.core.errors import UserError
from mtserve.core.tasks import TaskSpec
from mtserve.export.writer import HeadPlan, RepositoryPlan, TaskScores, task_entry

SPEC = TaskSpec("mood", ("neg", "pos"), "accuracy")


def test_task_entry_retention_only_where_it_means_something():
    e = task_entry(SPEC, 3, 1, 2, True, TaskScores(dev_score=0.8, full_score=0.9, meets_target=True))
    assert e.retention == pytest.approx(0.8 / 0.9) and e.baseline == "single_mood" and e.head_version == 2
    assert task_entry(SPEC, 3, 1, scores=TaskScores(dev_score=0.1, full_score=0.0)).retention is None
    assert task_entry(SPEC, 3, 1, scores=TaskScores(dev_score=0.1, full_score=-0.2)).retention is None
    # full fine-tuning at chance: its retention would read as a result
    assert task_entry(SPEC, 3, 1, scores=TaskScores(0.5, 0.5, full_learned=False)).retention is None
    bare = task_entry(SPEC, 3, 1, baseline=False)  # a synthetic task: nothing measured
    assert bare.baseline is None and bare.dev_score is None and bare.retention is None


def test_export_records_what_the_run_measured(tiny_run, tiny_repo):
    """export fills every score the lifecycle fills: from the run's search.json, as `mtserve task` does."""
    reg = registry.load(tiny_repo)
    for name, entry in reg.tasks.items():
        from mtserve.training.search import Candidate

        result = json.loads((tiny_run / "tasks" / name / "search.json").read_text())
        chosen = Candidate.from_dict(result["chosen"])
        assert entry.dev_score == chosen.dev_score
        assert entry.full_score == result["full"]
        assert entry.meets_target == chosen.meets_target
        assert (entry.train_examples, entry.dev_examples) == (
            result["train_examples"],
            result["dev_examples"],
        )
        learned = (result.get("full_chance") or {}).get("learned", True)
        want = entry.dev_score / entry.full_score if entry.full_score > 0 and learned else None
        assert entry.retention == (pytest.approx(want) if want is not None else None)


def plan(**kw) -> RepositoryPlan:
    base = dict(
        profile="local",
        backbone="tiny",
        num_layers=4,
        hidden_size=32,
        vocab_size=100,
        max_length=32,
        tokenizer_dir=None,
        trunk=type("T", (), {"out_depths": [2]})(),
        fingerprint=None,
        tasks={"mood": HeadPlan(SPEC, 2, 1, branch=object(), full=object())},
    )
    return RepositoryPlan(**(base | kw))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"profile": "cpu"}, "--profile must be 'local' or 'gpu'"),
        ({"tensorrt": True}, "--tensorrt applies to --profile gpu only"),
        ({"tasks": {"mood": HeadPlan(SPEC, 3, 1, branch=object(), full=object())}}, "no output at depth"),
        ({"tasks": {"mood": HeadPlan(SPEC, 2, 1, full=object())}}, "task mood: give its branch"),
        ({"tasks": {"mood": HeadPlan(SPEC, 2, 1, branch=object())}}, "task mood: a baseline needs"),
    ],
)
def test_a_plan_that_cannot_be_written_is_refused_first(tmp_path, change, message):
    from mtserve.export.writer import write_repository

    out = tmp_path / "repo"
    with pytest.raises(UserError, match=message):
        write_repository(plan(**change), out)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing written, not even a temporary folder
