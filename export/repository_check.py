# Over 1,000 lines: one checker class whose checks share one walk of the repository and one problem list.
"""`mtserve export --check REPO`: validate a model repository strictly, before Triton ever sees it.

`check_repository(repo)` returns one line per problem, each naming the file and the field, e.g.

    multitask_graph/config.pbtxt: ensemble_scheduling.step[2].input_map["hidden"]: tensor 'hidden_9' is not produced by any step or ensemble input

What it checks, in order:
  1. layout: every top-level folder is a model (has config.pbtxt) and every top-level file is registry.json or
     README.md; a model folder holds config.pbtxt and numeric version folders only, each served by its
     version_policy; nothing in a version folder is unused (ONNX external data and files a model.py names are
     used; Python's __pycache__ is ignored).
  2. each config.pbtxt parses into Triton's ModelConfig (errors give the line), its name is its folder's, its
     backend/platform is one this project uses, its tensors have names, types and valid dims; composing
     models batch dynamically; an ensemble has no instance groups, optimization or batcher of its own.
  3. model files: model.onnx for the onnxruntime backend, model.py for the python backend (it parses and defines
     TritonPythonModel). Every model.onnx loads with onnx.load, passes onnx.checker (full check) and its graph
     inputs and outputs match the config's names, dtypes and dims ([batch] + dims when max_batch_size > 0;
     -1 is a symbolic/unknown dimension, a number is that fixed size).
  4. ensembles: steps name models that exist (and versions that exist), every input_map key is an input of
     the step's model and every required input is mapped, every input_map value is an ensemble input or an
     earlier step's output, every output_map key is an output of the step's model, no tensor is produced
     twice, every ensemble output is produced, no tensor is left unused; producer and consumer agree on dtype
     and dims; composing models batch at least as far as the ensemble.
  5. registry.json: its tasks, the head models and the multitask outputs agree; each head's branch depth has a
     trunk output hidden_<d> and is what the multitask graph feeds it; `multitask` is one step running the
     graph, and no head has a queue bound (docs/overload.md); scores/label shapes follow the
     task's labels; every model belongs to the registry or an ensemble; the profile holds (local: python
     backend everywhere; gpu: onnxruntime + KIND_GPU everywhere but the tokenizer, which stays a python model
     importing only numpy and the standard library, as the stock Triton image requires).

It needs onnx and tritonclient's protobufs, not torch or onnxruntime.

Why one long module: one checker walks the repository once, and every rule reads the same parsed index of
models, versions and tensors; the rules follow the numbered sections above, in that order.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from mtserve.core import names, registry

TOP_LEVEL_FILES = (registry.FILENAME, "README.md")
CACHE_DIRS = ("__pycache__",)  # Python writes these when Triton's python backend imports a model's modules
DEFAULT_MODEL_FILE = {"onnxruntime": "model.onnx", "python": "model.py"}
STOCK_IMAGE_MODULES = frozenset(sys.stdlib_module_names) | {"numpy", "triton_python_backend_utils"}
TRT_PRECISIONS = ("FP32", "FP16", "INT8")
TRT_BOOLS = ("0", "1", "true", "false")
TRT_PROFILE_KEYS = tuple(f"trt_profile_{k}_shapes" for k in ("min", "opt", "max"))
BATCHING_WILDCARD = -1
WARMUP_DIR = "warmup"  # Triton reads a model_warmup input_data_file from <model>/warmup/
_ITEMSIZE = {mc.TYPE_INT64: 8, mc.TYPE_INT32: 4, mc.TYPE_FP32: 4, mc.TYPE_FP16: 2, mc.TYPE_BOOL: 1}

# ONNX TensorProto element type -> Triton data type
_ONNX_TO_TRITON = {
    1: mc.TYPE_FP32,
    2: mc.TYPE_UINT8,
    3: mc.TYPE_INT8,
    4: mc.TYPE_UINT16,
    5: mc.TYPE_INT16,
    6: mc.TYPE_INT32,
    7: mc.TYPE_INT64,
    8: mc.TYPE_STRING,
    9: mc.TYPE_BOOL,
    10: mc.TYPE_FP16,
    11: mc.TYPE_FP64,
    12: mc.TYPE_UINT32,
    13: mc.TYPE_UINT64,
    16: mc.TYPE_BF16,
}


def _dtype(t: int) -> str:
    try:
        return mc.DataType.Name(t)
    except ValueError:
        return f"<data type {t}>"


def _dims_compatible(a: list[int], b: list[int]) -> bool:
    return len(a) == len(b) and all(x == y or BATCHING_WILDCARD in (x, y) for x, y in zip(a, b, strict=True))


@dataclass
class Tensor:
    """One tensor as Triton sees it: data type, dims (without the batch dimension), where it comes from."""

    dtype: int | None
    dims: list[int] | None
    where: str
    optional: bool = False


@dataclass
class Model:
    name: str
    path: Path
    config: mc.ModelConfig
    kind: str  # "ensemble" | "onnxruntime" | "python" | "" (unknown backend)
    versions: dict[int, Path] = field(default_factory=dict)
    served: set[int] = field(default_factory=set)  # the versions its version_policy loads
    imports: dict[str, set[str]] = field(
        default_factory=dict
    )  # version folder -> third-party modules imported
    label_names: dict[str, list[str]] = field(
        default_factory=dict
    )  # ONNX file -> its 'label_names' initializer

    @property
    def cfg_file(self) -> str:
        return f"{self.name}/config.pbtxt"

    @property
    def inputs(self) -> dict[str, mc.ModelInput]:
        return {t.name: t for t in self.config.input}

    @property
    def outputs(self) -> dict[str, mc.ModelOutput]:
        return {t.name: t for t in self.config.output}


class RepositoryChecker:
    def __init__(self, repo: str | Path):
        self.repo = Path(repo)
        self.problems: list[str] = []
        self.models: dict[str, Model] = {}
        self.broken: set[str] = set()  # model folders whose config.pbtxt does not parse

    # ------------------------------------------------------------ helpers
    def report(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def rel(self, path: Path) -> str:
        return path.relative_to(self.repo).as_posix()

    def _missing_model(self, name: str) -> str:
        if name in self.broken:
            return f"model '{name}' has a config.pbtxt that does not parse"
        return f"model '{name}' is not in the repository"

    # ------------------------------------------------------------ 1 + 2: layout and configs
    def scan(self) -> None:
        for entry in sorted(self.repo.iterdir()):
            if entry.is_symlink() or not entry.is_dir():
                if entry.name not in TOP_LEVEL_FILES or not entry.is_file():
                    self.report(
                        entry.name,
                        "dangling file: belongs to no model (the top level holds model folders, "
                        "registry.json and README.md only)",
                    )
                continue
            cfg_path = entry / "config.pbtxt"
            if not cfg_path.is_file():
                self.report(f"{entry.name}/", "dangling folder: no config.pbtxt, so it is no model")
                continue
            cfg = self._parse_config(cfg_path)
            if cfg is None:
                self.broken.add(entry.name)
                continue
            model = Model(entry.name, entry, cfg, self._kind(entry.name, cfg))
            self.models[entry.name] = model
            self._check_config(model)
            self._scan_versions(model)
            self._check_warmup(model)

    def _parse_config(self, path: Path) -> mc.ModelConfig | None:
        rel = self.rel(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            self.report(rel, f"not UTF-8 text: {e}")
            return None
        try:
            return text_format.Parse(text, mc.ModelConfig())
        except text_format.ParseError as e:
            line, col = e.GetLine(), e.GetColumn()
            msg = re.sub(r"^\d+:\d+ : ", "", str(e))
            where = f"line {line}, column {col}" if line is not None else "parse error"
            self.report(rel, f"{where}: does not parse as Triton's ModelConfig: {msg}")
            return None

    def _kind(self, folder: str, cfg: mc.ModelConfig) -> str:
        where = f"{folder}/config.pbtxt"
        if cfg.platform == "ensemble":
            if cfg.backend:
                self.report(where, f"backend: '{cfg.backend}' set on an ensemble (platform \"ensemble\")")
            return "ensemble"
        if cfg.backend in ("python", "onnxruntime"):
            if cfg.platform and not (cfg.backend == "onnxruntime" and cfg.platform == "onnxruntime_onnx"):
                self.report(where, f"platform: '{cfg.platform}' contradicts backend '{cfg.backend}'")
            return cfg.backend
        if not cfg.backend and cfg.platform == "onnxruntime_onnx":
            return "onnxruntime"
        self.report(
            where,
            f"backend: '{cfg.backend}' / platform: '{cfg.platform}': expected backend \"python\" or "
            '"onnxruntime", or platform "ensemble"',
        )
        return ""

    def _check_config(self, m: Model) -> None:
        cfg, where = m.config, m.cfg_file
        if cfg.name != m.name:
            self.report(where, f"name: '{cfg.name}' differs from its folder name '{m.name}'")
        if cfg.max_batch_size < 0:
            self.report(where, f"max_batch_size: {cfg.max_batch_size} is negative")
        for kind, tensors in (("input", cfg.input), ("output", cfg.output)):
            if not tensors:
                self.report(where, f"{kind}: none declared")
            seen: set[str] = set()
            for i, t in enumerate(tensors):
                f = f'{kind}["{t.name}"]' if t.name else f"{kind}[{i}]"
                if not t.name:
                    self.report(where, f"{f}.name: empty")
                elif t.name in seen:
                    self.report(where, f"{f}.name: declared twice")
                seen.add(t.name)
                if t.data_type == mc.TYPE_INVALID:
                    self.report(where, f"{f}.data_type: missing (TYPE_INVALID)")
                if not t.dims:
                    self.report(where, f"{f}.dims: missing")
                bad = [d for d in t.dims if d < 1 and d != BATCHING_WILDCARD]
                if bad:
                    self.report(
                        where, f"{f}.dims: {list(t.dims)}: each must be >= 1, or -1 for a variable size"
                    )
        accelerators = cfg.optimization.execution_accelerators.gpu_execution_accelerator
        if m.kind == "ensemble":
            if cfg.instance_group:
                self.report(where, "instance_group: set on an ensemble (Triton rejects it)")
            if cfg.HasField("optimization"):
                self.report(where, "optimization: set on an ensemble (Triton rejects it)")
            if cfg.HasField("dynamic_batching") or cfg.HasField("sequence_batching"):
                self.report(
                    where,
                    "dynamic_batching: set on an ensemble (an ensemble does not batch itself; its "
                    "composing models do)",
                )
            if not cfg.ensemble_scheduling.step:
                self.report(where, "ensemble_scheduling.step: none (an ensemble needs at least one step)")
            return
        if cfg.HasField("ensemble_scheduling"):
            self.report(
                where, f"ensemble_scheduling: set, but platform is '{cfg.platform}', not \"ensemble\""
            )
        if cfg.max_batch_size > 0 and not cfg.HasField("dynamic_batching"):
            self.report(
                where, "dynamic_batching: missing: a batching model runs every request alone without it"
            )
        for i, g in enumerate(cfg.instance_group):
            if g.count < 0:
                self.report(where, f"instance_group[{i}].count: {g.count} is negative")
        for i, acc in enumerate(accelerators):
            f = f"optimization.execution_accelerators.gpu_execution_accelerator[{i}]"
            if m.kind != "onnxruntime":
                self.report(
                    where, f"{f}: the {m.kind or 'unknown'} backend has no GPU execution accelerators"
                )
            if acc.name not in ("tensorrt", "cuda"):
                self.report(
                    where, f"{f}.name: '{acc.name}' is not one onnxruntime's backend knows (tensorrt, cuda)"
                )
            if acc.name == "tensorrt":
                prec = acc.parameters.get("precision_mode", "FP32")
                if prec not in TRT_PRECISIONS:
                    self.report(
                        where,
                        f"{f}.parameters[\"precision_mode\"]: '{prec}' is not one of "
                        f"{', '.join(TRT_PRECISIONS)}",
                    )
                ws = acc.parameters.get("max_workspace_size_bytes")
                if ws is not None and not (ws.isdigit() and int(ws) > 0):
                    self.report(
                        where,
                        f"{f}.parameters[\"max_workspace_size_bytes\"]: '{ws}' is not a positive integer",
                    )
                self._check_trt_cache_and_profiles(m, f, acc.parameters)
            if accelerators and not all(g.kind == mc.ModelInstanceGroup.KIND_GPU for g in cfg.instance_group):
                self.report(where, f"{f}: a GPU accelerator on instances that are not all KIND_GPU")

    def _check_trt_cache_and_profiles(self, m: Model, f: str, params) -> None:
        """The engine cache (a flag and an absolute folder) and the optimisation profiles: every input of the
        model in each profile, ranks that match the config (batch first), min <= opt <= max."""
        where = m.cfg_file
        enable = params.get("trt_engine_cache_enable")
        if enable is not None and enable.lower() not in TRT_BOOLS:
            self.report(
                where, f"{f}.parameters[\"trt_engine_cache_enable\"]: '{enable}' is not one of {TRT_BOOLS}"
            )
        path = params.get("trt_engine_cache_path")
        if enable is not None and enable.lower() in ("1", "true") and not (path or "").startswith("/"):
            self.report(
                where,
                f'{f}.parameters["trt_engine_cache_path"]: {path!r}: engine caching needs an absolute folder',
            )
        given = [k for k in TRT_PROFILE_KEYS if k in params]
        if not given:
            return
        if len(given) != len(TRT_PROFILE_KEYS):
            missing = sorted(set(TRT_PROFILE_KEYS) - set(given))
            self.report(
                where, f"{f}.parameters: {', '.join(missing)} missing (TensorRT needs min, opt and max)"
            )
            return
        shapes: dict[str, dict[str, list[list[int]]]] = {}
        for key in TRT_PROFILE_KEYS:
            per_input: dict[str, list[list[int]]] = {}
            for item in params[key].split(","):
                name, sep, dims = item.partition(":")
                try:
                    values = [int(d) for d in dims.split("x")]
                except ValueError:
                    values = []
                if not sep or not values or min(values) < 1:
                    self.report(where, f'{f}.parameters["{key}"]: {item!r} is not <input>:<d1>x<d2>...')
                    return
                per_input.setdefault(name, []).append(values)
            shapes[key] = per_input
        batching = m.config.max_batch_size > 0
        for key, per_input in shapes.items():
            if set(per_input) != set(m.inputs):
                self.report(
                    where,
                    f'{f}.parameters["{key}"]: inputs {sorted(per_input)}, but the model\'s inputs are '
                    f"{sorted(m.inputs)}",
                )
                return
        counts = {len(v) for per_input in shapes.values() for v in per_input.values()}
        if len(counts) != 1:
            self.report(where, f"{f}.parameters: the min/opt/max shapes give different numbers of profiles")
            return
        for name, t in m.inputs.items():
            want_rank = len(t.dims) + (1 if batching else 0)
            for i, (lo, opt, hi) in enumerate(zip(*(shapes[k][name] for k in TRT_PROFILE_KEYS), strict=True)):
                if not (len(lo) == len(opt) == len(hi) == want_rank):
                    self.report(
                        where,
                        f"{f}.parameters: profile {i} of input '{name}' has rank {len(lo)}, not {want_rank}",
                    )
                elif not all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
                    self.report(
                        where,
                        f"{f}.parameters: profile {i} of input '{name}': min {lo} <= opt {opt} <= max {hi} fails",
                    )
                elif batching and hi[0] > m.config.max_batch_size:
                    self.report(
                        where,
                        f"{f}.parameters: profile {i} of input '{name}' reaches batch {hi[0]} > max_batch_size "
                        f"{m.config.max_batch_size}",
                    )

    def _check_warmup(self, m: Model) -> None:
        """model_warmup: batch sizes the model takes, every required input given once with the config's data type
        and concrete dims, one data source each, and each data file in <model>/warmup/ of the right size."""
        cfg, where = m.config, m.cfg_file
        wdir = m.path / WARMUP_DIR
        used: set[str] = set()
        if cfg.model_warmup and m.kind == "ensemble":
            self.report(where, "model_warmup: set on an ensemble (warm its composing models instead)")
            return
        for i, w in enumerate(cfg.model_warmup):
            f = f"model_warmup[{i}]" + (f' ("{w.name}")' if w.name else "")
            limit = max(cfg.max_batch_size, 1)
            if not 1 <= w.batch_size <= limit:
                self.report(where, f"{f}.batch_size: {w.batch_size}, but the model takes 1 to {limit}")
            for name in sorted(set(w.inputs) - set(m.inputs)):
                self.report(where, f'{f}.inputs["{name}"]: not an input of the model')
            for name, t in m.inputs.items():
                sample = w.inputs.get(name)
                if sample is None:
                    if not t.optional:
                        self.report(where, f'{f}.inputs["{name}"]: missing (a required input)')
                    continue
                fi = f'{f}.inputs["{name}"]'
                if sample.data_type != t.data_type:
                    self.report(
                        where,
                        f"{fi}.data_type: {_dtype(sample.data_type)}, but the input is {_dtype(t.data_type)}",
                    )
                dims = list(sample.dims)
                if len(dims) != len(t.dims) or any(
                    d < 1 or (c != -1 and c != d) for d, c in zip(dims, t.dims, strict=False)
                ):
                    self.report(where, f"{fi}.dims: {dims} do not fit the input's dims {list(t.dims)}")
                    continue
                source = sample.WhichOneof("input_data_type")
                if source is None:
                    self.report(where, f"{fi}: no data (zero_data, random_data or input_data_file)")
                elif source == "input_data_file":
                    used.add(sample.input_data_file)
                    path = wdir / sample.input_data_file
                    size = _ITEMSIZE.get(sample.data_type)
                    if not path.is_file():
                        self.report(
                            f"{m.name}/{WARMUP_DIR}/{sample.input_data_file}", f"missing: {fi} reads it"
                        )
                    elif size is not None and path.stat().st_size != size * int(np.prod(dims)):
                        self.report(
                            f"{m.name}/{WARMUP_DIR}/{sample.input_data_file}",
                            f"{path.stat().st_size} bytes, but {fi} needs {size * int(np.prod(dims))} "
                            f"({_dtype(sample.data_type)} {dims})",
                        )
        if wdir.is_dir() and cfg.model_warmup:
            for entry in sorted(wdir.iterdir()):
                if entry.name not in used:
                    self.report(self.rel(entry), "dangling: no model_warmup sample reads it")

    def _scan_versions(self, m: Model) -> None:
        for entry in sorted(m.path.iterdir()):
            if entry.name == "config.pbtxt":
                continue
            if entry.name == WARMUP_DIR and entry.is_dir() and m.config.model_warmup:
                continue  # the warm-up samples' data files (_check_warmup)
            if entry.is_dir() and not entry.is_symlink() and entry.name.isdigit():
                m.versions[int(entry.name)] = entry
            else:
                what = "folder" if entry.is_dir() else "file"
                self.report(
                    f"{m.name}/{entry.name}",
                    f"dangling {what}: a model folder holds config.pbtxt and numeric version folders only",
                )
        if not m.versions:
            self.report(f"{m.name}/", f"no version folder: expected a numeric one such as {m.name}/1/")
        policy = m.config.version_policy
        if policy.HasField("specific"):
            m.served = set(policy.specific.versions) & set(m.versions)
            for v in policy.specific.versions:
                if v not in m.versions:
                    self.report(
                        m.cfg_file,
                        f"version_policy.specific.versions: version {v} has no folder {m.name}/{v}/",
                    )
        elif policy.HasField("all"):
            m.served = set(m.versions)
        else:  # Triton's default: latest { num_versions: 1 }
            n = (
                policy.latest.num_versions
                if policy.HasField("latest") and policy.latest.num_versions > 0
                else 1
            )
            m.served = set(sorted(m.versions)[-n:])
        for v in sorted(set(m.versions) - m.served):
            self.report(
                f"{m.name}/{v}/",
                f"dangling version folder: the version_policy of {m.cfg_file} serves "
                f"{sorted(m.served) or 'none'} only",
            )
        for _, vdir in sorted(m.versions.items()):
            if m.kind == "ensemble":
                for entry in sorted(vdir.iterdir()):
                    if entry.name == names.ENSEMBLE_PLACEHOLDER and entry.is_file():
                        continue  # the placeholder that keeps the folder alive in object stores
                    self.report(self.rel(entry), "dangling: an ensemble's version folder is empty")
            elif m.kind == "onnxruntime":
                self._check_onnx_version(m, vdir)
            elif m.kind == "python":
                self._check_python_version(m, vdir)

    # ------------------------------------------------------------ 3: model files
    def _check_onnx_version(self, m: Model, vdir: Path) -> None:
        name = m.config.default_model_filename or DEFAULT_MODEL_FILE["onnxruntime"]
        path = vdir / name
        used = {name}
        if not path.is_file():
            self.report(self.rel(path), "missing: the onnxruntime backend loads this file")
        else:
            used |= self._check_onnx(m, path)
        for entry in sorted(vdir.iterdir()):
            if entry.name not in used:
                self.report(
                    self.rel(entry),
                    "dangling: an onnxruntime model's version folder holds its ONNX file "
                    "(and that file's external data) only",
                )

    def _check_onnx(self, m: Model, path: Path) -> set[str]:
        """Load, check and compare one ONNX file with its config; returns the external data files it uses."""
        import onnx
        from google.protobuf.message import DecodeError

        rel = self.rel(path)
        try:
            model = onnx.load(str(path), load_external_data=False)
        except (DecodeError, OSError, ValueError) as e:
            self.report(rel, f"onnx.load: not a readable ONNX ModelProto (truncated or corrupt file?): {e}")
            return set()
        external = {
            entry.value
            for init in model.graph.initializer
            for entry in init.external_data
            if entry.key == "location"
        }
        for loc in sorted(external):
            if not (path.parent / loc).is_file():
                self.report(rel, f"external data '{loc}' is missing beside it")
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as e:  # noqa: BLE001 - onnx raises several types; each is this file's problem
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self.report(rel, f"onnx.checker: {first}")
            return external
        self._check_raw_sizes(model, rel)
        g = model.graph
        inits = {i.name for i in g.initializer}
        self._compare_io(m, rel, "input", {v.name: v for v in g.input if v.name not in inits})
        self._compare_io(m, rel, "output", {v.name: v for v in g.output})
        self._read_label_names(m, model, rel)
        return external

    def _check_raw_sizes(self, model, rel: str) -> None:
        """onnx.checker does not compare an initializer's raw bytes with its shape; onnxruntime fails on it."""
        import numpy as np
        from onnx import helper

        for init in model.graph.initializer:
            if not init.raw_data or init.data_type in (0, 8):
                continue
            try:
                itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
            except (KeyError, TypeError, ValueError):
                continue
            want = int(np.prod(init.dims, dtype=np.int64)) * itemsize
            if len(init.raw_data) != want:
                self.report(
                    rel,
                    f"initializer '{init.name}': {len(init.raw_data)} bytes of data for shape "
                    f"{list(init.dims)} ({want} bytes expected)",
                )

    def _compare_io(self, m: Model, rel: str, kind: str, graph: dict) -> None:
        declared = m.inputs if kind == "input" else m.outputs
        batching = m.config.max_batch_size > 0
        for name, t in declared.items():
            f = f'{kind}["{name}"]'
            v = graph.get(name)
            if v is None:
                self.report(
                    m.cfg_file,
                    f"{f}: {rel} has no graph {kind} '{name}' (its {kind}s: "
                    f"{', '.join(sorted(graph)) or 'none'})",
                )
                continue
            if not v.type.HasField("tensor_type"):
                self.report(rel, f"graph {kind} '{name}' is not a tensor")
                continue
            tt = v.type.tensor_type
            onnx_dtype = _ONNX_TO_TRITON.get(tt.elem_type)
            if onnx_dtype != t.data_type:
                theirs = _dtype(onnx_dtype) if onnx_dtype is not None else f"ONNX element type {tt.elem_type}"
                self.report(m.cfg_file, f"{f}.data_type: {_dtype(t.data_type)}, but {rel} declares {theirs}")
            if not tt.HasField("shape"):
                self.report(rel, f"graph {kind} '{name}' has no shape (rank unknown)")
                continue
            onnx_dims = [d.dim_value if d.HasField("dim_value") else BATCHING_WILDCARD for d in tt.shape.dim]
            shown = (
                "["
                + ", ".join(
                    str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                    for d in tt.shape.dim
                )
                + "]"
            )
            want = ([BATCHING_WILDCARD] if batching else []) + list(t.dims)
            batch_note = " with the batch dimension first" if batching else ""
            if onnx_dims != want:
                self.report(
                    m.cfg_file,
                    f"{f}.dims: {list(t.dims)} (max_batch_size {m.config.max_batch_size}) means "
                    f"shape {want}{batch_note}, but {rel} has {shown} (-1 is a symbolic "
                    "dimension there)",
                )
        for name in sorted(set(graph) - set(declared)):
            self.report(m.cfg_file, f"{kind}: graph {kind} '{name}' of {rel} is not declared")

    @staticmethod
    def _read_label_names(m: Model, model, rel: str) -> None:
        from onnx import numpy_helper

        for init in model.graph.initializer:
            if init.name == "label_names":
                values = numpy_helper.to_array(init).reshape(-1).tolist()
                m.label_names[rel] = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]

    def _check_python_version(self, m: Model, vdir: Path) -> None:
        entry_file = m.config.default_model_filename or DEFAULT_MODEL_FILE["python"]
        sources: dict[str, ast.Module] = {}
        for py in sorted(vdir.glob("*.py")):
            try:
                sources[py.stem] = ast.parse(py.read_text(encoding="utf-8"), filename=str(py))
            except SyntaxError as e:
                self.report(self.rel(py), f"line {e.lineno}: syntax error: {e.msg}")
            except UnicodeDecodeError as e:
                self.report(self.rel(py), f"not UTF-8 text: {e}")
        entry = Path(entry_file).stem
        if not (vdir / entry_file).is_file():
            self.report(self.rel(vdir / entry_file), "missing: the python backend loads this file")
            return
        tree = sources.get(entry)
        if tree is None:
            return  # its syntax error is reported
        cls = next(
            (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TritonPythonModel"), None
        )
        if cls is None:
            self.report(self.rel(vdir / entry_file), "defines no class TritonPythonModel")
        elif not any(isinstance(n, ast.FunctionDef) and n.name == "execute" for n in cls.body):
            self.report(self.rel(vdir / entry_file), "TritonPythonModel has no execute method")
        # modules reached from model.py, the third-party ones among them, and the file names the sources mention
        reached, todo, third_party, strings, packages = set(), [entry], set(), set(), set()
        while todo:
            mod = todo.pop()
            if mod in reached or mod not in sources:
                continue
            reached.add(mod)
            for node in ast.walk(sources[mod]):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module.split(".")[0]]
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    strings.add(node.value)
                for name in names:
                    if name in sources:
                        todo.append(name)
                    elif (vdir / name).is_dir():
                        packages.add(name)  # a package beside model.py: used, its contents not inspected
                    elif name != "__future__":
                        third_party.add(name)
        m.imports[self.rel(vdir)] = third_party
        for entry_path in sorted(vdir.iterdir()):
            n = entry_path.name
            if n in CACHE_DIRS:
                continue
            used = (
                (entry_path.suffix == ".py" and entry_path.stem in reached)
                or n in packages
                or any(s == n or s.endswith("/" + n) for s in strings)
            )
            if not used:
                self.report(
                    self.rel(entry_path), f"dangling: neither imported nor named by {entry_file}'s code"
                )
        if "model.onnx" in strings:
            onnx_path = vdir / "model.onnx"
            if not onnx_path.is_file():
                self.report(self.rel(onnx_path), f"missing: {entry_file} runs this file")
            else:
                self._check_onnx(m, onnx_path)

    # ------------------------------------------------------------ 4: ensembles
    def check_ensemble(self, m: Model) -> None:
        cfg, where = m.config, m.cfg_file
        produced: dict[str, Tensor] = {}
        producer_field: dict[str, str] = {}  # tensor -> the field that produces it
        for t in cfg.input:
            produced[t.name] = Tensor(t.data_type, list(t.dims), f"ensemble input '{t.name}'", t.optional)
            producer_field[t.name] = f'input["{t.name}"]'
        later: dict[str, int] = {}
        for i, step in enumerate(cfg.ensemble_scheduling.step):
            for value in step.output_map.values():
                later.setdefault(value, i)
        consumed: set[str] = set()
        for i, step in enumerate(cfg.ensemble_scheduling.step):
            f = f"ensemble_scheduling.step[{i}]"
            target = self.models.get(step.model_name)
            if not step.model_name:
                self.report(where, f"{f}.model_name: empty")
            elif step.model_name == m.name:
                self.report(where, f"{f}.model_name: the ensemble names itself")
                target = None
            elif target is None:
                self.report(where, f"{f}.model_name: {self._missing_model(step.model_name)}")
            if target is not None:
                if step.model_version != -1 and step.model_version not in target.served:
                    self.report(
                        where,
                        f"{f}.model_version: {step.model_version}, but '{target.name}' serves "
                        f"version(s) {sorted(target.served) or 'none'}",
                    )
                if cfg.max_batch_size > 0 and target.config.max_batch_size < cfg.max_batch_size:
                    self.report(
                        where,
                        f"{f}.model_name: '{target.name}' batches up to "
                        f"{target.config.max_batch_size}, less than the ensemble's max_batch_size "
                        f"{cfg.max_batch_size}",
                    )
            if not step.input_map:
                self.report(where, f"{f}.input_map: empty")
            for key, value in sorted(step.input_map.items()):
                fk = f'{f}.input_map["{key}"]'
                tin = target.inputs.get(key) if target else None
                if target is not None and tin is None:
                    self.report(
                        where,
                        f"{fk}: model '{target.name}' has no input '{key}' (its inputs: "
                        f"{', '.join(target.inputs)})",
                    )
                src = produced.get(value)
                if src is None:
                    if value in later and later[value] >= i:
                        self.report(
                            where,
                            f"{fk}: tensor '{value}' is produced only by a later step (step[{later[value]}])",
                        )
                    else:
                        self.report(
                            where, f"{fk}: tensor '{value}' is not produced by any step or ensemble input"
                        )
                    continue
                consumed.add(value)
                if tin is not None:
                    self._compare(
                        where,
                        fk,
                        src,
                        Tensor(tin.data_type, list(tin.dims), ""),
                        f"'{target.name}' input '{key}'",
                    )
                    if src.optional and not tin.optional:
                        self.report(
                            where,
                            f"{fk}: {src.where} is optional, but '{target.name}' requires input '{key}'",
                        )
            if target is not None:
                for name, tin in target.inputs.items():
                    if name not in step.input_map and not tin.optional:
                        self.report(
                            where, f"{f}.input_map: required input '{name}' of '{target.name}' is not mapped"
                        )
            if not step.output_map:
                self.report(where, f"{f}.output_map: empty")
            for key, value in sorted(step.output_map.items()):
                fk = f'{f}.output_map["{key}"]'
                tout = target.outputs.get(key) if target else None
                if target is not None and tout is None:
                    self.report(
                        where,
                        f"{fk}: model '{target.name}' has no output '{key}' (its outputs: "
                        f"{', '.join(target.outputs)})",
                    )
                if value in produced:
                    self.report(
                        where, f"{fk}: tensor '{value}' is already produced by {produced[value].where}"
                    )
                    continue
                produced[value] = Tensor(
                    tout.data_type if tout else None,
                    list(tout.dims) if tout else None,
                    f"step[{i}] ('{step.model_name}' output '{key}')",
                )
                producer_field[value] = fk
        for t in cfg.output:
            f = f'output["{t.name}"]'
            src = produced.get(t.name)
            if src is None or producer_field[t.name].startswith("input["):
                self.report(where, f"{f}: not produced by any step's output_map")
                continue
            consumed.add(t.name)
            self._compare(where, f, src, Tensor(t.data_type, list(t.dims), ""), "the ensemble output")
        for name, field_name in producer_field.items():
            if name not in consumed:
                what = (
                    "is used by no step"
                    if field_name.startswith("input[")
                    else f"tensor '{name}' is used by no later step and is no ensemble output (Triton rejects unused tensors)"
                )
                self.report(where, f"{field_name}: {what}")

    def _compare(self, where: str, f: str, src: Tensor, dst: Tensor, dst_desc: str) -> None:
        if src.dtype is None:
            return  # the producer's problem is reported already
        if src.dtype != dst.dtype:
            self.report(
                where,
                f"{f}: data type mismatch: {src.where} is {_dtype(src.dtype)}, {dst_desc} is "
                f"{_dtype(dst.dtype)}",
            )
        elif src.dims is not None and not _dims_compatible(src.dims, dst.dims):
            self.report(
                where, f"{f}: shape mismatch: {src.where} has dims {src.dims}, {dst_desc} has {dst.dims}"
            )

    # ------------------------------------------------------------ 5: registry.json
    def check_registry(self) -> None:
        path = registry.path(self.repo)
        known = {names.TOKENIZER, names.MULTITASK, names.MULTITASK_GRAPH}
        for name in sorted(known):
            if name not in self.models and name not in self.broken:
                self.report(
                    f"{name}/",
                    "missing: every repository serves the tokenizer, the multitask graph and its multitask "
                    "wrapper",
                )
        if not path.is_file():
            self.report(
                registry.FILENAME, "missing: the repository's record of its tasks, branch depths and versions"
            )
            return
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            self.report(registry.FILENAME, f"not valid JSON: {e}")
            return
        problems = registry.validate(raw)  # the registry's own schema, from its owner
        for problem in problems:
            self.report(registry.FILENAME, problem)
        if problems:
            return
        reg = registry.Registry.from_dict(raw)
        multitask = self.models.get(names.MULTITASK)
        graph = self.models.get(names.MULTITASK_GRAPH)  # the heads' steps; `multitask` wraps it
        known |= self._check_segments(reg)
        mt_steps = {}
        for m in (graph, multitask):
            if m is not None and reg.multitask_version not in m.served:
                self.report(
                    registry.FILENAME,
                    f"multitask_version: {reg.multitask_version}, but {m.name} serves "
                    f"version(s) {sorted(m.served) or 'none'}",
                )
        if graph is not None:
            for i, step in enumerate(graph.config.ensemble_scheduling.step):
                mt_steps.setdefault(step.model_name, (i, step))
        for task, info in reg.tasks.items():
            self._check_task(task, info, graph, mt_steps)
            known.add(task)
            if info.baseline:
                known |= {info.baseline, names.full(task)}
        if graph is not None:
            self._check_multitask_against_tasks(graph, reg.tasks)
        if multitask is not None and graph is not None:
            self._check_wrapper(multitask, graph)
        known |= self._check_paths(reg)
        for m in self.models.values():
            if m.kind == "ensemble":
                known |= {s.model_name for s in m.config.ensemble_scheduling.step}
        for name in sorted(set(self.models) - known):
            self.report(f"{name}/", "dangling model: not in registry.json and run by no ensemble")
        self._check_profile(reg)
        if reg.serving:
            self._check_serving(reg.serving)

    def _check_serving(self, serving: dict) -> None:
        """The configs hold what registry.json `serving` says they were exported with (a later task change writes
        its configs from it): max batch, queue delay, the trunk's and full models' queue timeout (500 ms when it
        records none: what export wrote before it was an option) and instances per kind, the response cache on
        the ensembles, and warm-up for every sequence bucket and batch size."""
        where = f"{registry.FILENAME}: serving"
        instances = serving.get("instances") or {}
        warmup = serving.get("warmup") or None
        want_samples = (
            {(s, b) for s in serving.get("buckets") or [] for b in warmup.get("batch_sizes") or []}
            if warmup
            else set()
        )
        for m in self.models.values():
            cfg = m.config
            if cfg.max_batch_size != serving.get("max_batch"):
                self.report(
                    m.cfg_file,
                    f"max_batch_size: {cfg.max_batch_size}, but {where}.max_batch is {serving.get('max_batch')}",
                )
            if m.kind == "ensemble":
                if cfg.response_cache.enable != bool(serving.get("response_cache")):
                    self.report(
                        m.cfg_file,
                        f"response_cache.enable: {cfg.response_cache.enable}, but {where}.response_cache is "
                        f"{serving.get('response_cache')}",
                    )
                continue
            # --instances kinds: a full_<task> baseline is a whole BERT and takes the trunk's count
            if m.name == names.TOKENIZER:
                kind = "tokenizer"
            elif names.segment_bounds(m.name) or names.task_of_full(m.name):
                kind = "trunk"
            else:
                kind = "heads"
            delay = cfg.dynamic_batching.max_queue_delay_microseconds
            if delay != serving.get("queue_delay_us"):
                self.report(
                    m.cfg_file,
                    f"dynamic_batching.max_queue_delay_microseconds: {delay}, but {where}.queue_delay_us is {serving.get('queue_delay_us')}",
                )
            policy = cfg.dynamic_batching.default_queue_policy
            timeout = serving.get("queue_timeout_us", registry.LEGACY_QUEUE_TIMEOUT_US)
            if kind == "trunk" and policy.default_timeout_microseconds != timeout:
                self.report(
                    m.cfg_file,
                    f"dynamic_batching.default_queue_policy.default_timeout_microseconds: "
                    f"{policy.default_timeout_microseconds}, but {where}.queue_timeout_us is {timeout}",
                )
            counts = sorted({g.count for g in cfg.instance_group})
            if kind in instances and counts != [instances[kind]]:
                self.report(
                    m.cfg_file,
                    f"instance_group.count: {counts}, but {where}.instances.{kind} is {instances[kind]}",
                )
            if kind == "tokenizer":
                continue
            got = {
                (int(w.inputs[names.ATTENTION_MASK].dims[0]), w.batch_size)
                for w in cfg.model_warmup
                if names.ATTENTION_MASK in w.inputs
            }
            if got != want_samples:
                missing, extra = sorted(want_samples - got), sorted(got - want_samples)
                self.report(
                    m.cfg_file,
                    f"model_warmup: (sequence, batch) samples differ from {where}.warmup"
                    + (f"; missing {missing}" if missing else "")
                    + (f"; not asked for {extra}" if extra else ""),
                )

    def _check_segments(self, reg: registry.Registry) -> set[str]:
        """The trunk's segments, one per pair of consecutive branch depths (core/names.py `segments`): each
        present, reading the ids (the first) or `hidden` and `attention_mask`, writing `hidden_out` of the
        registry's hidden size. Returns their names."""
        hidden = [BATCHING_WILDCARD, reg.hidden_size]
        found = set()
        for a, b in reg.segments():
            name = names.segment(a, b)
            found.add(name)
            seg = self.models.get(name)
            if seg is None:
                if name not in self.broken:
                    self.report(
                        registry.FILENAME,
                        f"trunk.depths: {reg.trunk.depths} means segment {name} (layers {a + 1}-{b}): "
                        + self._missing_model(name),
                    )
                continue
            want_in = set(names.ID_TENSORS) if a == 0 else {names.SEGMENT_INPUT, names.ATTENTION_MASK}
            if set(seg.inputs) != want_in:
                self.report(
                    seg.cfg_file,
                    f"input: {sorted(seg.inputs)}, but a segment from depth {a} reads {sorted(want_in)}",
                )
            out = seg.outputs.get(names.SEGMENT_OUTPUT)
            if out is None or list(out.dims) != hidden:
                self.report(
                    seg.cfg_file,
                    f'output["{names.SEGMENT_OUTPUT}"]: expected dims {hidden} (registry.json hidden_size '
                    f"{reg.hidden_size}), got {list(out.dims) if out is not None else 'none'}",
                )
            if a > 0:
                h = seg.inputs.get(names.SEGMENT_INPUT)
                if h is not None and list(h.dims) != hidden:
                    self.report(
                        seg.cfg_file,
                        f'input["{names.SEGMENT_INPUT}"]: expected dims {hidden}, got {list(h.dims)}',
                    )
        return found

    def _check_paths(self, reg: registry.Registry) -> set[str]:
        """Every path a client routes to (core/routing.py): path_<task> runs the tokenizer, the segments up to the
        task's depth and its head, in that order; graph_<g> the segments up to the group's deepest task and the
        group's heads, behind its one-step wrapper group_<g>; and each path's config says (parameters
        mtserve_tasks, mtserve_layers) what the registry says it serves and costs. Returns their names."""
        from mtserve.core import routing

        found = set()
        expected = {p.model: p for p in routing.catalogue(reg)}
        for model, want in expected.items():
            m = self.models.get(model)
            if model == names.MULTITASK:
                members = list(reg.tasks)
            elif model.startswith(names.GROUP_PREFIX):
                members = reg.groups[model[len(names.GROUP_PREFIX) :]]
            else:
                members = [model[len(names.PATH_PREFIX) :]]
            found.add(model)
            if m is None:
                if model not in self.broken:
                    self.report(
                        registry.FILENAME,
                        f"{'groups' if model.startswith(names.GROUP_PREFIX) else 'tasks'}: {self._missing_model(model)}",
                    )
                continue
            params = {k: v.string_value for k, v in m.config.parameters.items()}
            got = routing.from_parameters(model, params)
            if got is None or (set(got.tasks), got.layers) != (set(want.tasks), want.layers):
                self.report(
                    m.cfg_file,
                    f"parameters: {routing.TASKS_PARAMETER}={params.get(routing.TASKS_PARAMETER)!r}, "
                    f"{routing.LAYERS_PARAMETER}={params.get(routing.LAYERS_PARAMETER)!r}, but registry.json "
                    f"means {','.join(want.tasks)!r} at {want.layers} layers (clients route by them)",
                )
            served_groups = set(filter(None, params.get(routing.GROUPS_PARAMETER, "").split(",")))
            if model == names.MULTITASK and served_groups != set(reg.groups):
                self.report(
                    m.cfg_file,
                    f"parameters: {routing.GROUPS_PARAMETER}={params.get(routing.GROUPS_PARAMETER)!r}, but "
                    f"registry.json serves groups {sorted(reg.groups)} (clients without the repository index find "
                    "the groups there)",
                )
            graph = m
            if model.startswith(names.GROUP_PREFIX):
                gname = names.group_graph(model[len(names.GROUP_PREFIX) :])
                found.add(gname)
                graph = self.models.get(gname)
                if graph is None:
                    self.report(m.cfg_file, f"ensemble_scheduling.step: {self._missing_model(gname)}")
                    continue
                self._check_wrapper(m, graph)
            elif model == names.MULTITASK:
                continue  # its graph is checked step by step above
            depth = max(reg.tasks[t].branch_depth for t in members)
            want_steps = [
                names.TOKENIZER,
                *(names.segment(a, b) for a, b in names.segments_to(depth, reg.trunk.depths)),
                *members,
            ]
            got_steps = [s.model_name for s in graph.config.ensemble_scheduling.step]
            if got_steps != want_steps:
                self.report(
                    graph.cfg_file,
                    f"ensemble_scheduling.step: {got_steps}, but registry.json means {want_steps} (the "
                    "tokenizer, the trunk segments up to the deepest task, each task's head)",
                )
        return found

    def _check_task(
        self,
        task: str,
        info: registry.TaskEntry,
        multitask: Model | None,
        mt_steps: dict,
    ):
        f = f'tasks["{task}"]'
        labels = info.labels
        classification = bool(labels)
        num = len(labels) if classification else 1
        head = self.models.get(task)
        if head is None:
            self.report(registry.FILENAME, f"{f}: {self._missing_model(task)} (no head folder {task}/)")
        else:
            hv = info.head_version
            if hv not in head.served:
                self.report(
                    registry.FILENAME,
                    f"{f}.head_version: {hv}, but '{task}' serves version(s) {sorted(head.served) or 'none'}",
                )
            self._check_task_outputs(head, "", num, classification, "the head")
            policy = head.config.dynamic_batching.default_queue_policy
            if policy.max_queue_size or (
                policy.timeout_action == mc.ModelQueuePolicy.REJECT and policy.default_timeout_microseconds
            ):
                # A rejected head fails while the trunk's thread schedules its siblings: Triton <= 2.56 then
                # releases the client's request and uses it (export/model_config.py base_config).
                self.report(
                    head.cfg_file,
                    "dynamic_batching.default_queue_policy: a head must not reject requests (max_queue_size, "
                    "REJECT timeout): the multitask graph schedules the heads together",
                )
            hidden = head.inputs.get("hidden")
            if hidden is None or names.ATTENTION_MASK not in head.inputs:
                self.report(head.cfg_file, "input: a head reads 'hidden' and 'attention_mask'")
            for onnx_file, label_names in sorted(
                head.label_names.items()
            ):  # the served version's, or every one
                if classification and label_names != list(labels) and onnx_file.startswith(f"{task}/{hv}/"):
                    self.report(
                        onnx_file,
                        f"initializer 'label_names': {label_names}, but registry.json {f}.labels is {labels}",
                    )
        depth = info.branch_depth
        if multitask is not None:
            if task not in mt_steps:
                self.report(
                    multitask.cfg_file,
                    f"ensemble_scheduling.step: none runs head '{task}' (registry.json {f})",
                )
            else:
                i, step = mt_steps[task]
                got = step.input_map.get("hidden")
                if got is not None and got != names.hidden(depth):
                    self.report(
                        multitask.cfg_file,
                        f"ensemble_scheduling.step[{i}].input_map[\"hidden\"]: '{got}', "
                        f"but registry.json {f}.branch_depth {depth} means '{names.hidden(depth)}'",
                    )
            self._check_task_outputs(multitask, f"{task}_", num, classification, "the multitask graph")
        baseline = info.baseline
        if baseline:
            for name in (baseline, names.full(task)):
                if name not in self.models:
                    self.report(registry.FILENAME, f"{f}.baseline: {self._missing_model(name)}")
            if baseline in self.models:
                self._check_task_outputs(
                    self.models[baseline], f"{task}_", num, classification, "the baseline"
                )

    def _check_task_outputs(self, m: Model, prefix: str, num: int, classification: bool, what: str) -> None:
        outs = m.outputs
        scores, label = f"{prefix}scores", f"{prefix}label"
        if scores not in outs:
            self.report(m.cfg_file, f"output: {what} has no '{scores}'")
        elif list(outs[scores].dims) != [num] or outs[scores].data_type != mc.TYPE_FP32:
            self.report(
                m.cfg_file,
                f'output["{scores}"]: {_dtype(outs[scores].data_type)} {list(outs[scores].dims)}, '
                f"but the task has {num} {'label(s)' if classification else 'value (regression)'}: "
                f"expected TYPE_FP32 [{num}]",
            )
        if classification and label not in outs:
            self.report(
                m.cfg_file, f"output: {what} has no '{label}' (a classification task serves its label)"
            )
        elif classification and (list(outs[label].dims) != [1] or outs[label].data_type != mc.TYPE_STRING):
            self.report(m.cfg_file, f'output["{label}"]: expected TYPE_STRING [1]')
        elif not classification and label in outs:
            self.report(m.cfg_file, f'output["{label}"]: a regression task has no label')

    def _check_multitask_against_tasks(self, multitask: Model, tasks: dict) -> None:
        for i, step in enumerate(multitask.config.ensemble_scheduling.step):
            if (
                step.model_name != names.TOKENIZER
                and not names.segment_bounds(step.model_name)
                and step.model_name not in tasks
            ):
                self.report(
                    multitask.cfg_file,
                    f"ensemble_scheduling.step[{i}].model_name: '{step.model_name}' is "
                    "not a task in registry.json",
                )
        for t in multitask.config.output:
            task = re.sub(r"_(scores|label)\Z", "", t.name)
            if task == t.name or task not in tasks:
                self.report(
                    multitask.cfg_file,
                    f'output["{t.name}"]: not <task>_scores / <task>_label of a task in registry.json',
                )

    def _check_wrapper(self, wrapper: Model, graph: Model) -> None:
        """`multitask` is one step running the graph with the graph's inputs and outputs, unrenamed: the step that
        keeps a client's cancellation away from the heads (export/export.py multitask_config)."""
        steps = wrapper.config.ensemble_scheduling.step
        if len(steps) != 1 or steps[0].model_name != graph.name:
            self.report(
                wrapper.cfg_file,
                f"ensemble_scheduling.step: {[s.model_name for s in steps]}, expected one step running "
                f"'{graph.name}' (heads scheduled by the ensemble clients call can crash Triton when a "
                "request is cancelled)",
            )
            return
        for f, ours, theirs in (
            ("input", wrapper.inputs, graph.inputs),
            ("output", wrapper.outputs, graph.outputs),
        ):
            if ours.keys() != theirs.keys():
                self.report(
                    wrapper.cfg_file,
                    f"{f}: {sorted(ours)}, but {graph.cfg_file} has {sorted(theirs)}",
                )
        step = steps[0]
        for f, mapping in (("input_map", step.input_map), ("output_map", step.output_map)):
            for k, v in sorted(mapping.items()):
                if k != v:
                    self.report(
                        wrapper.cfg_file, f"ensemble_scheduling.step[0].{f}[\"{k}\"]: '{v}', expected '{k}'"
                    )

    def _check_profile(self, reg: registry.Registry) -> None:
        profile = reg.profile  # one of registry.PROFILES: validated with the rest of the registry
        for m in self.models.values():
            if m.kind in ("ensemble", ""):
                continue
            kinds = {mc.ModelInstanceGroup.Kind.Name(g.kind) for g in m.config.instance_group}
            if m.name == "tokenizer" or (m.kind == "python" and profile == "gpu"):
                for vdir, mods in sorted(m.imports.items()):
                    extra = sorted(mods - STOCK_IMAGE_MODULES)
                    if extra:
                        self.report(
                            f"{vdir}/",
                            f"imports {', '.join(extra)}: the stock Triton image's python backend "
                            "has numpy and the standard library only",
                        )
            if m.name == "tokenizer":
                if m.kind != "python":
                    self.report(
                        m.cfg_file,
                        f"backend: '{m.config.backend}': the tokenizer is a python-backend model "
                        "in every profile",
                    )
            elif profile == "local":
                if m.kind != "python":
                    self.report(
                        m.cfg_file,
                        f"backend: '{m.config.backend or m.config.platform}', but registry.json "
                        "profile is 'local' (the python backend runs every ONNX file)",
                    )
                if kinds - {"KIND_CPU"}:
                    self.report(
                        m.cfg_file, f"instance_group.kind: {sorted(kinds)}, but the local profile runs on CPU"
                    )
            elif profile == "gpu":
                if m.kind != "onnxruntime":
                    self.report(
                        m.cfg_file,
                        f"backend: '{m.config.backend}': in the gpu profile only the tokenizer is "
                        "a python-backend model; the rest run on onnxruntime",
                    )
                if kinds != {"KIND_GPU"}:
                    self.report(
                        m.cfg_file,
                        f"instance_group.kind: {sorted(kinds) or 'unset'}, but the gpu profile "
                        "runs on KIND_GPU",
                    )

    # ------------------------------------------------------------
    def run(self) -> list[str]:
        if not self.repo.is_dir():
            return [f"{self.repo}: not a folder"]
        journal = registry.journal_path(self.repo)
        if journal.exists():
            # a `mtserve task` change is running, or was killed half-way: what follows may be half of it
            self.report(
                journal.name,
                f"an unfinished `mtserve task` change ({journal}): `mtserve task recover --repo {self.repo}` "
                "undoes it (or finishes it past its commit point); a change in progress removes it when done",
            )
        self.scan()
        for m in self.models.values():
            if m.kind == "ensemble":
                self.check_ensemble(m)
        self.check_registry()
        return self.problems


def check_repository(repo: str | Path) -> list[str]:
    """Every problem of the model repository at `repo`, one line each naming the file and the field; [] if none."""
    return RepositoryChecker(repo).run()
