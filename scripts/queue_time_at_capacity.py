"""The autoscaling signal against load: the slowest step's mean queue time (what k8s/overlays/autoscaling's KEDA
query reads) at rising load, up to the capacity under the p99 SLO.

    python scripts/queue_time_at_capacity.py REPO OUT_JSON [SLO_MS] [SECONDS] [CONCURRENCY,...]

Starts a local Triton on REPO (127.0.0.1), then drives `multitask` closed-loop (loadtest/closed_loop.py) at each
concurrency for SECONDS:
throughput, client-side p50/p99, and from Triton's statistics each composing model's mean queue time over the
window (queue ns / requests), the maximum of which is the autoscaling metric. Capacity: the highest throughput
before p99 first exceeds SLO_MS. The KEDA target: the metric at the highest load whose p99 is still within half
the SLO (the margin is in latency: queue time climbs steeply near capacity, so a throughput margin would put
the target on the flat part of the curve, barely above the no-load floor, where the HPA's proportional rule
scales out at any load). It must be at least twice the floor (the metric at the lowest load), or no target is
given. deploy/render.py QUEUE_TIME_TARGET_MS holds the value this printed.
    python scripts/queue_time_at_capacity.py --summarize OUT_JSON     # recompute the summary of a run
"""

import itertools
import json
import sys
from pathlib import Path

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2_grpc

from mtserve.loadtest.closed_loop import closed_loop, utterance_caller
from mtserve.loadtest.protocol import infer_request, make_plan
from mtserve.loadtest.workload import build_pool
from mtserve.serving.triton import TritonServer


def summarize(rows: list[dict], slo_ms: float) -> dict:
    # the load levels up to the first that breaks the SLO (past it, throughput can fall as queues overflow)
    first_bad = next((i for i, r in enumerate(rows) if r["p99_ms"] > slo_ms), len(rows))
    within = rows[:first_bad]
    capacity = max(within, key=lambda r: r["utterances_per_s"]) if within else None
    calm = [r for r in within if r["p99_ms"] <= slo_ms / 2]
    point = max(calm, key=lambda r: r["utterances_per_s"]) if calm else None
    floor = rows[0]["max_step_queue_ms"] if rows else None
    ok = point is not None and point["max_step_queue_ms"] >= 2 * floor
    return {
        "capacity_utt_per_s": capacity["utterances_per_s"] if capacity else None,
        "no_load_floor_ms": floor,
        "target_point": point,
        "target_queue_ms": round(point["max_step_queue_ms"], 1) if ok else None,
    }


if sys.argv[1] == "--summarize":
    data = json.load(open(sys.argv[2]))
    data |= summarize(data["rows"], data["slo_p99_ms"])
    data.pop("headroom", None), data.pop("target_queue_ms_at_headroom", None)
    json.dump(data, open(sys.argv[2], "w"), indent=2)
    print(json.dumps({k: v for k, v in data.items() if k != "rows"}, indent=2))
    sys.exit(0)
repo, out = Path(sys.argv[1]), Path(sys.argv[2])
slo_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 200.0
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 15.0
levels = [int(c) for c in (sys.argv[5] if len(sys.argv) > 5 else "1,2,4,8,16,32").split(",")]
SERVED = ("multitask",)


def queue_stats(url: str) -> dict[str, tuple[int, int]]:
    """model -> (requests, queue ns) so far, composing models only."""
    out = {}
    for s in grpcclient.InferenceServerClient(url).get_inference_statistics("").model_stats:
        if s.name not in SERVED and not s.name.startswith("single_"):
            out[s.name] = (s.inference_stats.success.count, s.inference_stats.queue.ns)
    return out


def window(url: str, plan, pool, concurrency: int) -> dict:
    def caller(k: int):  # caller k sends utterances k, k + concurrency, ... of the pool
        order = itertools.count(k, concurrency)
        return utterance_caller(url, plan, "multitask", lambda: pool[next(order) % len(pool)])

    before = queue_stats(url)
    run = closed_loop(concurrency, seconds, caller)
    elapsed, after = run.elapsed, queue_stats(url)
    per_step = {
        m: round(
            (after[m][1] - before.get(m, (0, 0))[1]) / 1e6 / max(after[m][0] - before.get(m, (0, 0))[0], 1), 3
        )
        for m in after
        if after[m][0] > before.get(m, (0, 0))[0]
    }
    lat = np.array([c.latency for c in run.ok()]) * 1000
    return {
        "concurrency": concurrency,
        "utterances_per_s": round(len(lat) / elapsed, 2),
        "failed": len(run.failed()),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "queue_ms_per_step": per_step,
        "max_step_queue_ms": max(per_step.values()),
        # the first trunk segment (from the token ids): where every request of the multitask path queues first
        "trunk_queue_ms": next((v for k, v in per_step.items() if k.startswith("trunk_0_")), None),
    }


pool = build_pool(size=2000)
rows = []
with TritonServer(repo) as server:
    plan = make_plan(server.grpc_url)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_url))
    stub.ModelInfer(infer_request("multitask", pool[0], plan.outputs["multitask"]))
    for c in levels:
        rows.append(window(server.grpc_url, plan, pool, c))
        r = rows[-1]
        print(
            f"concurrency {c:3d}: {r['utterances_per_s']:7.1f} utt/s  p99 {r['p99_ms']:7.1f} ms  "
            f"max step queue {r['max_step_queue_ms']:7.2f} ms  trunk queue {r['trunk_queue_ms']} ms",
            flush=True,
        )
        if r["p99_ms"] > 2 * slo_ms:
            break
result = {
    "what": "slowest step's mean queue time (the KEDA metric) against load, multitask, local Triton",
    "command": "python scripts/queue_time_at_capacity.py " + " ".join(sys.argv[1:]),
    "repo": str(repo),
    "slo_p99_ms": slo_ms,
    "seconds": seconds,
    "rows": rows,
} | summarize(rows, slo_ms)
json.dump(result, open(out, "w"), indent=2)
print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
