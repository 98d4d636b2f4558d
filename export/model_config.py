"""config.pbtxt for every model of a repository, through Triton's own protobuf (`model_config_pb2`): inputs,
outputs, batching and queue policy, the serving options (instances, warm-up, response cache, TensorRT engine
cache and profiles), ensembles. export/export.py writes the models and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.core.options import Options, option
from mtserve.core.tasks import TaskSpec

MAX_BATCH = 64
QUEUE_DELAY_US = 500
# A request that waited this long in the queue of the trunk or a full_<task> model (models no ensemble fans out
# from; the tokenizer has none: export.write_tokenizer says why) is answered UNAVAILABLE ("Request timeout
# expired") instead of joining a backlog that slows everything after an overload. A quarter of a second: with two
# trunk instances (DEFAULT_INSTANCES) an accepted request may wait this long and then share the cores through a
# batch, so the timeout bounds the answered tail. Measured at 4x capacity (docs/overload.md): with one instance per
# head, 500 ms answered p99 1.94 s (the suite's limit is 1.5 s) and 97 of 44,328 passed the client's 2 s
# deadline, 250 ms 1.38-1.87 s; with two (DEFAULT_INSTANCES), 500 ms 0.91 s and 250 ms 0.59 s, none past it. Far
# above an unloaded queue wait (p99 below 20 ms) and the soak's maximum call at 70% of capacity (129-145 ms). No
# max_queue_size: see base_config.
QUEUE_TIMEOUT_US = 250_000
# `mtserve export --queue-timeout-us` chooses another (docs/overload.md weighs 250 ms against 500 ms, measured);
# a registry.json that records none was exported with registry.LEGACY_QUEUE_TIMEOUT_US, and a task add keeps it.
# --tensorrt: onnxruntime's TensorRT execution provider, building fp16 engines with this much scratch memory.
TRT_WORKSPACE_BYTES = 1 << 30


# ---------------------------------------------------------------- config.pbtxt through Triton's protobuf
def tensor_spec(name: str, dtype: int, dims: list[int], optional: bool = False):
    return {"name": name, "data_type": dtype, "dims": dims, **({"optional": True} if optional else {})}


def base_config(
    name: str,
    inputs: list[dict],
    outputs: list[dict],
    profile: str,
    python_model: bool = False,
    max_batch: int = MAX_BATCH,
    instances: int = 1,
    queue_delay_us: int = QUEUE_DELAY_US,
    bounded_queue: bool = True,
    queue_timeout_us: int = QUEUE_TIMEOUT_US,
) -> mc.ModelConfig:
    cfg = mc.ModelConfig(name=name, max_batch_size=max_batch)
    if python_model or profile == "local":
        cfg.backend = "python"
    else:
        cfg.backend = "onnxruntime"
    for t in inputs:
        cfg.input.add(**t)
    for t in outputs:
        cfg.output.add(**t)
    gpu = profile == "gpu" and not python_model
    cfg.instance_group.add(
        count=instances, kind=mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU
    )
    cfg.dynamic_batching.max_queue_delay_microseconds = queue_delay_us
    if bounded_queue:
        # Only for models whose ensemble step is scheduled alone (tokenizer, trunk, full_<task>). A head is one of
        # several steps the multitask graph schedules at once when the trunk answers, and Triton's ensemble
        # scheduler (core up to r26.03: 2.51 here, the 25.03 image) mis-counts when one of those steps fails
        # while the others are still being scheduled: it releases the client's request and then uses it (SIGSEGV
        # in TRITONBACKEND_ResponseSend; fixed upstream in core #482/#483). A rejected head is such a failure.
        # A timeout, not max_queue_size: a full queue rejects the tokenizer step inside the gRPC handler's own
        # call, before it records the request as in flight, and 2.51's gRPC frontend then crashed when clients
        # cancelled (scripts/repro_cancel_crash.py --a-queue-policy size). docs/overload.md has the details.
        policy = cfg.dynamic_batching.default_queue_policy
        policy.timeout_action = mc.ModelQueuePolicy.REJECT
        policy.default_timeout_microseconds = queue_timeout_us
        policy.allow_timeout_override = True  # a request's own shorter timeout applies
    return cfg


def add_tensorrt(
    cfg: mc.ModelConfig,
    workspace_bytes: int = TRT_WORKSPACE_BYTES,
    *,
    cache_path: str | None = None,
    profiles: dict[str, str] | None = None,
) -> mc.ModelConfig:
    """onnxruntime's TensorRT execution provider (fp16 engines) for an onnxruntime-backend, KIND_GPU model.
    cache_path: engines are written there once and read back on every later load (the manifests mount a volume
    there), so a restarted pod does not rebuild them. profiles: trt_profile_{min,opt,max}_shapes
    (tensorrt_profiles), so TensorRT builds its engines for the shapes Triton will send, once, at load."""
    acc = cfg.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
    acc.parameters["precision_mode"] = "FP16"
    acc.parameters["max_workspace_size_bytes"] = str(workspace_bytes)
    if cache_path is not None:
        acc.parameters["trt_engine_cache_enable"] = "1"
        acc.parameters["trt_engine_cache_path"] = cache_path
    for key, value in (profiles or {}).items():
        acc.parameters[key] = value
    return cfg


# ---------------------------------------------------------------- serving options: batching, warm-up, caches
MODEL_KINDS = ("trunk", "heads", "tokenizer")  # --instances: the full_<task> baselines count as "trunk"
# Two instances of the trunk (and of every full_<task>, which counts as trunk): their REJECT queue policy turns
# off the dynamic batcher's prefetching, and with one instance the batcher then waits for it to come free on a
# condition variable with a 500 ms timeout that can miss its wake-up - single calls of 510-550 ms under moderate
# load (docs/overload.md). With a second instance a batch always finds one free.
# Two instances of every head too, although heads have no queue policy: under overload the trunk admits what it
# can, and a lone instance of the slowest head (more task layers, or fewer cores left to it) then became the
# unbounded queue - at 4x capacity, 576 ms of queue in the 2-layer head against 10 ms in the 1-layer ones, and an
# answered p99 of 1.4-1.9 s; with two, 6 ms and 0.6 s (docs/overload.md, "Where an answered request waits").
# The tokenizer has no queue policy and keeps one.
DEFAULT_INSTANCES = {"trunk": 2, "heads": 2, "tokenizer": 1}
# What export wrote before --instances existed; a registry.json that records no counts was exported with these.
LEGACY_INSTANCES = dict.fromkeys(MODEL_KINDS, 1)
TRT_CACHE_PATH = names.TRT_CACHE_PATH  # the InferenceService mounts the engine-cache volume there (k8s/base)
WARMUP_DIR = "warmup"  # Triton reads model_warmup input_data_file from <model>/warmup/


def _valid_instances(counts: dict) -> bool:
    return set(counts) <= set(MODEL_KINDS) and all(isinstance(v, int) and v >= 1 for v in counts.values())


def _absolute(path: str) -> bool:
    return path.startswith("/")


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class ServingOptions(Options):
    """How the configs serve, beyond the model itself: the batching knobs, warm-up, Triton's response cache
    and the TensorRT engine cache. Recorded in registry.json (`serving`), so a later `mtserve task add`
    writes its configs the same way. Each option is declared once here; `mtserve export`'s flags are generated
    from it (core/options.py). The defaults are what export wrote before these were options, except the
    instances (DEFAULT_INSTANCES) and the queue timeout (QUEUE_TIMEOUT_US)."""

    max_batch: int = option(
        MAX_BATCH,
        "largest batch of every model",
        check=(lambda v: _is_count(v) and v >= 1, "must be an integer >= 1"),
    )
    queue_delay_us: int = option(
        QUEUE_DELAY_US,
        "how long the dynamic batcher waits to fill a batch, in microseconds",
        check=(lambda v: _is_count(v) and v >= 0, "must be an integer >= 0"),
    )
    # the trunk's and full models' REJECT timeout (base_config); 0 would mean no timeout to Triton: an unbounded
    # queue, the congestion collapse of issue 15
    queue_timeout_us: int = option(
        QUEUE_TIMEOUT_US,
        "a request that waited this long in the trunk's or a full model's queue is answered UNAVAILABLE, in "
        "microseconds (shorter: faster rejections and a tighter tail under overload, longer: fewer rejections in "
        "a brief stall at moderate load; docs/overload.md)",
        check=(lambda v: _is_count(v) and v >= 1000, "must be an integer >= 1000"),
    )
    instances: dict[str, int] = option(
        {},
        "model instances per kind, e.g. trunk=2,heads=1,tokenizer=4 (kinds left out: trunk=2,heads=2,tokenizer=1: a "
        "second trunk instance avoids the batcher's 500 ms stall under its queue policy, a second head instance "
        "keeps the slowest head from queueing behind the trunk under overload, docs/overload.md; the full_<task> "
        "baselines take the trunk's count)",
        parse=lambda text: parse_instances(text),
        show=lambda v: ",".join(f"{k}={n}" for k, n in (DEFAULT_INSTANCES | v).items()),
        metavar="KIND=N,...",
        check=(_valid_instances, f"must be KIND=COUNT with kinds {', '.join(MODEL_KINDS)} and counts >= 1"),
    )
    warmup: bool | None = option(
        None,
        "model_warmup for every sequence bucket and a few batch sizes",
        show=lambda v: "on for --profile gpu" if v is None else str(v),
    )
    response_cache: bool = option(
        False, "Triton's response cache on the ensembles (serve with --cache-config local,size=...)"
    )
    trt_cache_path: str = option(
        TRT_CACHE_PATH,
        "with --tensorrt: engine cache folder in the container (mounted by k8s/)",
        check=(_absolute, "must be an absolute path in the container"),
    )
    buckets: list[int] = field(
        default_factory=list
    )  # the sequence lengths the tokenizer pads to (not a flag)

    def __post_init__(self):
        super().__post_init__()
        self.instances = DEFAULT_INSTANCES | dict(self.instances)
        self.warmup = bool(self.warmup)  # unset: the caller (export) decides by profile before constructing

    @property
    def warmup_batches(self) -> list[int]:
        """A few batch sizes the dynamic batcher forms: 1, powers of 4 below the maximum, and the maximum."""
        sizes, b = {1, self.max_batch}, 4
        while b < self.max_batch:
            sizes.add(b)
            b *= 4
        return sorted(sizes)

    def to_registry(self) -> dict:
        return {
            "max_batch": self.max_batch,
            "queue_delay_us": self.queue_delay_us,
            "queue_timeout_us": self.queue_timeout_us,
            "instances": dict(self.instances),
            "buckets": list(self.buckets),
            "warmup": {"batch_sizes": self.warmup_batches} if self.warmup else None,
            "response_cache": self.response_cache,
            "trt_cache_path": self.trt_cache_path,
        }

    @classmethod
    def from_registry(cls, d: dict | None) -> ServingOptions:
        """The options a repository was exported with (registry.json `serving`); what export then wrote when
        it predates them (one instance of each kind and the 500 ms timeout, so a later task add matches the
        configs already there)."""
        d = d or {}
        return cls(
            max_batch=int(d.get("max_batch", MAX_BATCH)),
            queue_delay_us=int(d.get("queue_delay_us", QUEUE_DELAY_US)),
            queue_timeout_us=int(d.get("queue_timeout_us", registry.LEGACY_QUEUE_TIMEOUT_US)),
            instances=LEGACY_INSTANCES | dict(d.get("instances") or {}),
            warmup=bool(d.get("warmup")),
            response_cache=bool(d.get("response_cache")),
            trt_cache_path=d.get("trt_cache_path", TRT_CACHE_PATH),
            buckets=list(d.get("buckets") or []),
        )


def sequence_buckets(tokenizer) -> list[int]:
    """Every sequence length the serving tokenizer pads a batch to, from its own rule (WordPieceTokenizer
    .padded_length with bucket=True, as serving/models/tokenizer.py calls it): a row has 2 to max_length ids."""
    return sorted({tokenizer.padded_length(n, bucket=True) for n in range(2, tokenizer.max_length + 1)})


def parse_instances(text: str) -> dict[str, int]:
    """--instances trunk=2,heads=1,tokenizer=4 (kinds left out keep their default, DEFAULT_INSTANCES)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, count = part.partition("=")
        if not sep or not count.strip().isdigit():
            raise ValueError(f"--instances: {part!r} is not KIND=COUNT (kinds: {', '.join(MODEL_KINDS)})")
        out[kind.strip()] = int(count)
    return out


