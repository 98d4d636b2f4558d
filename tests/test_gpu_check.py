"""mtserve gpu-check: without a CUDA device it skips (exit 0, or 1 with --require-gpu); with --allow-cpu the very
code that runs on the GPU measures on the CPU at a tiny shape, on a trained run's own modules and on a synthetic
shape. tests/test_device.py runs it on CUDA where a device is present."""

from __future__ import annotations

import json

import pytest
import torch

from mtserve.cli import main

# fp32: the CPU has no fast fp16 kernels (fp16 took seconds a call here); the code path is the same for every dtype
FAST = [
    "--allow-cpu",
    "--precision",
    "fp32",
    "--batches",
    "1,3",
    "--seq",
    "8",
    "--repeats",
    "2",
    "--inner",
    "1",
]


def _check_result(result: dict) -> None:
    """What every result must hold, whatever it timed: the requests priced consistently with the modules."""
    depths = sorted({t["depth"] for t in result["tasks"].values()})
    assert [(s["from"], s["to"]) for s in result["segments"]] == list(
        zip([0, *depths[:-1]], depths, strict=True)
    )
    assert [s["embeddings"] for s in result["segments"]] == [True] + [False] * (len(depths) - 1)
    L = result["num_layers"]
    for row in result["rows"]:
        assert len(row["segments_ms"]) == len(depths) and set(row["heads_ms"]) == set(result["tasks"])
        kinds = [q["kind"] for q in row["requests"]]
        assert kinds == ["task"] * len(result["tasks"]) + ["group"] * len(result["groups"]) + ["multitask"]
        for q in row["requests"]:
            ts = q["tasks"]
            deepest = max(result["tasks"][t]["depth"] for t in ts)
            served = deepest + sum(result["tasks"][t]["layers"] for t in ts)
            assert q["ideal_cost_ratio"] == pytest.approx(served / (L * len(ts)), abs=1e-4)
            assert q["segments"] == depths.index(deepest) + 1  # the path stops at its deepest task's segment
            assert q["per_task_ms"] == pytest.approx(sum(row["full_ms"][t] for t in ts), abs=1e-3)
            parts = sum(row["segments_ms"][: q["segments"]]) + sum(row["heads_ms"][t] for t in ts)
            assert q["parts_ms"] == pytest.approx(parts, abs=1e-3)
            assert q["path_ms"] > 0 and q["cost_ratio"] == pytest.approx(
                q["path_ms"] / q["per_task_ms"], rel=1e-2, abs=1e-4
            )
        multitask = row["requests"][-1]
        assert multitask["tasks"] == list(result["tasks"]) and multitask["segments"] == len(depths)
        assert row["summary"]["multitask"]["ideal_cost_ratio"] == result["ideal_cost_ratio"]
        one = [q for q in row["requests"] if q["kind"] == "task"]
        assert row["summary"]["one_task"]["cost_ratio"] == pytest.approx(
            sum(q["cost_ratio"] for q in one) / len(one), abs=1e-3
        )


