"""`mtserve loadtest --cross-check`: perf_analyzer's CSV read right, its best rate within the SLO, the
per-task combination, and perf_analyzer itself against the real local Triton (`make perf-analyzer` installs it;
`make test` runs that first)."""

from __future__ import annotations

import json

import pytest

from mtserve.loadtest import crosscheck
from mtserve.loadtest.workload import Utterance, build_pool

# the header perf_analyzer 2.41.0 writes with -f and --percentile 99 (request-rate mode), latencies in microseconds
CSV = """Request Rate,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency
40,39.9,30,1200,800,20,9000,30,10,11000,15000,17000,21000
160,158.2,30,1200,60000,20,9000,30,10,90000,180000,230000,260000
80,79.6,30,1200,3000,20,9000,30,10,14000,30000,45000,120000
120,119.1,30,1200,9000,20,9000,30,10,20000,90000,150000,190000
"""


def test_csv_points_in_milliseconds(tmp_path):
    path = tmp_path / "pa.csv"
    path.write_text(CSV)
    points = crosscheck.parse_csv(path)
    assert [p["offered_rps"] for p in points] == [40, 80, 120, 160]
    assert (
        points[1]["p99_ms"] == 120.0 and points[1]["throughput_rps"] == 79.6 and points[1]["p50_ms"] == 14.0
    )


def test_input_data_is_one_request_per_utterance(tmp_path):
    path = crosscheck.write_input_data(
        [Utterance("turn on the lights"), Utterance("a", "b")], tmp_path / "in.json"
    )
    assert json.loads(path.read_text()) == {
        "data": [{"text": ["turn on the lights"]}, {"text": ["a"], "text_pair": ["b"]}]
    }


def test_missing_perf_analyzer_is_a_clear_error(monkeypatch, tmp_path):
    from mtserve.core.errors import UserError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(crosscheck.ENV, str(tmp_path / "nothing"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="make perf-analyzer"):
        crosscheck.find_perf_analyzer()


@pytest.mark.triton
def test_perf_analyzer_measures_a_rate_on_the_local_triton(triton, tmp_path, monkeypatch):
    """The real binary (make perf-analyzer) on the tiny repository at 20 requests/s, with a tolerance wide enough
    that 1 s windows of 20 calls settle on this shared machine."""
    if crosscheck.INSTALLED.is_file():
        monkeypatch.setenv(crosscheck.ENV, str(crosscheck.INSTALLED.resolve()))
    binary = crosscheck.find_perf_analyzer()
    data = crosscheck.write_input_data(build_pool(size=50), tmp_path / "input.json")
    m = crosscheck.measure_rate(
        binary,
        triton.grpc_url,
        "multitask",
        20.0,
        data,
        tmp_path,
        window_ms=1000,
        tolerance_pct=200,
        max_trials=6,
    )
    assert m["stable"] and m["exit_code"] == 0
    assert 16.0 <= m["throughput_rps"] <= 24.0 and 0 < m["p50_ms"] <= m["p99_ms"]
    assert (
        m["command"].startswith("perf_analyzer -m multitask -i grpc")
        and "--request-rate-range 20.00" in m["command"]
    )
