"""Locust users that load a Triton server over gRPC with utterances that each need every task's prediction.

    MultitaskUser   one call per utterance to the `multitask` ensemble (every task's head)
    PerTaskUser     one call per task to `single_<task>`, issued concurrently (gevent); the utterance
                    is done when all of them are

Every Triton call fires `events.request` with request_type "grpc" and the Triton model name as its
name; every utterance fires one more with request_type "utterance" and the workload's name
("multitask" / "per-task"): that is the latency the capacity search holds to the SLO. Each user
paces itself with `constant_throughput(--throughput)`, so users x throughput is the offered rate.

Run it yourself against a server that is already up (a locustfile never starts what it measures):

    locust -f loadtest/locustfile.py --headless -u 8 -r 8 -t 30s --host 127.0.0.1:8001 \\
        --throughput 2 --csv reports/locust MultitaskUser          # or PerTaskUser, or both

`mtserve loadtest` drives the same users programmatically (loadtest/worker.py) to search for capacity.
"""

# Order matters here: locust first (its gevent monkey-patching must precede every other import), then
# grpc's gevent integration, initialised before any channel exists.
import locust  # noqa: I001
from locust import User, constant_throughput, events, task

import grpc
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

import random  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import gevent  # noqa: E402
from tritonclient.grpc import service_pb2_grpc  # noqa: E402

from mtserve.loadtest import protocol  # noqa: E402  (mtserve installed: pip install '.[loadtest]')
from mtserve.loadtest.workload import POOL_SIZE, WORDS, Utterance, build_pool  # noqa: E402
from mtserve.serving.errors import UserError  # noqa: E402

GRPC = "grpc"
UTTERANCE = "utterance"
_ = locust  # imported for its side effect


class TritonError(Exception):
    """A failed Triton call: its status and message (Locust groups failures by this text)."""


@dataclass
class LoadConfig:
    """What the users of one run share. `stop_at` (monotonic) stops new utterances; `inflight` counts
    utterances started and not yet done, so a driver can drain before stopping the users."""

    url: str
    per_task_url: str
    plan: protocol.Plan
    utterances: list[Utterance]
    throughput: float = 1.0  # utterances per second per user; 0: no pacing (closed loop)
    timeout: float = 10.0  # per Triton call, seconds
    seed: int = 0
    stop_at: float | None = None
    inflight: int = 0
    _requests: dict = field(default_factory=dict)

    def request(self, model: str, index: int):
        key = (model, index)
        req = self._requests.get(key)
        if req is None:
            req = protocol.infer_request(model, self.utterances[index], self.plan.outputs[model])
            self._requests[key] = req
        return req


class TritonGrpcUser(User):
    """One gRPC channel per user; subclasses say which calls make up an utterance."""

    abstract = True
    workload = ""
    _seq = 0
    _utterance_start = 0.0  # one utterance at a time per user: its calls report this start

    def wait_time(self):
        rate = self.cfg.throughput
        return constant_throughput(rate)(self) if rate > 0 else 0.0

    def on_start(self):
        cfg = self.environment.mtserve
        self.cfg = cfg
        TritonGrpcUser._seq += 1
        self.rng = random.Random(cfg.seed * 1_000_003 + TritonGrpcUser._seq)
        self.channel = grpc.insecure_channel(self.target(cfg), options=protocol.GRPC_OPTIONS)
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)
        if cfg.throughput > 0:  # a random phase, so paced users do not arrive in lockstep
            gevent.sleep(self.rng.random() / cfg.throughput)
            # constant_pacing measures from User.__init__; restart its clock so the phase holds
            self._cp_last_run, self._cp_last_wait_time = time.perf_counter(), 0.0

    def on_stop(self):
        self.channel.close()

    def target(self, cfg: LoadConfig) -> str:
        return cfg.url

    def call(self, model: str, index: int) -> Exception | None:
        """One Triton call; fires its request event and returns the error (None when it succeeded)."""
        req = self.cfg.request(model, index)
        t0 = time.perf_counter()
        error = None
        size = 0
        try:
            resp = self.stub.ModelInfer(req, timeout=self.cfg.timeout)
            size = resp.ByteSize()
            got = {o.name for o in resp.outputs}
            missing = [o for o in self.cfg.plan.outputs[model] if o not in got]
            if missing:
                error = TritonError(f"{model}: response lacks {missing}")
        except grpc.RpcError as e:
            error = TritonError(f"{model}: {e.code().name}: {e.details()}")
        self.environment.events.request.fire(
            request_type=GRPC,
            name=model,
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=size,
            exception=error,
            context={"start": self._utterance_start},
        )  # a call belongs to its utterance
        return error

    def serve(self, index: int) -> Exception | None:
        raise NotImplementedError

    @task
    def utterance(self):
        cfg = self.cfg
        if cfg.stop_at is not None and time.monotonic() >= cfg.stop_at:
            return
        index = self.rng.randrange(len(cfg.utterances))
        cfg.inflight += 1
        start = self._utterance_start = time.monotonic()
        t0 = time.perf_counter()
        try:
            error = self.serve(index)
        finally:
            cfg.inflight -= 1
        self.environment.events.request.fire(
            request_type=UTTERANCE,
            name=self.workload,
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=0,
            exception=error,
            context={"start": start},
        )