def test_gpu_check_skips_cleanly_without_a_gpu(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine
    out = tmp_path / "never-written"
    assert main(["gpu-check", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("gpu-check: skipped: no GPU here: torch ") and "Nothing was measured" in printed
    assert not out.exists()
    assert main(["gpu-check", "--require-gpu", "--out", str(out)]) == 1  # a failed check (docs/exit-codes.md)


def test_segments_and_paths_compute_what_the_run_serves(tiny_run):
    """The segments, chained, give the trunk's hidden states at every branch depth, and a task's path gives its
    TaskModel's scores: the check times the computation the served paths run, not a look-alike."""
    from mtserve.gpu_check import run_plan, segment_modules
    from mtserve.training.backbone import TaskModel
    from mtserve.training.run_dir import Run

    plan = run_plan(tiny_run)
    run = Run(tiny_run)
    assert {t: (m.depth, m.layers) for t, m in plan.tasks.items()} == {
        t: (run.branch(t)[0].config.depth, run.branch(t)[0].config.num_layers) for t in run.tasks()
    }
    trunk = run.trunk(plan.depths)
    segments = segment_modules(plan)
    ids = torch.randint(1, plan.vocab_size, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0  # padding reaches every segment's mask
    types = torch.zeros_like(ids)
    with torch.inference_mode():
        want = trunk(ids, types, mask)
        hidden, got = ids, []
        for i, seg in enumerate(segments):
            hidden = seg(hidden, mask, types) if i == 0 else seg(hidden, mask)
            got.append(hidden)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b)
        for name, t in plan.tasks.items():
            hidden = got[plan.depths.index(t.depth)]
            torch.testing.assert_close(
                t.head.scores(hidden, mask), TaskModel(trunk, run.branch(name)[0]).scores(ids, types, mask)
            )
        # in fp16, as the GPU runs them, the same scores up to fp16's rounding
        name, t = next(iter(plan.tasks.items()))
        hidden = ids
        for i, seg in enumerate(segments[: plan.depths.index(t.depth) + 1]):
            seg.half()
            hidden = seg(hidden, mask, types) if i == 0 else seg(hidden, mask)
        half = t.head.half().scores(hidden, mask)
        assert half.dtype == torch.float16
        want = TaskModel(trunk, run.branch(name)[0]).scores(ids, types, mask)
        torch.testing.assert_close(half.float(), want, atol=2e-2, rtol=0)


def test_gpu_check_times_a_runs_own_modules_on_cpu(tiny_run, tmp_path, capsys):
    tasks = json.loads((tiny_run / "run.json").read_text())["tasks"]
    group = f"pair={tasks[0]},{tasks[1]}"
    args = ["gpu-check", *FAST, "--run-dir", str(tiny_run), "--group", group, "--out", str(tmp_path)]
    assert main(args) == 0
    result = json.loads((tmp_path / "gpu-check.json").read_text())
    assert result["device"]["type"] == "cpu" and result["device"]["name"].startswith("CPU")
    assert result["source"] == {"kind": "run", "run_dir": str(tiny_run), "backbone": "tiny-test-bert"}
    assert list(result["tasks"]) == tasks and result["groups"] == {"pair": tasks[:2]}
    assert [r["batch"] for r in result["rows"]] == [1, 3] and result["precision"] == "fp32"
    _check_result(result)
    assert (tmp_path / "gpu-check.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "one task (mean)" in printed and "group pair (2)" in printed and "multitask" in printed


def test_gpu_check_times_a_synthetic_shape_on_cpu(tmp_path):
    args = ["gpu-check", *FAST, "--synthetic", "--shape", "4x32", "--tasks", "7", "--depths", "1,2"]
    assert main([*args, "--task-layers", "1,2", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu-check.json").read_text())
    shape = {"name": "4x32", "layers": 4, "hidden": 32, "heads": 1, "intermediate": 128}
    assert result["source"]["shape"] == shape and result["num_layers"] == 4
    # task k: depth depths[k % 2], layers task_layers[(k // 2) % 2]
    assert [(t["depth"], t["layers"]) for t in result["tasks"].values()] == [
        (1, 1),
        (2, 1),
        (1, 2),
        (2, 2),
        (1, 1),
        (2, 1),
        (1, 2),
    ]
    groups = result["groups"]
    assert groups["shallow"] == ["t00", "t02"] and groups["deep"] == ["t01", "t03", "t05"]
    assert groups["mixed4"] == ["t00", "t01", "t02", "t03"] and len(groups["mixed6"]) == 6
    _check_result(result)
    shallow = next(q for q in result["rows"][0]["requests"] if q["name"] == "shallow")
    assert shallow["segments"] == 1  # a request for shallow tasks stops at the first depth
    # t00 and t05 have one label shape (labels cycle with period 5): one full model, timed once
    assert result["rows"][0]["full_ms"]["t00"] == result["rows"][0]["full_ms"]["t05"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shape", "huge"], "--shape must be one of"),
        (["--depths", "3", "--task-layers", "2"], "must have >= 1 layer and fit in the 4 layers"),
        (["--group", "g=t00,t99"], "--group: groups.g: task(s) ['t99'] not deployed"),
        (["--group", "solo=t00"], "two or more distinct tasks"),
        (["--batches", "0"], "must be >= 1"),
    ],
)
def test_bad_gpu_check_flags_are_clear_errors(args, message, tmp_path, capsys):
    base = [
        "gpu-check",
        *FAST,
        "--synthetic",
        "--shape",
        "4x32",
        "--tasks",
        "2",
        "--depths",
        "1",
        "--task-layers",
        "1",
    ]
    base += ["--out", str(tmp_path)]
    if args[0] == "--shape":
        base[base.index("4x32") - 1 : base.index("4x32") + 1] = []
    assert main([*base, *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "gpu-check.json").exists()
