"""Triton's gRPC inference protocol, as the load test uses it: prebuilt `ModelInferRequest`s, the
per-workload call plan (which models to call, where each one is deployed, which outputs to ask for), and
Triton's own per-model statistics (read before and after each step of the search).

Plain grpc + protobuf, no gevent: the locustfile imports it after grpc's gevent integration is
initialised, and the capacity search imports it (without gevent) for its pre-flight checks.
"""

from __future__ import annotations

import math
import socket
import struct
from dataclasses import dataclass, field

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from mtserve.core import names
from mtserve.core.errors import Unreachable, UserError
from mtserve.core.options import Options, option
from mtserve.loadtest.workload import Utterance
from mtserve.serving.endpoint import TLS, ConnectionOptions, Endpoint, normalize_address

MULTITASK = names.MULTITASK
PER_TASK = "per-task"
WORKLOADS = (MULTITASK, PER_TASK)
# With a traffic mix (loadtest/mix.py) the multitask side routes each utterance like the client; this third
# workload sends the same mix to `multitask` (every head runs), the cost a client that does not route pays.
EVERY_HEAD = "every-head"
GRPC_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]


def normalize_url(url: str) -> str:
    """'grpc://host:port', 'http://host:port/' or 'host:port' -> 'host:port' (what grpc dials)."""
    try:
        return normalize_address(url)
    except UserError:
        raise UserError("empty Triton gRPC address") from None


single_model = names.single  # the per-task baseline's ensemble


def _bytes_tensor(value: str) -> bytes:
    """One BYTES element in Triton's raw wire format: 4-byte little-endian length, then the bytes."""
    b = value.encode("utf-8")
    return struct.pack("<I", len(b)) + b


def infer_request(model: str, utterance: Utterance, outputs: list[str]) -> service_pb2.ModelInferRequest:
    """A batch-of-one request: text (and text_pair) as BYTES [1, 1]; only `outputs` are asked for."""
    req = service_pb2.ModelInferRequest(model_name=model)
    req.inputs.add(name="text", datatype="BYTES", shape=[1, 1])
    req.raw_input_contents.append(_bytes_tensor(utterance.text))
    if utterance.pair is not None:
        req.inputs.add(name="text_pair", datatype="BYTES", shape=[1, 1])
        req.raw_input_contents.append(_bytes_tensor(utterance.pair))
    for name in outputs:
        req.outputs.add(name=name)
    return req


# ---------------------------------------------------------------- where each model is deployed
@dataclass(frozen=True)
class Targets:
    """The deployments as the options name them; `multitask()` and `per_task()` resolve them to endpoints.

    url / authority         the multitask deployment
    per_task_url            None: the multitask address; HOST:PORT: one address for every task;
                            a map 'a=HOST:PORT,b=HOST:PORT'; a template '{task}.models.example.com:443'
    per_task_authority      the same forms; None: --authority when per_task_url is None, else no authority
    tls                     for every endpoint

    `{task}` is the task name and `{task_dns}` the name with `_` as `-` (`mtserve k8s render` names the
    InferenceService of task intent_v2 mtserve-intent-v2)."""

    url: str
    authority: str | None = None
    per_task_url: str | None = None
    per_task_authority: str | None = None
    tls: TLS | None = None

    def multitask(self) -> Endpoint:
        return Endpoint(self.url, self.authority or None, self.tls)

    def per_task(self, tasks: list[str]) -> dict[str, Endpoint]:
        """task -> Endpoint of its `single_<task>` deployment; a UserError names a task the map leaves out."""
        if not self.per_task_url:
            addresses = dict.fromkeys(tasks, self.url)
            authority = self.per_task_authority or self.authority or None
        else:
            addresses = expand(self.per_task_url, tasks, "--per-task-url")
            authority = self.per_task_authority or None
        authorities = expand(authority, tasks, "--per-task-authority") if authority else {}
        return {t: Endpoint(addresses[t], authorities.get(t), self.tls) for t in tasks}


