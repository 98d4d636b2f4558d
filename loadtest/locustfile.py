# Over 500 lines: run by plain `locust -f`, so the users, the master-worker messages and the flags are one file.
"""Locust users that load Triton over gRPC with utterances that each need every task's prediction.

    MultitaskUser   one call per utterance to the `multitask` ensemble (every task's head)
    PerTaskUser     one call per task to `single_<task>`, issued concurrently (gevent), each to the
                    deployment that serves that task; the utterance is done when all of them are
    EveryHeadUser   with a traffic mix (loadtest/mix.py): one call of `multitask` for the entry's tasks

With a mix, an utterance needs the tasks of one entry, drawn by share: MultitaskUser makes the entry's routed
calls (the client's routing, several concurrently), PerTaskUser calls `single_<task>` for each of its tasks.

Every Triton call fires `events.request` with request_type "grpc" and the Triton model name as its
name; every utterance fires one more with request_type "utterance" and the workload's name
("multitask" / "per-task"): that is the latency the capacity search holds to the SLO. Each user
paces itself with `constant_throughput(--throughput)`, so users x throughput is the offered rate.

Run it yourself against deployments that are already up (a locustfile never starts what it measures),
in one process or distributed on Locust's own master/worker engine:

    locust -f loadtest/locustfile.py --headless -u 8 -r 8 -t 30s --host 127.0.0.1:8001 \\
        --throughput 2 --csv reports/locust MultitaskUser          # or PerTaskUser, or both

    locust -f loadtest/locustfile.py --master --headless --expect-workers 2 -u 64 -r 16 -t 60s \\
        --host gateway.example.com:443 --authority mtserve.mtserve.example.com --tls \\
        --per-task-authority 'mtserve-{task_dns}.mtserve.example.com' --utterance-stats run.json
    locust -f loadtest/locustfile.py --worker --master-host MASTER      # once per worker, anywhere

How the distributed run is exact: the master (or a single process) builds the configuration when the
test starts: the pre-flight plan (which model at which endpoint, checked) and the utterance pool. It
sends it to every worker as a custom message (`mtserve_config`) before the spawn message: Locust hands
workers the master's custom arguments only at test start, so a worker never configures itself from its
own command line. Each load generator keeps the latency of every utterance it started inside the
measurement window and sends them to the master (`mtserve_samples`) when the window closes, after its
in-flight utterances drained; the master's percentiles come from every sample of every worker, not
from Locust's rounded response-time buckets. `--utterance-stats` writes them (JSON), `--utterance-samples`
every sample (CSV). `mtserve loadtest` drives the same users and messages step by step (loadtest/locust_process.py).

Why one long file: `locust -f` loads a single file on the master and on every worker, and the users, the
master/worker messages and the command-line options must all be registered by that import. The options are
not written here: they are generated from the settings `mtserve loadtest` takes too (`LOCUST_SETTINGS`: the
deployments, the connection, the utterances), plus the few only a plain run has (`LocustOptions`).
"""

from __future__ import annotations  # noqa: I001

# Order matters here: locust first (its gevent monkey-patching must precede every other import), then
# grpc's gevent integration, initialised before any channel exists.
import locust  # noqa: I001
from locust import User, constant_throughput, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

import grpc
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

import csv  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from tritonclient.grpc import service_pb2_grpc  # noqa: E402

from mtserve.core.errors import UserError  # noqa: E402
from mtserve.core.options import (  # noqa: E402
    NON_NEGATIVE,
    POSITIVE,
    Options,
    add_dataclass_arguments,
    from_args,
    option,
)
from mtserve.loadtest import protocol  # noqa: E402  (mtserve installed: pip install '.[loadtest]')
from mtserve.loadtest.protocol import TargetOptions  # noqa: E402
from mtserve.loadtest.workload import Utterance, UtteranceOptions  # noqa: E402
from mtserve.serving.endpoint import ConnectionOptions, Endpoint  # noqa: E402