def apply_batching(cfg: mc.ModelConfig, opts: ServingOptions, kind: str) -> mc.ModelConfig:
    """The batching knobs: largest batch, how long the batcher waits to fill one, instances of this kind."""
    cfg.max_batch_size = opts.max_batch
    if cfg.platform != "ensemble":
        cfg.dynamic_batching.max_queue_delay_microseconds = opts.queue_delay_us
        for g in cfg.instance_group:
            g.count = opts.instances[kind]
    return cfg


def add_response_cache(cfg: mc.ModelConfig) -> mc.ModelConfig:
    """Triton's response cache on an ensemble: a repeated request (same text) is answered from the cache
    without running the tokenizer, trunk or heads (Triton >= 23.x caches top-level ensemble requests when every
    composing model can be cached). The server needs --cache-config too (`mtserve serve`, the ServingRuntime)."""
    cfg.response_cache.enable = True
    return cfg


def add_warmup(
    cfg: mc.ModelConfig, model_dir: Path, buckets: list[int], batch_sizes: list[int]
) -> mc.ModelConfig:
    """model_warmup: one request per (sequence bucket, batch size) before the model is marked ready, so the first
    user request does not pay for kernel selection or a TensorRT engine build. The variable dimension of each
    input (-1, the sequence) takes the bucket length; attention masks are all ones (a real row, from a file in
    <model>/warmup/), floats random, ids zeros ([PAD], a valid id in every vocabulary)."""
    wdir = model_dir / WARMUP_DIR
    wdir.mkdir(parents=True, exist_ok=True)
    for seq in buckets:
        ones = f"ones_int64_{seq}"
        (wdir / ones).write_bytes(np.ones(seq, dtype="<i8").tobytes())
        for batch in batch_sizes:
            w = cfg.model_warmup.add(name=f"seq{seq}_batch{batch}", batch_size=batch, count=1)
            for t in cfg.input:
                dims = [seq if d == -1 else d for d in t.dims]
                sample = w.inputs[t.name]
                sample.data_type = t.data_type
                sample.dims.extend(dims)
                if t.name == names.ATTENTION_MASK:
                    sample.input_data_file = ones
                elif t.data_type in (mc.TYPE_FP32, mc.TYPE_FP16):
                    sample.random_data = True
                else:
                    sample.zero_data = True
    return cfg


