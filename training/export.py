"""`mtserve export`: a training run -> a Triton model repository.

    tokenizer/      python backend (numpy + stdlib): text, text_pair -> input_ids, token_type_ids, attention_mask
    trunk/          ONNX: the frozen layers, outputs hidden_<d> at every depth a task branches from
    <task>/         ONNX: one head per task: hidden, attention_mask -> scores, label
    full_<task>/    ONNX: the per-task baseline, one fully fine-tuned BERT
    multitask/      ensemble: text -> every task's <task>_scores / <task>_label
    single_<task>/  ensemble: text -> the baseline's <task>_scores / <task>_label
    registry.json   what is deployed: tasks, branch depths, versions, labels, metrics

Profiles: `gpu` (onnxruntime backend, KIND_GPU: what production loads) and `local` (the same .onnx
files run by a python-backend model on CPU, for the pip-installed Triton). Only the backend line
and the instance kind differ between them. Configs are written through Triton's own protobuf.
Options: `--fp16` converts every exported ONNX model to fp16 inside, fp32 at its inputs and outputs
(so configs do not change); `--tensorrt` (gpu profile only) adds onnxruntime's TensorRT execution
accelerator to each onnxruntime model: the one allowed config difference beyond backend and kind.
`mtserve export --check REPO` validates a repository (serving/repository_check.py).
The repository is written to a temporary folder and renamed into place: a failed export never
leaves half a repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from google.protobuf import text_format
from onnx import TensorProto, helper, numpy_helper
from torch import nn
from tritonclient.grpc import model_config_pb2 as mc

from mtserve.serving import names, registry
from mtserve.serving.errors import UserError
from mtserve.training.backbone import Branch, TaskModel, Trunk
from mtserve.training.tasks import TaskSpec

OPSET = 17  # LayerNormalization is native from 17; onnxruntime in Triton 23.x-25.x runs it
MAX_BATCH = 64
QUEUE_DELAY_US = 500
# A request that waited this long in the queue of a model no ensemble fans out from (tokenizer, trunk,
# full_<task>) is answered UNAVAILABLE ("Request timeout expired") instead of joining a backlog that slows
# everything after an overload. Below the load test's default client deadline (2 s or more), so that a queued
# request is rejected before its client gives up. No max_queue_size: see _model_config.
QUEUE_TIMEOUT_US = 1_000_000
# --fp16: onnxruntime (fp16 inside, fp32 at the graph's edges) against PyTorch fp32. A tolerance, not a
# measurement: on CPU onnxruntime the tiny test BERT's trunk differs by ~4e-3, all-MiniLM-L6's by ~8e-3 (hidden
# states up to ~10 in magnitude), the heads' probabilities by ~1e-5.
FP16_TOL = 5e-2
# --tensorrt: onnxruntime's TensorRT execution provider, building fp16 engines with this much scratch memory.
TRT_WORKSPACE_BYTES = 1 << 30
SERVING_DIR = Path(__file__).resolve().parent.parent / "serving"


# ---------------------------------------------------------------- ONNX
class _HeadForExport(nn.Module):
    def __init__(self, branch: Branch):
        super().__init__()
        self.branch = branch

    def forward(self, hidden, attention_mask):
        return self.branch.scores(hidden, attention_mask)


class _FullForExport(nn.Module):
    def __init__(self, model: TaskModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.model.scores(input_ids, token_type_ids, attention_mask)


def _add_label_output(model: onnx.ModelProto, labels: list[str]) -> onnx.ModelProto:
    """Append label = labels[argmax(scores)] as a [B, 1] string output, so the label name is served by the
    same ONNX model (no extra python step in production)."""
    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.array(labels, dtype=object), "label_names"))
    g.node.append(
        helper.make_node("ArgMax", ["scores"], ["label_index"], axis=1, keepdims=1, name="label_argmax")
    )
    g.node.append(
        helper.make_node("Gather", ["label_names", "label_index"], ["label"], axis=0, name="label_gather")
    )
    g.output.append(helper.make_tensor_value_info("label", TensorProto.STRING, ["batch", 1]))
    return model


def _export(
    module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict
) -> None:
    module = module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )


def _check_against_torch(
    path: Path, module: nn.Module, feeds: dict[str, torch.Tensor], tol: float = 1e-4
) -> float:
    """onnx.checker, then onnxruntime against PyTorch on the same inputs; returns the max abs difference."""
    import onnxruntime as ort

    onnx.checker.check_model(str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})
    with torch.no_grad():
        ref = module.eval()(*feeds.values())
    ref = ref if isinstance(ref, tuple) else (ref,)
    # the ONNX graph may carry extra outputs PyTorch does not compute (a head's `label`): compare the shared ones
    numeric = [sess.get_outputs()[i].name for i in range(len(ref))]
    got = dict(zip([o.name for o in sess.get_outputs()], got, strict=True))
    diff = max(float(np.abs(got[name] - r.numpy()).max()) for name, r in zip(numeric, ref, strict=True))
    if not np.isfinite(diff) or diff > tol:  # NaN compares False with everything: test finiteness first
        raise RuntimeError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (> {tol})")
    return diff


def _toposort(graph: onnx.GraphProto) -> None:
    """Order the nodes so each one follows its inputs' producers (the fp16 converter appends its Casts at
    the end, which onnx.checker rejects although onnxruntime accepts it)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise RuntimeError(f"graph has a cycle or an unproduced input near node {rest[0].name!r}")
        pending = rest
    nodes = []
    for node in ordered:  # detached copies: the originals go with the cleared field
        nodes.append(onnx.NodeProto())
        nodes[-1].CopyFrom(node)
    del graph.node[:]
    graph.node.extend(nodes)


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and compute, fp32 graph inputs and outputs (keep_io_types): the model's config is unchanged."""
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        try:
            from onnxconverter_common.float16 import convert_float_to_float16
        except ImportError:
            raise UserError(
                "--fp16 needs onnxruntime's transformers tools (onnxruntime.transformers.float16) "
                "or onnxconverter-common"
            ) from None
    model = convert_float_to_float16(model, keep_io_types=True)
    _toposort(model.graph)
    return model


