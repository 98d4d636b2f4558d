"""Incremental task development on a live Triton: add, retrain, remove and roll back one task while the
`multitask` ensemble serves traffic. Every other task's outputs stay bit-identical, no request fails, and a
change only touches that task's files (plus registry.json and multitask's config); bad input changes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mtserve.core import names, registry
from mtserve.core.errors import UserError

TEXTS = [
    "turn on the lights in the kitchen",
    "ugh play some jazz you never get this right",
    "URGENT: book a flight to paris tomorrow!!",
    "",
    "what's the forecast " * 40,
]


# ---------------------------------------------------------------- helpers
def write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
    return path


def task_rows(data, split: str, n: int) -> list[tuple[str, str]]:
    s = getattr(data, split)
    return [(t, data.spec.labels[y]) for t, y in list(zip(s.texts, s.labels, strict=True))[:n]]


def hash_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def infer(url: str, texts=TEXTS, model: str = "multitask") -> dict[str, np.ndarray]:
    import tritonclient.grpc as g

    with g.InferenceServerClient(url) as c:
        inp = g.InferInput("text", [len(texts), 1], "BYTES")
        inp.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=np.object_))
        r = c.infer(model, [inp], client_timeout=60)
        return {o.name: r.as_numpy(o.name) for o in r.get_response().outputs}


def ready(url: str) -> set[tuple[str, str]]:
    import tritonclient.grpc as g

    with g.InferenceServerClient(url) as c:
        return {
            (m["name"], m["version"])
            for m in c.get_model_repository_index(as_json=True)["models"]
            if m.get("state") == "READY"
        }


def assert_valid(repo: Path) -> None:
    """The strict checker of `mtserve export --check` finds nothing: the repository holds what is served."""
    from mtserve.export.repository_check import check_repository

    assert check_repository(repo) == []


def assert_same(before: dict, after: dict, keys) -> None:
    for k in keys:
        assert before[k].dtype == after[k].dtype and np.array_equal(before[k], after[k]), f"{k} changed"


class LoadGenerator:
    """Sends TEXTS to `model` in a loop from a thread, bounded in count and time; records every failure."""

    def __init__(
        self,
        url: str,
        max_requests: int = 20_000,
        max_seconds: float = 240.0,
        pause: float = 0.005,
        model: str = "multitask",
    ):
        self.url, self.max_requests, self.max_seconds, self.pause = url, max_requests, max_seconds, pause
        self.model = model
        self.ok, self.failures, self.outputs_seen = 0, [], set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import tritonclient.grpc as g

        client = g.InferenceServerClient(self.url)
        inp = g.InferInput("text", [2, 1], "BYTES")
        inp.set_data_from_numpy(np.array([[TEXTS[0].encode()], [TEXTS[2].encode()]], dtype=np.object_))
        deadline = time.monotonic() + self.max_seconds
        while (
            not self._stop.is_set()
            and time.monotonic() < deadline
            and self.ok + len(self.failures) < self.max_requests
        ):
            try:
                r = client.infer(self.model, [inp], client_timeout=30)
                self.outputs_seen.add(frozenset(o.name for o in r.get_response().outputs))
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failures.append(f"{type(e).__name__}: {e}")
            time.sleep(self.pause)
        client.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)

    def requests_after(self, n: int, timeout: float = 30.0) -> None:
        """Wait until `n` more requests were answered (so traffic after a swap is covered too)."""
        target, end = self.ok + n, time.monotonic() + timeout
        while self.ok < target and time.monotonic() < end and self._thread.is_alive():
            time.sleep(0.05)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ws(tiny_run, tiny_repo, tiny_data, tmp_path_factory):
    """Private copies of the shared run and repository (those fixtures are shared: never modified here),
    and small TSV files for new tasks."""
    d = tmp_path_factory.mktemp("lifecycle")
    run, repo = d / "run", d / "repo" / "model_repository"
    shutil.copytree(tiny_run, run)
    shutil.copytree(tiny_repo, repo)
    sentiment = tiny_data["sentiment"]
    files = SimpleNamespace(
        mood_train=write_tsv(d / "mood_train.tsv", task_rows(sentiment, "train", 160)),
        mood_dev=write_tsv(d / "mood_dev.tsv", task_rows(sentiment, "dev", 50)),
        sent_train=write_tsv(d / "sent_train.tsv", task_rows(sentiment, "train", 160)[::-1]),
        sent_dev=write_tsv(d / "sent_dev.tsv", task_rows(sentiment, "dev", 50)),
        one_label=write_tsv(
            d / "one_label.tsv", [(t, "positive") for t, _ in task_rows(sentiment, "train", 20)]
        ),
        empty_label=write_tsv(
            d / "empty_label.tsv", task_rows(sentiment, "train", 20)[:5] + [("no label here", "")]
        ),
    )
    return SimpleNamespace(dir=d, run=run, repo=repo, files=files)


@pytest.fixture(scope="module")
def served(ws):
    from mtserve.serving.triton import TritonServer

    server = TritonServer(ws.repo, model_control="explicit", load_models=["*"])
    server.start()
    yield server
    server.stop()


FAST = {"k_values": [3]}  # one depth (1: inside the tiny run's first segment) -> the add splits it


# ---------------------------------------------------------------- registry (no server, no training)
def test_registry_rollback_walks_back_one_change_at_a_time():
    e1 = registry.TaskEntry("t", ["a", "b"], "accuracy", False, branch_depth=2, task_layers=1, head_version=1)
    e2 = dataclasses.replace(e1, head_version=2)
    reg = registry.Registry(
        profile="local",
        backbone="b",
        num_layers=4,
        hidden_size=8,
        max_length=16,
        trunk=registry.TrunkEntry(1, [2], 2),
        tasks={"t": e1, "u": dataclasses.replace(e1, name="u")},
    )
    assert registry.validate(reg.to_dict()) == []
    assert registry.Registry.from_dict(json.loads(registry.dumps(reg))) == reg  # the file round-trips
    with pytest.raises(UserError, match="no change to roll back"):
        registry.rollback_target(reg, "t")
    reg = registry.record(reg, "retrain", "t", e1, e2)
    reg = registry.record(reg, "remove", "t", e2, None)
    assert reg.revision == 3 and "t" not in reg.tasks
    target = registry.rollback_target(reg, "t")
    assert target["action"] == "remove" and target["before"] == e2.to_dict()
    reg = registry.record(reg, "rollback", "t", None, e2, reverts=target["revision"])
    target = registry.rollback_target(reg, "t")  # again: one change further back
    assert target["action"] == "retrain" and target["before"] == e1.to_dict()
    reg = registry.record(reg, "rollback", "t", e2, e1, reverts=target["revision"])
    with pytest.raises(UserError, match="no change to roll back"):
        registry.rollback_target(reg, "t")
    assert registry.versions_used(reg, "t") == {1, 2}
    assert registry.validate(reg.to_dict()) == []
    assert reg.layers_served() == 2 + 1 + 1 and reg.layers_baseline() == 2 * 4
    bad = reg.to_dict() | {"tasks": {"t": e1.to_dict() | {"branch_depth": 3}}}
    assert any("not a trunk output" in p for p in registry.validate(bad))
    with pytest.raises(ValueError, match="not a trunk output"):  # the writer refuses what it could not read
        registry.dumps(dataclasses.replace(reg, tasks={"t": dataclasses.replace(e1, branch_depth=3)}))


# ---------------------------------------------------------------- live, on one Triton


@pytest.mark.triton
def test_add_task_live_while_serving(ws, served, tiny_backbone):
    import torch

    from mtserve.lifecycle.cli import add_task
    from mtserve.training.backbone import TaskModel
    from mtserve.training.run_dir import Run

    url = served.grpc_url
    reg0, files0 = registry.load(ws.repo), hash_tree(ws.repo)
    before = infer(url)
    old_outputs = set(before)
    d1 = min(reg0.trunk.depths)
    split, halves = f"trunk_0_{d1}", ["trunk_0_1", f"trunk_1_{d1}"]
    assert d1 > 1  # FAST's depth 1 lies inside the first segment: the add splits it
    t0, lines = time.monotonic(), []
    with LoadGenerator(url) as load:
        reg = add_task(
            ws.repo,
            ws.run,
            "mood",
            ws.files.mood_train,
            ws.files.mood_dev,
            server=url,
            overrides=FAST,
            cache_dir=None,
            log=lines.append,
        )
        load.requests_after(20)
    print(f"add under load: {time.monotonic() - t0:.1f} s, {load.ok} requests answered")
    assert load.failures == [], f"{len(load.failures)} failed requests, first: {load.failures[:3]}"
    assert load.ok >= 20
    # swapped in dependency order: the new segments, the head and baseline, every path (each ran the split
    # segment; the new task's is new), the multitask graph and wrapper last; the split segment unloaded after
    assert [x.split()[2] for x in lines if "server: loaded" in x] == [
        *halves,
        "mood",
        "full_mood",
        "single_mood",
        *(f"path_{t}" for t in [*reg0.tasks, "mood"]),
        "multitask_graph",
        "multitask",
    ], lines
    assert [x.split()[2] for x in lines if "server: unloaded" in x] == [split], lines
    assert frozenset(old_outputs) in load.outputs_seen  # traffic before the swap ...
    assert frozenset(old_outputs | {"mood_scores", "mood_label"}) in load.outputs_seen  # ... and after it

    after = infer(url)
    assert set(after) == old_outputs | {"mood_scores", "mood_label"}
    assert_same(before, after, old_outputs)  # every other task: bit-identical, through two segments or one
    assert after["mood_scores"].shape == (len(TEXTS), 3)
    for t in [*reg0.tasks, "mood"]:  # each task's own path: the same outputs as multitask's
        assert_same(after, infer(url, model=f"path_{t}"), [o for o in after if o.startswith(f"{t}_")])

    # the registry says what is deployed; the server serves exactly that
    e = reg.tasks["mood"]
    assert (e.head_version, e.branch_depth, e.labels) == (1, 1, ["negative", "neutral", "positive"])
    assert reg.trunk.version == 2 and reg.trunk.depths == sorted({1, *reg0.trunk.depths})
    assert reg.multitask_version == 2 and reg.segments()[:2] == [(0, 1), (1, d1)]
    assert registry.load(ws.repo) == reg
    assert_valid(ws.repo)
    # the split segment is retired to the archive: the repository holds what is served
    assert not (ws.repo / split).exists()
    assert (registry.archive_dir(ws.repo) / reg.history[-1]["archived"][split] / "1" / "model.onnx").is_file()
    # every other file byte-identical: the heads, the tokenizer, the segments not split, the baselines
    files1 = hash_tree(ws.repo)
    changed = {p for p in files0.keys() | files1.keys() if files0.get(p) != files1.get(p)}
    rewritten = {f"path_{t}/config.pbtxt" for t in reg0.tasks} | {"registry.json"}
    ours = ("mood/", "full_mood/", "single_mood/", "path_mood/", *(f"{m}/" for m in [split, *halves]))
    assert {
        p for p in changed if not p.startswith(ours) and not re.match(r"multitask(_graph)?/", p)
    } == rewritten
    now = ready(url)
    assert {
        *((h, "1") for h in halves),
        ("mood", "1"),
        ("multitask", "2"),
        ("multitask_graph", "2"),
        ("full_mood", "1"),
        ("single_mood", "1"),
        ("path_mood", "1"),
    } <= now
    assert (split, "1") not in now and ("multitask", "1") not in now and ("multitask_graph", "1") not in now

    # the run directory knows the task too, and the served head matches PyTorch on the run's own weights
    run = Run(ws.run)
    assert "mood" in run.tasks() and (ws.run / "tasks" / "mood" / "data" / "task.yaml").is_file()
    _, tokenizer = tiny_backbone
    enc = tokenizer(
        TEXTS, truncation=True, max_length=run.meta["config"]["max_length"], padding=True, return_tensors="pt"
    )
    branch, _ = run.branch("mood")
    with torch.no_grad():
        ref = (
            TaskModel(run.trunk([branch.config.depth]), branch)
            .eval()
            .scores(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
            .numpy()
        )
    assert float(np.abs(after["mood_scores"] - ref).max()) <= 1e-4


@pytest.mark.triton
def test_retrain_changes_only_that_tasks_files(ws, served, capsys):
    from mtserve.cli import main
    from mtserve.lifecycle.cli import retrain_task

    url = served.grpc_url
    reg0 = registry.load(ws.repo)
    # a depth the trunk is cut at already, so the segments stay as they are
    k = [reg0.num_layers - reg0.tasks["sentiment"].branch_depth]
    old_v = reg0.tasks["sentiment"].head_version
    files0, before = hash_tree(ws.repo), infer(url)
    with LoadGenerator(url) as load:
        reg = retrain_task(
            ws.repo,
            ws.run,
            "sentiment",
            ws.files.sent_train,
            ws.files.sent_dev,
            server=url,
            overrides={"k_values": k},
            cache_dir=None,
        )
        load.requests_after(20)
    assert load.failures == []
    files1 = hash_tree(ws.repo)
    changed = {p for p in files0.keys() | files1.keys() if files0.get(p) != files1.get(p)}
    # its path's config changes only with its layer count (the cost it declares): the depth stays
    mine = ("sentiment/", "full_sentiment/", "single_sentiment/", "path_sentiment/config.pbtxt")
    others = {p for p in changed if not p.startswith(mine)}
    # the new multitask (and graph) version's placeholder appears and the retired one's goes to the archive
    placeholders = {p for p in others if re.fullmatch(r"multitask(_graph)?/\d+/\.keep", p)}
    assert others - placeholders == {
        "registry.json",
        "multitask/config.pbtxt",
        "multitask_graph/config.pbtxt",
    }
    assert len(placeholders) == 4
    v = reg.tasks["sentiment"].head_version
    assert v == old_v + 1 and reg.trunk == reg0.trunk
    assert ("path_sentiment/config.pbtxt" in changed) == (
        reg.tasks["sentiment"].task_layers != reg0.tasks["sentiment"].task_layers
    )
    assert {
        "sentiment/config.pbtxt",
        f"sentiment/{v}/model.onnx",
        f"full_sentiment/{v}/model.onnx",
    } <= changed
    # nothing that existed was rewritten apart from configs and the registry: the old version moved, byte for
    # byte, to the archive (for rollback)
    archived = reg.history[-1]["archived"]
    assert set(archived) >= {f"sentiment/{old_v}", f"full_sentiment/{old_v}"}
    arch = registry.archive_dir(ws.repo)
    for p, h in files0.items():
        if p == "registry.json" or p.endswith("config.pbtxt"):
            continue
        if p in files1:
            assert files1[p] == h, p
        else:
            model, version, rest = p.split("/", 2)
            # the task's old version, or the retired multitask version's placeholder
            assert (p.startswith(mine) and version == str(old_v)) or (
                model in ("multitask", "multitask_graph") and rest == ".keep"
            ), p
            assert hash_tree(arch / archived[f"{model}/{version}"]).get(rest) == h, p
    assert_valid(ws.repo)
    after = infer(url)
    assert set(after) == set(before)
    assert_same(before, after, [o for o in before if not o.startswith("sentiment_")])
    assert ("sentiment", str(v)) in ready(url) and ("sentiment", str(old_v)) not in ready(url)

    assert main(["task", "list", "--repo", str(ws.repo), "--history"]) == 0
    out = capsys.readouterr().out
    assert "sentiment" in out and f"v{v}" in out and "retrain" in out

    # roll the retrain back: version 1 serves again, exactly as before
    assert (
        main(
            [
                "task",
                "rollback",
                "sentiment",
                "--repo",
                str(ws.repo),
                "--run-dir",
                str(ws.run),
                "--server",
                url,
            ]
        )
        == 0
    )
    back = infer(url)
    assert_same(before, back, before)
    assert registry.load(ws.repo).tasks["sentiment"] == reg0.tasks["sentiment"]
    assert ("sentiment", str(old_v)) in ready(url) and ("sentiment", str(v)) not in ready(url)
    assert {p: h for p, h in hash_tree(ws.repo).items() if p.startswith(f"sentiment/{old_v}/")} == {
        p: h for p, h in files0.items() if p.startswith(f"sentiment/{old_v}/")
    }
    assert_valid(ws.repo)


@pytest.mark.triton
def swap_order(steps: list[dict]) -> list[str]:
    """The multitask graph's and wrapper's config writes and loads, in the order a change took them."""
    out = []
    for s in steps:
        model = s.get("model") or Path(s.get("path", "")).parent.name
        if model in (names.MULTITASK, names.MULTITASK_GRAPH) and s["op"] in ("write", "load"):
            out.append(f"{s['op']} {model}")
    return out


def test_remove_then_rollback_restores_outputs_exactly(ws, served, monkeypatch):
    from mtserve.lifecycle import journal as task_journal
    from mtserve.lifecycle.cli import remove_task, rollback_task

    # every step the changes take, recorded on the way to the real do_step
    taken, do_step = [], task_journal.do_step
    monkeypatch.setattr(
        task_journal, "do_step", lambda step, *a, **k: (taken.append(step), do_step(step, *a, **k))
    )
    url = served.grpc_url
    reg0, before, files0 = registry.load(ws.repo), infer(url), hash_tree(ws.repo)
    with LoadGenerator(url) as load:
        reg = remove_task(ws.repo, "domain", run_dir=ws.run, server=url)
        load.requests_after(20)
        gone = infer(url)
        present = [
            m for m in ("domain", "full_domain", "single_domain", "path_domain") if (ws.repo / m).exists()
        ]
        removed_ready = ready(url)
        removed_reg = registry.load(ws.repo)
        assert_valid(ws.repo)
        removal = swap_order(taken)
        back_reg = rollback_task(ws.repo, "domain", run_dir=ws.run, server=url)
        load.requests_after(20)
    assert load.failures == []
    # The served graph always produces what the served wrapper asks for: each config is written just before its
    # own load (loading one reloads the other from its files), the wrapper first when outputs go away, the
    # graph first when they come back. Traffic alone catches a wrong order only now and then.
    assert removal == ["write multitask", "load multitask", "write multitask_graph", "load multitask_graph"]
    assert swap_order(taken)[len(removal) :] == [
        "write multitask_graph",
        "load multitask_graph",
        "write multitask",
        "load multitask",
    ]
    # removed: not served, its folders archived (Triton would load any folder), the others untouched
    assert "domain" not in reg.tasks and not {"domain_scores", "domain_label"} & set(gone)
    assert_same(before, gone, [o for o in before if not o.startswith("domain_")])
    archived = reg.history[-1]["archived"]
    assert {"domain", "full_domain", "single_domain", "path_domain"} <= set(archived)
    assert present == []  # archived: Triton would load any folder of the repository
    assert not {m for m, _ in removed_ready} & {"domain", "full_domain", "single_domain", "path_domain"}
    # the segments stay as they are (no export needed), cut at the removed task's depth too
    assert removed_reg.trunk.depths == reg0.trunk.depths
    assert all((ws.repo / names.segment(a, b) / "1").is_dir() for a, b in reg0.segments())
    # rolled back: the same outputs, bit for bit, and the same registry entry
    after = infer(url)
    assert set(after) == set(before)
    assert_same(before, after, before)
    assert back_reg.tasks["domain"] == reg0.tasks["domain"]
    assert {("domain", "1"), ("full_domain", "1"), ("single_domain", "1"), ("path_domain", "1")} <= ready(url)
    assert_same(before, infer(url, model="path_domain"), [o for o in before if o.startswith("domain_")])
    files1 = hash_tree(ws.repo)
    # every path as before the removal (the same cuts, the same tasks), the domain's own one included
    assert {p: h for p, h in files1.items() if p.startswith("path_")} == {
        p: h for p, h in files0.items() if p.startswith("path_")
    }
    assert all(
        files1[p] == h
        for p, h in files0.items()
        if p.startswith(("domain/", "full_domain/", "single_domain/")) and not p.endswith("config.pbtxt")
    )
    assert not (registry.archive_dir(ws.repo) / archived["domain"]).exists()  # taken back out of the archive
    assert_valid(ws.repo)
    # a second rollback has nothing left to undo for this task: clear error, nothing changes
    with pytest.raises(UserError, match="no change to roll back"):
        rollback_task(ws.repo, "domain", server=url)
    assert hash_tree(ws.repo) == files1


def changed_files(before: dict, after: dict) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


@pytest.mark.triton
def test_groups_created_changed_and_deleted_live(ws, served, capsys, monkeypatch):
    from mtserve.cli import main
    from mtserve.lifecycle import journal as task_journal
    from mtserve.lifecycle.groups import change_group
    from mtserve.lifecycle.ops import remove_task

    taken, do_step = [], task_journal.do_step
    monkeypatch.setattr(
        task_journal, "do_step", lambda step, *a, **k: (taken.append(step), do_step(step, *a, **k))
    )
    url = served.grpc_url
    reg0, files0, every = registry.load(ws.repo), hash_tree(ws.repo), infer(url)
    # two tasks at different depths where the repository has them: the group runs the deeper one's segments
    by_depth = sorted(reg0.tasks, key=lambda t: (reg0.tasks[t].branch_depth, t))
    a, b, c = by_depth[0], by_depth[-1], next(t for t in by_depth if t not in (by_depth[0], by_depth[-1]))
    mine = lambda t: [o for o in every if o.startswith(f"{t}_")]  # noqa: E731

    # create
    with LoadGenerator(url) as load:
        reg = change_group(ws.repo, "pair", [a, b], server=url, log=lambda *_: None)
        load.requests_after(20)
    assert load.failures == []
    assert reg.groups == {"pair": [a, b]} and reg.revision == reg0.revision + 1
    h = reg.history[-1]
    assert (h["action"], h["group"], h["before"], h["after"]) == ("group", "pair", None, [a, b])
    # multitask gets a new version: its config names the groups, where clients find them (mtserve_groups)
    assert reg.multitask_version == reg0.multitask_version + 1 and reg.trunk == reg0.trunk
    files1 = hash_tree(ws.repo)
    assert {p.split("/")[0] for p in changed_files(files0, files1)} == {
        "graph_pair",
        "group_pair",
        "multitask",
        "multitask_graph",
        "registry.json",
    }
    from mtserve.core import routing
    from mtserve.export.model_config import read_config as _read

    assert _read(ws.repo / "multitask").parameters[routing.GROUPS_PARAMETER].string_value == "pair"
    assert {("graph_pair", "1"), ("group_pair", "1")} <= ready(url)
    got = infer(url, model="group_pair")
    assert set(got) == set(mine(a) + mine(b))
    assert_same(every, got, got)
    assert_valid(ws.repo)
    from mtserve.export.model_config import read_config

    steps = lambda m: [s.model_name for s in read_config(ws.repo / m).ensemble_scheduling.step]  # noqa: E731
    depth = reg.tasks[b].branch_depth
    assert steps("graph_pair") == [
        "tokenizer",
        *(names.segment(x, y) for x, y in reg.segments() if y <= depth),
        a,
        b,
    ]

    # listed with its cost, from the registry
    assert main(["task", "group", "--repo", str(ws.repo)]) == 0
    out = capsys.readouterr().out
    assert re.search(
        rf"pair\s+{reg.layers_served([a, b])}\s+{reg.layers_served([a]) + reg.layers_served([b])}\s+{a},{b}",
        out,
    ), out

    # a task in a group is not removed under it: refused, naming the group and the command
    with pytest.raises(UserError, match=r"group\(s\) pair .*`mtserve task group pair --delete`"):
        remove_task(ws.repo, a, server=url)
    assert hash_tree(ws.repo) == files1

    # grown by one task (graph first), then shrunk (the wrapper first), under traffic on the group itself
    taken.clear()
    with LoadGenerator(url, model="group_pair") as load:
        args = ["task", "group", "pair", "--repo", str(ws.repo), "--server", url]
        assert main([*args, "--tasks", f"{a},{b},{c}"]) == 0
        load.requests_after(20)
        grown = [
            f"{s['op']} {s.get('model') or Path(s['path']).parent.name}"
            for s in taken
            if s["op"] in ("write", "load")
            and (s.get("model") or Path(s["path"]).parent.name).endswith("_pair")
        ]
        taken.clear()
        assert main([*args, "--tasks", f"{a},{c}"]) == 0
        load.requests_after(20)
    assert load.failures == [], load.failures[:3]
    shrunk = [
        f"{s['op']} {s.get('model') or Path(s['path']).parent.name}"
        for s in taken
        if s["op"] in ("write", "load") and (s.get("model") or Path(s["path"]).parent.name).endswith("_pair")
    ]
    assert grown == ["write graph_pair", "load graph_pair", "write group_pair", "load group_pair"]
    assert shrunk == ["write group_pair", "load group_pair", "write graph_pair", "load graph_pair"]
    assert {
        frozenset(mine(a) + mine(b)),
        frozenset(mine(a) + mine(b) + mine(c)),
        frozenset(mine(a) + mine(c)),
    } <= load.outputs_seen
    got = infer(url, model="group_pair")
    assert set(got) == set(mine(a) + mine(c))
    assert_same(every, got, got)
    files2 = hash_tree(ws.repo)
    changed = changed_files(files1, files2)
    assert {"graph_pair/config.pbtxt", "group_pair/config.pbtxt", "registry.json"} <= changed
    assert {p.split("/")[0] for p in changed} == {
        "graph_pair",
        "group_pair",
        "multitask",
        "multitask_graph",
        "registry.json",
    }
    assert_valid(ws.repo)
    assert f"group pair: {a},{c}" in capsys.readouterr().out

    # bad requests change nothing
    for tasks, message in (([a], "two or more"), ([a, "nope"], "not deployed"), ([a, a], "two or more")):
        with pytest.raises(UserError, match=message):
            change_group(ws.repo, "pair", tasks, server=url)
    with pytest.raises(UserError, match="nothing to delete"):
        change_group(ws.repo, "nope", None, server=url)
    with pytest.raises(UserError, match="must match"):
        change_group(ws.repo, "Bad-Name", [a, b], server=url)
    assert hash_tree(ws.repo) == files2

    # deleted: unloaded (the wrapper first), archived; everything else as before the group existed
    taken.clear()
    reg = change_group(ws.repo, "pair", None, server=url, log=lambda *_: None)
    assert [s["model"] for s in taken if s["op"] == "unload"] == ["group_pair", "graph_pair"]
    assert reg.groups == {} and reg.history[-1]["after"] is None
    assert not {m for m, _ in ready(url)} & {"group_pair", "graph_pair"}

    def besides_multitask(files: dict) -> dict:
        return {
            p: h
            for p, h in files.items()
            if p.split("/")[0] not in ("multitask", "multitask_graph", "registry.json")
        }

    assert besides_multitask(hash_tree(ws.repo)) == besides_multitask(files0)
    assert _read(ws.repo / "multitask").parameters[routing.GROUPS_PARAMETER].string_value == ""
    assert {"graph_pair", "group_pair"} == {m for m in reg.history[-1]["archived"] if "/" not in m}
    assert_valid(ws.repo)
    assert main(["task", "list", "--repo", str(ws.repo), "--history"]) == 0
    assert f"{a},{c} -> -" in capsys.readouterr().out


@pytest.mark.triton
def test_bad_input_changes_nothing(ws, served, capsys, monkeypatch):
    from mtserve.cli import main
    from mtserve.lifecycle.cli import remove_task

    url, f = served.grpc_url, ws.files
    arch = registry.archive_dir(ws.repo)
    files0, arch0, ready0, out0 = hash_tree(ws.repo), hash_tree(arch), ready(url), infer(url)
    common = ["--repo", str(ws.repo), "--run-dir", str(ws.run), "--server", url, "--cache-dir", ""]
    cases = [
        (["sentiment", "--train", str(f.mood_train), "--dev", str(f.mood_dev)], "already exists"),
        (["solo", "--train", str(f.one_label), "--dev", str(f.one_label)], "at least 2 labels"),
        (["blank", "--train", str(f.empty_label), "--dev", str(f.mood_dev)], "empty label"),
        (["ghost", "--train", str(ws.dir / "nope.tsv"), "--dev", str(f.mood_dev)], "missing data file"),
        (["Bad-Name", "--train", str(f.mood_train), "--dev", str(f.mood_dev)], "must match"),
        (["fine", "--train", str(f.mood_train), "--dev", str(f.mood_dev), "--k", "9"], "outside 1..3"),
        (["fine", "--train", str(f.mood_train), "--dev", str(f.mood_dev), "--k", "4"], "outside 1..3"),
    ]
    for args, message in cases:
        assert main(["task", "add", *args, *common]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("mtserve task: error:") and message in err and "\n" not in err, err
        assert hash_tree(ws.repo) == files0 and hash_tree(arch) == arch0, f"{args[0]}: the repository changed"
        assert ready(url) == ready0, f"{args[0]}: the server changed"
    assert (
        main(
            [
                "task",
                "add",
                "x",
                "--train",
                str(f.mood_train),
                "--dev",
                str(f.mood_dev),
                "--repo",
                str(ws.repo),
                "--run-dir",
                str(ws.run),
                "--server",
                "127.0.0.1:1",
            ]
        )
        == 3  # unreachable (docs/exit-codes.md)
    )
    assert "cannot reach Triton" in capsys.readouterr().err

    # a failure after the live swap (here: writing the registry) undoes the files and the server too
    def disk_full(reg):
        raise OSError("No space left on device")

    monkeypatch.setattr(registry, "dumps", disk_full)
    with pytest.raises(OSError, match="No space left"):
        remove_task(ws.repo, "urgency", server=url)
    monkeypatch.undo()
    assert hash_tree(ws.repo) == files0 and hash_tree(arch) == arch0
    assert ready(url) == ready0
    out1 = infer(url)
    assert set(out1) == set(out0)
    assert_same(out0, out1, out0)
