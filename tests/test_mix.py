"""The load test's traffic mixes (loadtest/mix.py, mix_costs.py): a mix file's parsing and its errors, the
routing of its entries, the ideal for a mix, the cost split from given statistics, and one short real run
(`mtserve loadtest --mix`) on a tiny synthetic repository with segments at two depths and groups."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mtserve.core import routing
from mtserve.core.errors import UserError
from mtserve.loadtest import mix as mixes
from mtserve.loadtest import mix_costs, protocol


def _paths(**costs) -> list[routing.ServedPath]:
    """model=(tasks..., layers)"""
    return [routing.ServedPath(m, tuple(v[:-1]), v[-1]) for m, v in costs.items()]


# Depths: a, b at 4; c, d at 8 (segments trunk_0_4, trunk_4_8); heads of 1 layer, 2 for d; 12-layer backbone.
DEPTH = {"a": 4, "b": 4, "c": 8, "d": 8}
TRUNK_DEPTHS = [4, 8]
CATALOGUE = _paths(
    multitask=("a", "b", "c", "d", 13),
    path_a=("a", 5),
    path_b=("b", 5),
    path_c=("c", 9),
    path_d=("d", 10),
    group_ab=("a", "b", 6),
    group_cd=("c", "d", 11),
)


# ---------------------------------------------------------------- the file
def test_a_mix_file_with_shares_and_one_with_zipf(tmp_path):
    f = tmp_path / "mix.yaml"
    f.write_text(
        "entries:\n  - group: ab\n    share: 3\n  - tasks: [c, a]\n    share: 1\n    name: c and a\n"
    )
    m = mixes.read(f)
    assert [(e.name, e.group, e.tasks, e.share) for e in m.entries] == [
        ("ab", "ab", (), 0.75),
        ("c and a", None, ("c", "a"), 0.25),
    ]
    f.write_text("zipf: 1\nentries:\n  - tasks: [a]\n  - tasks: c, d\n  - group: ab\n")
    m = mixes.read(f)
    assert [e.share for e in m.entries] == pytest.approx([6 / 11, 3 / 11, 2 / 11])  # 1, 1/2, 1/3 normalised
    assert [e.name for e in m.entries] == ["a", "c+d", "ab"] and m.zipf == 1.0
    # a bare list is the same as entries:
    assert mixes.parse([{"tasks": ["a"], "share": 1}]).entries[0].share == 1.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("entries: []", "needs a non-empty list of entries"),
        ("entries:\n  - tasks: [a]\n", r"entry 1: share missing"),
        (
            "entries:\n  - tasks: [a]\n    share: 1\n  - tasks: [b]\n    share: 0\n",
            r"entry 2: share must be > 0",
        ),
        ("entries:\n  - tasks: [a]\n    share: lots\n", r"entry 1: share: must be a number, got 'lots'"),
        ("entries:\n  - tasks: [a]\n    group: ab\n    share: 1\n", r"entry 1: give exactly one of `tasks`"),
        ("entries:\n  - share: 1\n", r"entry 1: give exactly one of `tasks`"),
        (
            "entries:\n  - tasks: [a]\n    share: 1\n    weight: 2\n",
            r"entry 1: unknown field\(s\) \['weight'\]",
        ),
        ("entries:\n  - tasks: []\n    share: 1\n", r"entry 1: tasks must be a non-empty list"),
        ("entries:\n  - tasks: [A-1]\n    share: 1\n", r"entry 1: tasks: task name 'A-1' must match"),
        ("entries:\n  - tasks: [a, a]\n    share: 1\n", r"entry 1: tasks \['a', 'a'\] name a task twice"),
        ("zipf: 1\nentries:\n  - tasks: [a]\n    share: 1\n", r"entry 1: share given, but the file's zipf"),
        ("zipf: -1\nentries:\n  - tasks: [a]\n", r"zipf must be >= 0"),
        (
            "entries:\n  - tasks: [a]\n    share: 1\n  - group: a\n    share: 1\n",
            r"entry name\(s\) \['a'\] used twice",
        ),
        ("mix:\n  - tasks: [a]\n", r"unknown field\(s\) \['mix'\]"),
        ("entries:\n  - [a, b]\n", r"entry 1: must be a mapping"),
        ("entries: [\n", "not valid YAML"),
    ],
)
def test_a_bad_mix_file_names_the_file_the_entry_and_the_field(tmp_path, text, message):
    f = tmp_path / "bad-mix.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=message) as e:
        mixes.read(f)
    assert str(f) in str(e.value)


def test_a_missing_mix_file_and_the_older_weights_form():
    with pytest.raises(UserError, match=r"--mix /nonexistent/mix.yaml: cannot read it"):
        mixes.read("/nonexistent/mix.yaml")
    from mtserve.loadtest.workload import is_mix_file

    assert is_mix_file("mix.yaml") and is_mix_file("../mixes/zipf")
    assert not is_mix_file("3,1") and not is_mix_file("0.5, 1") and not is_mix_file(None)


# ---------------------------------------------------------------- groups, routing, the ideal
def test_groups_resolve_from_the_served_paths_and_unknown_names_are_clear():
    m = mixes.parse({"zipf": 0, "entries": [{"group": "cd"}, {"tasks": ["a", "c"]}]}, "m.yaml")
    r = mixes.resolve(m, CATALOGUE)
    assert [e.tasks for e in r.entries] == [("c", "d"), ("a", "c")] and r.tasks == ["c", "d", "a"]
    with pytest.raises(
        UserError, match=r"m.yaml: entry 1 \(zz\): group 'zz' is not served \(groups: \['ab', 'cd'\]"
    ):
        mixes.resolve(mixes.parse([{"group": "zz", "share": 1}], "m.yaml"), CATALOGUE)
    with pytest.raises(UserError, match=r"m.yaml: entry 1 \(a\+q\): tasks: unknown task\(s\) \['q'\]"):
        mixes.resolve(mixes.parse([{"tasks": ["a", "q"], "share": 1}], "m.yaml"), CATALOGUE)


def test_entries_route_like_the_client_and_the_ideal_weighs_costs_by_share():
    m = mixes.parse(
        [
            {"group": "ab", "share": 2},
            {"tasks": ["c"], "share": 1},
            {"tasks": ["a", "e"], "share": 1},  # two paths (5 + 5) beat every head (14)
            {"tasks": ["a", "d"], "share": 0.5},  # every head (14) beats two paths (5 + 10)
        ]
    )
    catalogue = [
        routing.ServedPath("multitask", ("a", "b", "c", "d", "e"), 14),
        *CATALOGUE[1:],
        routing.ServedPath("path_e", ("e",), 5),
    ]
    routed = mixes.route(mixes.resolve(m, catalogue), catalogue)
    assert [[(c.model, c.tasks) for c in r.calls] for r in routed] == [
        [("group_ab", ("a", "b"))],
        [("path_c", ("c",))],
        [("path_a", ("a",)), ("path_e", ("e",))],
        [("multitask", ("a", "d"))],
    ]
    assert [r.layers for r in routed] == [6, 9, 10, 14]
    ideal = mixes.ideal([r.to_dict() for r in routed], num_layers=12, every_head_layers=13)
    assert [e["ideal_cost_reduction"] for e in ideal["entries"]] == pytest.approx(
        [1 - 6 / 24, 1 - 9 / 12, 1 - 10 / 24, 1 - 14 / 24]
    )
    shares = [2 / 4.5, 1 / 4.5, 1 / 4.5, 0.5 / 4.5]
    served = sum(s * c for s, c in zip(shares, [6, 9, 10, 14], strict=True))
    baseline = sum(s * n * 12 for s, n in zip(shares, [2, 1, 2, 2], strict=True))
    assert ideal["ideal_cost_reduction"] == pytest.approx(1 - served / baseline)
    assert ideal["ideal_every_head_reduction"] == pytest.approx(1 - 13 / baseline)
    assert ideal["entries"][1]["ideal_every_head_reduction"] == pytest.approx(1 - 13 / 12)  # a loss


def test_a_plan_with_a_mix_calls_the_routed_models_and_asks_only_an_entry_s_outputs():
    plan = protocol.Plan(
        ["a", "c"],
        {
            "multitask": ["a_scores", "a_label", "c_scores"],
            "path_a": ["a_scores", "a_label"],
            "single_a": ["a_scores", "a_label"],
            "single_c": ["c_scores"],
        },
        mix=[
            {"name": "a", "share": 0.5, "tasks": ["a"], "calls": [{"model": "path_a", "tasks": ["a"]}]},
            {
                "name": "ac",
                "share": 0.5,
                "tasks": ["a", "c"],
                "calls": [{"model": "multitask", "tasks": ["a", "c"]}],
            },
        ],
    )
    assert plan.workloads() == ("multitask", "per-task", "every-head")
    assert plan.models("multitask") == ["path_a", "multitask"] and plan.models("every-head") == ["multitask"]
    assert plan.models("per-task") == ["single_a", "single_c"]
    assert plan.outputs_for("multitask", ("a",)) == ["a_scores", "a_label"]
    assert protocol.Plan.from_dict(plan.to_dict()) == plan
    assert protocol.Plan(["a"]).workloads() == ("multitask", "per-task")


# ---------------------------------------------------------------- costs from Triton's statistics
def _stats(**models) -> dict:
    """model=(requests, execution ms in the window)"""
    return {m: {"requests": n, "exec_ms_total": float(ms)} for m, (n, ms) in models.items()}


def test_charge_back_splits_shared_models_by_the_requests_each_task_sent_through_them():
    # 100 calls of group_ab, 50 of path_c, 50 of path_d: the tokenizer ran 200 requests, trunk_0_4 200,
    # trunk_4_8 100 (only c's and d's)
    stats = _stats(
        group_ab=(100, 0),
        graph_ab=(100, 900),  # an ensemble: its time spans its steps, counted there
        path_c=(50, 0),
        path_d=(50, 0),
        tokenizer=(200, 400),
        trunk_0_4=(200, 2000),
        trunk_4_8=(100, 1000),
        a=(100, 100),
        b=(100, 100),
        c=(50, 50),
        d=(50, 100),
    )
    got = mix_costs.charge_back(stats, CATALOGUE, DEPTH, TRUNK_DEPTHS)
    t = got["tasks"]
    # a: its head 100 + tokenizer 50/200 x 400 + trunk_0_4 50/200 x 2000 = 100 + 100 + 500
    assert (
        t["a"]["head_ms"] == 100 and t["a"]["shared_ms"] == pytest.approx(600) and t["a"]["requests"] == 100
    )
    # c: 50 + tokenizer 50/200 x 400 + trunk_0_4 50/200 x 2000 + trunk_4_8 50/100 x 1000
    assert t["c"]["total_ms"] == pytest.approx(50 + 100 + 500 + 500)
    assert t["d"]["total_ms"] == pytest.approx(100 + 100 + 500 + 500)
    assert got["total_ms"] == pytest.approx(3750) and got["unattributed_ms"] == pytest.approx(0)
    assert sum(r["share"] for r in t.values()) == pytest.approx(1.0)
    assert list(t) == ["d", "c", "a", "b"]  # dearest first
    # through multitask every head runs and every segment; an unasked head is still its owner's
    every = mix_costs.charge_back(
        _stats(
            multitask=(10, 0),
            tokenizer=(10, 40),
            trunk_0_4=(10, 80),
            trunk_4_8=(10, 40),
            a=(10, 5),
            b=(10, 5),
            c=(10, 5),
            d=(10, 10),
        ),
        CATALOGUE,
        DEPTH,
        TRUNK_DEPTHS,
    )["tasks"]
    assert every["a"]["total_ms"] == pytest.approx(5 + 10 + 20) and every["c"]["total_ms"] == pytest.approx(
        5 + 10 + 20 + 20
    )


def test_entry_costs_sum_the_models_each_side_runs_per_request():
    entries = [
        {
            "name": "ab",
            "share": 0.5,
            "tasks": ["a", "b"],
            "calls": [{"model": "group_ab", "tasks": ["a", "b"]}],
        },
        {"name": "c", "share": 0.5, "tasks": ["c"], "calls": [{"model": "path_c", "tasks": ["c"]}]},
    ]
    mt = _stats(
        tokenizer=(200, 200),
        trunk_0_4=(200, 1000),
        trunk_4_8=(100, 500),
        a=(100, 100),
        b=(100, 100),
        c=(100, 200),
    )
    pt = _stats(tokenizer=(300, 300), full_a=(100, 1200), full_b=(100, 1200), full_c=(100, 1200))
    every = {
        f"{k} @ host:1": v
        for k, v in _stats(
            tokenizer=(10, 10),
            trunk_0_4=(10, 50),
            trunk_4_8=(10, 50),
            a=(10, 10),
            b=(10, 10),
            c=(10, 10),
            d=(10, 10),
        ).items()
    }
    got = mix_costs.entry_costs(
        entries, CATALOGUE, DEPTH, TRUNK_DEPTHS, {"multitask": mt, "per_task": pt, "every_head": every}
    )
    ab, c = got["entries"]
    assert ab["multitask_ms"] == pytest.approx(1 + 5 + 1 + 1)  # tokenizer, trunk_0_4, a, b (per request)
    assert c["multitask_ms"] == pytest.approx(1 + 5 + 5 + 2)  # and trunk_4_8, c
    assert ab["per_task_ms"] == pytest.approx(2 * (1 + 12)) and c["per_task_ms"] == pytest.approx(13)
    assert ab["every_head_ms"] == c["every_head_ms"] == pytest.approx(1 + 5 + 5 + 4)
    assert ab["compute_reduction"] == pytest.approx(1 - 8 / 26)
    assert got["compute_reduction"] == pytest.approx(1 - (0.5 * 8 + 0.5 * 13) / (0.5 * 26 + 0.5 * 13))
    # a side not measured, or a model that served nothing: unknown, not zero
    assert (
        mix_costs.entry_costs(entries, CATALOGUE, DEPTH, TRUNK_DEPTHS, {"multitask": mt})["per_task_ms"]
        is None
    )
    assert (
        mix_costs.entry_costs(entries, CATALOGUE, DEPTH, TRUNK_DEPTHS, {"multitask": _stats(a=(1, 1))})[
            "entries"
        ][0]["multitask_ms"]
        is None
    )


def test_the_memory_estimate_counts_segments_and_instances():
    from mtserve.serving.memory import estimate_synthetic

    one = estimate_synthetic(16, 400, 40, 300, segments=2, instances={"trunk": 1, "heads": 1, "tokenizer": 1})
    assert one.processes == 1 + 2 + 16 + 16 and one.weight_bytes == 300 + 16 * 400 + 16 * 40
    two = estimate_synthetic(16, 400, 40, 300, segments=2, instances={"trunk": 2, "heads": 2, "tokenizer": 1})
    assert two.processes == 1 + 2 * (2 + 16) + 2 * 16 and two.weight_bytes == 2 * (300 + 16 * 400 + 16 * 40)


# ---------------------------------------------------------------- a short real run
@pytest.fixture(scope="module")
def mix_repo(two_depth_repo):
    return two_depth_repo


@pytest.mark.triton
@pytest.mark.slow
def test_loadtest_mix_end_to_end(mix_repo, tmp_path):
    mix_file = tmp_path / "mix.yaml"
    mix_file.write_text("zipf: 1.0\nentries:\n  - group: pair\n  - tasks: [t00, t03]\n  - tasks: [t01]\n")
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "mtserve.cli", "loadtest", "--repo", str(mix_repo), "--mix", str(mix_file)]
    cmd += ["--short", "--slo-ms", "1000", "--max-steps", "2", "--start-rps", "4", "--duration", "1.5"]
    cmd += [
        "--max-duration",
        "2",
        "--min-samples",
        "20",
        "--warmup",
        "0.5",
        "--max-time",
        "60",
        "--out",
        str(out),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    cap = json.loads((out / "capacity.json").read_text())
    assert list(cap)[:2] == ["cost_reduction", "ideal_cost_reduction"]
    mt, pt, eh = (cap[k]["max_rps"] for k in ("multitask", "per_task", "every_head"))
    assert mt > 0 and pt > 0 and eh > 0
    assert cap["cost_reduction"] == pytest.approx(1 - pt / mt)
    assert cap["every_head_reduction"] == pytest.approx(1 - pt / eh)
    entries = cap["mix"]["entries"]
    assert [[c["model"] for c in e["calls"]] for e in entries] == [
        ["group_pair"],
        ["path_t00", "path_t03"],
        ["path_t01"],
    ]
    # tiny backbone of 3 layers: pair = trunk 1 + 2 heads = 3 against 6; t00 + t03 = 2 + 3 = 5 against 6; t01 3/3
    assert [e["layers"] for e in entries] == [3, 5, 3] and [e["layers_baseline"] for e in entries] == [
        6,
        6,
        3,
    ]
    shares = [1, 1 / 2, 1 / 3]
    s = sum(shares)
    ideal = 1 - sum(a * b for a, b in zip(shares, [3, 5, 3], strict=True)) / sum(
        a * b for a, b in zip(shares, [6, 6, 3], strict=True)
    )
    assert cap["ideal_cost_reduction"] == pytest.approx(ideal)
    assert [e["share"] for e in entries] == pytest.approx([x / s for x in shares])
    # Triton's own statistics: the routed side ran only the routed paths (never multitask), the every-head side
    # only multitask, and each entry's compute is known on every side
    routed = {k.split(" @ ")[0] for k in cap["server"]["multitask"]["models"]}
    assert {"group_pair", "path_t00", "path_t03", "path_t01"} <= routed and "multitask" not in routed
    assert "path_t02" not in routed and "group_mixed" not in routed
    every = {k.split(" @ ")[0] for k in cap["server"]["every_head"]["models"]}
    assert "multitask" in every and not any(m.startswith(("path_", "group_")) for m in every)
    assert all(e["multitask_ms"] and e["per_task_ms"] and e["every_head_ms"] for e in entries)
    charge = cap["charge_back"]["multitask"]["tasks"]
    assert set(charge) == {"t00", "t01", "t02", "t03"}
    assert sum(r["share"] for r in charge.values()) == pytest.approx(1.0)
    assert charge["t00"]["requests"] > charge["t02"]["requests"] > 0  # t00 is in two entries, t02 in one
    md = (out / "capacity.md").read_text()
    assert "## The mix" in md and "## Charge-back" in md and "group_pair" in md
    assert (out / "mix.png").stat().st_size > 0 and (out / "latency_vs_rate.png").stat().st_size > 0
