"""serving.triton: the bundled tritonserver, started for real on a throwaway repository.

The repository is built here: `add_one`, a python-backend model whose model.py imports numpy,
`ssl`, onnxruntime and our own `serving` package (each import proves one part of the environment
the launcher sets up), a spare copy of it for explicit load/unload, and `add_two`, an ensemble
that chains `add_one` twice so a tensor travels between two python-backend processes.
Every client talks to 127.0.0.1 only.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from mtserve.core.errors import UserError
from mtserve.serving import triton as launcher

ROOT = Path(__file__).resolve().parent.parent
MTSERVE = ROOT / ".venv" / "bin" / "mtserve"

MODEL_PY = """\
import os
import ssl  # noqa: F401  fails with "undefined symbol" when the stub loads the wrong libpython

import numpy as np
import onnxruntime  # noqa: F401  the venv's site-packages are on the stub's path
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.threads = int(os.environ.get("OMP_NUM_THREADS", "0"))

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            threads = np.full((x.shape[0], 1), self.threads, dtype=np.int32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", (x + 1).astype(np.float32)),
                pb_utils.Tensor("THREADS", threads),
            ]))
        return responses
"""


def _config(name: str, *, ensemble_of: str | None = None):
    from tritonclient.grpc import model_config_pb2 as mc

    cfg = mc.ModelConfig(name=name, max_batch_size=8)
    cfg.input.add(name="INPUT0", data_type=mc.TYPE_FP32, dims=[-1])
    cfg.output.add(name="OUTPUT0", data_type=mc.TYPE_FP32, dims=[-1])
    if ensemble_of is None:
        cfg.backend = "python"
        cfg.output.add(name="THREADS", data_type=mc.TYPE_INT32, dims=[1])
        cfg.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=1)
    else:
        cfg.platform = "ensemble"
        first = cfg.ensemble_scheduling.step.add(model_name=ensemble_of, model_version=-1)
        first.input_map["INPUT0"] = "INPUT0"
        first.output_map["OUTPUT0"] = "plus_one"
        second = cfg.ensemble_scheduling.step.add(model_name=ensemble_of, model_version=-1)
        second.input_map["INPUT0"] = "plus_one"
        second.output_map["OUTPUT0"] = "OUTPUT0"
    return cfg


def _write_model(repo: Path, cfg, model_py: str | None = None, *, trailer: str = "") -> None:
    from google.protobuf import text_format

    (repo / cfg.name / "1").mkdir(parents=True, exist_ok=True)
    (repo / cfg.name / "config.pbtxt").write_text(text_format.MessageToString(cfg) + trailer)
    if model_py is not None:
        (repo / cfg.name / "1" / "model.py").write_text(model_py)


def build_repo(root: Path) -> Path:
    repo = root / "model_repository"
    _write_model(repo, _config("add_one"), MODEL_PY)
    _write_model(repo, _config("spare"), MODEL_PY)
    _write_model(repo, _config("add_two", ensemble_of="add_one"))
    return repo


def _input(x: np.ndarray):
    import tritonclient.grpc as grpcclient

    dtype = {np.dtype(np.float32): "FP32", np.dtype(np.int32): "INT32", np.dtype(np.float64): "FP64"}[x.dtype]
    inp = grpcclient.InferInput("INPUT0", list(x.shape), dtype)
    inp.set_data_from_numpy(x)
    return inp


# --------------------------------------------------------------------------------------------------
# No server needed
# --------------------------------------------------------------------------------------------------


def test_find_tritonserver_is_the_bundled_binary():
    binary = launcher.find_tritonserver()
    assert binary.name == "tritonserver" and binary.is_file() and os.access(binary, os.X_OK)
    assert "pytriton" in binary.parts


def test_missing_pytriton_is_a_user_error(monkeypatch):
    real = launcher.importlib.util.find_spec
    monkeypatch.setattr(
        launcher.importlib.util, "find_spec", lambda name, *a: None if name == "pytriton" else real(name, *a)
    )
    with pytest.raises(UserError, match="nvidia-pytriton"):
        launcher.find_tritonserver()


def test_backend_directory_is_idempotent_and_survives_a_race(tmp_path):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        dirs = pool.map(launcher.backend_directory, [tmp_path] * 8)
    assert len(set(dirs)) == 1
    backend = Path(dirs[0])
    assert backend.parent == tmp_path
    names = {p.name for p in (backend / "python").iterdir()}
    assert names == {"libtriton_python.so", "triton_python_backend_utils.py", "triton_python_backend_stub"}
    assert os.access(backend / "python" / "triton_python_backend_stub", os.X_OK)
    assert launcher.backend_directory(tmp_path) == backend
    assert [p.name for p in tmp_path.iterdir()] == [backend.name]  # no staging copies left behind


def test_server_env_handles_the_known_traps():
    env = launcher.server_env({"EXTRA": 7}, base={"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/x"})
    ld = env["LD_LIBRARY_PATH"].split(os.pathsep)
    assert ld[0] == sysconfig.get_config_var("LIBDIR")  # the stub must load *this* Python's libpython
    assert str(launcher.triton_libs_dir()) in ld and ld[-1] == "/opt/x"
    pythonpath = env["PYTHONPATH"].split(os.pathsep)
    assert sysconfig.get_paths()["purelib"] in pythonpath
    assert str(ROOT) not in pythonpath  # models must run without the project, as in the stock image
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1" and env["EXTRA"] == "7"
    assert (
        launcher.server_env(base={"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"
    )  # the caller's choice wins


def test_ports_urls_and_arguments(tmp_path):
    port = launcher.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    server = launcher.TritonServer(tmp_path, http_port=port, model_control="explicit", load_models=["*"])
    assert server.http_url == f"127.0.0.1:{port}"
    assert len({server.grpc_port, server.http_port, server.metrics_port}) == 3
    assert server.grpc_url.startswith("127.0.0.1:") and server.metrics_url.startswith("127.0.0.1:")
    assert server.pid is None and server.stop() == 0  # stopping a server never started is harmless
    cmd = server.command()
    assert "--model-control-mode=explicit" in cmd and "--load-model=*" in cmd
    assert any(a.startswith("--backend-config=python,shm-default-byte-size=") for a in cmd)
    assert launcher.TritonServer(tmp_path, address=None).command().count("--http-address=127.0.0.1") == 0
    with pytest.raises(ValueError):
        launcher.TritonServer(tmp_path, model_control="sometimes")
    with pytest.raises(ValueError):
        launcher.TritonServer(tmp_path, load_models=["add_one"])  # needs explicit mode


def test_serve_rejects_a_missing_repository(tmp_path, capsys):
    from mtserve.cli import main

    assert main(["serve", "--repo", str(tmp_path / "nope")]) == 2
    assert "model repository not found" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# A real server
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return build_repo(tmp_path_factory.mktemp("launcher"))


@pytest.fixture(scope="module")
def server(repo):
    with launcher.TritonServer(repo, model_control="explicit", load_models=["add_one", "add_two"]) as s:
        yield s


@pytest.fixture()
def client(server):
    import tritonclient.grpc as grpcclient

    c = grpcclient.InferenceServerClient(server.grpc_url)
    yield c
    c.close()


@pytest.mark.triton
def test_python_model_and_ensemble_answer_over_grpc(server, client):
    assert server.grpc_url.startswith("127.0.0.1:")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    result = client.infer("add_one", [_input(x)])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), x + 1)
    # The stub saw the launcher's environment: one math thread per model process.
    assert result.as_numpy("THREADS").ravel().tolist() == [int(launcher.server_env()["OMP_NUM_THREADS"])] * 3
    np.testing.assert_array_equal(client.infer("add_two", [_input(x)]).as_numpy("OUTPUT0"), x + 2)


@pytest.mark.triton
def test_start_returns_once_the_metrics_port_listens_too(repo, monkeypatch):
    """Triton opens its metrics port about 40 ms after the HTTP one: start() waits for it as well (here the
    first five looks say "not yet"), and a scrape right after start() is answered."""
    looks: list[bool] = []
    real = launcher.TritonServer._metrics_listening

    def late(self):
        looks.append(len(looks) >= 5 and real(self))
        return looks[-1]

    monkeypatch.setattr(launcher.TritonServer, "_metrics_listening", late)
    with launcher.TritonServer(repo, model_control="explicit", load_models=["add_one"]) as s:
        assert len(looks) >= 6 and looks[-1] and not any(looks[:5])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{s.metrics_url}/metrics", timeout=10) as r:
            assert r.status == 200


@pytest.mark.triton
def test_hidden_state_sized_tensor_crosses_two_python_models(client):
    x = np.random.default_rng(0).standard_normal((8, 64 * 128 * 768 // 8), dtype=np.float32)  # 24 MiB
    out = client.infer("add_two", [_input(x)]).as_numpy("OUTPUT0")
    np.testing.assert_allclose(out, x + 2, rtol=0, atol=1e-5)


@pytest.mark.triton
def test_bad_requests_fail_alone(server, client):
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="(?i)data.?type|dtype|INT32"):
        client.infer("add_one", [_input(np.ones((2, 3), dtype=np.int32))])
    with pytest.raises(InferenceServerException, match="(?i)batch"):
        client.infer("add_two", [_input(np.ones((9, 3), dtype=np.float32))])  # max_batch_size is 8
    with pytest.raises(InferenceServerException):
        client.infer("no_such_model", [_input(np.ones((1, 3), dtype=np.float32))])
    assert server.is_running() and client.is_server_ready()
    np.testing.assert_array_equal(
        client.infer("add_one", [_input(np.zeros((8, 2), np.float32))]).as_numpy("OUTPUT0"),
        np.ones((8, 2), np.float32),
    )


@pytest.mark.triton
def test_explicit_mode_loads_and_unloads_a_model(client):
    from tritonclient.utils import InferenceServerException

    assert not client.is_model_ready("spare")
    client.load_model("spare")
    assert client.is_model_ready("spare")
    x = np.full((1, 5), 41, dtype=np.float32)
    np.testing.assert_array_equal(client.infer("spare", [_input(x)]).as_numpy("OUTPUT0"), x + 1)
    client.unload_model("spare")
    deadline = time.monotonic() + 20
    while client.is_model_ready("spare") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not client.is_model_ready("spare")
    with pytest.raises(InferenceServerException):
        client.infer("spare", [_input(x)])
    assert client.is_model_ready("add_two")  # the rest of the repository is untouched


@pytest.mark.triton
def test_broken_config_fails_start_with_the_log_tail(tmp_path):
    repo = tmp_path / "repo"
    _write_model(repo, _config("broken"), MODEL_PY, trailer="this_is_not_a_field: true\n")
    server = launcher.TritonServer(repo, log_file=tmp_path / "triton.log")
    t0 = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        server.start(timeout=60)
    assert time.monotonic() - t0 < 30  # it noticed the exit, not the timeout
    message = str(info.value)
    assert "last lines of the Triton log" in message
    assert "this_is_not_a_field" in message or "broken" in message
    assert message.strip().splitlines()[-1] in server.log_tail()
    code = server.stop()
    assert code != 0 and server.stop() == code and not server.is_running()


@pytest.mark.triton
def test_mtserve_serve_runs_in_the_foreground_and_stops_on_sigterm(repo):
    grpc_port, http_port, metrics_port = launcher._free_ports(3)
    cmd = [
        str(MTSERVE) if MTSERVE.exists() else sys.executable,
        *([] if MTSERVE.exists() else ["-m", "mtserve.cli"]),
        "serve",
        "--repo",
        str(repo),
        "--address",
        "127.0.0.1",
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    lines: list[str] = []
    ready = threading.Event()

    def drain():  # keep reading, or Triton blocks on a full pipe
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Triton ready:"):
                ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "".join(lines[-60:])
        ready_line = next(line for line in lines if line.startswith("Triton ready:"))
        assert f"grpc 127.0.0.1:{grpc_port}" in ready_line and f"http 127.0.0.1:{http_port}" in ready_line
        assert f"metrics 127.0.0.1:{metrics_port}" in ready_line
        assert any("Started GRPCInferenceService" in line for line in lines)  # Triton's own log, streamed

        import tritonclient.grpc as grpcclient

        with grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}") as c:  # none mode: all loaded
            x = np.ones((2, 2), np.float32)
            np.testing.assert_array_equal(c.infer("add_two", [_input(x)]).as_numpy("OUTPUT0"), x + 2)

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, "".join(lines[-60:])
        assert time.monotonic() - t0 < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    with socket.socket() as s:  # Triton is gone: its port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", grpc_port))
