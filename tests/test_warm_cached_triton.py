"""A production-shaped repository on the real local Triton: warm-up (every bucket, a few batch sizes), the
response cache (`mtserve export --response-cache`, `--cache-config local,size=...`), Triton's latency summaries,
and the metric names the monitoring component reads found on Triton's own /metrics."""

from __future__ import annotations

import os
import re
import urllib.request

import numpy as np
import pytest

from mtserve.deploy import kustomize as k8s_kustomize
from mtserve.deploy import monitoring as k8s_monitoring
from mtserve.export.export import export_run
from mtserve.export.model_config import ServingOptions
from mtserve.serving.client import MultitaskClient
from mtserve.serving.triton import TritonServer, free_port, trace_args

from .conftest import ROOT

pytestmark = pytest.mark.triton

TEXT = "turn on the lights in the kitchen"
CACHE = "local,size=16777216"


def _scrape(server: TritonServer) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{server.metrics_url}/metrics", timeout=10) as r:
        return r.read().decode()


def _sample(text: str, name: str, **labels) -> float | None:
    """The value of one series of a Prometheus text exposition (None: absent)."""
    for line in text.splitlines():
        m = re.match(rf"{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            return float(m.group(2))
    return None


@pytest.fixture(scope="module")
def warm_cached(tiny_run, tmp_path_factory):
    """Local profile with warm-up and the response cache, on a Triton started with --cache-config and latency
    summaries (as the ServingRuntime starts it). Yields (server, the scrape before any request)."""
    repo = tmp_path_factory.mktemp("warm_cached") / "model_repository"
    export_run(
        tiny_run,
        repo,
        profile="local",
        progress=False,
        serving=ServingOptions(warmup=True, response_cache=True),
    )
    # OpenTelemetry tracing as `mtserve serve --trace-rate` sets it (to a closed local port: nothing listens)
    tracing = trace_args(1000, f"http://127.0.0.1:{free_port()}/v1/traces")
    server = TritonServer(
        repo,
        cache_config=CACHE,
        extra_args=["--metrics-config=summary_latencies=true", *tracing],
        log_verbose=1,  # Triton logs each warm-up sample it runs
    )
    server.start()
    try:
        yield server, _scrape(server)
    finally:
        server.stop()


def test_warmed_repository_serves_its_first_request(warm_cached):
    server, _ = warm_cached
    log = server.log_tail(20000)
    # Triton ran the warm-up samples before the models were ready (the trunk's, for every bucket and batch)
    for seq in (8, 16, 32):
        for batch in (1, 4, 16, 64):
            assert f"seq{seq}_batch{batch}" in log, (seq, batch)
    with MultitaskClient(server.grpc_url) as c:
        answer = c.infer([TEXT])  # the first user request: no error, every task answered
    assert answer and all(np.isfinite(a["scores"]).all() for a in answer.values())


def test_response_cache_answers_a_repeated_utterance(warm_cached, triton):
    server, _ = warm_cached
    import tritonclient.grpc as grpcclient

    text = "is it going to rain in paris tomorrow"  # sent nowhere else in this module
    with MultitaskClient(server.grpc_url) as c, MultitaskClient(triton.grpc_url) as uncached:
        stats = grpcclient.InferenceServerClient(server.grpc_url)
        before = stats.get_inference_statistics("multitask").model_stats[0].inference_stats
        first, second = c.infer([text]), c.infer([text])
        reference = uncached.infer([text])  # the session's Triton: same models, no cache
        after = stats.get_inference_statistics("multitask").model_stats[0].inference_stats
    assert after.cache_miss.count - before.cache_miss.count == 1
    assert after.cache_hit.count - before.cache_hit.count == 1  # the repeat never reached the models
    for task, ref in reference.items():
        for got in (first[task], second[task]):
            assert np.array_equal(got["scores"], ref["scores"]), task
            assert got.get("label") == ref.get("label"), task
    hits = _sample(_scrape(server), "nv_cache_num_hits_per_model", model="multitask")
    assert hits is not None and hits >= 1


def test_every_metric_the_monitoring_reads_is_one_triton_exports(warm_cached, tmp_path):
    server, before_requests = warm_cached
    with MultitaskClient(server.grpc_url) as c:
        c.infer([TEXT, "play some jazz"])
    scrape = _scrape(server)
    exported = {
        line.split()[2] for line in scrape.splitlines() if line.startswith("# TYPE ")
    }  # metric families; a summary's _sum/_count/quantile series belong to its family
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    rel = {
        k: os.path.relpath(ROOT / "k8s" / k, overlay) for k in ("overlays/multitask", "components/monitoring")
    }
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        f"  - {rel['overlays/multitask']}\ncomponents:\n  - {rel['components/monitoring']}\n"
    )
    used = k8s_monitoring.used_metric_names(k8s_kustomize.build(overlay))
    assert {"nv_inference_queue_duration_us", "nv_inference_request_summary_us", "nv_gpu_utilization"} <= set(
        used
    )
    gpu_only = set(used) & k8s_monitoring.TRITON_GPU_METRICS
    prometheus_own = set(used) & k8s_monitoring.PROMETHEUS_SERIES
    missing = set(used) - exported - gpu_only - prometheus_own
    assert not missing, {m: sorted(used[m]) for m in missing}
    # The GPU allow-list hides nothing this CPU-only Triton could show: none of its names is exported here
    # (with a GPU they would be, and then they are checked like the rest).
    if not any(n.startswith("nv_gpu_") for n in exported):
        assert not (k8s_monitoring.TRITON_GPU_METRICS & exported)
    else:
        assert gpu_only <= exported
    # MtserveModelNotReady relies on this: a loaded model's counters exist before its first request
    assert _sample(before_requests, "nv_inference_request_success", model="multitask") == 0
    # Triton exports no request summary for a model whose response cache is on (its metrics guide says so, and
    # this one does so): MtserveP99Unmeasured fires for such a model instead of the p99 alert staying silent
    first_segment = re.search(r'model="(trunk_0_\d+)"', scrape).group(1)  # every request runs it
    assert (
        _sample(scrape, "nv_inference_request_summary_us", model=first_segment, quantile="0.99") is not None
    )
    assert _sample(scrape, "nv_inference_request_summary_us", model="multitask", quantile="0.99") is None
    assert _sample(scrape, "nv_inference_request_success", model="multitask") > 0