def parse_tasks(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@dataclass
class TargetOptions(Options):
    """The deployments beyond the multitask address (`--url` of `mtserve loadtest`, `--host` of `locust`), as
    both commands take them: each option declared once here, their flags generated from it (core/options.py)."""

    per_task_url: str | None = option(
        None,
        "the per-task deployments, when they are other endpoints: one HOST:PORT, a map "
        "'a=HOST:PORT,b=HOST:PORT' or a template '{task}.models.example.com:443' ({task_dns}: _ as -)",
        aliases=("--per-task-host",),
        show=lambda v: v or "the multitask address",
        metavar="ADDRESS",
    )
    per_task_authority: str | None = option(
        None,
        "the per-task deployments' :authority: a host, a map or a template, e.g. "
        "'mtserve-{task_dns}.mtserve.example.com'",
        show=lambda v: v or "none; --authority when --per-task-url is not given",
        metavar="AUTHORITY",
    )
    tasks: list[str] | None = option(
        None,
        "comma-separated tasks every utterance needs",
        parse=parse_tasks,
        show=lambda v: ",".join(v) if v else "all the ensemble serves",
        metavar="TASK,...",
    )

    def targets(self, url: str, connection: ConnectionOptions) -> Targets:
        """Every deployment's endpoint, the multitask one at `url`."""
        return Targets(
            normalize_url(url),
            connection.authority or None,
            self.per_task_url or None,
            self.per_task_authority or None,
            connection.tls_config(),
        )


def expand(spec: str, tasks: list[str], option: str) -> dict[str, str]:
    """One value per task from a template ('{task}...'), a map ('a=X,b=Y') or a single value."""
    spec = spec.strip()
    if "{" in spec:
        out = {}
        for t in tasks:
            try:
                out[t] = spec.format_map({"task": t, "task_dns": t.replace("_", "-")})
            except (KeyError, ValueError, IndexError) as e:
                raise UserError(
                    f"{option} {spec!r}: a template knows only {{task}} and {{task_dns}} ({e})"
                ) from None
        return out
    if "=" not in spec:
        return dict.fromkeys(tasks, spec)
    given: dict[str, str] = {}
    for item in filter(None, (i.strip() for i in spec.split(","))):
        task, sep, value = item.partition("=")
        if not sep or not task.strip() or not value.strip():
            raise UserError(f"{option}: {item!r} is not TASK=VALUE (in {spec!r})")
        given[task.strip()] = value.strip()
    unknown = [t for t in given if t not in tasks]
    if unknown:
        raise UserError(
            f"{option} names task(s) {unknown} that the multitask ensemble does not serve ({tasks})"
        )
    missing = [t for t in tasks if t not in given]
    if missing:
        raise UserError(
            f"{option} gives no value for task(s) {missing} (it has {sorted(given)}): "
            f"add {missing[0]}=HOST:PORT, or use a template with {{task}}"
        )
    return given


def check_reachable(address: str, who: str = "Triton", timeout: float = 3.0) -> None:
    """A TCP connection to host:port, so an unreachable address fails in seconds with a clear message."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise UserError(f"gRPC address must be HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise Unreachable(f"cannot reach {who} at {address}: {e.strerror or e}") from None


def model_outputs(endpoint: Endpoint, model: str, timeout: float, who: str = "") -> list[str]:
    """The model's output names, from its metadata; a UserError names who needs it, the model and the endpoint."""
    prefix = f"{who}: " if who else ""
    with endpoint.channel(GRPC_OPTIONS) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        try:
            meta = stub.ModelMetadata(service_pb2.ModelMetadataRequest(name=model), timeout=timeout)
        except grpc.RpcError as e:
            if (
                e.code()
                in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INVALID_ARGUMENT)
                and "model" in (e.details() or "").lower()
            ):
                raise UserError(
                    f"{prefix}model {model!r} is not available at {endpoint.describe()}: {e.details()}"
                ) from None
            down = e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            raise (Unreachable if down else UserError)(
                prefix + endpoint.explain(e, f"asking for {model!r}'s metadata")
            ) from None
    return [o.name for o in meta.outputs]