def _fp16_file(path: Path) -> None:
    onnx.save(to_fp16(onnx.load(str(path))), str(path))


def _sample_ids(vocab_size: int, batch: int = 3, seq: int = 11) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab_size, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[1, seq - 4 :] = 0  # one padded row, so masking is exercised
    return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": mask}


def export_trunk(trunk: Trunk, path: Path, vocab_size: int, *, fp16: bool = False) -> float:
    outputs = [names.hidden(d) for d in trunk.out_depths]
    feeds = _sample_ids(vocab_size)
    dyn = {n: {0: "batch", 1: "seq"} for n in list(feeds) + outputs}
    _export(trunk, tuple(feeds.values()), path, list(feeds), outputs, dyn)
    if fp16:
        _fp16_file(path)
        return _check_against_torch(path, trunk, feeds, tol=FP16_TOL)
    return _check_against_torch(path, trunk, feeds)


def export_head(branch: Branch, labels: list[str] | None, path: Path, *, fp16: bool = False) -> float:
    h = branch.config.hidden_size
    g = torch.Generator().manual_seed(1)
    feeds = {
        "hidden": torch.randn(3, 11, h, generator=g),
        "attention_mask": _sample_ids(10)["attention_mask"],
    }
    module = _HeadForExport(branch)
    _export(
        module,
        tuple(feeds.values()),
        path,
        list(feeds),
        ["scores"],
        {"hidden": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "scores": {0: "batch"}},
    )
    if fp16:
        _fp16_file(path)  # before the label output, whose ArgMax then reads the fp32 scores
    if labels is not None:
        onnx.save(_add_label_output(onnx.load(str(path)), labels), str(path))
    return _check_against_torch(path, module, feeds, **({"tol": FP16_TOL} if fp16 else {}))


def export_full(
    model: TaskModel, labels: list[str] | None, path: Path, vocab_size: int, *, fp16: bool = False
) -> float:
    feeds = _sample_ids(vocab_size)
    module = _FullForExport(model)
    dyn = {n: {0: "batch", 1: "seq"} for n in feeds} | {"scores": {0: "batch"}}
    _export(module, tuple(feeds.values()), path, list(feeds), ["scores"], dyn)
    if fp16:
        _fp16_file(path)
    if labels is not None:
        onnx.save(_add_label_output(onnx.load(str(path)), labels), str(path))
    return _check_against_torch(path, module, feeds, **({"tol": FP16_TOL} if fp16 else {}))


