"""The model repository: `mtserve export --check` accepts what export writes and names the file and field of
each problem; the gpu profile differs from the local one only where it must; --fp16 and --tensorrt."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from mtserve.core.errors import UserError
from mtserve.export.export import export_run
from mtserve.export.model_config import QUEUE_DELAY_US, QUEUE_TIMEOUT_US, TRT_WORKSPACE_BYTES
from mtserve.export.onnx_export import FP16_TOL
from mtserve.export.repository_check import check_repository
from tests.conftest import first_segment

from .conftest import ROOT


@pytest.fixture(scope="module")
def gpu_repo(tiny_run, tmp_path_factory):
    repo = tmp_path_factory.mktemp("gpu") / "model_repository"
    export_run(tiny_run, repo, profile="gpu", progress=False)
    return repo


@pytest.fixture(scope="module")
def gpu_fp16_trt_repo(tiny_run, tmp_path_factory):
    repo = tmp_path_factory.mktemp("gpu_fp16_trt") / "model_repository"
    export_run(tiny_run, repo, profile="gpu", with_baseline=False, progress=False, fp16=True, tensorrt=True)
    return repo


def _configs(repo: Path) -> dict[str, mc.ModelConfig]:
    return {
        p.parent.name: text_format.Parse(p.read_text(), mc.ModelConfig()) for p in repo.glob("*/config.pbtxt")
    }


def _tasks(repo: Path) -> dict:
    return json.loads((repo / "registry.json").read_text())["tasks"]


def _classification_task(repo: Path) -> str:
    return next(t for t, info in sorted(_tasks(repo).items()) if info["labels"])


def _head_step(repo: Path, task: str) -> int:
    steps = _configs(repo)["multitask_graph"].ensemble_scheduling.step
    return next(i for i, s in enumerate(steps) if s.model_name == task)


def _edit_config(path: Path, edit) -> None:
    cfg = text_format.Parse(path.read_text(), mc.ModelConfig())
    edit(cfg)
    path.write_text(text_format.MessageToString(cfg))


def test_exported_repositories_pass_the_check(tiny_repo, gpu_repo, gpu_fp16_trt_repo):
    for repo in (tiny_repo, gpu_repo, gpu_fp16_trt_repo):
        assert check_repository(repo) == [], repo


# ---------------------------------------------------------------- each breakage, named by file and field
def _missing_head(repo: Path) -> list[str]:
    task = _classification_task(repo)
    i = _head_step(repo, task)
    shutil.rmtree(repo / task)
    return [
        f"multitask_graph/config.pbtxt: ensemble_scheduling.step[{i}].model_name: model '{task}' is not in the repository",
        f"registry.json: tasks[\"{task}\"]: model '{task}' is not in the repository",
    ]


def _renamed_tensor(repo: Path) -> list[str]:
    task = _classification_task(repo)
    i = _head_step(repo, task)

    def edit(cfg):
        cfg.ensemble_scheduling.step[i].input_map["hidden"] = "hidden_9"

    _edit_config(repo / "multitask_graph" / "config.pbtxt", edit)
    return [
        f"multitask_graph/config.pbtxt: ensemble_scheduling.step[{i}].input_map[\"hidden\"]: tensor 'hidden_9' is not "
        "produced by any step or ensemble input"
    ]


def _dtype_mismatch(repo: Path) -> list[str]:
    task = _classification_task(repo)

    def edit(cfg):
        next(t for t in cfg.input if t.name == "hidden").data_type = mc.TYPE_FP16

    _edit_config(repo / task / "config.pbtxt", edit)
    i = _head_step(repo, task)
    return [
        f'{task}/config.pbtxt: input["hidden"].data_type: TYPE_FP16, but {task}/1/model.onnx declares TYPE_FP32',
        f'multitask_graph/config.pbtxt: ensemble_scheduling.step[{i}].input_map["hidden"]: data type mismatch',
    ]


def _truncated_onnx(repo: Path) -> list[str]:
    seg = first_segment(repo)
    path = repo / seg / "1" / "model.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return [f"{seg}/1/model.onnx: onnx.load: not a readable ONNX ModelProto"]


def _dangling_file(repo: Path) -> list[str]:
    (repo / "notes.txt").write_text("left behind\n")
    return ["notes.txt: dangling file"]


def _dangling_in_version(repo: Path) -> list[str]:
    seg = first_segment(repo)
    (repo / seg / "1" / "model.onnx.bak").write_bytes(b"old")
    return [f"{seg}/1/model.onnx.bak: dangling"]


def _bad_config_syntax(repo: Path) -> list[str]:
    seg = first_segment(repo)
    path = repo / seg / "config.pbtxt"
    path.write_text(path.read_text().replace("max_batch_size: 64", "max_batch_size: 64\nmax_batch: 8", 1))
    return [f"{seg}/config.pbtxt: line 3, column 1: does not parse as Triton's ModelConfig"]


def _head_queue_bound(repo: Path) -> list[str]:
    task = _classification_task(repo)

    def edit(cfg):
        cfg.dynamic_batching.default_queue_policy.max_queue_size = 64

    _edit_config(repo / task / "config.pbtxt", edit)
    return [f"{task}/config.pbtxt: dynamic_batching.default_queue_policy: a head must not reject requests"]


def _heads_in_the_called_ensemble(repo: Path) -> list[str]:
    """The layout issue 15 crashed: clients' `multitask` scheduling the heads itself."""
    graph = text_format.Parse((repo / "multitask_graph" / "config.pbtxt").read_text(), mc.ModelConfig())

    def edit(cfg):
        del cfg.ensemble_scheduling.step[:]
        cfg.ensemble_scheduling.step.extend(graph.ensemble_scheduling.step)

    _edit_config(repo / "multitask" / "config.pbtxt", edit)
    return [f"multitask/config.pbtxt: ensemble_scheduling.step: ['tokenizer', '{first_segment(repo)}'"]


