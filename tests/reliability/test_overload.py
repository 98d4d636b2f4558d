"""Overload: 2x and 4x the measured capacity, open loop, each request with a client deadline.

The server (`mtserve serve` on the demo-shaped repository, as exported: whatever queue policy the configs carry)
must stay up; what it cannot serve must fail fast (a clear rejection, not a request that waits until its deadline);
what it accepts must keep a bounded p99; and once the burst ends, latency must be back at its unloaded level
within 10 s (no backlog left over: the congestion collapse issue 15 describes).

Phases per factor: `unloaded` (a quarter of capacity, the reference p99), `burst` (factor x capacity for
MTSERVE_REL_OVERLOAD_S seconds), `after` (a quarter of capacity again, starting the moment the burst stops
sending, for 30 s). Capacity: a closed loop of 16 callers for 15 s, the most this server answers per second.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.reliability.harness import (
    Client,
    Sampler,
    Section,
    Serve,
    closed_loop,
    env_float,
    live,
    open_loop,
)

pytestmark = pytest.mark.reliability

DEADLINE_S = env_float("MTSERVE_REL_DEADLINE_S", 2.0)
BURST_S = env_float("MTSERVE_REL_OVERLOAD_S", 60.0)
FACTORS = [float(f) for f in os.environ.get("MTSERVE_REL_FACTORS", "2,4").split(",")]
LOW = 0.25  # the unloaded and after-burst rate, as a fraction of capacity
UNLOADED_S, AFTER_S = 20.0, 30.0
# The limits, and why:
REJECT_P99_S = (
    0.5  # a rejection is an answer: well under the deadline, so a client can retry elsewhere in time
)
ACCEPTED_P99_S = DEADLINE_S / 2  # an accepted request leaves half its deadline: room for one retry
GOODPUT_MIN = 0.5  # of capacity, answered within the deadline during the burst: overload must not collapse it
RECOVERY_S = 10.0  # issue 15: back at the unloaded p99 within 10 s of the burst's end


def queue_policies(repo) -> dict:
    """What the exported configs bound: per model, its dynamic batcher's queue policy (None: unbounded)."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2 as mc

    out = {}
    for cfg_path in sorted(repo.glob("*/config.pbtxt")):
        cfg = text_format.Parse(cfg_path.read_text(), mc.ModelConfig())
        if cfg.platform == "ensemble":
            continue
        db = cfg.dynamic_batching
        policy = (
            json_format.MessageToDict(db.default_queue_policy)
            if db.HasField("default_queue_policy")
            else None
        )
        out[cfg.name] = policy
    return out


def recovered_after(buckets: list[dict], limit_ms: float) -> float | None:
    """Seconds after the burst's end from which every 1 s bucket has no failure and p99 <= limit (None: never)."""
    good_from = None
    for b in buckets:
        ok = b["failed"] == 0 and b["p99_ms"] is not None and b["p99_ms"] <= limit_ms
        if not ok:
            good_from = None
        elif good_from is None:
            good_from = b["t"]
    return good_from


def _run_into(box: dict, client, rate, seconds, deadline) -> None:
    box["t"] = open_loop(client, rate, seconds, deadline, "burst")


@pytest.fixture(scope="module")
def server(demo_repo):
    repo, what = demo_repo
    with Serve(repo) as s:
        yield s, repo, what


def test_overload(server):
    serve, repo, what = server
    sec = Section("overload", "Overload: 2x and 4x capacity, open loop, with a client deadline")
    sec.measurements["repository"] = what
    sec.measurements["queue_policy"] = queue_policies(repo)
    sec.measurements["deadline_s"] = DEADLINE_S
    pid = serve.triton_pid
    sampler = Sampler(pid).start()
    client = Client(serve.url)
    try:
        closed_loop(client, users=4, seconds=5, warmup=2)  # warm every model's first-call paths
        cap = closed_loop(client, users=16, seconds=15)
        capacity = cap["throughput_rps"]
        sec.measurements["capacity"] = cap
        assert capacity > 0 and cap["failed"] == 0, cap
        low = LOW * capacity
        for factor in FACTORS:
            unloaded = open_loop(client, low, UNLOADED_S, DEADLINE_S, "unloaded").summary()
            rate = factor * capacity
            burst_box = {}
            t_burst = time.monotonic()
            th = threading.Thread(target=_run_into, args=(burst_box, client, rate, BURST_S, DEADLINE_S))
            th.start()
            # the after phase starts when the burst stops sending, while its last requests are still out
            time.sleep(max(0.0, t_burst + BURST_S - time.monotonic()))
            end_of_burst = time.monotonic()
            after = open_loop(client, low, AFTER_S, DEADLINE_S, "after")
            th.join(timeout=DEADLINE_S + 60)
            burst = burst_box["t"].summary()
            base_p99 = unloaded["ok_p99_ms"]
            limit = max(
                1.5 * base_p99, base_p99 + 25.0
            )  # "its unloaded level", with room for a noisy machine
            buckets = after.buckets(end_of_burst)
            rec = recovered_after(buckets, limit)
            up = serve.alive() and serve.triton_pid == pid and live(serve.url)
            m = {
                "offered_rps": round(rate, 1),
                "unloaded": unloaded,
                "burst": burst,
                "after": after.summary(),
                "after_buckets": buckets,
                "unloaded_level_limit_ms": round(limit, 1),
                "recovered_after_s": rec,
            }
            sec.measurements[f"x{factor:g}"] = m
            k = f"x{factor:g}"
            sec.check(f"{k} server up", up, True, up, "same tritonserver process, live, after the burst")
            fp99 = burst["failed_p99_ms"]
            sec.check(
                f"{k} rejections fast (p99 of failed calls, ms)",
                fp99,
                REJECT_P99_S * 1000,
                fp99 is None or fp99 <= REJECT_P99_S * 1000,
                f"{burst['failed']} of {burst['sent']} failed: {burst['codes']}",
            )
            ap99 = burst["ok_p99_ms"]
            sec.check(
                f"{k} accepted p99 bounded (ms)",
                ap99,
                ACCEPTED_P99_S * 1000,
                ap99 is not None and ap99 <= ACCEPTED_P99_S * 1000,
                "p99 of the burst's answered requests: at most half the deadline",
            )
            sec.check(
                f"{k} goodput (answered/s)",
                burst["goodput_rps"],
                round(GOODPUT_MIN * capacity, 1),
                burst["goodput_rps"] >= GOODPUT_MIN * capacity,
                f"at least {GOODPUT_MIN:.0%} of capacity ({capacity}/s) answered during the burst",
            )
            sec.check(
                f"{k} back to unloaded p99 (s after the burst)",
                rec,
                RECOVERY_S,
                rec is not None and rec <= RECOVERY_S,
                f"every 1 s bucket from then on: no failure, p99 <= {limit:.0f} ms (unloaded p99 {base_p99} ms)",
            )
            sec.save()
            if not up:
                break
    finally:
        client.close()
        sec.measurements["machine_load"] = sampler.stop().quietness()
        sec.save()
    assert not sec.failed(), "\n".join(sec.failed())
