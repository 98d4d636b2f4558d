"""The load test: the search logic on a fake server, the utterance pool, the reports, synthetic repositories,
and Locust headless against the real local Triton (the `triton` fixture) for both workloads, plus the
bad-configuration errors (unreachable address, missing model, an SLO no rate meets)."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtserve.core.errors import UserError
from mtserve.loadtest import protocol
from mtserve.loadtest.capacity import (
    SHORT,
    CapacitySearchConfig,
    placement,
    preflight,
    run_capacity,
    short_capacity,
)
from mtserve.loadtest.locust_driver import LocustWorker
from mtserve.loadtest.rate_search import NO_RATE_MEETS_SLO, Budget, RateSearch, Step, alternate, judge
from mtserve.loadtest.workload import build_pool, parse_mix, parse_words


@pytest.fixture(scope="module")
def triton(tiny_repo):
    """The load tests' own Triton: they push it to overload on purpose, and a backlog left in its queues must
    not slow the session-wide server other modules use."""
    from mtserve.serving.triton import TritonServer

    server = TritonServer(tiny_repo)
    server.start()
    yield server
    server.stop()


ROOT = Path(__file__).resolve().parent.parent
SCHEMA = {
    "tasks",
    "slo_p99_ms",
    "multitask",
    "per_task",
    "cost_reduction",
    "cost_reduction_interval",
    "ideal_cost_reduction",
    "sizing",
}


# ---------------------------------------------------------------- the search, on a fake server
def queueing_server(capacity: dict[str, float], base_ms: float = 10.0, calls: list | None = None):
    """p99 = base / (1 - load): with SLO 100 ms and base 10 ms a rate passes iff rate <= 0.9 x capacity."""

    def measure(workload: str, rate: float) -> Step:
        if calls is not None:
            calls.append((workload, rate))
        load = min(rate / capacity[workload], 0.999)
        p99 = base_ms / (1 - load)
        return judge(Step(workload, rate, rate, 500, 0, p99 / 2, p99, duration_s=5.0), 100.0)

    return measure


def free_cost(_w, rate):
    return 1.0, int(rate)


def test_search_finds_the_highest_passing_rate_for_each_workload_alternating():
    calls: list = []
    searches = {
        "multitask": RateSearch(10, 0.25, 5000, rel_tol=0.05, max_steps=20),
        "per-task": RateSearch(10, 0.25, 5000, rel_tol=0.05, max_steps=20),
    }
    alternate(
        searches, queueing_server({"multitask": 400.0, "per-task": 150.0}, calls=calls), free_cost, Budget()
    )
    for name, cap in (("multitask", 400.0), ("per-task", 150.0)):
        r = searches[name].result()
        assert r["outcome"] == "converged"
        assert 0.9 * cap / 1.05 <= r["max_rps"] <= 0.9 * cap + 1e-9
        assert r["steps"] <= 20
    # alternating: while both run, the workloads take turns
    both = min(len(searches["multitask"].steps), len(searches["per-task"].steps))
    assert [w for w, _ in calls[: 2 * both]] == ["multitask", "per-task"] * both


def test_search_reports_no_rate_when_the_slo_cannot_be_met():
    def always_slow(workload, rate):
        return judge(Step(workload, rate, rate, 100, 0, 900.0, 1000.0, duration_s=5.0), 100.0)

    s = RateSearch(64, 0.25, 1000)
    alternate({"multitask": s}, always_slow, free_cost, Budget())
    r = s.result()
    assert r["max_rps"] == 0.0 and r["outcome"] == NO_RATE_MEETS_SLO
    assert r["p99_ms"] == 1000.0
    assert len(s.steps) == 9  # 64, 32, ... 0.25: bounded by min_rate
    assert s.steps[-1].offered_rps == 0.25


def test_search_is_bounded_by_max_rate_steps_and_budgets():
    s = RateSearch(10, 0.25, 100)
    alternate({"w": s}, queueing_server({"w": 1e9}), free_cost, Budget())
    assert s.result()["max_rps"] == 100 and s.outcome.startswith("capped")

    s = RateSearch(1, 0.25, 1e6, max_steps=3)
    alternate({"w": s}, queueing_server({"w": 1e9}), free_cost, Budget())
    assert len(s.steps) == 3 and "step limit" in s.outcome

    searches = {"a": RateSearch(10, 0.25, 1e6), "b": RateSearch(10, 0.25, 1e6)}
    budget = Budget(max_requests=100)
    alternate(searches, queueing_server({"a": 1e9, "b": 1e9}), lambda w, r: (1.0, int(r)), budget)
    assert all("request budget" in s.outcome for s in searches.values())
    assert 0 < budget.requests <= 100

    s = RateSearch(10, 0.25, 1e6)
    alternate({"w": s}, queueing_server({"w": 1e9}), lambda w, r: (60.0, 1), Budget(max_seconds=30))
    assert not s.steps and "time budget" in s.outcome


def test_noisy_measurements_never_put_a_pass_above_a_fail():
    rng = random.Random(3)
    for _ in range(50):
        s = RateSearch(rng.uniform(1, 100), 0.25, 1e4, max_steps=12)

        def coin(w, rate):
            ok = rng.random() < 0.5
            return Step(
                w, rate, rate, 100, 0, 1.0, 1.0, duration_s=1.0, passed=ok, reason="ok" if ok else "noise"
            )

        alternate({"w": s}, coin, free_cost, Budget())
        passes = [st.offered_rps for st in s.steps if st.passed]
        fails = [st.offered_rps for st in s.steps if not st.passed]
        if passes and fails:
            assert max(passes) < min(fails)
        assert len(s.steps) <= 12


def test_judge_needs_no_errors_the_slo_and_the_offered_rate():
    def step(**kw):
        base = dict(
            workload="w",
            offered_rps=100.0,
            achieved_rps=100.0,
            count=500,
            errors=0,
            p50_ms=5.0,
            p99_ms=50.0,
            duration_s=5.0,
        )
        return judge(Step(**{**base, **kw}), 100.0)

    assert step().passed
    assert not step(errors=1).passed and "error" in step(errors=1).reason
    assert not step(p99_ms=150.0).passed and "SLO" in step(p99_ms=150.0).reason
    assert not step(p99_ms=float("nan")).passed
    assert not step(achieved_rps=50.0).passed and "fell behind" in step(achieved_rps=50.0).reason
    assert not step(count=0).passed


def test_search_config_bounds_users_duration_and_warmup():
    cfg = CapacitySearchConfig(
        slo_p99_ms=200, max_users=50, min_duration_s=2, max_duration_s=10, min_samples=100
    )
    assert cfg.users(1.0) == 1 and cfg.users(100) == 40 and cfg.users(1e6) == 50
    assert cfg.duration(1000) == 2 and cfg.duration(20) == 5 and cfg.duration(1) == 10
    assert cfg.warmup(0.25) <= cfg.warmup_s + 5
    assert 2.0 <= cfg.timeout_s <= 30.0
    with pytest.raises(UserError):
        CapacitySearchConfig(slo_p99_ms=0)
    with pytest.raises(UserError):
        CapacitySearchConfig(min_rps=5, max_rps=1)


# ---------------------------------------------------------------- utterances
def test_pool_draws_from_weighted_sources_and_resizes(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("alpha beta gamma\n\nfirst half\tsecond half\n")
    pool = build_pool([str(f)], size=50, seed=1)
    assert {u.text for u in pool} <= {"alpha beta gamma", "first half"}
    assert all(u.pair == "second half" for u in pool if u.text == "first half")
    pool = build_pool(["corpus", str(f)], mix="0,1", words="6", size=30, seed=2)
    assert all(len(u.text.split()) == 6 for u in pool)
    assert all(set(u.text.split()) <= {"alpha", "beta", "gamma", "first", "half"} for u in pool)
    pool = build_pool(["corpus"], words="3:40", size=200, seed=3)
    assert min(len(u.text.split()) for u in pool) >= 3 and max(len(u.text.split()) for u in pool) > 20
    assert parse_words("natural") is None and parse_words("8:16") == (8, 16)
    for bad in ("0", "9:3", "x"):
        with pytest.raises(UserError):
            parse_words(bad)
    with pytest.raises(UserError):
        parse_mix(["corpus"], "1,2")
    with pytest.raises(UserError):
        build_pool([str(tmp_path / "missing.txt")])


# ---------------------------------------------------------------- reports
def _fake_result(mt: float, pt: float) -> dict:
    steps = [
        Step("multitask", 10, 10, 50, 0, 5, 9, passed=True, reason="ok").to_dict(),
        Step("per-task", 10, 10, 50, 0, 7, 150, passed=False, reason="p99").to_dict(),
    ]
    return {
        "capacity": {
            "tasks": 3,
            "slo_p99_ms": 100.0,
            "multitask": {"max_rps": mt, "p99_ms": 9.0},
            "per_task": {"max_rps": pt, "p99_ms": 80.0},
            "cost_reduction": 1 - pt / mt,
            "ideal_cost_reduction": 0.5,
        },
        "details": {
            "url": "127.0.0.1:1",
            "per_task_url": "127.0.0.1:1",
            "task_names": ["a", "b", "c"],
            "backbone": "fake",
            "num_layers": 4,
            "layers_served": 6,
            "layers_baseline": 12,
            "settings": CapacitySearchConfig().__dict__,
            "probe": {"multitask": {"p50_ms": 5.0}, "per-task": {"p50_ms": 7.0}},
            "results": {
                "multitask": {"steps": 1, "outcome": "converged"},
                "per_task": {"steps": 1, "outcome": "converged"},
            },
            "steps": steps,
            "notes": ["a note"],
            "wall_s": 1.0,
        },
    }


def test_reports_hold_the_schema_replicas_and_plots(tmp_path):
    from mtserve.loadtest.capacity_report import write_capacity_reports, write_sweep_reports

    paths = write_capacity_reports(_fake_result(400.0, 100.0), tmp_path, target_rps=1000)
    cap = json.loads(paths["capacity.json"].read_text())
    assert set(cap) <= SCHEMA | {"server"} and cap["cost_reduction"] == pytest.approx(0.75)
    # at 70% utilisation: 1000 / (0.7 x 400) = 3.6 -> 4 replicas, 1000 / (0.7 x 100) = 14.3 -> 15
    assert cap["sizing"]["multitask"]["replicas"] == 4 and cap["sizing"]["per_task"]["replicas"] == 15
    md = paths["capacity.md"].read_text()
    assert "| 1000 | 4 | 4 | 15 | 15 | 73% | 73% to 73% |" in md and "a note" in md
    assert paths["latency_vs_rate.png"].stat().st_size > 1000
    write_sweep_reports(
        [{"tasks": 2, "cost_reduction": 0.3, "ideal_cost_reduction": 0.4, "backbone": "x"}], tmp_path
    )
    write_sweep_reports(
        [
            {"tasks": 4, "cost_reduction": 0.5, "ideal_cost_reduction": 0.6, "backbone": "x"},
            {"tasks": 2, "cost_reduction": 0.35, "ideal_cost_reduction": 0.4, "backbone": "x"},
        ],
        tmp_path,
    )
    points = json.loads((tmp_path / "cost_vs_tasks.json").read_text())
    assert [(p["tasks"], p["cost_reduction"]) for p in points] == [(2, 0.35), (4, 0.5)]
    assert set(points[0]) == {"tasks", "cost_reduction", "ideal_cost_reduction", "backbone"}
    assert (tmp_path / "cost_vs_tasks.png").stat().st_size > 1000


# ---------------------------------------------------------------- synthetic repositories
@pytest.mark.slow
def test_synthetic_repository_has_n_heads_of_real_shape(tmp_path, monkeypatch):
    from mtserve.export import synthetic
    from mtserve.export.model_config import read_config
    from mtserve.serving import memory

    monkeypatch.setattr(synthetic, "LABEL_COUNTS", (2, 0))  # two head shapes: fewer exports, one clone
    tiny = synthetic.Shape("tiny", 3, 32, 4, 37, 2, (1,))
    reg = synthetic.build_synthetic_repo(tmp_path / "repo", 3, tiny, max_length=32, log=lambda *_: None)
    repo = tmp_path / "repo"
    assert list(reg.tasks) == ["t00", "t01", "t02"] and reg.trunk.layers == 2
    assert (
        json.loads((repo / "registry.json").read_text())["tasks"]["t01"]["labels"] is None
    )  # a regression task
    mt = read_config(repo / "multitask_graph")
    assert {s.model_name for s in mt.ensemble_scheduling.step} == {"tokenizer", "trunk_0_2", *reg.tasks}
    assert [s.model_name for s in read_config(repo / "multitask").ensemble_scheduling.step] == [
        "multitask_graph"
    ]
    # t02 has t00's shape: exported once, hard-linked, renamed
    assert (repo / "t02/1/model.onnx").stat().st_ino == (repo / "t00/1/model.onnx").stat().st_ino
    assert read_config(repo / "full_t02").name == "full_t02" and (repo / "single_t02/config.pbtxt").is_file()
    est = memory.estimate_repository(repo)
    # tokenizer 1, the trunk's one segment 2, 3 heads of 2, 3 full models of 2 (DEFAULT_INSTANCES)
    assert est.processes == 1 + 2 + 3 * 2 + 3 * 2 and est.weight_bytes > 0

    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)
    with pytest.raises(UserError, match="GiB"):
        synthetic.build_synthetic_repo(tmp_path / "big", 21, "bert-base")
    from mtserve import bench

    with pytest.raises(UserError, match="not enough memory"):
        bench.check_sweep_memory([(2, "demo"), (21, "bert-base")], skip_unfit=False)
    assert (
        bench.check_sweep_memory([(2, "demo"), (21, "bert-base")], skip_unfit=True, log=lambda *_: None) == []
    )


# ---------------------------------------------------------------- bad configuration, no server needed
def test_unreachable_url_fails_fast_with_a_clear_error():
    from mtserve.cli import main
    from mtserve.serving.triton import free_port

    url = f"127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(UserError, match=f"cannot reach Triton at {url}"):
        run_capacity(url=url, out_dir=None)
    assert main(["loadtest", "--url", url]) == 3  # unreachable (docs/exit-codes.md)
    assert time.monotonic() - t0 < 10
    with pytest.raises(UserError, match="HOST:PORT"):
        preflight("localhost")
    with pytest.raises(UserError, match="not found"):
        run_capacity(repo="/nonexistent/repository", out_dir=None)


# ---------------------------------------------------------------- against the real local Triton
@pytest.mark.triton
def test_locustfile_runs_headless_with_both_workloads(triton, tmp_path):
    """The `locust` command itself, on the locustfile: both user classes, every call recorded, no failures."""
    cmd = [
        str(Path(sys.executable).parent / "locust"),
        "-f",
        str(ROOT / "loadtest" / "locustfile.py"),
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "4s",
        "--host",
        triton.grpc_url,
        "--throughput",
        "3",
        "--csv",
        str(tmp_path / "run"),
        "--only-summary",
        "--exit-code-on-error",
        "1",
        "--stop-timeout",
        "5",
        "MultitaskUser",
        "PerTaskUser",
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(open(tmp_path / "run_stats.csv"))}
    tasks = json.loads((triton.repo / "registry.json").read_text())["tasks"]
    expected = [("utterance", "multitask"), ("utterance", "per-task"), ("grpc", "multitask")]
    expected += [("grpc", f"single_{t}") for t in tasks]
    for key in expected:
        assert key in rows, f"no stats for {key}: {sorted(rows)}"
        assert int(rows[key]["Request Count"]) > 0 and int(rows[key]["Failure Count"]) == 0
        assert float(rows[key]["Average Response Time"]) > 0
    # an utterance of the per-task workload is one call per task
    calls = int(rows[("grpc", f"single_{next(iter(tasks))}")]["Request Count"])
    assert abs(calls - int(rows[("utterance", "per-task")]["Request Count"])) <= 1


@pytest.mark.triton
def test_worker_measures_both_workloads_at_a_paced_rate(triton):
    plan = preflight(triton.grpc_url)
    pool = build_pool(size=100)
    with LocustWorker() as worker:
        worker.call(
            {
                "op": "setup",
                "url": triton.grpc_url,
                "per_task_url": triton.grpc_url,
                "plan": plan.to_dict(),
                "utterances": [u.to_list() for u in pool],
                "timeout": 10.0,
            },
            timeout=60,
        )
        for workload in protocol.WORKLOADS:
            r = worker.call(
                {
                    "op": "measure",
                    "workload": workload,
                    "rate": 20.0,
                    "users": 4,
                    "duration": 2.0,
                    "warmup": 1.0,
                    "spawn": 0.5,
                },
                timeout=60,
            )
            assert r["errors"] == 0, r["error_examples"]
            assert r["count"] >= 20 and 10 <= r["achieved_rps"] <= 30  # paced at 20/s
            assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
            assert set(r["models"]) == set(plan.models(workload))
            assert all(m["count"] == r["count"] and m["errors"] == 0 for m in r["models"].values())


def test_placement_keeps_the_last_cpus_for_the_load_generator(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert placement(1) == ({0, 1, 2}, {3})
    assert placement(2) == ({0, 1}, {2, 3})
    assert placement(0) == (None, None)  # share every CPU
    assert placement(4) == (None, None)  # nothing left for the server: share


@pytest.mark.triton
def test_a_local_server_and_its_load_generator_run_on_the_cpus_they_are_given(tiny_repo):
    from mtserve.serving.triton import TritonServer
    from mtserve.serving.watchdog import stub_processes

    usable = sorted(os.sched_getaffinity(0))
    server_cpus, generator_cpus = {usable[0]}, {usable[-1]}
    with TritonServer(tiny_repo, cpus=server_cpus) as server:
        tree = [server.pid] + [stub.pid for stub in stub_processes(server.pid)]
        assert len(tree) > 2  # tritonserver and its python-backend stubs
        assert {p: os.sched_getaffinity(p) for p in tree} == dict.fromkeys(tree, server_cpus)
    with LocustWorker(frozenset(generator_cpus)) as worker:
        assert os.sched_getaffinity(worker.proc.pid) == generator_cpus


@pytest.mark.triton
def test_a_local_capacity_search_keeps_a_cpu_for_locust_and_says_so(tiny_repo, tmp_path):
    usable = sorted(os.sched_getaffinity(0))
    result = run_capacity(
        repo=tiny_repo,
        out_dir=tmp_path,
        cfg=CapacitySearchConfig(**{**SHORT, "slo_p99_ms": 0.01}),  # no rate meets it: a short run
        log=lambda *_: None,
        load_generator_cpus=1,
    )
    cpus = json.loads((tmp_path / "capacity_steps.json").read_text())["cpus"]
    md = (tmp_path / "capacity.md").read_text()
    if len(usable) >= 2:  # the last CPU for Locust, the others for Triton
        assert cpus == {"triton": usable[:-1], "load_generator": usable[-1:]} == result["details"]["cpus"]
        assert f"Locust on CPU(s) {usable[-1]}:" in md
    else:
        assert cpus == {"triton": None, "load_generator": None} and "shared every CPU" in md


@pytest.mark.triton
def test_missing_model_is_a_clear_error(triton, monkeypatch):
    with pytest.raises(UserError, match="unknown task"):
        preflight(triton.grpc_url, tasks=["no_such_task"])
    monkeypatch.setattr(protocol, "single_model", lambda task: f"single_{task}_gone")
    with pytest.raises(UserError, match=r"model 'single_\w+_gone' is not available"):
        preflight(triton.grpc_url)
    monkeypatch.setattr(protocol, "MULTITASK", "multitask_gone")
    with pytest.raises(UserError, match="model 'multitask_gone' is not available"):
        preflight(triton.grpc_url)


@pytest.mark.triton
def test_impossible_slo_is_reported_as_no_rate_in_bounded_time(triton, tmp_path):
    t0 = time.monotonic()
    result = run_capacity(
        url=triton.grpc_url,
        out_dir=tmp_path,
        cfg=CapacitySearchConfig(**{**SHORT, "slo_p99_ms": 0.01}),
        registry_path=triton.repo / "registry.json",
        log=lambda *_: None,
    )
    assert time.monotonic() - t0 < 60
    cap = json.loads((tmp_path / "capacity.json").read_text())
    assert set(cap) == SCHEMA | {"server"}
    assert cap["multitask"]["max_rps"] == 0 and cap["per_task"]["max_rps"] == 0
    assert cap["cost_reduction"] is None and cap["multitask"]["p99_ms"] > 0.01
    assert any(NO_RATE_MEETS_SLO in n for n in result["details"]["notes"])
    assert NO_RATE_MEETS_SLO in (tmp_path / "capacity.md").read_text()


@pytest.mark.triton
def test_short_capacity_search_end_to_end(triton, tmp_path):
    registry = json.loads((triton.repo / "registry.json").read_text())
    result = short_capacity(
        triton.grpc_url,
        tmp_path,
        slo_p99_ms=1000.0,
        registry_path=triton.repo / "registry.json",
        max_steps=2,
        start_factor=0.5,  # below the tiny repository's capacity on a busy machine: steps without errors
        min_duration_s=1.5,
        max_duration_s=2.0,
        min_samples=30,
        warmup_s=0.5,
        max_time_s=60.0,
        log=lambda *_: None,
    )
    cap = json.loads((tmp_path / "capacity.json").read_text())
    assert (
        cap == result["capacity"]
        and set(cap) == SCHEMA | {"server"}
        and cap["tasks"] == len(registry["tasks"])
    )
    mt, pt = cap["multitask"]["max_rps"], cap["per_task"]["max_rps"]
    assert mt > 0 and pt > 0 and cap["multitask"]["p99_ms"] <= 1000.0
    assert cap["cost_reduction"] == pytest.approx(1 - pt / mt)
    served = registry["trunk"]["layers"] + sum(t["task_layers"] for t in registry["tasks"].values())
    assert cap["ideal_cost_reduction"] == pytest.approx(
        1 - served / (len(registry["tasks"]) * registry["num_layers"])
    )
    for key in (
        "multitask",
        "per_task",
    ):  # the capacity lies in its interval; the step's windows bound the p99
        lo, hi = cap[key]["max_rps_interval"]
        assert lo <= cap[key]["max_rps"] <= hi
        assert cap[key]["p99_ms_interval"][0] <= cap[key]["p99_ms"] <= cap[key]["p99_ms_interval"][1] + 1e-9
    iv = cap["cost_reduction_interval"]
    assert iv[0] <= cap["cost_reduction"] <= iv[1]
    assert cap["sizing"]["utilisation"] == 0.7 and cap["sizing"]["multitask"]["replicas"] >= 1
    steps = result["details"]["steps"]
    assert [s["workload"] for s in steps[:2]] == ["multitask", "per-task"] and len(steps) <= 4
    for s in steps:  # every step repeated its window until 3 agreed, or said why not (at most 5: SHORT)
        assert 1 <= len(s["windows"]) <= SHORT["max_windows"] and s["stability"] in (
            "stable",
            "unstable",
            "failed",
        )
        if s["stability"] == "stable":
            assert len(s["windows"]) >= 3 and s["count"] == sum(w["count"] for w in s["windows"][-3:])
        if s["stability"] == "unstable":  # judged on every window pooled
            assert s["count"] == sum(w["count"] for w in s["windows"]) and "windows pooled" in s["reason"]
    assert all(s["errors"] == 0 for s in steps) and all(math.isfinite(s["p99_ms"]) for s in steps)
    if sys.platform.startswith("linux"):  # every step says how much CPU the hypervisor took while it ran
        assert all(0 <= s["extra"]["cpu_steal"] <= 1 for s in steps)
        assert "CPU steal on this machine during the steps" in (tmp_path / "capacity.md").read_text()
    for name in ("capacity.md", "latency_vs_rate.png", "capacity_steps.json"):
        assert (tmp_path / name).stat().st_size > 0


def test_time_per_utterance_leaves_out_every_ensemble():
    """multitask_graph (what multitask runs) is an ensemble too: its time spans its steps, counting it would
    charge the trunk and the heads twice."""
    from mtserve.loadtest.capacity_report import time_per_utterance

    models = {
        "multitask": {"requests": 100, "exec_ms_total": 900.0, "queue_ms": 0.0},
        "multitask_graph": {"requests": 100, "exec_ms_total": 800.0, "queue_ms": 0.0},
        "trunk": {"requests": 100, "exec_ms_total": 300.0, "queue_ms": 2.0},
        "intent": {"requests": 100, "exec_ms_total": 100.0, "queue_ms": 1.0},
    }
    got = time_per_utterance(models)
    assert got["utterances"] == 100
    assert got["by_model"] == {"trunk": 3.0, "intent": 1.0}
    assert got["compute_ms"] == 4.0 and got["queue_ms"] == 3.0
