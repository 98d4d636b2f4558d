"""Soak: 70% of capacity, open loop, for MTSERVE_REL_SOAK_S seconds (20 minutes by default).

`mtserve serve` on the demo-shaped repository. Capacity is measured first: the highest open-loop rate with no
failure and p99 within 200 ms (the load test's default SLO), in 20 s steps of a tenth of the closed-loop
capacity (16 callers, 15 s) from half of it up; then the open loop runs at 70% of that. Why not 70% of the
closed-loop figure: on this 2-core machine that ran Triton at 1.64-1.84 cores and the client at 0.13; in one
run at 134/s the server's mean crept from 21 to 46 ms in ten minutes, then to 572 ms with 300 requests
rejected, and each process's memory stepped up once with that backlog (its high-water mark).

Asserted: no request fails; the resident memory of every Triton process (tritonserver and each python-backend
stub, from /proc every 10 s) does not grow - the least-squares slope of their sum over the run after a warm-up
of a tenth of it, in MB/min; p99 stays put (p99 per minute, the median of the run's last quarter against its
first quarter after the warm-up).
"""

from __future__ import annotations

import pytest

from tests.reliability.harness import (
    Client,
    Sampler,
    Section,
    Serve,
    closed_loop,
    env_float,
    live,
    ms,
    open_loop,
    percentile,
    slope_per_minute,
    sustainable_rate,
)

pytestmark = pytest.mark.reliability

FULL_SOAK_S = 1200.0
SOAK_S = env_float("MTSERVE_REL_SOAK_S", FULL_SOAK_S)
LOAD = 0.7  # of capacity
DEADLINE_S = 5.0
SAMPLE_S = 10.0
# Limits, and why:
SLOPE_MB_PER_MIN = 1.0  # a leak of ~200 bytes per utterance at ~90/s; 20 MB over 20 minutes
# the last quarter's p99 at most 1.5x the first's (+10 ms: one slow request on a shared machine)
P99_GROWTH = 1.5
# p99 is compared per minute (a twentieth of the run), as the median over a quarter of the run: on this 2-core
# machine at 122/s (70% of the closed-loop figure) the p99 of single minutes ranged 35-111 ms with no trend over
# 20 minutes, apart from one minute when other work took the cores (the server's own mean moved with it, 17-37
# ms, while the client's CPU stayed at 0.11-0.14 cores), so one 2-minute window against another compared two
# draws of that noise and failed on it. A creep moves the median of five minutes; one noisy minute does not.
P99_STEPS = 20


def minute_means(sampler: Sampler, start: float) -> dict:
    """The client's and Triton's cores, and the ensemble's mean server-side ms, in the minute from `start`
    (seconds after the soak began; the sampler started with it)."""
    cores = [(c, s) for t, c, s in sampler.cores if start < t <= start + 60]
    served = [(n, m) for t, n, m in sampler.server if start < t <= start + 60 and m is not None]
    n = sum(k for k, _ in served)
    return {
        "client_cores": round(sum(c for c, _ in cores) / len(cores), 2) if cores else None,
        "triton_cores": round(sum(s for _, s in cores) / len(cores), 2) if cores else None,
        "server_mean_ms": round(sum(k * m for k, m in served) / n, 2) if n else None,
    }


@pytest.fixture(scope="module")
def server(demo_repo):
    repo, what = demo_repo
    with Serve(repo) as s:
        yield s, what


