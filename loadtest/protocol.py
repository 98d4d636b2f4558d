"""Triton's gRPC inference protocol, as the load test uses it: prebuilt `ModelInferRequest`s and the
per-workload call plan (which models to call, which outputs to ask for).

Plain grpc + protobuf, no gevent: the locustfile imports it after grpc's gevent integration is
initialised, and the capacity search imports it (without gevent) for its pre-flight checks.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from mtserve.loadtest.workload import Utterance
from mtserve.serving import names
from mtserve.serving.errors import UserError

MULTITASK = names.MULTITASK
PER_TASK = "per-task"
WORKLOADS = (MULTITASK, PER_TASK)
GRPC_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]


def normalize_url(url: str) -> str:
    """'grpc://host:port', 'http://host:port/' or 'host:port' -> 'host:port' (what grpc dials)."""
    u = (url or "").strip()
    for prefix in ("grpc://", "http://", "https://", "dns:///"):
        if u.startswith(prefix):
            u = u[len(prefix) :]
    u = u.rstrip("/")
    if not u:
        raise UserError("empty Triton gRPC address")
    return u


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


def _outputs(stub, model: str, url: str, timeout: float) -> list[str]:
    try:
        meta = stub.ModelMetadata(service_pb2.ModelMetadataRequest(name=model), timeout=timeout)
    except grpc.RpcError as e:
        if (
            e.code()
            in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INVALID_ARGUMENT)
            and "model" in (e.details() or "").lower()
        ):
            raise UserError(f"model {model!r} is not available at {url}: {e.details()}") from None
        raise UserError(
            f"cannot reach Triton at {url} (asking for {model!r}'s metadata): {e.code().name}: {e.details()}"
        ) from None
    return [o.name for o in meta.outputs]


@dataclass
class Plan:
    """Which tasks every utterance needs, and per model the outputs to ask for (and expect back)."""

    tasks: list[str]
    outputs: dict[str, list[str]] = field(default_factory=dict)

    def models(self, workload: str) -> list[str]:
        return [MULTITASK] if workload == MULTITASK else [single_model(t) for t in self.tasks]

    def to_dict(self) -> dict:
        return {"tasks": list(self.tasks), "outputs": {k: list(v) for k, v in self.outputs.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(list(d["tasks"]), {k: list(v) for k, v in d["outputs"].items()})


def make_plan(
    url: str, tasks: list[str] | None = None, per_task_url: str | None = None, timeout: float = 10.0
) -> Plan:
    """Read the multitask ensemble's outputs (the served tasks) and check every `single_<task>` exists.

    Raises UserError naming the model that is missing, or the address that cannot be reached."""
    url = normalize_url(url)
    pt_url = normalize_url(per_task_url) if per_task_url else url
    with grpc.insecure_channel(url, options=GRPC_OPTIONS) as ch:
        mt_outputs = _outputs(service_pb2_grpc.GRPCInferenceServiceStub(ch), MULTITASK, url, timeout)
    served = [o[: -len("_scores")] for o in mt_outputs if o.endswith("_scores")]
    if not served:
        raise UserError(
            f"model {MULTITASK!r} at {url} has no <task>_scores outputs: is it the multitask ensemble?"
        )
    tasks = list(tasks) if tasks else served
    unknown = [t for t in tasks if t not in served]
    if unknown:
        raise UserError(f"unknown task(s) {unknown}: {MULTITASK} at {url} serves {served}")
    wanted = {f"{t}_{kind}" for t in tasks for kind in ("scores", "label")}
    plan = Plan(tasks, {MULTITASK: [o for o in mt_outputs if o in wanted]})
    with grpc.insecure_channel(pt_url, options=GRPC_OPTIONS) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        for t in tasks:
            outs = _outputs(stub, single_model(t), pt_url, timeout)
            if f"{t}_scores" not in outs:
                raise UserError(f"model {single_model(t)!r} at {pt_url} has no {t}_scores output")
            plan.outputs[single_model(t)] = [o for o in outs if o in wanted]
    return plan


def json_safe(obj):
    """JSON has no NaN/inf: they become null (in the worker's messages and in the reports alike)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