def tensorrt_profiles(cfg: mc.ModelConfig, buckets: list[int], max_batch: int) -> dict[str, str]:
    """TensorRT optimisation profiles, one per sequence bucket: batch 1..max_batch, sequence (previous bucket,
    bucket], optimised for a full batch at the bucket length (what the tokenizer and batcher produce under
    load). onnxruntime reads several profiles from one string by repeating the input names."""
    lo, shapes = 1, {"min": [], "opt": [], "max": []}
    for seq in buckets:
        for t in cfg.input:

            def dims(batch, s, t=t):
                return "x".join(str(d) for d in [batch, *(s if d == -1 else d for d in t.dims)])

            shapes["min"].append(f"{t.name}:{dims(1, lo)}")
            shapes["opt"].append(f"{t.name}:{dims(max_batch, seq)}")
            shapes["max"].append(f"{t.name}:{dims(max_batch, seq)}")
        lo = seq + 1
    return {f"trt_profile_{k}_shapes": ",".join(v) for k, v in shapes.items()}


def onnx_config(
    name: str,
    inputs: list[dict],
    outputs: list[dict],
    profile: str,
    tensorrt: bool = False,
    *,
    kind: str = "trunk",
    serving: ServingOptions | None = None,
    model_dir: Path | None = None,
) -> mc.ModelConfig:
    opts = serving or ServingOptions()
    # heads: no queue bound (_model_config says why)
    cfg = apply_batching(
        base_config(
            name,
            inputs,
            outputs,
            profile,
            bounded_queue=kind != "heads",
            queue_timeout_us=opts.queue_timeout_us,
        ),
        opts,
        kind,
    )
    if opts.warmup:
        add_warmup(cfg, model_dir, opts.buckets, opts.warmup_batches)
    if tensorrt:
        if profile != "gpu":
            raise UserError("--tensorrt applies to --profile gpu only (the python backend has no TensorRT)")
        add_tensorrt(
            cfg,
            cache_path=opts.trt_cache_path,
            profiles=tensorrt_profiles(cfg, opts.buckets, opts.max_batch) if opts.buckets else None,
        )
    return cfg