GRPC = "grpc"
UTTERANCE = "utterance"
MSG_CONFIG, MSG_WINDOW, MSG_SAMPLES = "mtserve_config", "mtserve_window", "mtserve_samples"
PLAIN_WINDOW = "run"  # the one window of a plain `locust` run: from test start to test stop
_ = locust  # imported for its side effect
log = logging.getLogger("mtserve")


class TritonError(Exception):
    """A failed Triton call: its status and message (Locust groups failures by this text)."""


@dataclass
class LoadConfig:
    """What the users of one run share, in every process: the plan (models, outputs, endpoints), the
    utterance pool, the pacing and the per-call timeout."""

    plan: protocol.Plan
    utterances: list[Utterance]
    throughput: float = 1.0  # utterances per second per user; 0: no pacing (closed loop)
    timeout: float = 10.0  # per Triton call, seconds
    seed: int = 0
    _requests: dict = field(default_factory=dict)

    def request(self, model: str, index: int, tasks: tuple[str, ...] | None = None):
        key = (model, tasks, index)
        req = self._requests.get(key)
        if req is None:
            outputs = self.plan.outputs_for(model, tasks)
            req = protocol.infer_request(model, self.utterances[index], outputs)
            self._requests[key] = req
        return req

    def entry(self, rng: random.Random) -> dict | None:
        """The mix entry an utterance serves, drawn by share (None: no mix, every task)."""
        if not self.plan.mix:
            return None
        return rng.choices(self.plan.mix, weights=[e["share"] for e in self.plan.mix])[0]

    @property
    def drain_s(self) -> float:
        return self.timeout * 2 + 1.0  # a per-task utterance waits on its slowest call

    def to_message(self) -> dict:
        return {
            "plan": self.plan.to_dict(),
            "utterances": [u.to_list() for u in self.utterances],
            "throughput": self.throughput,
            "timeout": self.timeout,
            "seed": self.seed,
        }

    @classmethod
    def from_message(cls, d: dict) -> LoadConfig:
        return cls(
            protocol.Plan.from_dict(d["plan"]),
            [Utterance.from_list(u) for u in d["utterances"]],
            float(d["throughput"]),
            float(d["timeout"]),
            int(d["seed"]),
        )


class Sampler:
    """One load generator's record of the utterances it started inside the open window.

    `accepting` gates new utterances (off once a window closes, so the in-flight ones can drain);
    `window` is the id of the open window (None: warm-up, nothing recorded). An utterance records the
    window it started in, and only those finish into `rows`, slow ones included."""

    def __init__(self):
        self.accepting = True
        self.window = None
        self.inflight = 0
        self.started = 0  # utterances started in the window: this generator's own count
        self.rows: dict[str, list] = {}  # "utterance:multitask" / "grpc:single_x" -> [ms, error or None]

    def open(self, window) -> None:
        self.rows, self.started, self.window, self.accepting = {}, 0, window, True

    def on_request(self, request_type, name, response_time, exception=None, context=None, **_kw):
        if self.window is None or (context or {}).get("window") != self.window:
            return
        self.rows.setdefault(f"{request_type}:{name}", []).append(
            [response_time, None if exception is None else str(exception)]
        )

    def close(self, drain_s: float) -> dict:
        """Stop new utterances, wait (bounded) for the in-flight ones, and hand over the window's rows."""
        self.accepting = False
        deadline = time.monotonic() + drain_s
        while self.inflight > 0 and time.monotonic() < deadline:
            gevent.sleep(0.02)
        out = {"window": self.window, "started": self.started, "undrained": self.inflight, "rows": self.rows}
        self.window, self.rows = None, {}
        return out