def test_soak(server):
    serve, what = server
    # a shorter soak (a check, or a quiet moment on a shared machine) is its own section: it never replaces the
    # full one in the report
    full = SOAK_S >= FULL_SOAK_S
    sec = Section(
        "soak" if full else "soak_short",
        f"Soak: 70% of capacity for {SOAK_S / 60:g} minutes"
        + ("" if full else " (a SHORT soak, not the 20-minute one)"),
    )
    sec.measurements["repository"] = what
    sec.measurements["deadline_s"] = DEADLINE_S
    pid = serve.triton_pid
    client = Client(serve.url)
    sampler = None
    try:
        closed_loop(client, users=4, seconds=5, warmup=2)
        cap = closed_loop(client, users=16, seconds=15)
        sec.measurements["capacity"] = cap
        sustainable = sustainable_rate(client, cap["throughput_rps"])
        sec.measurements["sustainable"] = sustainable
        assert sustainable["rate_rps"], (
            f"no open-loop rate from half the closed-loop capacity up: {sustainable}"
        )
        rate = LOAD * sustainable["rate_rps"]
        sampler = Sampler(pid, interval=SAMPLE_S, url=serve.url, model="multitask").start()
        traffic = open_loop(client, rate, SOAK_S, DEADLINE_S, "soak")
        sampler.stop()
        s = traffic.summary()
        warm = 0.1 * SOAK_S
        window = max(30.0, 0.1 * SOAK_S)
        lat = [(c.sent - traffic.start, c.latency) for c in traffic.ok()]
        first = [x for t, x in lat if warm <= t < warm + window]
        last = [x for t, x in lat if t >= SOAK_S - window]
        p99_first, p99_last = ms(percentile(first, 99)), ms(percentile(last, 99))
        step = SOAK_S / P99_STEPS
        per_step = [
            (b["t"], b["p99_ms"])
            for b in traffic.buckets(traffic.start, width=step)
            if b["t"] >= warm and b["p99_ms"] is not None and b["t"] + step <= SOAK_S + 1e-6
        ]
        quarter = max(1, len(per_step) // 4)
        p99_early = percentile([p for _, p in per_step[:quarter]], 50)
        p99_late = percentile([p for _, p in per_step[-quarter:]], 50)
        p99_early, p99_late = (None if x is None else round(x, 1) for x in (p99_early, p99_late))
        p99_slope = slope_per_minute(per_step)
        totals = [(t, sum(v.values()) / 1e6) for t, v in sampler.rss]
        per_process = {}
        for name in sampler.rss[-1][1] if sampler.rss else {}:
            pts = [(t, v[name] / 1e6) for t, v in sampler.rss if name in v and t >= warm]
            per_process[name] = {
                "start_mb": round(pts[0][1], 1) if pts else None,
                "end_mb": round(pts[-1][1], 1) if pts else None,
                "slope_mb_per_min": None
                if slope_per_minute(pts) is None
                else round(slope_per_minute(pts), 3),
            }
        slope_all = slope_per_minute(totals)
        slope = slope_per_minute([(t, v) for t, v in totals if t >= warm])
        up = serve.alive() and serve.triton_pid == pid and live(serve.url)
        sec.measurements.update(
            {
                "rate_rps": round(rate, 1),
                "seconds": SOAK_S,
                "traffic": s,
                "p99_per_step_ms": per_step,
                "p99_step_s": step,
                "p99_early_quarter_median_ms": p99_early,
                "p99_late_quarter_median_ms": p99_late,
                "p99_slope_ms_per_min": None if p99_slope is None else round(p99_slope, 2),
                "p99_first_window_ms": p99_first,
                "p99_last_window_ms": p99_last,
                "windows": f"first: {warm:g}-{warm + window:g} s, last: {SOAK_S - window:g}-{SOAK_S:g} s",
                "rss_total_mb": [(round(t), round(v, 1)) for t, v in totals],
                "rss_slope_mb_per_min": None if slope is None else round(slope, 3),
                "rss_slope_whole_run_mb_per_min": None if slope_all is None else round(slope_all, 3),
                "rss_per_process": per_process,
                "processes": len(sampler.rss[-1][1]) if sampler.rss else 0,
                # when failures came, and how busy the machine was with other work then
                "per_minute": [
                    {
                        "minute": b["t"] / 60,
                        "sent": b["n"],
                        "failed": b["failed"],
                        "p99_ms": b["p99_ms"],
                        "other_work_cores_peak": max(  # the busiest 10 s of the minute
                            (c for t, c in sampler.other if b["t"] < t <= b["t"] + 60), default=None
                        ),
                        # where a creep comes from: the client's CPU, Triton's, or Triton's own latency
                        **minute_means(sampler, b["t"]),
                    }
                    for b in traffic.buckets(traffic.start, width=60.0)
                ],
                "machine_load": sampler.quietness(),
            }
        )
        sec.check("server up", up, True, up, "the same tritonserver process, live, at the end")
        sec.check(
            "zero errors",
            s["failed"],
            0,
            s["failed"] == 0 and s["sent"] > 0,
            f"{s['sent']} utterances at {rate:.1f}/s, deadline {DEADLINE_S:g} s: {s['codes']}",
        )
        sec.check(
            "memory flat (MB/min, all Triton processes)",
            None if slope is None else round(slope, 3),
            SLOPE_MB_PER_MIN,
            slope is not None and slope <= SLOPE_MB_PER_MIN,
            f"least-squares slope of the summed RSS of {sec.measurements['processes']} processes, "
            f"sampled every {SAMPLE_S:g} s after {warm:g} s of warm-up",
        )
        sec.check(
            "p99 stable (ms, median of the last quarter's per-minute p99 vs the first's)",
            p99_late,
            None if p99_early is None else round(P99_GROWTH * p99_early + 10, 1),
            p99_early is not None and p99_late is not None and p99_late <= P99_GROWTH * p99_early + 10,
            f"p99 per {step:g} s after {warm:g} s of warm-up; first quarter's median {p99_early} ms; slope "
            f"{None if p99_slope is None else round(p99_slope, 2)} ms/min; 2-minute windows: first "
            f"{p99_first} ms, last {p99_last} ms",
        )
    finally:
        client.close()
        if sampler is not None:
            sampler.stop()
        sec.save()
    assert not sec.failed(), "\n".join(sec.failed())
