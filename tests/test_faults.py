"""Faults the server side turns into clear errors or repairs: a python-backend process that dies (the watchdog
of `mtserve serve`), a python-backend version without its model.py, a model Triton fails to load. The measured,
longer versions are in tests/reliability/ (`make reliability`)."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from mtserve.serving import triton as launcher
from tests.conftest import first_segment


def test_missing_model_py_is_refused_before_triton_starts(tiny_repo, tmp_path):
    from mtserve.core.errors import UserError

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    assert launcher.missing_model_files(repo) == []
    seg = first_segment(repo)
    (repo / seg / "1" / "model.py").unlink()
    missing = launcher.missing_model_files(repo)
    assert (
        len(missing) == 1 and f"model '{seg}' version 1" in missing[0] and f"{seg}/1/model.py" in missing[0]
    )
    assert launcher.missing_model_files(repo, ["tokenizer"]) == []  # explicit mode: only what is loaded
    server = launcher.TritonServer(repo)
    t0 = time.monotonic()
    with pytest.raises(UserError, match=rf"model '{seg}' version 1: .*model\.py is missing"):
        server.start()
    assert time.monotonic() - t0 < 5 and server.pid is None  # refused before Triton runs (it would hang)


def test_load_failures_name_the_model_and_the_file():
    log = (
        'I1129 08:38:11.466295 19621 model_lifecycle.cc:472] "loading: sentiment:1"\n'
        "E1129 08:38:11.466256 19621 model_lifecycle.cc:642] \"failed to load 'sentiment' version 1: Internal: "
        "InvalidProtobuf: [ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from /r/sentiment/1/model.onnx "
        'failed:Protobuf parsing failed.\\n\\nAt:\\n  /r/sentiment/1/model.py(26): initialize\\n"\n'
        "I1129 08:38:11.466295 19621 model_lifecycle.cc:777] \"failed to load 'sentiment'\"\n"
    )
    assert launcher.load_failures(log) == [
        "model 'sentiment' version 1: Internal: InvalidProtobuf: [ONNXRuntimeError] : 7 : INVALID_PROTOBUF : "
        "Load model from /r/sentiment/1/model.onnx failed:Protobuf parsing failed."
    ]


@pytest.mark.triton
def test_watchdog_reloads_a_model_whose_process_died(tiny_repo, tmp_path):
    """Triton 2.51 leaves such a model READY and failing for good; the watchdog brings it back."""
    import numpy as np
    import tritonclient.grpc as g

    from mtserve.serving.watchdog import StubWatchdog, stub_processes

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    # the tokenizer alone: one process to kill, and a start of seconds
    server = launcher.TritonServer(repo, model_control="explicit", load_models=["tokenizer"])
    server.start()
    lines = []
    dog = StubWatchdog(server.pid, server.grpc_url, log=lines.append).start()
    try:
        with g.InferenceServerClient(server.grpc_url) as c:
            text = g.InferInput("text", [1, 1], "BYTES")
            text.set_data_from_numpy(np.array([[b"book a table for two"]], dtype=np.object_))
            c.infer("tokenizer", [text], client_timeout=30)
            time.sleep(1.0)  # the watchdog has seen every instance alive
            victim = next(s for s in stub_processes(server.pid) if s.model == "tokenizer")
            os.kill(victim.pid, signal.SIGKILL)
            end, answered = time.monotonic() + 30, False
            while time.monotonic() < end and not answered:
                try:
                    c.infer("tokenizer", [text], client_timeout=10)
                    answered = True
                except Exception:  # noqa: BLE001 - "Stub process 'tokenizer_0_0' is not healthy" until reloaded
                    time.sleep(0.2)
        assert answered, f"the tokenizer still failing 30 s after its process died: {lines}"
        new = [s for s in stub_processes(server.pid) if s.model == "tokenizer"]
        assert new and new[0].pid != victim.pid
        assert [e.action for e in dog.events] == ["reloaded"] and dog.events[0].model == "tokenizer", lines
        assert any("model tokenizer: its process tokenizer_0_0" in x and "reloaded" in x for x in lines), (
            lines
        )
    finally:
        dog.stop()
        server.stop(timeout=2)  # a model whose process died never finishes unloading: do not wait 30 s
