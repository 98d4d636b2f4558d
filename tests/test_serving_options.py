"""Export's serving options: warm-up for every sequence bucket the tokenizer emits, the TensorRT engine cache and
optimisation profiles, the batching knobs and the response cache as given, and `mtserve export --check` naming
the file and field when a config drifts from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from mtserve.core.errors import UserError
from mtserve.export.export import export_run
from mtserve.export.model_config import TRT_CACHE_PATH, ServingOptions
from mtserve.export.repository_check import check_repository
from mtserve.serving.wordpiece import WordPieceTokenizer
from tests.conftest import first_segment


def _configs(repo: Path) -> dict[str, mc.ModelConfig]:
    return {
        p.parent.name: text_format.Parse(p.read_text(), mc.ModelConfig()) for p in repo.glob("*/config.pbtxt")
    }


def _onnx_models(repo: Path) -> list[str]:
    return sorted(n for n, c in _configs(repo).items() if c.platform != "ensemble" and n != "tokenizer")


def _emitted_lengths(repo: Path) -> set[int]:
    """The sequence lengths the served tokenizer really pads to, found by encoding texts of every length (the
    tokenizer's own code, as Triton runs it): independent of how export computed its buckets."""
    tok = WordPieceTokenizer.from_dir(repo / "tokenizer" / "1")
    lengths = set()
    for n in range(0, tok.max_length + 4):
        enc = tok.encode_batch([" ".join(["a"] * n)], bucket=True)
        lengths.add(enc["input_ids"].shape[1])
    return lengths


@pytest.fixture(scope="module")
def gpu_trt_repo(tiny_run, tmp_path_factory):
    repo = tmp_path_factory.mktemp("gpu_trt") / "model_repository"
    export_run(tiny_run, repo, profile="gpu", with_baseline=False, progress=False, tensorrt=True)
    return repo


@pytest.fixture(scope="module")
def tuned_repo(tiny_run, tmp_path_factory):
    """Local profile, batching options off their defaults, warm-up and the response cache on."""
    repo = tmp_path_factory.mktemp("tuned") / "model_repository"
    opts = ServingOptions(
        max_batch=16,
        queue_delay_us=250,
        queue_timeout_us=400_000,
        instances={"trunk": 1, "heads": 3, "tokenizer": 2},
        warmup=True,
        response_cache=True,
    )
    export_run(tiny_run, repo, profile="local", progress=False, serving=opts)
    return repo


def test_gpu_profile_warms_up_every_bucket(gpu_trt_repo):
    buckets = _emitted_lengths(gpu_trt_repo)
    assert len(buckets) >= 2  # the tiny run's max_length 32: 8, 16, 32
    configs = _configs(gpu_trt_repo)
    for name in _onnx_models(gpu_trt_repo):
        cfg = configs[name]
        samples = {(w.inputs["attention_mask"].dims[0], w.batch_size) for w in cfg.model_warmup}
        assert {s for s, _ in samples} == buckets, name
        assert {b for _, b in samples} == {1, 4, 16, 64} and max(b for _, b in samples) == cfg.max_batch_size
        for w in cfg.model_warmup:  # every input, the sequence dimension at the bucket length
            assert set(w.inputs) == {t.name for t in cfg.input}, name
            seq = w.inputs["attention_mask"].dims[0]
            for t in cfg.input:
                assert list(w.inputs[t.name].dims) == [seq if d == -1 else d for d in t.dims]
            mask = gpu_trt_repo / name / "warmup" / w.inputs["attention_mask"].input_data_file
            assert np.array_equal(np.fromfile(mask, dtype="<i8"), np.ones(seq, dtype=np.int64))
    for name, cfg in configs.items():  # python tokenizer and ensembles: nothing to warm
        if name not in _onnx_models(gpu_trt_repo):
            assert not cfg.model_warmup, name
    assert check_repository(gpu_trt_repo) == []


def test_tensorrt_engine_cache_and_profiles(gpu_trt_repo):
    buckets = sorted(_emitted_lengths(gpu_trt_repo))
    configs = _configs(gpu_trt_repo)
    for name in _onnx_models(gpu_trt_repo):
        cfg = configs[name]
        (acc,) = cfg.optimization.execution_accelerators.gpu_execution_accelerator
        p = dict(acc.parameters)
        assert (p["trt_engine_cache_enable"], p["trt_engine_cache_path"]) == ("1", TRT_CACHE_PATH)
        profiles = {
            k: [item.split(":") for item in p[f"trt_profile_{k}_shapes"].split(",")]
            for k in ("min", "opt", "max")
        }
        for t in cfg.input:
            lo, hi = (
                [[int(d) for d in dims.split("x")] for n, dims in profiles[k] if n == t.name]
                for k in ("min", "max")
            )
            # one profile per bucket: batch 1..max_batch, sequences up to the bucket, and no gap between buckets
            assert [h[1] for h in hi] == buckets, name
            assert [lo_[1] for lo_ in lo] == [1] + [b + 1 for b in buckets[:-1]], name
            assert {lo_[0] for lo_ in lo} == {1} and {h[0] for h in hi} == {cfg.max_batch_size}
        # symbolic shape inference ran: every node output has a shape TensorRT can read
        model = onnx.load(str(gpu_trt_repo / name / "1" / "model.onnx"))
        typed = {v.name for v in [*model.graph.value_info, *model.graph.output]}
        produced = {o for node in model.graph.node for o in node.output if o}
        assert produced <= typed, (name, sorted(produced - typed)[:5])


def test_default_instances_two_of_all_but_the_tokenizer_and_legacy_registries_one(tiny_run, tmp_path):
    """By default the trunk and every full_<task> (the models with a queue policy) get a second instance, so the
    batcher never waits on its 500 ms timeout for a busy one, and so does every head, so that the slowest one does
    not become the queue under overload; a registry that records no counts was exported with one of each, and a
    later task add must keep writing that."""
    repo = tmp_path / "model_repository"
    export_run(tiny_run, repo, profile="local", progress=False)
    configs = _configs(repo)
    reg = json.loads((repo / "registry.json").read_text())
    assert reg["serving"]["instances"] == {"trunk": 2, "heads": 2, "tokenizer": 1}
    tasks = set(reg["tasks"])
    fulls = {f"full_{t}" for t in tasks}
    assert fulls <= set(configs)
    for name, cfg in configs.items():
        if cfg.platform == "ensemble":
            continue
        want = 1 if name == "tokenizer" else 2
        assert [g.count for g in cfg.instance_group] == [want], name
    assert check_repository(repo) == []
    legacy = {"trunk": 1, "heads": 1, "tokenizer": 1}
    assert ServingOptions.from_registry(None).instances == legacy
    assert ServingOptions.from_registry({"max_batch": 64, "queue_delay_us": 500}).instances == legacy
    assert ServingOptions.from_registry({"instances": {"trunk": 2}}).instances == {**legacy, "trunk": 2}
    # the queue timeout: 250 ms now, 500 ms in a registry from before it was recorded (what its configs hold)
    assert reg["serving"]["queue_timeout_us"] == 250_000
    assert ServingOptions.from_registry(None).queue_timeout_us == 500_000
    with pytest.raises(UserError, match="--queue-timeout-us"):
        ServingOptions(queue_timeout_us=0)  # Triton reads 0 as no timeout: an unbounded queue


def test_batching_options_and_response_cache_as_given(tuned_repo):
    configs = _configs(tuned_repo)
    reg = json.loads((tuned_repo / "registry.json").read_text())
    assert reg["serving"] == {
        "max_batch": 16,
        "queue_delay_us": 250,
        "queue_timeout_us": 400_000,
        "instances": {"trunk": 1, "heads": 3, "tokenizer": 2},
        "buckets": sorted(_emitted_lengths(tuned_repo)),
        "warmup": {"batch_sizes": [1, 4, 16]},
        "response_cache": True,
        "trt_cache_path": TRT_CACHE_PATH,
    }
    tasks = set(reg["tasks"])
    for name, cfg in configs.items():
        assert cfg.max_batch_size == 16, name
        if cfg.platform == "ensemble":  # the cache sits on what clients call: multitask and single_<task>
            assert cfg.response_cache.enable, name
            continue
        assert not cfg.response_cache.enable, name
        assert cfg.dynamic_batching.max_queue_delay_microseconds == 250, name
        want = 2 if name == "tokenizer" else 3 if name in tasks else 1  # full_<task> counts as a trunk
        # the REJECT timeout on the trunk's kind only (heads and tokenizer: none, docs/overload.md)
        timeout = 0 if name == "tokenizer" or name in tasks else 400_000
        assert cfg.dynamic_batching.default_queue_policy.default_timeout_microseconds == timeout, name
        assert [g.count for g in cfg.instance_group] == [want], name
    assert check_repository(tuned_repo) == []


def test_check_names_drift_from_the_serving_options(tuned_repo, tmp_path):
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(tuned_repo, repo)
    task = sorted(json.loads((repo / "registry.json").read_text())["tasks"])[0]
    cfg_path = repo / task / "config.pbtxt"
    cfg = text_format.Parse(cfg_path.read_text(), mc.ModelConfig())
    cfg.instance_group[0].count = 1
    del cfg.model_warmup[-1]
    cfg_path.write_text(text_format.MessageToString(cfg))
    mc_path = repo / "multitask" / "config.pbtxt"
    mcfg = text_format.Parse(mc_path.read_text(), mc.ModelConfig())
    mcfg.ClearField("response_cache")
    mc_path.write_text(text_format.MessageToString(mcfg))
    (repo / first_segment(repo) / "warmup" / "ones_int64_8").write_bytes(b"\0" * 3)
    full_path = repo / f"full_{task}" / "config.pbtxt"
    fcfg = text_format.Parse(full_path.read_text(), mc.ModelConfig())
    fcfg.dynamic_batching.default_queue_policy.default_timeout_microseconds = 500_000
    full_path.write_text(text_format.MessageToString(fcfg))
    problems = check_repository(repo)
    expected = [
        f"{task}/config.pbtxt: instance_group.count: [1], but registry.json: serving.instances.heads is 3",
        f"{task}/config.pbtxt: model_warmup: (sequence, batch) samples differ from registry.json: serving.warmup; "
        f"missing [(32, 16)]",
        "multitask/config.pbtxt: response_cache.enable: False, but registry.json: serving.response_cache is True",
        f"full_{task}/config.pbtxt: dynamic_batching.default_queue_policy.default_timeout_microseconds: 500000, "
        "but registry.json: serving.queue_timeout_us is 400000",
        f'{first_segment(repo)}/warmup/ones_int64_8: 3 bytes, but model_warmup[0] ("seq8_batch1").inputs["attention_mask"] '
        "needs 64 (TYPE_INT64 [8])",
    ]
    for line in expected:
        assert line in problems, (line, problems)


def test_serve_options_for_the_cache_and_tracing(tmp_path):
    from mtserve.core.errors import UserError
    from mtserve.serving.triton import TritonServer, trace_args

    cmd = TritonServer(tmp_path, cache_config="local,size=268435456").command()
    assert "--cache-config=local,size=268435456" in cmd
    for bad in ("local,size=100", "redis,size=4096", "local,bytes=4096", "local"):
        with pytest.raises(UserError, match="--cache-config"):
            TritonServer(tmp_path, cache_config=bad)
    assert trace_args(100, "http://127.0.0.1:4318/v1/traces")[:2] == [
        "--trace-config=mode=opentelemetry",
        "--trace-config=rate=100",
    ]
    with pytest.raises(UserError, match="--trace-rate 0"):
        trace_args(0, "http://127.0.0.1:4318/v1/traces")


def test_export_flags_are_generated_from_the_options():
    """`mtserve export`'s serving flags come from ServingOptions' declarations: defaults, parsing and checks."""
    import argparse

    from mtserve.core.options import from_args
    from mtserve.export.export import configure

    p = argparse.ArgumentParser()
    configure(p)
    args = p.parse_args(["--instances", "heads=3", "--no-warmup", "--max-batch", "8"])
    opts = from_args(ServingOptions, args)
    assert opts.instances == {"trunk": 2, "heads": 3, "tokenizer": 1} and opts.max_batch == 8
    assert opts.warmup is False and opts.queue_timeout_us == ServingOptions().queue_timeout_us
    with pytest.raises(UserError, match="--max-batch must be an integer >= 1, got 0"):
        from_args(ServingOptions, p.parse_args(["--max-batch", "0"]))
    with pytest.raises(UserError, match="--instances must be KIND=COUNT"):
        from_args(ServingOptions, p.parse_args(["--instances", "gpu=1"]))
    with pytest.raises(SystemExit):  # not KIND=COUNT at all: argparse's own usage error
        p.parse_args(["--instances", "trunk"])
