"""Clients that time out or cancel under load must not crash Triton (issue 15).

Triton 2.51's ensemble scheduler crashed the server (SIGSEGV in TRITONBACKEND_ResponseSend) when a step it
scheduled together with others failed at once, e.g. a head answered CANCELLED because the client's gRPC deadline
had passed: docs/overload.md. With the exported configuration (`multitask` wrapping the multitask graph, queue
bounds only on steps scheduled alone) a burst of such requests leaves the server up and answering as before,
through every kind of served path: `multitask`, a group's wrapper (a fan-out too), a task's linear path.
With the old layout (the ensemble the client calls schedules the heads) the test body failed all 6 times it was
run against it here: 5 times Triton crashed in the multitask burst, once `multitask` no longer answered after it
(docs/overload.md, "Checked"). A crash of 2.51's gRPC frontend, a different upstream bug, is reported as xfail.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.triton

TEXTS = ["the delivery was late again", "please book a table for two", "is the museum open on sunday"]
# Outcomes a client may see in a burst: its own deadline or cancel, or Triton's queue bound (UNAVAILABLE).
DEADLINES = (1e-3, 0.4)  # s: the range of client deadlines and of the moments clients cancel, log-uniform
EXPECTED_ERRORS = {"StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED", "StatusCode.UNAVAILABLE"}


@pytest.fixture(scope="module")
def repo(tiny_run, tmp_path_factory):
    """The tiny run exported with a group of two tasks (group_pair: a fan-out behind its one-step wrapper)."""
    from mtserve.export.export import export_run
    from mtserve.training.run_dir import Run

    out = tmp_path_factory.mktemp("overload") / "model_repository"
    export_run(tiny_run, out, progress=False, groups={"pair": Run(tiny_run).tasks()[:2]})
    return out


@pytest.fixture(scope="module")
def server(repo):
    """Its own Triton (a crash must not take the session's server with it, nor its backlog slow other tests),
    loading only what the bursts call."""
    from mtserve.serving.triton import TritonServer

    task = _classification_task(repo)
    s = TritonServer(
        repo,
        model_control="explicit",
        load_models=["multitask", f"single_{task}", "tokenizer", f"path_{task}", "group_pair"],
    )
    s.start()
    yield s
    s.stop()


def _classification_task(repo) -> str:
    tasks = json.loads((repo / "registry.json").read_text())["tasks"]
    return next(t for t, info in sorted(tasks.items()) if info["labels"])


def _text_input(texts):
    import tritonclient.grpc as g

    inp = g.InferInput("text", [len(texts), 1], "BYTES")
    inp.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=np.object_))
    return inp


def _answers(url: str, model: str) -> dict[str, np.ndarray]:
    import tritonclient.grpc as g

    with g.InferenceServerClient(url) as c:
        r = c.infer(model, [_text_input(TEXTS)], client_timeout=60)
        return {o.name: r.as_numpy(o.name) for o in r.get_response().outputs}


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return lo * (hi / lo) ** rng.random()


def burst(url: str, model: str, n: int, rate: float, seed: int) -> dict[str, int]:
    """`n` requests at `rate`/s, open loop. Each has a gRPC deadline and half are also cancelled by the client
    some time after they were sent, both between 1 ms and 0.4 s on a log scale, so that many end while their
    request is in a queue or running whatever the latency; one in ten asks for a 1 us queue timeout (Triton then
    rejects it in a queue). Returns how the requests ended; every one must end within the wait below."""
    import tritonclient.grpc as g

    rng = random.Random(seed)
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    ended = threading.Semaphore(0)

    def done(result, error):
        key = "ok" if error is None else str(error.status())
        with lock:
            outcomes[key] = outcomes.get(key, 0) + 1
        ended.release()

    inp = _text_input(TEXTS[:1])
    cancels: list[tuple[float, object]] = []
    with g.InferenceServerClient(url) as client:
        t0 = time.monotonic()
        for i in range(n):
            while (wait := t0 + i / rate - time.monotonic()) > 0:
                time.sleep(min(wait, 0.002))
            ctx = client.async_infer(
                model,
                [inp],
                done,
                client_timeout=_log_uniform(rng, *DEADLINES),
                timeout=1 if rng.random() < 0.1 else None,
            )
            if rng.random() < 0.5:
                cancels.append((time.monotonic() + _log_uniform(rng, *DEADLINES), ctx))
            now = time.monotonic()
            due = [c for c in cancels if c[0] <= now]
            cancels = [c for c in cancels if c[0] > now]
            for _, c in due:
                c.cancel()
        for when, ctx in sorted(cancels, key=lambda c: c[0]):
            time.sleep(max(0.0, when - time.monotonic()))
            ctx.cancel()
        # Every request has ended by its deadline; the slack covers a loaded machine.
        deadline = time.monotonic() + 30
        finished = sum(ended.acquire(timeout=max(0.0, deadline - time.monotonic())) for _ in range(n))
    outcomes["never ended"] = n - finished
    return outcomes


def grpc_frontend_crash(log: str) -> bool:
    """A crash whose every frame lies in the `tritonserver` binary or the C/C++ runtime: Triton 2.51's gRPC
    frontend, which has races of its own between a cancellation and a response (server issue #8034, fixed by
    server #8078 in r25.04; also #7840, #8220). No model configuration avoids them; one ended 1 of 18 runs of
    these bursts here with the shipped layout. The crash this test guards has frames in libtritonserver
    (TRITONBACKEND_ResponseSend, the ensemble scheduler)."""
    trace = log.split("Signal (11) received.", 1)
    frames = re.findall(r"^\s*\d+# .* in (\S+)$", trace[1], re.M) if len(trace) == 2 else []
    return bool(frames) and all(
        f.endswith("/bin/tritonserver") or "/libc.so" in f or "/libstdc++.so" in f for f in frames
    )


def test_cancelled_and_timed_out_bursts_leave_triton_up_and_correct(server, repo):
    url = server.grpc_url
    task = _classification_task(repo)
    single, path = f"single_{task}", f"path_{task}"
    # through the multitask graph, a group's graph (both fan-outs behind a wrapper), a linear path (tokenizer,
    # segment, head: no wrapper), a two-step ensemble, one model
    models = ["multitask", "group_pair", path, single, "tokenizer"]
    before = {m: _answers(url, m) for m in models}
    t0 = time.monotonic()
    for seed, (model, n, rate) in enumerate(
        [
            ("multitask", 3000, 600),
            ("group_pair", 1500, 600),
            (path, 1500, 600),
            (single, 1000, 500),
            ("tokenizer", 1000, 500),
        ]
    ):
        outcomes = burst(url, model, n, rate, seed)
        print(f"{model}: {n} requests at {rate}/s: {outcomes}, server up: {server.is_running()}")
        if not server.is_running():
            log = server.log_tail(60)
            if grpc_frontend_crash(log):
                pytest.xfail(
                    f"Triton 2.51's gRPC frontend crashed in the {model} burst (server#8034):\n{log}"
                )
            pytest.fail(f"Triton died during the {model} burst:\n{log}")
        assert outcomes.pop("never ended") == 0, outcomes
        assert set(outcomes) - {"ok"} <= EXPECTED_ERRORS, outcomes
        assert sum(outcomes.values()) == n
    print(f"bursts: {time.monotonic() - t0:.1f} s")
    assert server.ready()
    for m in models:  # and it answers as before
        after = _answers(url, m)
        assert after.keys() == before[m].keys(), m
        for name, want in before[m].items():
            if want.dtype == np.object_ or want.dtype.kind in "iu":
                assert np.array_equal(after[name], want), (m, name)
            else:
                np.testing.assert_allclose(after[name], want, rtol=0, atol=1e-5, err_msg=f"{m} {name}")