@dataclass
class Plan:
    """Which tasks every utterance needs; per model the outputs to ask for (and expect back) and the
    endpoint that serves it (absent: the one endpoint of an older plan, given separately).

    `mix` (loadtest/mix.py): the entries of a traffic mix, each {"name", "share", "tasks", "calls": [{"model",
    "tasks"}]}; an utterance then needs one entry's tasks, and `tasks` is every task some entry needs."""

    tasks: list[str]
    outputs: dict[str, list[str]] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    mix: list[dict] = field(default_factory=list)

    def workloads(self) -> tuple[str, ...]:
        return (*WORKLOADS, EVERY_HEAD) if self.mix else WORKLOADS

    def models(self, workload: str) -> list[str]:
        if workload == MULTITASK and self.mix:
            return list(dict.fromkeys(c["model"] for e in self.mix for c in e["calls"]))
        if workload in (MULTITASK, EVERY_HEAD):
            return [MULTITASK]
        return [single_model(t) for t in self.tasks]

    def outputs_for(self, model: str, tasks=None) -> list[str]:
        """The outputs a call of `model` asks for: all the plan's, or those of `tasks` only."""
        outs = self.outputs[model]
        if tasks is None:
            return outs
        return [o for o in outs if o.rpartition("_")[0] in tasks]

    def workload_endpoints(self, workload: str) -> list[Endpoint]:
        """The distinct endpoints one workload calls."""
        return list(dict.fromkeys(self.endpoints[m] for m in self.models(workload) if m in self.endpoints))

    def to_dict(self) -> dict:
        return {
            "tasks": list(self.tasks),
            "outputs": {k: list(v) for k, v in self.outputs.items()},
            "endpoints": {k: e.to_dict() for k, e in self.endpoints.items()},
            "mix": [dict(e) for e in self.mix],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(
            list(d["tasks"]),
            {k: list(v) for k, v in d["outputs"].items()},
            {k: Endpoint.from_dict(e) for k, e in (d.get("endpoints") or {}).items()},
            [dict(e) for e in d.get("mix") or []],
        )


def make_plan(
    target: str | Targets,
    tasks: list[str] | None = None,
    per_task_url: str | None = None,
    timeout: float = 10.0,
) -> Plan:
    """Read the multitask ensemble's outputs (the served tasks) and check that every task's `single_<task>`
    is served where the targets say its deployment is.

    Raises UserError naming the task, the model and the endpoint that fail (or the map entry missing)."""
    targets = (
        target if isinstance(target, Targets) else Targets(normalize_url(target), per_task_url=per_task_url)
    )
    mt = targets.multitask()
    mt_outputs = model_outputs(mt, MULTITASK, timeout, "the multitask deployment")
    served = [o[: -len("_scores")] for o in mt_outputs if o.endswith("_scores")]
    if not served:
        raise UserError(
            f"model {MULTITASK!r} at {mt.describe()} has no <task>_scores outputs: is it the multitask ensemble?"
        )
    tasks = list(tasks) if tasks else served
    unknown = [t for t in tasks if t not in served]
    if unknown:
        raise UserError(f"unknown task(s) {unknown}: {MULTITASK} at {mt.describe()} serves {served}")
    wanted = {f"{t}_{kind}" for t in tasks for kind in ("scores", "label")}
    plan = Plan(tasks, {MULTITASK: [o for o in mt_outputs if o in wanted]}, {MULTITASK: mt})
    per_task = targets.per_task(tasks)
    for address in dict.fromkeys(e.address for e in per_task.values()):
        users = [t for t, e in per_task.items() if e.address == address]
        check_reachable(address, f"the per-task deployment of task(s) {users}")
    for t in tasks:
        model, endpoint = single_model(t), per_task[t]
        outs = model_outputs(endpoint, model, timeout, f"task {t!r}")
        if f"{t}_scores" not in outs:
            raise UserError(f"task {t!r}: model {model!r} at {endpoint.describe()} has no {t}_scores output")
        plan.outputs[model] = [o for o in outs if o in wanted]
        plan.endpoints[model] = endpoint
    return plan


# ---------------------------------------------------------------- Triton's statistics
def _duration(d) -> tuple[int, int]:
    return int(d.count), int(d.ns)


def server_statistics(endpoint: Endpoint, timeout: float = 10.0) -> dict[str, dict]:
    """Triton's cumulative statistics of every loaded model at `endpoint` (gRPC ModelStatistics):
    {model: {inference_count, execution_count, success, fail, queue, compute_input, compute_infer,
    compute_output: [count, ns], batches: {batch size: executions}}} (versions summed)."""
    with endpoint.channel(GRPC_OPTIONS) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        try:
            resp = stub.ModelStatistics(service_pb2.ModelStatisticsRequest(name=""), timeout=timeout)
        except grpc.RpcError as e:
            raise UserError(endpoint.explain(e, "reading Triton's model statistics")) from None
    out: dict[str, dict] = {}
    for ms in resp.model_stats:
        row = out.setdefault(
            ms.name, {"inference_count": 0, "execution_count": 0, "exec_ns": 0, "batches": {}}
        )
        row["inference_count"] += int(ms.inference_count)
        row["execution_count"] += int(ms.execution_count)
        st = ms.inference_stats
        for key in STAT_KEYS:
            c, n = _duration(getattr(st, key))
            prev = row.get(key, [0, 0])
            row[key] = [prev[0] + c, prev[1] + n]
        for b in ms.batch_stats:
            size = str(int(b.batch_size))
            row["batches"][size] = row["batches"].get(size, 0) + int(b.compute_infer.count)
            # per execution, not per request: a batch's compute counts once (the request-level compute
            # statistics give every request of a batch the whole batch's duration)
            row["exec_ns"] += int(b.compute_input.ns + b.compute_infer.ns + b.compute_output.ns)
    return out


STAT_KEYS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")


def statistics_delta(before: dict[str, dict], after: dict[str, dict]) -> dict[str, dict]:
    """after - before, per model, for the models whose request count moved."""
    out = {}
    for model, a in after.items():
        b = before.get(model, {})
        d = {
            "inference_count": a["inference_count"] - b.get("inference_count", 0),
            "execution_count": a["execution_count"] - b.get("execution_count", 0),
            "exec_ns": a.get("exec_ns", 0) - b.get("exec_ns", 0),
            "batches": {
                k: v - b.get("batches", {}).get(k, 0)
                for k, v in a["batches"].items()
                if v - b.get("batches", {}).get(k, 0) > 0
            },
        }
        for key in STAT_KEYS:
            bc, bn = b.get(key, [0, 0])
            d[key] = [a[key][0] - bc, a[key][1] - bn]
        if d["success"][0] or d["fail"][0] or d["execution_count"]:
            out[model] = d
    return out


def summarize_statistics(delta: dict, seconds: float | None = None) -> dict:
    """One model's delta as per-request milliseconds: what the report tables show."""

    def per_request(key: str) -> float | None:
        c, n = delta[key]
        return n / c / 1e6 if c else None

    executions = delta["execution_count"]
    out = {
        "requests": delta["success"][0],
        "failed": delta["fail"][0],
        "executions": executions,
        "avg_batch": delta["inference_count"] / executions if executions else None,
        "request_ms": per_request("success"),
        "queue_ms": per_request("queue"),
        "compute_input_ms": per_request("compute_input"),
        "compute_infer_ms": per_request("compute_infer"),
        "compute_output_ms": per_request("compute_output"),
        "exec_ms_total": delta.get("exec_ns", 0)
        / 1e6,  # the model's own execution time, batches counted once
        "batches": dict(delta["batches"]),
    }
    if seconds:
        out["requests_per_s"] = out["requests"] / seconds
    return out


def percentile(sorted_ms: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on a sorted list: exact, unlike
    Locust's own percentiles (rounded into response-time buckets)."""
    if not sorted_ms:
        return float("nan")
    pos = (len(sorted_ms) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


def summarize(ms: list[float], errors: list[str | None] | None = None) -> dict:
    """Exact count / errors / percentiles of latencies (errors[i] is None for a success)."""
    errors = errors if errors is not None else [None] * len(ms)
    every = sorted(ms)
    ok = [m for m, e in zip(ms, errors, strict=True) if e is None]
    failed = [e for e in errors if e is not None]
    return {
        "count": len(ms),
        "errors": len(failed),
        "error_examples": list(dict.fromkeys(failed))[:5],
        "p50_ms": percentile(every, 50),
        "p90_ms": percentile(every, 90),
        "p99_ms": percentile(every, 99),
        "max_ms": every[-1] if every else float("nan"),
        "mean_ok_ms": sum(ok) / len(ok) if ok else float("nan"),
    }


def json_safe(obj):
    """JSON has no NaN/inf: they become null (in the worker's messages and in the reports alike)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