class Collector:
    """The master's (or a single process's) side: every load generator's rows, per window."""

    def __init__(self):
        self.windows: dict = {}  # window -> {generator id: payload}

    def add(self, generator: str, payload: dict) -> None:
        self.windows.setdefault(payload["window"], {})[generator] = payload

    def wait(self, window, generators: list[str], timeout: float) -> list[str]:
        """Wait until every generator has reported `window`; returns the ones that did not."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [g for g in generators if g not in self.windows.get(window, {})]
            if not missing or time.monotonic() >= deadline:
                return missing
            gevent.sleep(0.05)

    def merged(self, window) -> tuple[dict[str, list], dict[str, dict]]:
        """(rows of every generator by key, {generator: {started, recorded, undrained}})."""
        rows: dict[str, list] = {}
        generators = {}
        for gen, payload in sorted(self.windows.get(window, {}).items()):
            for key, r in payload["rows"].items():
                rows.setdefault(key, []).extend(r)
            generators[gen] = {
                "index": payload.get("index", 0),
                "started": payload["started"],
                "recorded": sum(len(r) for k, r in payload["rows"].items() if k.startswith(UTTERANCE + ":")),
                "undrained": payload["undrained"],
            }
        return rows, generators


def summarize_rows(rows: list) -> dict:
    return protocol.summarize([r[0] for r in rows], [r[1] for r in rows])


class TritonGrpcUser(User):
    """One gRPC channel per endpoint per user; subclasses say which calls make up an utterance."""

    abstract = True
    workload = ""
    _seq = 0
    _window = None  # the window the current utterance started in (one utterance at a time per user)

    def wait_time(self):
        rate = self.cfg.throughput
        return constant_throughput(rate)(self) if rate > 0 else 0.0

    def on_start(self):
        cfg = getattr(self.environment, "mtserve", None)
        if cfg is None:
            log.error("mtserve: no load configuration (a worker gets it from the master at test start)")
            raise StopUser()
        self.cfg = cfg
        self.sampler = self.environment.mtserve_sampler
        TritonGrpcUser._seq += 1
        index = max(0, getattr(self.environment.runner, "worker_index", 0) or 0)
        self.rng = random.Random(cfg.seed * 1_000_003 + index * 7919 + TritonGrpcUser._seq)
        channels: dict[Endpoint, grpc.Channel] = {}
        self.stubs = {}
        for model in cfg.plan.models(self.workload):
            endpoint = cfg.plan.endpoints[model]
            if endpoint not in channels:
                channels[endpoint] = endpoint.channel(protocol.GRPC_OPTIONS)
            self.stubs[model] = service_pb2_grpc.GRPCInferenceServiceStub(channels[endpoint])
        self.channels = list(channels.values())
        # Connect before the first utterance: a channel connects on its first call, and a user that joins a
        # measured step (users are added step by step) would otherwise charge that call its connection set-up.
        # Seen as ~500 ms on the first task's call of a new per-task user, which at low rates (few users, few
        # samples) was the step's p99.
        for ch in self.channels:
            try:
                grpc.channel_ready_future(ch).result(timeout=cfg.timeout)
            except grpc.FutureTimeoutError:
                pass  # not reachable yet: the calls will say so, as errors
        if cfg.throughput > 0:  # a random phase, so paced users do not arrive in lockstep
            gevent.sleep(self.rng.random() / cfg.throughput)
            # constant_pacing measures from User.__init__; restart its clock so the phase holds
            self._cp_last_run, self._cp_last_wait_time = time.perf_counter(), 0.0

    def on_stop(self):
        for ch in getattr(self, "channels", []):
            ch.close()

    def call(self, model: str, index: int, tasks: tuple[str, ...] | None = None) -> Exception | None:
        """One Triton call (asking for `tasks`' outputs, None: the plan's); fires its request event and returns
        the error (None when it succeeded)."""
        req = self.cfg.request(model, index, tasks)
        t0 = time.perf_counter()
        error = None
        size = 0
        try:
            resp = self.stubs[model].ModelInfer(req, timeout=self.cfg.timeout)
            size = resp.ByteSize()
            got = {o.name for o in resp.outputs}
            missing = [o for o in self.cfg.plan.outputs_for(model, tasks) if o not in got]
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
            context={"window": self._window},
        )  # a call belongs to its utterance's window
        return error

    def serve(self, index: int, entry: dict | None = None) -> Exception | None:
        raise NotImplementedError

    def call_all(self, calls: list[tuple[str, tuple[str, ...] | None]], index: int) -> Exception | None:
        """Several calls all in flight at once; the first error, or None."""
        if len(calls) == 1:
            return self.call(calls[0][0], index, calls[0][1])
        spawned = [gevent.spawn(self.call, model, index, tasks) for model, tasks in calls]
        gevent.joinall(spawned)
        for g in spawned:
            if g.exception is not None:
                return TritonError(f"{type(g.exception).__name__}: {g.exception}")
            if g.value is not None:
                return g.value
        return None

    @task
    def utterance(self):
        s = self.sampler
        if not s.accepting:
            return
        index = self.rng.randrange(len(self.cfg.utterances))
        entry = self.cfg.entry(self.rng)
        window = self._window = s.window
        s.inflight += 1
        if window is not None:
            s.started += 1
        t0 = time.perf_counter()
        try:
            error = self.serve(index, entry)
        finally:
            s.inflight -= 1
        self.environment.events.request.fire(
            request_type=UTTERANCE,
            name=self.workload,
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=0,
            exception=error,
            context={"window": window},
        )


class MultitaskUser(TritonGrpcUser):
    """An utterance is one call to the multitask ensemble, asking for every task's outputs."""

    workload = protocol.MULTITASK

    def serve(self, index: int, entry: dict | None = None) -> Exception | None:
        if entry is None:
            return self.call(protocol.MULTITASK, index)
        return self.call_all([(c["model"], tuple(c["tasks"])) for c in entry["calls"]], index)