BREAKAGES = [
    _head_queue_bound,
    _heads_in_the_called_ensemble,
    _missing_head,
    _renamed_tensor,
    _dtype_mismatch,
    _truncated_onnx,
    _dangling_file,
    _dangling_in_version,
    _bad_config_syntax,
]


@pytest.mark.parametrize("profile", ["local", "gpu"])
@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda f: f.__name__.strip("_"))
def test_check_names_the_file_and_field_of_each_problem(breakage, profile, tiny_repo, gpu_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo if profile == "local" else gpu_repo, repo)
    expected = breakage(repo)
    problems = check_repository(repo)
    for prefix in expected:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)


def test_check_command_exits_1_with_the_messages_and_0_on_a_good_repository(tiny_repo, tmp_path, capsys):
    from mtserve.cli import main

    assert main(["export", "--check", str(tiny_repo)]) == 0  # what `python -m mtserve` runs, in-process
    assert capsys.readouterr().out.strip() == f"{tiny_repo}: ok"
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    expected = _renamed_tensor(repo) + _dangling_file(repo)
    bad = subprocess.run(
        [sys.executable, "-m", "mtserve.cli", "export", "--check", str(repo)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.splitlines()
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, lines)
    assert lines[-1] == f"{repo}: {len(lines) - 1} problem(s)"


# ---------------------------------------------------------------- the two profiles
def _without_profile_fields(cfg: mc.ModelConfig, tensorrt: bool = False) -> mc.ModelConfig:
    out = mc.ModelConfig()
    out.CopyFrom(cfg)
    out.ClearField("backend")
    out.ClearField("platform")
    out.ClearField(
        "model_warmup"
    )  # the gpu profile warms up by default (test_gpu_profile_warms_up_every_bucket)
    for g in out.instance_group:
        g.ClearField("kind")
    if tensorrt:  # the optimization block must hold the TensorRT accelerator and nothing else
        opt = out.optimization
        opt.execution_accelerators.ClearField("gpu_execution_accelerator")
        if not opt.execution_accelerators.ListFields():
            opt.ClearField("execution_accelerators")
        assert not opt.ListFields(), opt
        out.ClearField("optimization")
    return out


def test_profiles_differ_only_in_backend_and_instance_kind(tiny_repo, gpu_repo):
    local, gpu = _configs(tiny_repo), _configs(gpu_repo)
    assert local.keys() == gpu.keys()
    tasks = _tasks(tiny_repo)
    for name in local:
        assert _without_profile_fields(local[name]) == _without_profile_fields(gpu[name]), name
        lc, gc = local[name], gpu[name]
        if lc.platform == "ensemble":
            assert lc == gc, name
        elif name == "tokenizer":
            assert lc == gc and gc.backend == "python"
        else:  # trunk, heads, full_*: the ONNX model; local runs it through the python backend
            assert (lc.backend, gc.backend) == ("python", "onnxruntime"), name
            assert [g.kind for g in lc.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
            assert [g.kind for g in gc.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
    for name in [
        first_segment(tiny_repo),
        *tasks,
    ]:  # the composing models batch, with the same delay in both profiles
        assert gpu[name].dynamic_batching.max_queue_delay_microseconds == QUEUE_DELAY_US > 0
    # the same files and the same ONNX bytes: the local repository is the deployed one, bar the runner's model.py
    files = {
        p.relative_to(tiny_repo).as_posix()
        for p in tiny_repo.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    gpu_files = {
        p.relative_to(gpu_repo).as_posix()
        for p in gpu_repo.rglob("*")
        if p.is_file() and p.parent.name != "warmup"  # warm-up data: gpu profile only
    }
    runners = {
        f
        for f in files - gpu_files
        if f.endswith("/model.py") and f.replace("model.py", "model.onnx") in files
    }
    assert files - runners == gpu_files
    for f in sorted(gpu_files):
        if f.endswith(".onnx"):
            assert (tiny_repo / f).read_bytes() == (gpu_repo / f).read_bytes(), f
    reg_l, reg_g = (json.loads((r / "registry.json").read_text()) for r in (tiny_repo, gpu_repo))
    assert (reg_l.pop("profile"), reg_g.pop("profile")) == ("local", "gpu")
    assert (reg_l["serving"].pop("warmup"), reg_g["serving"].pop("warmup")) == (
        None,
        {"batch_sizes": [1, 4, 16, 64]},
    )
    assert reg_l == reg_g


def test_queue_bounds_only_on_models_an_ensemble_schedules_alone(tiny_repo, gpu_repo):
    """The configuration docs/overload.md found safe on Triton 2.51: a REJECT timeout on the trunk and the full
    models, nothing on the heads and the tokenizer (a policy costs the batcher its prefetching: 500 ms stalls), no
    max_queue_size; clients call a one-step `multitask`."""
    tasks = _tasks(tiny_repo)
    for repo in (tiny_repo, gpu_repo):
        cfgs = _configs(repo)
        for name, cfg in cfgs.items():
            if cfg.platform == "ensemble":
                continue
            policy = cfg.dynamic_batching.default_queue_policy
            assert policy.max_queue_size == 0, name
            if name in tasks or name == "tokenizer":
                assert policy == mc.ModelQueuePolicy(), name
            else:
                assert (policy.timeout_action, policy.default_timeout_microseconds) == (
                    mc.ModelQueuePolicy.REJECT,
                    QUEUE_TIMEOUT_US,
                ), name
                assert policy.allow_timeout_override, name
        steps = cfgs["multitask"].ensemble_scheduling.step
        assert [s.model_name for s in steps] == ["multitask_graph"]
        assert [t.name for t in cfgs["multitask"].output] == [t.name for t in cfgs["multitask_graph"].output]


def test_tensorrt_block_is_the_one_other_difference(tiny_repo, gpu_fp16_trt_repo):
    local, gpu = (
        _configs(tiny_repo),
        _configs(gpu_fp16_trt_repo),
    )  # exported without the full_*/single_* baselines
    assert gpu.keys() == {n for n in local if not n.startswith(("full_", "single_"))}
    for name, cfg in gpu.items():
        assert _without_profile_fields(local[name]) == _without_profile_fields(cfg, tensorrt=True), name
        accelerators = cfg.optimization.execution_accelerators.gpu_execution_accelerator
        if cfg.backend == "onnxruntime":
            assert len(accelerators) == 1, name
            assert accelerators[0].name == "tensorrt"
            params = dict(accelerators[0].parameters)
            assert {k: params.pop(k) for k in ("precision_mode", "max_workspace_size_bytes")} == {
                "precision_mode": "FP16",
                "max_workspace_size_bytes": str(TRT_WORKSPACE_BYTES),
            }
            # the rest: engine cache and optimisation profiles (test_tensorrt_engine_cache_and_profiles)
            assert set(params) == {
                "trt_engine_cache_enable",
                "trt_engine_cache_path",
                *(f"trt_profile_{k}_shapes" for k in ("min", "opt", "max")),
            }, name
        else:
            assert not cfg.HasField("optimization"), name
    with pytest.raises(UserError, match="--tensorrt"):
        export_run(ROOT / "no-such-run", tiny_repo.parent / "never-written", profile="local", tensorrt=True)


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_gpu_profile_tokenizer_is_the_only_python_model_and_needs_only_numpy(gpu_repo):
    configs = _configs(gpu_repo)
    assert [n for n, c in configs.items() if c.backend == "python"] == ["tokenizer"]
    sources = sorted((gpu_repo / "tokenizer" / "1").glob("*.py"))
    assert {p.name for p in sources} >= {"model.py", "wordpiece.py"}
    siblings = {p.stem for p in sources}
    allowed = set(sys.stdlib_module_names) | {"numpy", "triton_python_backend_utils"} | siblings
    for path in sources:
        imported = _imports(ast.parse(path.read_text(), filename=str(path)))
        assert imported <= allowed, (path.name, sorted(imported - allowed))


def test_fp16_keeps_fp32_edges_and_stays_close_to_fp32(tiny_repo, gpu_fp16_trt_repo):
    import onnxruntime as ort

    reg = json.loads((gpu_fp16_trt_repo / "registry.json").read_text())
    assert reg["onnx"] == {"precision": "fp16", "tensorrt": True}
    for name, check in reg[
        "export_checks"
    ].items():  # each model's ONNX (fp16) against PyTorch (fp32) at export
        assert check["precision"] == "fp16" and check["max_abs_diff"] <= FP16_TOL, name
    seg = first_segment(gpu_fp16_trt_repo)
    fp16 = onnx.load(str(gpu_fp16_trt_repo / seg / "1" / "model.onnx"))
    assert {i.data_type for i in fp16.graph.initializer} & {onnx.TensorProto.FLOAT16}
    assert onnx.TensorProto.FLOAT not in {i.data_type for i in fp16.graph.initializer if len(i.dims) == 2}
    edges = {v.name: v.type.tensor_type.elem_type for v in [*fp16.graph.input, *fp16.graph.output]}
    assert set(edges.values()) == {onnx.TensorProto.INT64, onnx.TensorProto.FLOAT}
    # CPU onnxruntime runs the fp16 trunk (casting where it lacks fp16 kernels); compare with the fp32 export
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 60, size=(4, 16), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 10:] = 0
    feeds = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": mask}
    runs = [
        ort.InferenceSession(str(r / seg / "1" / "model.onnx"), providers=["CPUExecutionProvider"]).run(
            None, feeds
        )
        for r in (tiny_repo, gpu_fp16_trt_repo)
    ]
    for full, half in zip(*runs, strict=True):
        assert half.dtype == np.float32
        assert float(np.abs(full - half)[mask.astype(bool)].max()) < FP16_TOL
