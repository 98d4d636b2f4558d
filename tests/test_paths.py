"""Pay for what you ask: the trunk served as segments, a path per task and per group, and the client routing a
request to the cheapest paths that cover its tasks (core/routing.py), on a real Triton.

The repository: a tiny random BERT of 3 layers (export/synthetic.py), four tasks branching at depths 1 and 2,
one group; so a depth-1 task's request must stop after the first segment."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mtserve.core import routing
from mtserve.core.errors import UserError
from tests.conftest import execution_counts, models_that_ran

TEXTS = ["play some jazz", "book a table for two"]


# ---------------------------------------------------------------- the routing rule alone
def _paths(**costs) -> list[routing.ServedPath]:
    """model=(tasks..., layers)"""
    return [routing.ServedPath(m, tuple(v[:-1]), v[-1]) for m, v in costs.items()]


CATALOGUE = _paths(
    multitask=("a", "b", "c", "d", 12),
    path_a=("a", 5),
    path_b=("b", 6),
    path_c=("c", 9),
    path_d=("d", 10),
    group_ab=("a", "b", 7),
)


@pytest.mark.parametrize(
    "tasks, calls, cost",
    [
        (["a"], [("path_a", ["a"])], 5),
        (["a", "b"], [("group_ab", ["a", "b"])], 7),  # one group beats two paths (5 + 6)
        (["a", "c"], [("multitask", ["a", "c"])], 12),  # every head (12) beats two paths (5 + 9)
        (["b", "a", "c", "d"], [("multitask", ["b", "a", "c", "d"])], 12),
        (["a", "b", "c"], [("multitask", ["a", "b", "c"])], 12),  # group_ab + path_c = 16
    ],
)
def test_plan_is_the_cheapest_cover(tasks, calls, cost):
    got = routing.plan(tasks, CATALOGUE)
    assert [(c.model, list(c.tasks)) for c in got] == calls
    assert routing.cost(got) == cost


def test_plan_names_unknown_tasks_and_covers_every_task_once():
    with pytest.raises(UserError, match=r"unknown task\(s\) \['zz'\]"):
        routing.plan(["a", "zz"], CATALOGUE)
    cheap = _paths(path_a=("a", 2), path_b=("b", 2), group_ab=("a", "b", 3), group_bc=("b", "c", 3))
    got = routing.plan(["a", "b", "c"], cheap)
    assert sorted(t for c in got for t in c.tasks) == [
        "a",
        "b",
        "c",
    ]  # b asked once, though two paths serve it
    assert routing.cost(got) == 5  # path_a + group_bc


# ---------------------------------------------------------------- a repository at two depths
@pytest.fixture(scope="module")
def paths_repo(two_depth_repo):
    return two_depth_repo


def test_export_writes_segments_paths_and_groups(paths_repo):
    from mtserve.core import registry
    from mtserve.export.model_config import read_config
    from mtserve.export.repository_check import check_repository

    reg = registry.load(paths_repo)
    assert reg.trunk.depths == [1, 2] and reg.segments() == [(0, 1), (1, 2)]
    assert {t: e.branch_depth for t, e in reg.tasks.items()} == {"t00": 1, "t01": 2, "t02": 1, "t03": 2}
    assert not (paths_repo / "trunk").exists()
    steps = lambda m: [s.model_name for s in read_config(paths_repo / m).ensemble_scheduling.step]  # noqa: E731
    assert steps("path_t00") == ["tokenizer", "trunk_0_1", "t00"]
    assert steps("path_t01") == ["tokenizer", "trunk_0_1", "trunk_1_2", "t01"]
    assert steps("graph_pair") == ["tokenizer", "trunk_0_1", "t00", "t02"]  # both at depth 1: one segment
    assert steps("group_pair") == ["graph_pair"] and steps("multitask") == ["multitask_graph"]
    assert routing.plan(["t00", "t02"], routing.catalogue(reg))[0].model == "group_pair"
    assert reg.layers_served(["t00"]) == 2 and reg.layers_served(["t00", "t01"]) == 4
    assert check_repository(paths_repo) == []


def test_repository_check_catches_a_path_that_lies_about_its_cost_or_skips_a_segment(paths_repo, tmp_path):
    import shutil

    from mtserve.export.model_config import read_config, write_config
    from mtserve.export.repository_check import check_repository

    repo = tmp_path / "repo"
    shutil.copytree(paths_repo, repo)
    cfg = read_config(repo / "path_t01")
    cfg.parameters[routing.LAYERS_PARAMETER].string_value = "1"
    write_config(cfg, repo / "path_t01")
    cfg = read_config(repo / "graph_mixed")
    del cfg.ensemble_scheduling.step[2]  # trunk_1_2: t01 would read a hidden state nobody produced
    write_config(cfg, repo / "graph_mixed")
    problems = check_repository(repo)
    assert any("path_t01/config.pbtxt" in p and "mtserve_layers='1'" in p for p in problems), problems
    assert any("graph_mixed/config.pbtxt" in p and "trunk_1_2" in p for p in problems), problems


def test_predict_plan_reads_the_registry_and_calls_nothing(paths_repo):
    cmd = [
        sys.executable,
        "-m",
        "mtserve.cli",
        "predict",
        "--plan",
        "--repo",
        str(paths_repo),
        "--url",
        "127.0.0.1:9",
    ]
    out = subprocess.run([*cmd, "--tasks", "t00,t01"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"model": "group_mixed", "tasks": ["t00", "t01"], "layers": 4}]
    out = subprocess.run([*cmd, "--tasks", "t00,nope"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown task(s) ['nope']" in out.stderr


@pytest.mark.triton
def test_the_client_routes_to_the_cheapest_paths_and_only_they_run(paths_repo):
    from mtserve.serving.client import MultitaskClient
    from mtserve.serving.triton import TritonServer

    # as the ServingRuntime runs it: the repository index (which lists models) needs an admin header, so the
    # client finds the paths from `multitask`'s config and each path's readiness
    restricted = ["--grpc-restricted-protocol=model-repository,trace,logging:mtserve-admin=k3y"]
    with TritonServer(
        paths_repo, model_control="explicit", load_models=["*"], extra_args=restricted
    ) as server:
        with MultitaskClient(server.grpc_url) as client:
            every = client.infer(TEXTS)
            assert {p.model for p in client.served_paths()} == {
                "multitask",
                "path_t00",
                "path_t01",
                "path_t02",
                "path_t03",
                "group_pair",
                "group_mixed",
            }
            with pytest.raises(Exception, match="restricted"):
                client.client.get_model_repository_index()
            for tasks, calls, ran in [
                (["t00"], ["path_t00"], {"tokenizer", "trunk_0_1", "t00"}),
                (["t02", "t00"], ["group_pair"], {"tokenizer", "trunk_0_1", "t00", "t02", "graph_pair"}),
                (
                    ["t00", "t03"],
                    ["path_t00", "path_t03"],
                    {"tokenizer", "trunk_0_1", "trunk_1_2", "t00", "t03"},
                ),
            ]:
                assert [c.model for c in client.route(tasks)] == calls
                before = execution_counts(client.client)
                got = client.infer(TEXTS, tasks=tasks)
                assert list(got) == tasks
                for t in tasks:
                    np.testing.assert_allclose(got[t]["scores"], every[t]["scores"], rtol=0, atol=1e-5)
                moved = models_that_ran(client.client, before, ran | set(calls))
                assert moved == ran | set(calls), (tasks, moved)