class MultitaskUser(TritonGrpcUser):
    """An utterance is one call to the multitask ensemble, asking for every task's outputs."""

    workload = protocol.MULTITASK

    def serve(self, index: int) -> Exception | None:
        return self.call(protocol.MULTITASK, index)


class PerTaskUser(TritonGrpcUser):
    """An utterance is one call per task to its own deployment, all in flight at once."""

    workload = protocol.PER_TASK

    def target(self, cfg: LoadConfig) -> str:
        return cfg.per_task_url

    def serve(self, index: int) -> Exception | None:
        calls = [gevent.spawn(self.call, protocol.single_model(t), index) for t in self.cfg.plan.tasks]
        gevent.joinall(calls)
        for g in calls:
            if g.exception is not None:
                return TritonError(f"{type(g.exception).__name__}: {g.exception}")
            if g.value is not None:
                return g.value
        return None


USER_CLASSES = {protocol.MULTITASK: MultitaskUser, protocol.PER_TASK: PerTaskUser}


# ---------------------------------------------------------------- the `locust` command line
@events.init_command_line_parser.add_listener
def _add_arguments(parser):
    g = parser.add_argument_group("mtserve", "multitask against per-task load (loadtest/locustfile.py)")
    g.add_argument(
        "--tasks", default="", help="comma-separated tasks every utterance needs (default: all served)"
    )
    g.add_argument(
        "--per-task-host", default="", help="gRPC address of the per-task deployment (default: --host)"
    )
    g.add_argument(
        "--utterances",
        action="append",
        default=None,
        help="utterance source: corpus, a GLUE task name or a file (repeatable; default corpus)",
    )
    g.add_argument("--mix", default="", help="weights of the --utterances sources, e.g. 3,1")
    g.add_argument("--words", default=WORDS, help="utterance length in words: natural, N or MIN:MAX")
    g.add_argument("--glue-dir", default="", help="folder of GLUE's task folders, for GLUE sources")
    g.add_argument(
        "--throughput",
        type=float,
        default=1.0,
        help="utterances per second per user (constant_throughput); 0: no pacing",
    )
    g.add_argument("--request-timeout", type=float, default=10.0, help="seconds per Triton call")
    g.add_argument("--pool-size", type=int, default=POOL_SIZE, help="utterances drawn for the run")
    g.add_argument("--seed", type=int, default=0)


@events.init.add_listener
def _configure(environment, **_kw):
    if getattr(environment, "mtserve", None) is not None:
        return  # a driver (loadtest/worker.py) configured it already
    opts = environment.parsed_options
    if opts is None or not hasattr(opts, "throughput"):
        return
    if not environment.host:
        raise SystemExit("loadtest/locustfile.py: give the Triton gRPC address with --host HOST:PORT")
    url = protocol.normalize_url(environment.host)
    pt_url = protocol.normalize_url(opts.per_task_host) if opts.per_task_host else url
    tasks = [t.strip() for t in opts.tasks.split(",") if t.strip()] or None
    try:
        plan = protocol.make_plan(url, tasks, pt_url, timeout=opts.request_timeout)
        pool = build_pool(
            opts.utterances or ["corpus"],
            opts.mix or None,
            opts.words,
            opts.pool_size,
            opts.seed,
            opts.glue_dir or None,
        )
    except UserError as e:
        raise SystemExit(f"loadtest/locustfile.py: {e}") from None
    environment.mtserve = LoadConfig(
        url, pt_url, plan, pool, opts.throughput, opts.request_timeout, opts.seed
    )
