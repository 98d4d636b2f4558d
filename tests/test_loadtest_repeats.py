"""`mtserve loadtest --repeats N` (loadtest/repeats.py): N whole searches, reported as the median one with every
repeat's figures beside it; each repeat's own reports kept."""

from __future__ import annotations

import json

import pytest

from mtserve.loadtest.capacity import SHORT, CapacitySearchConfig
from mtserve.loadtest.repeats import median_repeat, repeats_summary, run_repeats


def test_the_median_repeat_is_the_middle_saving_and_an_undefined_one_sorts_lowest():
    assert median_repeat([0.61, 0.46, 0.67, 0.65, 0.64]) == 4  # 0.46 0.61 0.64 0.65 0.67: the middle is 0.64
    assert median_repeat([0.6, None, 0.5, 0.7]) == 2  # None 0.5 0.6 0.7: the lower middle is 0.5
    assert median_repeat([None]) == 0
    caps = [
        {"cost_reduction": s, "multitask": {"max_rps": mt}, "per_task": {"max_rps": pt}}
        for s, mt, pt in ((0.647, 168.2, 59.4), (0.460, 112.3, 60.7), (0.671, 162.0, 53.3))
    ]
    rep = repeats_summary(caps, median_repeat([c["cost_reduction"] for c in caps]))
    assert rep["median_repeat"] == 1 and rep["cost_reduction_range"] == [0.46, 0.671]
    assert rep["farthest_from_median_points"] == pytest.approx(18.7)
    assert rep["per_task_max_rps"] == [59.4, 60.7, 53.3] and rep["folders"] == [
        "repeats/1",
        "repeats/2",
        "repeats/3",
    ]


def test_repeats_and_a_cross_check_are_refused_together():
    from mtserve.cli import main

    assert main(["loadtest", "--url", "127.0.0.1:1", "--repeats", "3", "--cross-check"]) == 2
    assert main(["loadtest", "--url", "127.0.0.1:1", "--repeats", "0"]) == 2


@pytest.mark.triton
def test_three_repeats_report_the_median_search_and_keep_every_repeat(triton, tmp_path):
    # one window a step, two steps a workload, no paired check: a few seconds a repeat on the tiny repository
    cfg = CapacitySearchConfig(
        **{
            **SHORT,
            "slo_p99_ms": 1000.0,
            "start_factor": 0.5,
            "max_steps": 2,
            "stable_windows": 1,
            "max_windows": 1,
            "paired_rounds": 0,
            "min_duration_s": 1.0,
            "max_duration_s": 1.0,
            "min_samples": 10,
            "warmup_s": 0.3,
            "probe_n": 2,
            "max_time_s": 30.0,
        }
    )
    lines: list[str] = []
    result = run_repeats(
        3,
        url=triton.grpc_url,
        out_dir=tmp_path,
        cfg=cfg,
        registry_path=triton.repo / "registry.json",
        log=lines.append,
    )
    cap = json.loads((tmp_path / "capacity.json").read_text())
    rep = cap["repeats"]
    assert rep["n"] == 3 and len(rep["cost_reduction"]) == 3 and 1 <= rep["median_repeat"] <= 3
    chosen = json.loads((tmp_path / "repeats" / str(rep["median_repeat"]) / "capacity.json").read_text())
    # the top-level report is the median repeat's own, plus `repeats`
    assert {k: v for k, v in cap.items() if k != "repeats"} == chosen
    assert cap["cost_reduction"] == sorted(rep["cost_reduction"])[1]
    assert cap["multitask"]["max_rps"] == rep["multitask_max_rps"][rep["median_repeat"] - 1] > 0
    assert result["capacity"]["repeats"] == rep
    for i in (1, 2, 3):
        assert (tmp_path / "repeats" / str(i) / "capacity_steps.json").stat().st_size > 0
        assert f"loadtest: repeat {i} of 3" in lines
    md = (tmp_path / "capacity.md").read_text()
    assert f"## 3 repeats: this report is repeat {rep['median_repeat']}, the median saving" in md
    assert f"| {rep['median_repeat']} (median) |" in md