# ---------------------------------------------------------------- config.pbtxt through Triton's protobuf
def _tensor(name: str, dtype: int, dims: list[int], optional: bool = False):
    return {"name": name, "data_type": dtype, "dims": dims, **({"optional": True} if optional else {})}


def _model_config(
    name: str,
    inputs: list[dict],
    outputs: list[dict],
    profile: str,
    python_model: bool = False,
    max_batch: int = MAX_BATCH,
    instances: int = 1,
    queue_delay_us: int = QUEUE_DELAY_US,
    bounded_queue: bool = True,
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
        policy.default_timeout_microseconds = QUEUE_TIMEOUT_US
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
TRT_CACHE_PATH = names.TRT_CACHE_PATH  # the InferenceService mounts the engine-cache volume there (k8s/base)
WARMUP_DIR = "warmup"  # Triton reads model_warmup input_data_file from <model>/warmup/


@dataclass
class ServingOptions:
    """How the configs serve, beyond the model itself: the batching knobs, warm-up, Triton's response cache
    and the TensorRT engine cache. Recorded in registry.json (`serving`), so a later `mtserve task add`
    writes its configs the same way. The defaults are what export wrote before these were options."""

    max_batch: int = MAX_BATCH
    queue_delay_us: int = QUEUE_DELAY_US
    instances: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODEL_KINDS, 1))
    warmup: bool = False
    response_cache: bool = False
    trt_cache_path: str = TRT_CACHE_PATH
    buckets: list[int] = field(default_factory=list)  # the sequence lengths the tokenizer pads to

    def __post_init__(self):
        if not (isinstance(self.max_batch, int) and self.max_batch >= 1):
            raise UserError(f"--max-batch must be an integer >= 1, got {self.max_batch!r}")
        if not (isinstance(self.queue_delay_us, int) and self.queue_delay_us >= 0):
            raise UserError(f"--queue-delay-us must be an integer >= 0, got {self.queue_delay_us!r}")
        unknown = set(self.instances) - set(MODEL_KINDS)
        if unknown:
            raise UserError(
                f"--instances: unknown model kind(s) {sorted(unknown)} (kinds: {', '.join(MODEL_KINDS)})"
            )
        self.instances = dict.fromkeys(MODEL_KINDS, 1) | dict(self.instances)
        bad = {k: v for k, v in self.instances.items() if not (isinstance(v, int) and v >= 1)}
        if bad:
            raise UserError(f"--instances: counts must be integers >= 1, got {bad}")
        if not self.trt_cache_path.startswith("/"):
            raise UserError(
                f"--trt-cache-path must be an absolute path in the container, got {self.trt_cache_path!r}"
            )

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
            "instances": dict(self.instances),
            "buckets": list(self.buckets),
            "warmup": {"batch_sizes": self.warmup_batches} if self.warmup else None,
            "response_cache": self.response_cache,
            "trt_cache_path": self.trt_cache_path,
        }

    @classmethod
    def from_registry(cls, d: dict | None) -> ServingOptions:
        """The options a repository was exported with (registry.json `serving`); defaults when it predates them."""
        if not d:
            return cls()
        return cls(
            max_batch=int(d.get("max_batch", MAX_BATCH)),
            queue_delay_us=int(d.get("queue_delay_us", QUEUE_DELAY_US)),
            instances=dict(d.get("instances") or {}),
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
    """--instances trunk=2,heads=1,tokenizer=4 (kinds left out keep 1)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, count = part.partition("=")
        if not sep or not count.strip().isdigit():
            raise UserError(f"--instances: {part!r} is not KIND=COUNT (kinds: {', '.join(MODEL_KINDS)})")
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


def infer_shapes(path: Path) -> None:
    """onnxruntime's symbolic shape inference, saved into the file: every intermediate tensor gets a (symbolic)
    shape, which the TensorRT execution provider needs to take whole graphs instead of falling back to CUDA
    for the parts it cannot size."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = SymbolicShapeInference.infer_shapes(onnx.load(str(path)), auto_merge=True)
    if model is None:
        raise RuntimeError(f"{path}: onnxruntime's symbolic shape inference failed")
    onnx.save(model, str(path))


def _onnx_model_config(
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
        _model_config(name, inputs, outputs, profile, bounded_queue=kind != "heads"), opts, kind
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


def _ensemble(
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
TEXT_INPUTS = [_tensor(names.TEXT, S, [1]), _tensor(names.TEXT_PAIR, S, [1], optional=True)]
ID_TENSORS = [_tensor(n, I64, [-1]) for n in names.ID_TENSORS]


def task_outputs(task: str, spec: TaskSpec, prefix: bool = True) -> list[dict]:
    p = f"{task}_" if prefix else ""
    outs = [_tensor(f"{p}scores", F32, [spec.num_labels])]
    if not spec.is_regression:
        outs.append(_tensor(f"{p}label", S, [1]))
    return outs


def _copy_python_model(src: str, version_dir: Path, extra: tuple[str, ...] = ()) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SERVING_DIR / "models" / src, version_dir / "model.py")
    for name in extra:
        shutil.copy(SERVING_DIR / name, version_dir / Path(name).name)


# ---------------------------------------------------------------- the repository
def write_tokenizer(run_root: Path, repo: Path, max_length: int, serving: ServingOptions | None = None):
    """The tokenizer model; returns the serving tokenizer (its padding rule gives the sequence buckets)."""
    from transformers import AutoTokenizer

    from mtserve.training.tokenizer_export import export_tokenizer

    version = repo / names.TOKENIZER / "1"
    _copy_python_model("tokenizer.py", version, ("wordpiece.py",))
    hf = AutoTokenizer.from_pretrained(str(run_root / "tokenizer"), local_files_only=True)
    tok = export_tokenizer(hf, version, max_length)
    cfg = _model_config(names.TOKENIZER, TEXT_INPUTS, ID_TENSORS, "local", python_model=True)
    write_config(apply_batching(cfg, serving or ServingOptions(), "tokenizer"), repo / names.TOKENIZER)
    return tok


def _precision(fp16: bool) -> dict:
    return {"precision": "fp16"} if fp16 else {}


def write_trunk(
    trunk: Trunk,
    repo: Path,
    profile: str,
    vocab_size: int,
    version: int = 1,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    h = trunk.embeddings.word_embeddings.embedding_dim
    vdir = repo / names.TRUNK / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    diff = export_trunk(trunk, vdir / "model.onnx", vocab_size, fp16=fp16)
    if tensorrt:
        infer_shapes(vdir / "model.onnx")
    if profile == "local":
        _copy_python_model("onnx_runner.py", vdir)
    outs = [_tensor(names.hidden(d), F32, [-1, h]) for d in trunk.out_depths]
    cfg = _onnx_model_config(
        names.TRUNK,
        ID_TENSORS,
        outs,
        profile,
        tensorrt,
        kind="trunk",
        serving=serving,
        model_dir=repo / names.TRUNK,
    )
    write_config(cfg, repo / names.TRUNK)
    return {"max_abs_diff": diff, **_precision(fp16)}


def write_head(
    name: str,
    spec: TaskSpec,
    branch: Branch,
    repo: Path,
    profile: str,
    version: int = 1,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    h = branch.config.hidden_size
    vdir = repo / name / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    diff = export_head(
        branch, None if spec.labels is None else list(spec.labels), vdir / "model.onnx", fp16=fp16
    )
    if tensorrt:
        infer_shapes(vdir / "model.onnx")
    if profile == "local":
        _copy_python_model("onnx_runner.py", vdir)
    inputs = [_tensor("hidden", F32, [-1, h]), _tensor("attention_mask", I64, [-1])]
    outputs = task_outputs(name, spec, prefix=False)
    cfg = _onnx_model_config(
        name, inputs, outputs, profile, tensorrt, kind="heads", serving=serving, model_dir=repo / name
    )
    write_config(cfg, repo / name)
    return {"max_abs_diff": diff, **_precision(fp16)}


def write_full(
    name: str,
    spec: TaskSpec,
    model: TaskModel,
    repo: Path,
    profile: str,
    vocab_size: int,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    vdir = repo / names.full(name) / "1"
    vdir.mkdir(parents=True, exist_ok=True)
    diff = export_full(
        model, None if spec.labels is None else list(spec.labels), vdir / "model.onnx", vocab_size, fp16=fp16
    )
    if tensorrt:
        infer_shapes(vdir / "model.onnx")
    if profile == "local":
        _copy_python_model("onnx_runner.py", vdir)
    model_dir = repo / names.full(name)
    outputs = task_outputs(name, spec, prefix=False)
    # a baseline is a whole BERT, sized like the trunk: it takes the trunk's instance count
    cfg = _onnx_model_config(
        names.full(name),
        ID_TENSORS,
        outputs,
        profile,
        tensorrt,
        kind="trunk",
        serving=serving,
        model_dir=model_dir,
    )
    write_config(cfg, model_dir)
    return {"max_abs_diff": diff, **_precision(fp16)}


def _tok_step() -> tuple[str, dict, dict]:
    ids = {n: n for n in ("input_ids", "token_type_ids", "attention_mask")}
    return names.TOKENIZER, {names.TEXT: names.TEXT, names.TEXT_PAIR: names.TEXT_PAIR}, ids


def multitask_graph_config(
    tasks: dict[str, tuple[TaskSpec, int]], serving: ServingOptions | None = None
) -> mc.ModelConfig:
    """tasks: name -> (spec, branch depth): tokenizer -> trunk -> every head, each head reading the trunk's hidden
    state at its own depth. Clients call the `multitask` wrapper around it (multitask_config), never this."""
    depths = sorted({d for _, d in tasks.values()})
    steps = [
        _tok_step(),
        (
            "trunk",
            {n: n for n in ("input_ids", "token_type_ids", "attention_mask")},
            {names.hidden(d): names.hidden(d) for d in depths},
        ),
    ]
    outputs = []
    for name, (spec, depth) in tasks.items():
        out_map = {"scores": f"{name}_scores"} | ({} if spec.is_regression else {"label": f"{name}_label"})
        steps.append(
            (name, {"hidden": names.hidden(depth), names.ATTENTION_MASK: names.ATTENTION_MASK}, out_map)
        )
        outputs += task_outputs(name, spec)
    return _ensemble(names.MULTITASK_GRAPH, TEXT_INPUTS, outputs, steps, serving)


def multitask_config(
    tasks: dict[str, tuple[TaskSpec, int]], serving: ServingOptions | None = None
) -> mc.ModelConfig:
    """`multitask`, what clients call: one step, the multitask graph, with the same inputs and outputs (and the
    same batch size and response cache setting).

    Why a wrapper: Triton marks the steps an ensemble schedules after its request was cancelled (a client's
    deadline or cancel, through gRPC) as cancelled too, and the heads' dynamic batchers answer those CANCELLED at
    once, while the trunk's thread is still scheduling the other heads. Triton 2.51's ensemble scheduler (and
    25.03's) then releases the client's request and uses it again: SIGSEGV in TRITONBACKEND_ResponseSend. It only
    passes a cancellation on to steps it schedules later, never to one already running, so the graph's request,
    created by this single step when the client's request arrives, is either cancelled before its tokenizer step
    (which its batcher then rejects alone: no heads run) or never. The price: the step asks the graph for every
    output, so a request for some tasks runs every head. docs/overload.md has the upstream references.
    """
    graph = multitask_graph_config(tasks, serving)
    cfg = mc.ModelConfig()
    cfg.CopyFrom(graph)
    cfg.name = names.MULTITASK
    del cfg.ensemble_scheduling.step[:]
    step = cfg.ensemble_scheduling.step.add(model_name=names.MULTITASK_GRAPH, model_version=-1)
    step.input_map.update({t.name: t.name for t in graph.input})
    step.output_map.update({t.name: t.name for t in graph.output})
    return cfg


def write_multitask(
    tasks: dict[str, tuple[TaskSpec, int]],
    repo: Path,
    serving: ServingOptions | None = None,
    version: int = 1,
) -> None:
    """The multitask graph and its `multitask` wrapper, both at `version`."""
    write_ensemble(multitask_graph_config(tasks, serving), repo, version)
    write_ensemble(multitask_config(tasks, serving), repo, version)


def single_config(name: str, spec: TaskSpec, serving: ServingOptions | None = None) -> mc.ModelConfig:
    out_map = {"scores": f"{name}_scores"} | ({} if spec.is_regression else {"label": f"{name}_label"})
    steps = [
        _tok_step(),
        (names.full(name), {n: n for n in names.ID_TENSORS}, out_map),
    ]
    return _ensemble(names.single(name), TEXT_INPUTS, task_outputs(name, spec), steps, serving)


def write_ensemble(cfg: mc.ModelConfig, repo: Path, version: int = 1) -> None:
    # An ensemble's version folder holds nothing, but Triton needs it to exist; object stores (S3, GCS) keep
    # no empty folders, so a zero-byte placeholder makes it survive `mtserve k8s upload` / `aws s3 sync`.
    vdir = repo / cfg.name / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    (vdir / names.ENSEMBLE_PLACEHOLDER).touch()
    write_config(cfg, repo / cfg.name)


def atomic_repository(out: Path):
    """Context manager: yields a temporary folder beside `out`; on success it replaces `out`."""
    import contextlib

    @contextlib.contextmanager
    def _cm():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    return _cm()


def export_run(
    run_dir: str | Path,
    out: str | Path,
    profile: str = "local",
    with_baseline: bool = True,
    progress: bool = True,
    *,
    fp16: bool = False,
    tensorrt: bool = False,
    serving: ServingOptions | None = None,
) -> dict:
    """Export a training run (training/run_dir.py's Run) as a model repository at `out`.

    fp16: every ONNX model (trunk, heads and the full_* baselines alike, so capacity comparisons stay fair)
    computes in fp16 with fp32 inputs and outputs. tensorrt: gpu profile only, see add_tensorrt.
    serving: batching knobs, warm-up, response cache (ServingOptions); by default warm-up is on for the gpu
    profile (the first request must not pay for kernel selection) and off for local (CPU, started often)."""
    from tqdm.auto import tqdm

    from mtserve.training.run_dir import Run

    if profile not in ("local", "gpu"):
        raise UserError(f"--profile must be 'local' or 'gpu', got {profile!r}")
    if tensorrt and profile != "gpu":
        raise UserError("--tensorrt applies to --profile gpu only (the python backend has no TensorRT)")
    serving = ServingOptions(warmup=profile == "gpu") if serving is None else serving
    opts = {"fp16": fp16, "tensorrt": tensorrt, "serving": serving}
    run = Run(run_dir)
    meta = run.meta
    bert_cfg = run.bert_config()
    tasks: dict[str, tuple[TaskSpec, int]] = {}
    branches = {}
    for name in meta["tasks"]:
        branch, bmeta = run.branch(name)
        tasks[name] = (run.spec(name), branch.config.depth)
        branches[name] = (branch, bmeta)
    depths = sorted({d for _, d in tasks.values()})
    trunk = run.trunk(depths)
    out = Path(out)
    checks = {}
    steps = (
        [names.TOKENIZER, names.TRUNK]
        + list(tasks)
        + ([names.full(t) for t in tasks] if with_baseline else [])
    )
    bar = tqdm(steps, desc="export", disable=None if progress else True, leave=False)
    with atomic_repository(out) as tmp:
        for step in bar:
            bar.set_postfix_str(step)
            if step == names.TOKENIZER:
                tok = write_tokenizer(run.root, tmp, meta["config"]["max_length"], serving)
                serving.buckets = sequence_buckets(tok)  # before the models that warm up on them
            elif step == names.TRUNK:
                checks[names.TRUNK] = write_trunk(trunk, tmp, profile, bert_cfg.vocab_size, **opts)
            elif names.task_of_full(step):
                name = names.task_of_full(step)
                checks[step] = write_full(
                    name, tasks[name][0], run.full(name), tmp, profile, bert_cfg.vocab_size, **opts
                )
            else:
                checks[step] = write_head(step, tasks[step][0], branches[step][0], tmp, profile, **opts)
        write_multitask(tasks, tmp, serving)
        if with_baseline:
            for name, (spec, _) in tasks.items():
                write_ensemble(single_config(name, spec, serving), tmp)
        reg = registry.Registry(
            profile=profile,
            backbone=meta["backbone"],
            num_layers=meta["num_layers"],
            hidden_size=meta["hidden_size"],
            max_length=meta["config"]["max_length"],
            trunk=registry.TrunkEntry(1, depths, max(depths), meta["trunk_fingerprint"]),
            tasks={
                name: registry.TaskEntry(
                    **spec.to_dict(),
                    branch_depth=depth,
                    task_layers=branches[name][0].config.num_layers,
                    head_version=1,
                    baseline=names.single(name) if with_baseline else None,
                    dev_score=branches[name][1]["chosen"]["score"],
                )
                for name, (spec, depth) in tasks.items()
            },
            export_checks=checks,
            # how the ONNX models were built: a later head export should match
            onnx={"precision": "fp16" if fp16 else "fp32", "tensorrt": tensorrt}
            if fp16 or tensorrt
            else None,
            serving=serving.to_registry(),
        )
        registry.save(tmp, reg)
    return reg


# ---------------------------------------------------------------- CLI
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default="runs/latest", help="the training run to export")
    p.add_argument("--out", default="model_repository/multitask", help="repository folder to (re)write")
    p.add_argument(
        "--profile",
        choices=["local", "gpu"],
        default="local",
        help="local: python backend running the ONNX files on CPU; gpu: onnxruntime backend, KIND_GPU",
    )
    p.add_argument(
        "--no-baseline", action="store_true", help="skip the per-task baseline models (full_*, single_*)"
    )
    p.add_argument(
        "--fp16",
        action="store_true",
        help="ONNX models compute in fp16 (fp32 inputs/outputs kept, configs unchanged)",
    )
    p.add_argument(
        "--tensorrt",
        action="store_true",
        help="gpu profile: add onnxruntime's TensorRT execution accelerator (FP16) to the ONNX models, with "
        "an engine cache (--trt-cache-path) and optimisation profiles for batch 1..--max-batch and every "
        "sequence bucket",
    )
    g = p.add_argument_group("serving options (written into the configs and registry.json)")
    g.add_argument(
        "--max-batch", type=int, default=MAX_BATCH, help=f"largest batch of every model (default {MAX_BATCH})"
    )
    g.add_argument(
        "--queue-delay-us",
        type=int,
        default=QUEUE_DELAY_US,
        help=f"how long the dynamic batcher waits to fill a batch, in microseconds (default {QUEUE_DELAY_US})",
    )
    g.add_argument(
        "--instances",
        type=parse_instances,
        default={},
        metavar="KIND=N,...",
        help="model instances per kind, e.g. trunk=2,heads=1,tokenizer=4 (default 1 each; the full_<task> "
        "baselines take the trunk's count)",
    )
    g.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="model_warmup for every sequence bucket and a few batch sizes (default: on for --profile gpu)",
    )
    g.add_argument(
        "--response-cache",
        action="store_true",
        help="enable Triton's response cache on the ensembles (serve with --cache-config local,size=...)",
    )
    g.add_argument(
        "--trt-cache-path",
        default=TRT_CACHE_PATH,
        help=f"with --tensorrt: engine cache folder in the container (default {TRT_CACHE_PATH}, mounted by k8s/)",
    )
    p.add_argument(
        "--check",
        metavar="REPO",
        nargs="?",
        const="",
        default=None,
        help="validate a repository strictly instead of exporting (default: --out)",
    )


def run(args) -> int:
    if args.check is not None:
        from mtserve.serving.repository_check import check_repository

        repo = Path(args.check or args.out)
        problems = check_repository(repo)
        for p in problems:
            print(p)
        if problems:
            print(f"{repo}: {len(problems)} problem(s)")
            return 1
        print(f"{repo}: ok")
        return 0
    fp16, tensorrt = getattr(args, "fp16", False), getattr(args, "tensorrt", False)
    serving = ServingOptions(
        max_batch=args.max_batch,
        queue_delay_us=args.queue_delay_us,
        instances=args.instances,
        warmup=args.profile == "gpu" if args.warmup is None else args.warmup,
        response_cache=args.response_cache,
        trt_cache_path=args.trt_cache_path,
    )
    reg = export_run(
        args.run_dir,
        args.out,
        args.profile,
        not args.no_baseline,
        fp16=fp16,
        tensorrt=tensorrt,
        serving=serving,
    )
    worst = max(c["max_abs_diff"] for c in reg.export_checks.values())
    print(
        f"exported {len(reg.tasks)} task(s) to {args.out} (profile {args.profile}); trunk {reg.trunk.layers} "
        f"layers, branch depths {reg.trunk.depths}; ONNX vs PyTorch max abs diff {worst:.2e}"
        + (" (fp16 vs fp32)" if fp16 else "")
        + ("; TensorRT accelerator" if tensorrt else "")
    )
    return 0