class PerTaskUser(TritonGrpcUser):
    """An utterance is one call per task to its own deployment, all in flight at once."""

    workload = protocol.PER_TASK

    def serve(self, index: int, entry: dict | None = None) -> Exception | None:
        tasks = entry["tasks"] if entry is not None else self.cfg.plan.tasks
        return self.call_all([(protocol.single_model(t), None) for t in tasks], index)


class EveryHeadUser(TritonGrpcUser):
    """With a mix: an utterance is one call of `multitask` asking for its entry's tasks (every head runs)."""

    workload = protocol.EVERY_HEAD

    def serve(self, index: int, entry: dict | None = None) -> Exception | None:
        return self.call(protocol.MULTITASK, index, None if entry is None else tuple(entry["tasks"]))


USER_CLASSES = {
    protocol.MULTITASK: MultitaskUser,
    protocol.PER_TASK: PerTaskUser,
    protocol.EVERY_HEAD: EveryHeadUser,
}


# ---------------------------------------------------------------- the messages between master and workers
def generator_id(runner) -> str:
    """A load generator as the master knows it: its Locust client id (a worker) or "local"."""
    return runner.client_id if isinstance(runner, WorkerRunner) else "local"


def attach(environment) -> None:
    """Give an environment (and its runner) the sampler, the collector and the message handlers.
    A plain `locust` run calls it at init; `mtserve loadtest` (loadtest/locust_process.py) calls it itself."""
    env = environment
    env.mtserve_sampler = Sampler()
    env.mtserve_collector = Collector()
    if not hasattr(env, "mtserve"):
        env.mtserve = None
    env.events.request.add_listener(env.mtserve_sampler.on_request)
    runner = env.runner

    def on_config(environment, msg, **_kw):  # a worker: the master's configuration, before the spawn message
        environment.mtserve = LoadConfig.from_message(msg.data["config"])
        environment.mtserve_sampler.accepting = True
        if msg.data.get("window") is not None:
            environment.mtserve_sampler.open(msg.data["window"])

    def on_window(environment, msg, **_kw):  # a load generator: open or close a measurement window
        sampler = environment.mtserve_sampler
        if msg.data["open"]:
            sampler.open(msg.data["window"])
            return

        def close():
            cfg = environment.mtserve
            payload = sampler.close(cfg.drain_s if cfg else 1.0)
            gen = generator_id(environment.runner)
            log.info(
                "mtserve: load generator %s sent %d utterances in window %s (%d recorded, %d undrained)",
                gen,
                payload["started"],
                payload["window"],
                sum(len(r) for k, r in payload["rows"].items() if k.startswith(UTTERANCE + ":")),
                payload["undrained"],
            )
            index = getattr(environment.runner, "worker_index", 0)
            environment.runner.send_message(MSG_SAMPLES, {"generator": gen, "index": index, **payload})

        if isinstance(environment.runner, WorkerRunner):
            gevent.spawn(close)  # draining must not hold up the worker's message loop
        else:
            close()

    def on_samples(environment, msg, **_kw):  # the master (or a single process)
        # keyed by the sender's id as the master sees it, so it matches runner.clients
        sender = msg.node_id if isinstance(environment.runner, MasterRunner) else "local"
        environment.mtserve_collector.add(sender, msg.data)

    runner.register_message(MSG_CONFIG, on_config)
    runner.register_message(MSG_WINDOW, on_window)
    runner.register_message(MSG_SAMPLES, on_samples)

    def on_test_start(environment, **_kw):
        if isinstance(environment.runner, WorkerRunner):
            return  # its configuration arrives from the master (MSG_CONFIG), ahead of the spawn message
        plain = not getattr(environment, "mtserve_driven", False)
        if plain and environment.mtserve is None:
            try:
                environment.mtserve = config_from_options(environment)
            except UserError as e:
                log.error("loadtest/locustfile.py: %s", e)
                environment.process_exit_code = 2
                gevent.spawn(environment.runner.quit)
                return
        window = PLAIN_WINDOW if plain else None
        if isinstance(environment.runner, MasterRunner):
            environment.runner.send_message(
                MSG_CONFIG, {"config": environment.mtserve.to_message(), "window": window}
            )
        elif window is not None:
            environment.mtserve_sampler.open(window)

    def on_test_stopping(environment, **_kw):
        # the master (or a single process) closes the plain run's window; a worker closes it on its message
        if (
            getattr(environment, "mtserve_driven", False)
            or environment.mtserve is None
            or isinstance(environment.runner, WorkerRunner)
        ):
            return
        close_window(environment, PLAIN_WINDOW)

    def on_quitting(environment, **_kw):
        if getattr(environment, "mtserve_driven", False) or isinstance(environment.runner, WorkerRunner):
            return
        report_plain_run(environment)

    env.events.test_start.add_listener(on_test_start)
    env.events.test_stopping.add_listener(on_test_stopping)
    env.events.quitting.add_listener(on_quitting)


