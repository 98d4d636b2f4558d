"""The capacity search's numbers a planner bets on: the stability rule of a step (loadtest/stability.py), the
intervals of the maximum rates and the saving, and replicas with headroom (loadtest/sizing.py)."""

from __future__ import annotations

import math

import pytest

from mtserve.loadtest import stability
from mtserve.loadtest.capacity import SHORT, SearchConfig, reduction_interval
from mtserve.loadtest.search import Budget, RateSearch, Step, alternate, judge
from mtserve.loadtest.sizing import UTILISATION, replicas, sizing


def w(rps: float, p99: float, errors: int = 0, count: int = 300) -> dict:
    return {"achieved_rps": rps, "p99_ms": p99, "errors": errors, "count": count}


# ---------------------------------------------------------------- the stability rule
def test_three_agreeing_windows_are_stable_and_fewer_are_not_yet():
    slo = 200.0
    assert stability.verdict([w(100, 150)], slo)[0] == stability.MORE
    assert stability.verdict([w(100, 150), w(101, 160)], slo)[0] == stability.MORE
    # served 100..104 (4% apart), p99 150..165: 15 ms over max(150, 200) = 7.5%
    state, why = stability.verdict([w(100, 150), w(104, 165), w(102, 158)], slo)
    assert state == stability.STABLE and "4%" in why and "8%" in why


def test_p99_spread_is_relative_at_or_above_the_slo_and_against_the_slo_below_it():
    # both far below the SLO: 9 against 12 ms is 3 ms of 200, agreement (perf_analyzer's max/min would say 33%)
    assert stability.spread([w(50, 9), w(50, 12), w(50, 10)], 200.0) == (0.0, pytest.approx(0.015))
    # at the SLO: 200 against 230 ms is 15% of the lower one: perf_analyzer's rule exactly
    rate, p99 = stability.spread([w(50, 200), w(50, 230), w(50, 215)], 200.0)
    assert p99 == pytest.approx(0.15) and stability.verdict([w(50, 200), w(50, 230), w(50, 215)], 200.0)[
        0
    ] == (stability.MORE)
    # the served rates: 90 against 100 is 11% apart
    assert stability.spread([w(90, 50), w(100, 50), w(95, 50)], 200.0)[0] == pytest.approx(1 / 9)
    assert stability.spread([w(0, 50), w(100, 50), w(95, 50)], 200.0) == (math.inf, math.inf)


def test_only_the_last_three_windows_count_and_the_step_ends_unstable_at_the_limit():
    noisy_then_calm = [w(100, 120), w(100, 190), w(100, 150), w(100, 152), w(100, 149)]
    states = [stability.verdict(noisy_then_calm[: i + 1], 200.0, max_windows=5)[0] for i in range(5)]
    assert states == [stability.MORE, stability.MORE, stability.MORE, stability.MORE, stability.STABLE]
    swinging = [w(100, 120), w(100, 190), w(100, 120), w(100, 190)]
    state, why = stability.verdict(swinging, 200.0, max_windows=4)
    assert state == stability.UNSTABLE and "4 windows" in why
    assert stability.pooled(swinging, state) == swinging[-3:]


def test_errors_and_a_doomed_p99_end_a_step_at_once():
    assert stability.verdict([w(100, 50, errors=2)], 200.0)[0] == stability.FAILED
    state, why = stability.verdict([w(100, 150), w(100, 401)], 200.0)
    assert state == stability.FAILED and "401 ms" in why
    assert stability.pooled([w(100, 150), w(100, 401)], state) == [w(100, 150), w(100, 401)]
    # one window needed (--stable-windows 1): the first window decides, as the search did before
    assert stability.verdict([w(100, 150)], 200.0, need=1)[0] == stability.STABLE


def test_an_unstable_step_fails_even_under_the_slo():
    base = dict(
        workload="w", offered_rps=100.0, achieved_rps=100.0, count=900, errors=0, p50_ms=5.0, p99_ms=80.0
    )
    ok = judge(Step(**base, duration_s=9.0, stability=stability.STABLE), 200.0)
    assert ok.passed
    bad = judge(
        Step(**base, duration_s=9.0, stability=stability.UNSTABLE, stability_reason="p99s 40% apart"), 200.0
    )
    assert not bad.passed and "unstable" in bad.reason and "40%" in bad.reason


def test_search_config_checks_the_window_rule():
    assert SearchConfig().stable_windows == 3 and SearchConfig().stability_tolerance == 0.1
    assert SHORT["max_windows"] >= 3
    with pytest.raises(Exception, match="max-windows"):
        SearchConfig(stable_windows=3, max_windows=2)
    with pytest.raises(Exception, match="tolerance"):
        SearchConfig(stability_tolerance=0)


