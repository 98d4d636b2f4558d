"""The exported repository on a real local Triton, over real gRPC: scores match PyTorch, subsets run only
their heads, bad input gets a clear error and the server keeps serving."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from mtserve.core.errors import UserError
from mtserve.serving.client import MultitaskClient
from mtserve.training.backbone import TaskModel
from mtserve.training.run_dir import Run
from tests.conftest import execution_counts, models_that_ran

pytestmark = pytest.mark.triton

TEXTS = [
    "turn on the lights in the kitchen",
    "ugh play some jazz you never get this right",
    "URGENT: book a flight to paris tomorrow!!",
    "",
    "   ",
    "café naïve 東京 🙂 \t tabs",
    "what's the forecast " * 40,  # longer than max_length: truncated, not an error
]


def _reference(run: Run, tokenizer, texts, task: str, full: bool) -> np.ndarray:
    enc = tokenizer(
        texts, truncation=True, max_length=run.meta["config"]["max_length"], padding=True, return_tensors="pt"
    )
    args = (enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
    with torch.no_grad():
        if full:
            return run.full(task).scores(*args).numpy()
        branch, _ = run.branch(task)
        model = TaskModel(run.trunk([branch.config.depth]), branch).eval()
        return model.scores(*args).numpy()


@pytest.fixture(scope="module")
def client(triton):
    with MultitaskClient(triton.grpc_url) as c:
        yield c


def test_multitask_matches_pytorch_for_every_task(client, tiny_run, tiny_backbone):
    run, (_, tokenizer) = Run(tiny_run), tiny_backbone
    answer = client.infer(TEXTS)
    assert set(answer) == set(run.tasks())
    for task in run.tasks():
        ref = _reference(run, tokenizer, TEXTS, task, full=False)
        got = answer[task]["scores"]
        assert got.shape == ref.shape
        diff = float(np.abs(got - ref).max())
        assert diff <= 1e-4, f"{task}: served scores differ from PyTorch by {diff}"
        spec = run.spec(task)
        if not spec.is_regression:
            assert answer[task]["label"] == [spec.labels[i] for i in ref.argmax(-1)]


def test_single_task_baselines_match_the_full_models(client, tiny_run, tiny_backbone):
    run, (_, tokenizer) = Run(tiny_run), tiny_backbone
    for task in run.tasks():
        got = client.infer(TEXTS, model=f"single_{task}")[task]["scores"]
        ref = _reference(run, tokenizer, TEXTS, task, full=True)
        diff = float(np.abs(got - ref).max())
        assert diff <= 1e-4, f"single_{task}: differs from the full fine-tuned model by {diff}"


def test_text_pair_goes_through_the_ensemble(client, tiny_run, tiny_backbone):
    """The optional text_pair input: encoded as a pair by the tokenizer model, same scores as PyTorch."""
    run, (_, tokenizer) = Run(tiny_run), tiny_backbone
    texts, pairs = ["play some jazz", "lock the door", ""], ["in the kitchen please", "", "the front door"]
    answer = client.infer(texts, pairs)
    enc = tokenizer(
        texts,
        pairs,
        truncation=True,
        max_length=run.meta["config"]["max_length"],
        padding=True,
        return_tensors="pt",
    )
    solo = client.infer(texts)
    for task in run.tasks():
        branch, _ = run.branch(task)
        model = TaskModel(run.trunk([branch.config.depth]), branch).eval()
        with torch.no_grad():
            ref = model.scores(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]).numpy()
        assert float(np.abs(answer[task]["scores"] - ref).max()) <= 1e-4, task
        assert not np.allclose(answer[task]["scores"][:2], solo[task]["scores"][:2]), "text_pair was ignored"


def test_asking_for_one_task_runs_its_path_only(client, tiny_run, tiny_repo):
    """A request for one task goes to path_<task>: the same outputs as a full request computes, and Triton's own
    statistics show that only its segments and its head ran, no other head and not the multitask graph."""
    from mtserve.core import names, registry

    reg = registry.load(tiny_repo)
    tasks = Run(tiny_run).tasks()
    full = client.infer(["play some jazz"])
    assert [c.model for c in client.route([tasks[0]])] == [names.path(tasks[0])]
    before = execution_counts(client.client)
    out = client.infer(["play some jazz"], tasks=[tasks[0]])
    assert set(out) == {tasks[0]}
    assert out[tasks[0]].keys() == full[tasks[0]].keys()
    np.testing.assert_allclose(out[tasks[0]]["scores"], full[tasks[0]]["scores"], rtol=0, atol=1e-6)
    if "label" in full[tasks[0]]:
        assert list(out[tasks[0]]["label"]) == list(full[tasks[0]]["label"])
    needed = {
        names.segment(a, b) for a, b in names.segments_to(reg.tasks[tasks[0]].branch_depth, reg.trunk.depths)
    }
    expected = {names.TOKENIZER, *needed, tasks[0], names.path(tasks[0])}
    ran = models_that_ran(client.client, before, expected)
    assert ran == expected, ran


def test_asking_multitask_itself_for_one_task_runs_every_head(client, tiny_run):
    """What a third-party client that calls `multitask` for a subset pays (the README's serving contract): its
    one-step wrapper asks the graph for every output, so every head runs."""
    tasks = Run(tiny_run).tasks()
    before = execution_counts(client.client)
    out = client.infer(["play some jazz"], tasks=[tasks[0]], model="multitask")
    assert set(out) == {tasks[0]}
    assert set(tasks) <= models_that_ran(client.client, before, set(tasks))


def _raw_infer(triton_client, name, array, dtype):
    import tritonclient.grpc as g

    inp = g.InferInput(name, list(array.shape), dtype)
    inp.set_data_from_numpy(array)
    return triton_client.infer("multitask", [inp])


def test_bad_input_gets_a_clear_error_and_the_server_keeps_serving(client):
    from tritonclient.utils import InferenceServerException

    tc = client.client
    # invalid UTF-8
    with pytest.raises(InferenceServerException, match="UTF-8"):
        _raw_infer(tc, "text", np.array([[b"\xff\xfe bad"]], dtype=np.object_), "BYTES")
    # wrong dtype: text as INT32
    with pytest.raises(InferenceServerException, match="(?i)data-?type.*INT32.*BYTES|expects 'BYTES'"):
        _raw_infer(tc, "text", np.array([[1]], dtype=np.int32), "INT32")
    # a batch larger than max_batch_size
    with pytest.raises(InferenceServerException, match="(?i)batch.?size"):
        _raw_infer(tc, "text", np.array([[b"hi"]] * 65, dtype=np.object_), "BYTES")
    # an unknown task is refused by the client before any call
    with pytest.raises(UserError, match="unknown task"):
        client.infer(["hello"], tasks=["nope"])
    # 10,000 characters: truncated to max_length, answered
    long = client.infer(["a" * 10_000, "word " * 2_000])
    assert all(np.isfinite(v["scores"]).all() for v in long.values())
    # and the server still serves normal requests
    assert tc.is_server_ready()
    ok = client.infer(["turn off the bedroom light"])
    assert all(v["scores"].shape[0] == 1 for v in ok.values())


def test_predict_command_prints_every_task(triton, tiny_run):
    out = subprocess.run(
        [sys.executable, "-m", "mtserve.cli", "predict", "--url", triton.grpc_url, "lock the front door"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for task in Run(tiny_run).tasks():
        assert task in out.stdout
    # scores print as 3-decimal numbers, not the float64 expansion of a float32 (0.0020000000949949026)
    scores = [
        line.split("scores=[", 1)[1].rstrip("]") for line in out.stdout.splitlines() if "scores=[" in line
    ]
    assert scores and all(len(x.strip().split(".")[1]) == 3 for line in scores for x in line.split(","))
    bad = subprocess.run(
        [sys.executable, "-m", "mtserve.cli", "predict", "--url", "127.0.0.1:1", "hi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 3 and "error" in bad.stderr and "Traceback" not in bad.stderr  # unreachable
