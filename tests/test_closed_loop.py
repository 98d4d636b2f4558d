"""The one closed-loop driver the scripts and the reliability harness share (loadtest/closed_loop.py): callers
sending as soon as they are answered, over real gRPC to the session's Triton, failures kept with their status."""

from __future__ import annotations

import itertools
import time

import pytest

from mtserve.loadtest import protocol
from mtserve.loadtest.closed_loop import closed_loop, utterance_caller
from mtserve.loadtest.workload import build_pool
from mtserve.serving.endpoint import Endpoint

POOL = build_pool(size=20)


def _caller(url: str, plan: protocol.Plan, workload: str, users: int):
    def make(k: int):  # caller k sends utterances k, k + users, ...
        order = itertools.count(k, users)
        return utterance_caller(url, plan, workload, lambda: POOL[next(order) % len(POOL)], timeout=30)

    return make


@pytest.mark.triton
@pytest.mark.parametrize("workload", protocol.WORKLOADS)
def test_the_loop_sends_each_workload_as_the_load_test_does(triton, workload):
    url = triton.grpc_url
    plan = protocol.make_plan(url)
    models = plan.models(workload)
    before = protocol.server_statistics(Endpoint(url))
    run = closed_loop(2, 1.0, _caller(url, plan, workload, 2))
    after = protocol.server_statistics(Endpoint(url))
    ok = run.ok()
    assert ok and not run.failed() and run.users == 2
    assert run.elapsed >= 1.0 and run.utterances_per_s == pytest.approx(len(ok) / run.elapsed)
    assert 0 < run.percentile_ms(50) <= run.percentile_ms(99)
    for model in models:  # one call per model per utterance: Triton answered each model every utterance
        assert after[model]["success"][0] - before[model]["success"][0] == len(ok), model


@pytest.mark.triton
def test_failures_are_kept_with_their_status(triton):
    plan = protocol.Plan(["no_such_task"], {protocol.single_model("no_such_task"): []})
    run = closed_loop(1, 0.5, _caller(triton.grpc_url, plan, protocol.PER_TASK, 1))
    assert run.calls and not run.ok() and run.percentile_ms(99) is None
    assert {c.code for c in run.failed()} - {"OK"} == {c.code for c in run.calls}
    assert all("single_no_such_task" in c.detail for c in run.failed())


def test_warmup_is_not_recorded_and_a_callers_bug_is_raised():
    t0 = time.monotonic()
    run = closed_loop(2, 0.3, lambda k: lambda: time.sleep(0.02), warmup=0.2)
    assert run.calls and all(c.start >= t0 + 0.2 for c in run.calls)
    assert all(c.code == "OK" and c.latency >= 0.02 for c in run.calls)

    def broken(k: int):
        return lambda: {}["no such key"]

    with pytest.raises(KeyError):
        closed_loop(2, 0.2, broken)