# ---------------------------------------------------------------- intervals
def step(rate: float, passed: bool, windows: list[dict]) -> Step:
    st = Step(
        "w", rate, sum(x["achieved_rps"] for x in windows) / len(windows), 900, 0, 5.0, 0.0, duration_s=9.0
    )
    st.windows, st.stability = windows, stability.STABLE
    st.p99_ms = max(x["p99_ms"] for x in windows)
    st.passed, st.reason = passed, "ok" if passed else "p99"
    return st


def test_max_rate_interval_runs_from_the_slowest_window_to_the_lowest_failing_rate():
    s = RateSearch(100, 1, 1000, rel_tol=0.1)
    s.record(step(100, True, [w(99, 80), w(100, 90), w(101, 85)]))
    s.record(step(200, False, [w(180, 400)]))
    s.record(step(141, True, [w(138, 150), w(141, 170), w(140, 160)]))
    s.record(step(168, False, [w(160, 260), w(161, 280), w(160, 270)]))
    r = s.result()
    assert r["max_rps"] == pytest.approx(139.667, abs=1e-3)
    assert (
        r["max_rps_interval"] == [138, 168] and r["p99_ms_interval"] == [150, 170] and r["failed_rps"] == 168
    )
    # nothing failed above it (a budget stopped the search): the step's own windows bound it
    s = RateSearch(100, 1, 1000)
    s.record(step(100, True, [w(99, 80), w(100, 90), w(103, 85)]))
    assert s.result()["max_rps_interval"] == [99, 103]


def test_saving_interval_combines_the_two_capacities():
    lo, hi = reduction_interval([140.0, 160.0], [50.0, 55.0])
    assert lo == pytest.approx(1 - 55 / 140) and hi == pytest.approx(1 - 50 / 160)
    assert reduction_interval([0.0, 10.0], [5.0, 6.0]) is None


def test_steps_left_counts_the_bisections_to_the_tolerance():
    s = RateSearch(100, 1, 1000, growth=2.0, rel_tol=0.1, max_steps=20)
    assert s.steps_left() == 1 + 3  # a bracket, then 2 -> 1.41 -> 1.19 -> 1.09
    s.record(step(100, True, [w(100, 50)]))
    s.record(step(200, False, [w(200, 500)]))
    assert s.steps_left() == 3
    alternate({"w": s}, lambda _w, r: step(r, r <= 150, [w(r, 50)]), lambda _w, r: (1.0, 1), Budget())
    assert s.steps_left() == 0 and len(s.steps) == 5 and s.outcome == "converged"


# ---------------------------------------------------------------- replicas with headroom
def test_replicas_at_seventy_percent_utilisation():
    assert UTILISATION == 0.7  # what tests/reliability/test_soak.py holds
    assert replicas(1000, 150, 1.0) == 7 and replicas(1000, 150, 0.7) == 10  # 1000 / 105 = 9.5
    assert replicas(105, 150, 0.7) == 1 and replicas(106, 150, 0.7) == 2
    assert replicas(1000, 0.0, 0.7) is None
    with pytest.raises(ValueError):
        replicas(1000, 150, 1.5)


def test_sizing_both_ways_with_the_interval():
    capacity = {
        "multitask": {"max_rps": 150.0, "max_rps_interval": [140.0, 165.0]},
        "per_task": {"max_rps": 50.0, "max_rps_interval": [48.0, 55.0]},
    }
    s = sizing(capacity, 1000.0)
    # multitask: 1000 / (0.7 x 150) = 9.5 -> 10; interval 1000 / 115.5 = 8.7 -> 9 .. 1000 / 98 = 10.2 -> 11
    assert s["multitask"] == {"replicas": 10, "replicas_interval": [9, 11]}
    # per-task: 1000 / 35 = 28.6 -> 29; 1000 / 38.5 = 26.0 -> 26 .. 1000 / 33.6 = 29.8 -> 30
    assert s["per_task"] == {"replicas": 29, "replicas_interval": [26, 30]}
    assert s["saving"] == pytest.approx(1 - 10 / 29)
    assert s["saving_interval"] == [pytest.approx(1 - 11 / 26), pytest.approx(1 - 9 / 30)]
    assert sizing(capacity, 1000.0, utilisation=1.0)["multitask"]["replicas"] == 7
    none = sizing({"multitask": {"max_rps": 0.0}, "per_task": {"max_rps": 50.0}}, 100.0)
    assert (
        none["multitask"]["replicas"] is None and none["saving"] is None and none["saving_interval"] is None
    )