def generators(runner) -> list[str]:
    """The load generators a window reaches: every connected worker, or this process."""
    if isinstance(runner, MasterRunner):
        return sorted(runner.clients.keys())
    return [generator_id(runner)]


def close_window(environment, window, extra_wait: float = 10.0) -> list[str]:
    """Close `window` on every load generator and wait (bounded) for their samples; returns the ids of
    the generators that did not report."""
    runner = environment.runner
    expected = generators(runner)
    runner.send_message(MSG_WINDOW, {"window": window, "open": False})
    cfg = environment.mtserve
    return environment.mtserve_collector.wait(window, expected, (cfg.drain_s if cfg else 1.0) + extra_wait)


def report_plain_run(environment) -> dict | None:
    """A plain run's exact numbers: logged, and written where --utterance-stats / --utterance-samples say."""
    opts = environment.parsed_options
    rows, gens = environment.mtserve_collector.merged(PLAIN_WINDOW)
    workloads = {
        k.split(":", 1)[1]: summarize_rows(r) for k, r in rows.items() if k.startswith(UTTERANCE + ":")
    }
    total = sum(w["count"] for w in workloads.values())
    if environment.mtserve is None:
        return None
    if total == 0:
        log.error("mtserve: no utterance was measured (did the workers get users? see their logs)")
        if environment.process_exit_code in (None, 0):
            environment.process_exit_code = 1
    for name, s in sorted(workloads.items()):
        log.info(
            "mtserve: %s: %d utterances from %d load generator(s), %d errors, p50 %.1f ms, p99 %.1f ms, max %.1f ms",
            name,
            s["count"],
            len(gens),
            s["errors"],
            s["p50_ms"],
            s["p99_ms"],
            s["max_ms"],
        )
    result = {
        "utterances": total,
        "workloads": workloads,
        "calls": {k.split(":", 1)[1]: summarize_rows(r) for k, r in rows.items() if k.startswith(GRPC + ":")},
        "generators": gens,
        "plan": environment.mtserve.plan.to_dict(),
    }
    path = getattr(opts, "utterance_stats", None) if opts else None
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(protocol.json_safe(result), indent=2) + "\n")
    path = getattr(opts, "utterance_samples", None) if opts else None
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["generator", "type", "name", "latency_ms", "error"])
            for gen, payload in sorted(environment.mtserve_collector.windows.get(PLAIN_WINDOW, {}).items()):
                for key, r in sorted(payload["rows"].items()):
                    kind, name = key.split(":", 1)
                    for ms, err in r:
                        w.writerow([gen, kind, name, f"{ms:.3f}", err or ""])
    return result


