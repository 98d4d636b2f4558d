"""--device and --precision: every stage runs where and how it is asked, and a device that is not there is a clear
error. The CUDA tests run where CUDA is present (this CPU machine skips them, saying so)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from mtserve.core.errors import UserError
from mtserve.core.machine import describe
from mtserve.training.config import SearchConfig, TrainConfig
from mtserve.training.device import resolve
from mtserve.training.features import FeatureCache, encode, trunk_fingerprint

CUDA = torch.cuda.is_available()


def test_the_machine_description_names_what_reports_quote():
    # every results file names the CPU and the cores the measurement could use, read the same way
    m = describe()
    assert m["cpu"] and m["cpu"] == m["cpu"].strip()
    assert 1 <= m["cores"] <= (os.cpu_count() or 1)
    assert m["memory_gib"] > 0 and m["python"].count(".") == 2


def test_devices_are_checked_against_this_machine():
    assert resolve("cpu", "bf16").device.type == "cpu"
    assert resolve("auto").device.type == ("cuda" if CUDA else "cpu")
    with pytest.raises(UserError, match="--device must be"):
        resolve("tpu")
    with pytest.raises(UserError, match="--precision must be"):
        resolve("cpu", "int8")
    if not CUDA:
        with pytest.raises(UserError, match="--device cuda:1: no CUDA device here"):
            resolve("cuda:1")
    with pytest.raises(UserError, match="--device"):
        TrainConfig(device="gpu0")


def _stages(bert, tok, data, cfg: TrainConfig):
    """Full fine-tuning, the feature pass, a partial branch and a distilled student: their dev scores."""
    from mtserve.training.backbone import make_trunk
    from mtserve.training.finetune import distil, train_full, train_partial

    enc_tr, enc_dev = encode(tok, data.train, 32), encode(tok, data.dev, 32)
    full, s_full = train_full(bert, data.spec, enc_tr, data.train.labels, enc_dev, data.dev.labels, cfg)
    trunk = make_trunk(bert, 4, [2])
    cache = FeatureCache(None)
    comp = cfg.compute()
    f_tr = cache.get(trunk, trunk_fingerprint(trunk), enc_tr, [2], comp=comp)[2]
    f_dev = cache.get(trunk, trunk_fingerprint(trunk), enc_dev, [2], comp=comp)[2]
    teacher, s_part = train_partial(bert, data.spec, 2, f_tr, data.train.labels, f_dev, data.dev.labels, cfg)
    student, s_dist = distil(teacher, data.spec, 1, f_tr, data.train.labels, f_dev, data.dev.labels, cfg)
    for model in (full, teacher, student):  # results come back as fp32 CPU modules, wherever they trained
        assert {(p.device.type, p.dtype) for p in model.parameters()} == {("cpu", torch.float32)}
    return np.array([s_full, s_part, s_dist]), f_tr


@pytest.mark.slow
def test_bf16_on_cpu_trains_every_stage(tiny_backbone, tiny_data):
    bert, tok = tiny_backbone
    data = tiny_data["sentiment"]
    base = {"max_length": 32, "epochs_full": 1, "epochs_partial": 2, "epochs_distil": 1, "lr_partial": 1e-3}
    fp32, f32 = _stages(bert, tok, data, TrainConfig(device="cpu", **base))
    bf16, f16 = _stages(bert, tok, data, TrainConfig(device="cpu", precision="bf16", **base))
    assert np.isfinite(bf16).all() and (bf16 > 0).all()
    # bf16 features differ from fp32's by rounding only (bf16 keeps 8 bits of mantissa)
    diff = np.abs(f16.values.astype(np.float32) - f32.values.astype(np.float32)).max()
    assert 0 < diff < 0.1 * np.abs(f32.values.astype(np.float32)).max()
    assert np.abs(bf16 - fp32).max() < 0.25, (fp32, bf16)  # same training up to precision, not another one


@pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine: the GPU path runs where one is present")
def test_the_pipeline_runs_on_cuda(tiny_backbone, tiny_data, tmp_path):
    from mtserve.training.pipeline import train
    from mtserve.training.run_dir import Run

    bert, tok = tiny_backbone
    data = {"sentiment": tiny_data["sentiment"]}
    cfg = TrainConfig(
        max_length=32, epochs_full=1, epochs_partial=1, epochs_distil=1, device="cuda", precision="bf16"
    )
    train(data, tmp_path / "run", "tiny-test-bert", cfg, SearchConfig([1, 2], 1, 0.9), None, bert, tok)
    result = Run(tmp_path / "run").task_result("sentiment")
    assert np.isfinite(result["full"]) and result["chosen"]["served"] > 0


@pytest.mark.skipif(
    not CUDA, reason="no CUDA device on this machine: gpu-check measures where one is present"
)
def test_gpu_check_measures_on_cuda(tmp_path):
    """mtserve gpu-check on the GPU, at a small synthetic shape: fp16 modules on the device, every request timed
    (tests/test_gpu_check.py checks the same result's arithmetic on the CPU)."""
    import json

    from mtserve.cli import main

    args = [
        "gpu-check",
        "--require-gpu",
        "--synthetic",
        "--shape",
        "2x128",
        "--tasks",
        "3",
        "--depths",
        "0,1",
    ]
    assert (
        main([*args, "--task-layers", "1", "--batches", "1,8", "--repeats", "3", "--out", str(tmp_path)]) == 0
    )
    result = json.loads((tmp_path / "gpu-check.json").read_text())
    assert result["device"]["type"] == "cuda" and result["precision"] == "fp16"
    assert [(s["from"], s["to"]) for s in result["segments"]] == [(0, 0), (0, 1)]
    assert all(q["path_ms"] > 0 and q["per_task_ms"] > 0 for r in result["rows"] for q in r["requests"])
