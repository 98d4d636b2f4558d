"""Reproduce issue 15: clients that cancel or time out requests crash Triton 2.51 (SIGSEGV in
TRITONBACKEND_ResponseSend, called by libtriton_python.so). docs/overload.md explains the cause.

It writes a minimal model repository: a python-backend model `a` and `--fanout` python-backend heads reading its
output, all with dynamic batching, in an ensemble `ens` (a -> every head), starts Triton on it (127.0.0.1 only),
and sends bursts of requests to `ens` with short gRPC deadlines, some also cancelled by the client. Layouts:

  flat     the ensemble the client calls schedules the heads (what `multitask` was): crashes
  nested   `ens` is one step running `ens_graph` (a -> every head): what `mtserve export` writes now
  --head-queue-policy timeout|size|both   a REJECT queue timeout (100 ms) and/or max_queue_size (64) on heads
  --a-queue-policy timeout|size|both      the same on model a (scheduled alone, like the tokenizer, the trunk)

    .venv/bin/python scripts/repro_cancel_crash.py --layout flat      # Triton dies within seconds
    .venv/bin/python scripts/repro_cancel_crash.py --layout nested    # it stays up
    .venv/bin/python scripts/repro_cancel_crash.py --repo model_repository/multitask --model multitask

With --repo it sends text to a model of an exported repository instead. Exit status: 0 if Triton is still up
and answers after the bursts, 1 if it crashed or stopped answering. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from mtserve.serving.triton import TritonServer

MODEL_PY = '''
import json, time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """OUTPUT0 = 2 * INPUT0 after `delay_ms`: a plain model that returns one response per request."""

    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.delay = float(cfg["parameters"]["delay_ms"]["string_value"]) / 1000

    def execute(self, requests):
        time.sleep(self.delay)
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", 2 * pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
            for r in requests
        ]
'''

POLICIES = {
    "": "",
    "timeout": "default_queue_policy { timeout_action: REJECT default_timeout_microseconds: 100000 }",
    "size": "default_queue_policy { max_queue_size: 64 }",
    "both": "default_queue_policy { timeout_action: REJECT default_timeout_microseconds: 100000 max_queue_size: 64 }",
}


def _model(name: str, delay_ms: float, policy: str) -> str:
    return f"""name: "{name}"
backend: "python"
max_batch_size: 8
input {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }}
output {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }}
instance_group {{ count: 1 kind: KIND_CPU }}
parameters {{ key: "delay_ms" value {{ string_value: "{delay_ms}" }} }}
dynamic_batching {{ max_queue_delay_microseconds: 500 {policy} }}
"""


def _ensemble(name: str, heads: list[str], steps: list[str]) -> str:
    outputs = "\n".join(f'output {{ name: "{h}_out" data_type: TYPE_FP32 dims: [ -1 ] }}' for h in heads)
    return f"""name: "{name}"
platform: "ensemble"
max_batch_size: 8
input {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }}
{outputs}
ensemble_scheduling {{
{chr(10).join(steps)}
}}
"""


def _step(model: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    ins = " ".join(f'input_map {{ key: "{k}" value: "{v}" }}' for k, v in inputs.items())
    outs = " ".join(f'output_map {{ key: "{k}" value: "{v}" }}' for k, v in outputs.items())
    return f'step {{ model_name: "{model}" model_version: -1 {ins} {outs} }}'


def make_repo(
    root: Path, layout: str, fanout: int, delay_ms: float, head_policy: bool, a_policy: bool
) -> None:
    heads = [f"h{i}" for i in range(fanout)]
    for name in ["a", *heads]:
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / "model.py").write_text(MODEL_PY)
        policy = POLICIES[a_policy if name == "a" else head_policy]
        (root / name / "config.pbtxt").write_text(_model(name, delay_ms if name == "a" else 1, policy))
    graph = "ens" if layout == "flat" else "ens_graph"
    steps = [_step("a", {"INPUT0": "INPUT0"}, {"OUTPUT0": "mid"})]
    steps += [_step(h, {"INPUT0": "mid"}, {"OUTPUT0": f"{h}_out"}) for h in heads]
    (root / graph / "1").mkdir(parents=True)
    (root / graph / "config.pbtxt").write_text(_ensemble(graph, heads, steps))
    if layout == "nested":
        wrapper = [_step(graph, {"INPUT0": "INPUT0"}, {f"{h}_out": f"{h}_out" for h in heads})]
        (root / "ens" / "1").mkdir(parents=True)
        (root / "ens" / "config.pbtxt").write_text(_ensemble("ens", heads, wrapper))


def _input(text: bool):
    if text:
        x = np.array([[b"please book a table for two people tonight"]], dtype=np.object_)
        inp = grpcclient.InferInput("text", list(x.shape), "BYTES")
    else:
        x = np.ones((1, 16), np.float32)
        inp = grpcclient.InferInput("INPUT0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return inp


def burst(
    url: str,
    model: str,
    text: bool,
    n: int,
    rate: float,
    deadline: float,
    cancel: float,
    seed: int,
    fixed: bool,
):
    """`n` requests at `rate`/s; deadlines log-uniform in [1 ms, `deadline`] (`fixed`: all `deadline`); a
    `cancel` fraction is also cancelled by the client at a moment drawn the same way. Returns {outcome: count}."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    lock = threading.Lock()
    ended = threading.Semaphore(0)

    def done(result, error):
        key = "ok" if error is None else str(error.status()).replace("StatusCode.", "")
        with lock:
            counts[key] = counts.get(key, 0) + 1
        ended.release()

    def log_uniform() -> float:
        return deadline if fixed else 1e-3 * (deadline / 1e-3) ** rng.random()

    inp = _input(text)
    pending: list[tuple[float, object]] = []
    with grpcclient.InferenceServerClient(url) as client:
        t0 = time.monotonic()
        for i in range(n):
            while (wait := t0 + i / rate - time.monotonic()) > 0:
                time.sleep(min(wait, 0.002))
            ctx = client.async_infer(model, [inp], done, client_timeout=log_uniform())
            if rng.random() < cancel:
                pending.append((time.monotonic() + log_uniform(), ctx))
            now = time.monotonic()
            for _, c in [p for p in pending if p[0] <= now]:
                c.cancel()
            pending = [p for p in pending if p[0] > now]
        for when, c in sorted(pending, key=lambda p: p[0]):
            time.sleep(max(0.0, when - time.monotonic()))
            c.cancel()
        stop = time.monotonic() + deadline + 30
        finished = sum(ended.acquire(timeout=max(0.0, stop - time.monotonic())) for _ in range(n))
    counts["never ended"] = n - finished
    return counts