# ---------------------------------------------------------------- the `locust` command line
@dataclass
class LocustOptions(Options):
    """The options only a plain `locust` run takes; the deployments (protocol.TargetOptions), the connection
    (serving/endpoint.py ConnectionOptions) and the utterances (workload.UtteranceOptions) are declared where
    `mtserve loadtest` takes them too, and Locust's options are generated from the same declarations."""

    throughput: float = option(
        1.0,
        "utterances per second per user (constant_throughput); 0: no pacing",
        check=NON_NEGATIVE,
        show="{:g}".format,
    )
    request_timeout: float = option(10.0, "seconds per Triton call", check=POSITIVE, show="{:g}".format)
    utterance_stats: str | None = option(
        None,
        "write the exact per-utterance statistics (JSON)",
        show=lambda v: v or "not written",
        metavar="FILE",
    )
    utterance_samples: str | None = option(
        None,
        "write every utterance's and call's latency (CSV)",
        show=lambda v: v or "not written",
        metavar="FILE",
    )


# What a plain `locust` run takes beyond Locust's own options, in the order its help lists them.
LOCUST_SETTINGS = (TargetOptions, ConnectionOptions, UtteranceOptions, LocustOptions)


def config_from_options(environment) -> LoadConfig:
    """The pre-flight plan and the utterance pool from `locust`'s options (master or single process)."""
    opts = environment.parsed_options
    if not environment.host:
        raise UserError("give the multitask deployment's gRPC address with --host HOST:PORT")
    run = from_args(LocustOptions, opts)
    deployments = from_args(TargetOptions, opts)
    targets = deployments.targets(environment.host, from_args(ConnectionOptions, opts))
    plan = protocol.make_plan(targets, deployments.tasks or None, timeout=run.request_timeout)
    utterances = from_args(UtteranceOptions, opts)
    return LoadConfig(plan, utterances.pool(), run.throughput, run.request_timeout, utterances.seed)


@events.init_command_line_parser.add_listener
def _add_arguments(parser):
    g = parser.add_argument_group("mtserve", "multitask against per-task load (loadtest/locustfile.py)")
    for settings in LOCUST_SETTINGS:
        add_dataclass_arguments(g, settings)


@events.init.add_listener
def _on_init(environment, **_kw):
    if getattr(environment, "mtserve_driven", False) or environment.runner is None:
        return  # a driver (loadtest/locust_process.py) attaches its own environment
    named = getattr(environment.parsed_options, "user_classes", None) or []
    if not isinstance(environment.runner, WorkerRunner) and EveryHeadUser.__name__ not in named:
        # a plain run with no class named runs every class of the file: the two of the every-task workload, not the
        # mix's third (a worker keeps it: `mtserve loadtest --mix --workers N` spawns it there by name)
        environment.user_classes = [c for c in environment.user_classes if c is not EveryHeadUser]
    attach(environment)
