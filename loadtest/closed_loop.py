"""A closed loop: N callers, each sending its next utterance as soon as its last one is answered. It measures the
most a server does at that concurrency, with no pacing and no SLO: the probes in scripts/ (CPU per utterance,
queue time against load, the response cache) and the reliability tests' capacity figure
(tests/reliability/harness.py) drive their traffic with it. The SLO-bound capacity search is paced Locust users
instead (loadtest/capacity.py).

    def caller(k):                      # once per caller, in its own thread: its channel, its utterances
        order = itertools.count(k, 16)
        return utterance_caller(url, plan, "per-task", lambda: pool[next(order) % len(pool)])

    run = closed_loop(16, 20.0, caller)
    run.utterances_per_s, run.percentile_ms(99), len(run.failed())

Plain threads and grpc (no gevent, no Locust).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from tritonclient.grpc import service_pb2_grpc

from mtserve.loadtest.protocol import GRPC_OPTIONS, Plan, infer_request, percentile
from mtserve.loadtest.workload import Utterance


@dataclass
class Sent:
    """One utterance of a caller: when it left (monotonic s), how long until its answer, and how it ended."""

    start: float
    latency: float  # seconds
    code: str = "OK"  # or the gRPC status name
    detail: str = ""


@dataclass
class ClosedLoopRun:
    """The utterances of one closed loop that started inside its measured window (after the warm-up)."""

    users: int
    seconds: float  # the window asked for
    elapsed: float  # from the window's start until the last caller stopped (its last answers included)
    calls: list[Sent] = field(default_factory=list)

    def ok(self) -> list[Sent]:
        return [c for c in self.calls if c.code == "OK"]

    def failed(self) -> list[Sent]:
        return [c for c in self.calls if c.code != "OK"]

    @property
    def utterances_per_s(self) -> float:
        """Answered utterances per second of the window as it ran."""
        return len(self.ok()) / self.elapsed if self.elapsed > 0 else 0.0

    def percentile_ms(self, q: float) -> float | None:
        """Latency percentile of the answered utterances, ms (None: none answered)."""
        ms = sorted(1000.0 * c.latency for c in self.ok())
        return percentile(ms, q) if ms else None


def closed_loop(
    users: int,
    seconds: float,
    make_caller: Callable[[int], Callable[[], None]],
    *,
    warmup: float = 0.0,
    join_timeout: float | None = None,
) -> ClosedLoopRun:
    """`users` threads; thread k calls `make_caller(k)` once, then the function it returned (one utterance, blocking
    until answered) again and again until `warmup + seconds` have passed. Every utterance that started after the
    warm-up is recorded: answered, or failed with its gRPC status. Any other exception is a bug of the caller, not
    an answer of the server: it is raised here once every thread has stopped.

    `join_timeout` bounds the wait for the last answers (default: the window plus 60 s); the threads are daemons,
    so a call that hangs past it does not keep the process alive."""
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + seconds
    lock = threading.Lock()
    calls: list[Sent] = []
    bugs: list[BaseException] = []

    def user(k: int) -> None:
        try:
            send = make_caller(k)
            while time.monotonic() < stop_at:
                t = time.monotonic()
                try:
                    send()
                    c = Sent(t, time.monotonic() - t)
                except grpc.RpcError as e:
                    c = Sent(t, time.monotonic() - t, e.code().name, e.details() or "")
                if t >= measure_from:
                    with lock:
                        calls.append(c)
        except Exception as e:  # noqa: BLE001 - handed to the caller below
            with lock:
                bugs.append(e)

    threads = [threading.Thread(target=user, args=(k,), daemon=True) for k in range(users)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + (join_timeout if join_timeout is not None else warmup + seconds + 60.0)
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - measure_from
    if bugs:
        raise bugs[0]
    with lock:
        return ClosedLoopRun(users, seconds, elapsed, list(calls))


def utterance_caller(
    address: str,
    plan: Plan,
    workload: str,
    next_utterance: Callable[[], Utterance],
    timeout: float | None = None,
    models: list[str] | None = None,
) -> Callable[[], None]:
    """One caller of a workload on its own channel to `address`: each utterance is one call per model of the
    workload (multitask: one; per-task: one per task, all in flight at once; or the `models` given, e.g. the
    paths a client routes a task subset to), done when every one has answered, as the load test's users send it
    (loadtest/locustfile.py)."""
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(address, options=GRPC_OPTIONS))
    models = list(models or plan.models(workload))

    def send() -> None:
        u = next_utterance()
        futures = [
            stub.ModelInfer.future(infer_request(m, u, plan.outputs[m]), timeout=timeout) for m in models
        ]
        for f in futures:
            f.result()

    return send