def answers(url: str, model: str, text: bool) -> bool:
    try:
        with grpcclient.InferenceServerClient(url) as client:
            client.infer(model, [_input(text)], client_timeout=30)
        return True
    except Exception as e:  # noqa: BLE001 - reported, the exit status says it
        print(f"after the bursts {model} did not answer: {e}")
        return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layout", choices=("flat", "nested"), default="flat")
    p.add_argument("--fanout", type=int, default=4, help="heads after model a (default 4)")
    p.add_argument("--delay-ms", type=float, default=30, help="model a's time per batch (default 30)")
    p.add_argument(
        "--head-queue-policy",
        choices=("timeout", "size", "both"),
        default="",
        help="queue bound on the heads",
    )
    p.add_argument(
        "--a-queue-policy", choices=("timeout", "size", "both"), default="", help="queue bound on model a"
    )
    p.add_argument("--repo", type=Path, help="an exported repository instead of the minimal one")
    p.add_argument("--model", default="ens", help="the model to call (default ens; multitask with --repo)")
    p.add_argument("--requests", type=int, default=3000, help="per burst (default 3000)")
    p.add_argument("--rate", type=float, default=600, help="requests per second (default 600)")
    p.add_argument("--deadline", type=float, default=0.4, help="longest gRPC deadline, s (default 0.4)")
    p.add_argument("--fixed-deadline", action="store_true", help="every deadline is --deadline (as reported)")
    p.add_argument("--cancel", type=float, default=0.5, help="fraction the client cancels (default 0.5)")
    p.add_argument("--bursts", type=int, default=3, help="number of bursts (default 3)")
    a = p.parse_args()
    if a.repo is not None:
        repo, text = a.repo.resolve(), True
        model = "multitask" if a.model == "ens" else a.model
    else:
        repo, text, model = Path(tempfile.mkdtemp(prefix="repro-cancel-")) / "repo", False, a.model
        make_repo(repo, a.layout, a.fanout, a.delay_ms, a.head_queue_policy, a.a_queue_policy)
    server = TritonServer(repo)  # 127.0.0.1, ports chosen free
    server.start()
    print(f"Triton {server.grpc_url} on {repo}")
    try:
        for b in range(a.bursts):
            t0 = time.monotonic()
            counts = burst(
                server.grpc_url, model, text, a.requests, a.rate, a.deadline, a.cancel, b, a.fixed_deadline
            )
            up = server.is_running()
            print(
                f"burst {b}: {a.requests} requests to {model} in {time.monotonic() - t0:.1f} s: {counts}, "
                f"Triton {'up' if up else f'exited with {server.returncode}'}",
                flush=True,
            )
            if not up:
                break
        ok = server.is_running() and answers(server.grpc_url, model, text)
        if not server.is_running():
            print("--- Triton's last lines ---\n" + server.log_tail(30))
        print("RESULT: " + ("Triton up and answering" if ok else "Triton crashed or stopped answering"))
        return 0 if ok else 1
    finally:
        server.stop(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
