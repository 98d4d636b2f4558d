"""mtserve bench takes mtserve export's serving options (its flags are ServingOptions' own): they decide the memory a
sweep point needs before anything is built, reach the configs of the repositories it builds, and are recorded in
its results."""

from __future__ import annotations

import argparse
import json

import pytest

from mtserve import bench
from mtserve.core.errors import UserError
from mtserve.export import synthetic
from mtserve.export.model_config import DEFAULT_INSTANCES, ServingOptions, read_config
from mtserve.loadtest.capacity_config import CapacitySearchConfig
from mtserve.serving import memory

TINY = synthetic.Shape("tiny", 3, 32, 4, 37, 2, (1,))
ONE_EACH = {"trunk": 1, "heads": 1, "tokenizer": 1}


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    bench.configure(p)
    return p.parse_args(argv)


def test_bench_flags_are_the_exports_serving_options():
    defaults = bench.serving_options(_args([]))
    assert defaults == ServingOptions() and defaults.instances == DEFAULT_INSTANCES
    opts = bench.serving_options(
        _args(["--instances", "trunk=1,heads=1", "--max-batch", "8", "--queue-delay-us", "200"])
    )
    assert opts.instances == ONE_EACH and (opts.max_batch, opts.queue_delay_us) == (8, 200)
    with pytest.raises(UserError, match="--queue-timeout-us must be an integer >= 1000"):
        bench.serving_options(_args(["--queue-timeout-us", "5"]))
    assert _args(["--warmup", "2"]).warmup_s == 2.0  # the load test's --warmup (seconds) keeps its meaning


def test_memory_estimate_counts_every_instance():
    """BERT-base, 21 tasks: export's default (two of every head and full model) is the refusal of issue 28; one of
    each is half the processes and the weights of the full models once."""
    shape = synthetic.get_shape("bert-base")
    default = synthetic.estimate(21, shape)
    one = synthetic.estimate(21, shape, serving=ServingOptions(instances=ONE_EACH))
    assert default.processes == 1 + 2 + 21 * 2 + 21 * 2 == 87
    assert one.processes == 1 + 1 + 21 + 21 == 44
    full, head, trunk = synthetic._model_bytes(shape)
    assert one.weight_bytes == trunk + 21 * head + 21 * full
    assert default.weight_bytes == 2 * one.weight_bytes


@pytest.mark.slow
@pytest.mark.triton
def test_bench_sweep_builds_and_records_the_serving_options(tmp_path, monkeypatch):
    """A real sweep point (tiny shape, 2 tasks, a short search on a local Triton), exported with options off export's
    defaults: the configs carry them, the memory estimate matched the repository, and the results record them."""
    from mtserve.cli import main

    monkeypatch.setitem(synthetic.SHAPES, "tiny", TINY)
    monkeypatch.setattr(synthetic, "LABEL_COUNTS", (2, 0))
    out, cache = tmp_path / "reports", tmp_path / "cache"
    argv = ["bench", "--no-main", "--sweep", "2", "--sweep-shape", "tiny", "--base-tasks", "", "--quick"]
    argv += ["--sweep-slo-ms", "2000", "--sweep-max-time", "45", "--out", str(out), "--cache-dir", str(cache)]
    argv += ["--instances", "trunk=1,heads=1", "--max-batch", "8", "--queue-delay-us", "200"]
    assert main(argv) == 0
    (repo,) = cache.iterdir()
    reg = json.loads((repo / "registry.json").read_text())
    assert reg["serving"]["instances"] == ONE_EACH and reg["serving"]["max_batch"] == 8
    for model in ("trunk_0_2", "t00", "t01", "full_t00", "full_t01", "tokenizer"):
        cfg = read_config(repo / model)
        assert [g.count for g in cfg.instance_group] == [1], model
        assert cfg.max_batch_size == 8 and cfg.dynamic_batching.max_queue_delay_microseconds == 200, model
    est = synthetic.estimate(2, TINY, serving=ServingOptions(instances=ONE_EACH))
    assert est.processes == memory.estimate_repository(repo).processes == 6
    # the results: bench.json and cost_vs_tasks.json say what the repository was exported with
    summary = json.loads((out / "bench.json").read_text())
    (point,) = summary["sweep"]
    assert point["serving"] == reg["serving"] and point["tasks"] == 2
    assert summary["sweep_serving"]["instances"] == ONE_EACH and summary["sweep_serving"]["max_batch"] == 8
    (saved,) = json.loads((out / "cost_vs_tasks.json").read_text())
    assert saved["serving"] == reg["serving"]

    # the cached repository is reused for the same options and rebuilt for others
    log: list[str] = []
    same = ServingOptions(instances=ONE_EACH, max_batch=8, queue_delay_us=200)
    synthetic.synthetic_repo(cache, 2, TINY, serving=same, log=log.append)
    assert log == [f"synthetic: reusing {repo}"]
    synthetic.synthetic_repo(cache, 2, TINY, serving=ServingOptions(instances=ONE_EACH), log=log.append)
    assert "reusing" not in log[-1]
    assert read_config(repo / "trunk_0_2").max_batch_size == ServingOptions().max_batch


def test_the_search_flags_given_reach_the_sweep_over_its_defaults():
    """`--max-steps 12 --paired-rounds 0` once searched a sweep point with the sweep's 8 steps and 2 rounds."""
    main = CapacitySearchConfig()
    plain = bench.sweep_config(_args([]), main)
    assert (plain.max_steps, plain.rel_tol, plain.paired_rounds) == (
        bench.SWEEP_DEFAULTS["max_steps"],
        bench.SWEEP_DEFAULTS["rel_tol"],
        2,
    )
    args = _args(["--max-steps", "12", "--paired-rounds", "0", "--rel-tol", "0.05", "--slo-ms", "300"])
    cfg = bench.sweep_config(args, main)
    assert (cfg.max_steps, cfg.paired_rounds, cfg.rel_tol) == (12, 0, 0.05)
    # the SLO and the time keep their sweep flags: auto SLO unless --sweep-slo-ms, --sweep-max-time
    assert cfg.slo_auto_factor == bench.SWEEP_DEFAULTS["slo_auto_factor"]
    assert cfg.max_time_s == bench.SWEEP_DEFAULTS["max_time_s"]
    timed = bench.sweep_config(_args(["--sweep-max-time", "1500", "--max-time", "10"]), main)
    assert timed.max_time_s == 1500