def ensemble_config(
    name: str,
    inputs: list[dict],
    outputs: list[dict],
    steps: list[tuple[str, dict, dict]],
    serving: ServingOptions | None = None,
) -> mc.ModelConfig:
    opts = serving or ServingOptions()
    cfg = mc.ModelConfig(name=name, platform="ensemble", max_batch_size=opts.max_batch)
    if opts.response_cache:
        add_response_cache(cfg)
    for t in inputs:
        cfg.input.add(**t)
    for t in outputs:
        cfg.output.add(**t)
    for model, input_map, output_map in steps:
        step = cfg.ensemble_scheduling.step.add(model_name=model, model_version=-1)
        step.input_map.update(input_map)
        step.output_map.update(output_map)
    return cfg


def write_config(cfg: mc.ModelConfig, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(text_format.MessageToString(cfg))


def read_config(model_dir: Path) -> mc.ModelConfig:
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())


S, I64, F32 = mc.TYPE_STRING, mc.TYPE_INT64, mc.TYPE_FP32
TEXT_INPUTS = [tensor_spec(names.TEXT, S, [1]), tensor_spec(names.TEXT_PAIR, S, [1], optional=True)]
ID_TENSORS = [tensor_spec(n, I64, [-1]) for n in names.ID_TENSORS]


def task_outputs(task: str, spec: TaskSpec, prefix: bool = True) -> list[dict]:
    p = f"{task}_" if prefix else ""
    outs = [tensor_spec(f"{p}scores", F32, [spec.num_labels])]
    if not spec.is_regression:
        outs.append(tensor_spec(f"{p}label", S, [1]))
    return outs
