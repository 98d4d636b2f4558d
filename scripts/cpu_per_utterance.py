"""Where the CPU goes: CPU milliseconds per utterance, model by model, multitask against one deployment per task.

    python scripts/cpu_per_utterance.py REPO OUT_JSON [CONCURRENCY] [SECONDS] [ROUNDS] [TASKS]

Starts a local Triton on REPO (local profile), then runs each workload closed-loop (CONCURRENCY utterances in
flight, every utterance needing every task, or the comma-separated TASKS; loadtest/closed_loop.py) for SECONDS,
alternating, ROUNDS times. With TASKS the `routed` side calls what the client routes them to (the cheapest
served paths, core/routing.py), `multitask-all` calls `multitask` asking only their outputs (every head runs),
and the per-task side `single_<task>` for each. Every python-backend model
is its own process, so reading each process's CPU time from /proc (Linux) before and after a window attributes
the machine's CPU to models: the per-model figures the layer count's ideal assumes, plus Triton's own process
and this client. A throughput probe, not the SLO-bound capacity search of `mtserve loadtest`.
"""

import glob
import itertools
import json
import os
import sys

import grpc
from tritonclient.grpc import service_pb2_grpc

from mtserve.loadtest.closed_loop import closed_loop, utterance_caller
from mtserve.loadtest.protocol import infer_request, make_plan
from mtserve.loadtest.workload import build_pool
from mtserve.serving.client import MultitaskClient
from mtserve.serving.triton import TritonServer

repo, out = sys.argv[1], sys.argv[2]
concurrency, seconds, rounds = (
    int(sys.argv[3]) if len(sys.argv) > 3 else 16,
    float(sys.argv[4]) if len(sys.argv) > 4 else 20.0,
    int(sys.argv[5]) if len(sys.argv) > 5 else 2,
)
subset = sys.argv[6].split(",") if len(sys.argv) > 6 else None
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server: TritonServer) -> dict[str, float]:
    """CPU seconds so far of this server's model stub processes (by model name), the server and this client.

    Only this server's processes count: its own pid, and stubs whose model.py lies in its repository."""
    models = f"{server.repo}/"
    found: dict[str, float] = {}
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            cmd = open(f"{proc}/cmdline").read().split("\0")
            fields = open(f"{proc}/stat").read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        pid = int(proc.rsplit("/", 1)[1])
        if "triton_python_backend_stub" in cmd[0] and len(cmd) > 1 and cmd[1].startswith(models):
            name = cmd[1].split("/")[-3]  # <repo>/<model>/<version>/model.py
        elif pid == server.pid:
            name = "tritonserver"
        elif pid == os.getpid():
            name = "client"
        else:
            continue
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    return found


def window(server: TritonServer, workload: str, pool, plan, models: list[str]) -> dict:
    def caller(k: int):  # caller k sends utterances k, k + concurrency, ... of the pool
        order = itertools.count(k, concurrency)
        return utterance_caller(
            server.grpc_url, plan, workload, lambda: pool[next(order) % len(pool)], models=models
        )

    before = cpu_seconds(server)
    run = closed_loop(concurrency, seconds, caller)
    after = cpu_seconds(server)
    done, elapsed = len(run.ok()), run.elapsed
    used = {m: after[m] - before.get(m, 0.0) for m in after}
    ms = {m: round(1000 * s / max(done, 1), 3) for m, s in sorted(used.items()) if s > 0.01 * elapsed}
    return {
        "workload": workload,
        "utterances_per_s": round(done / elapsed, 2),
        "failed": len(run.failed()),
        "cpu_cores_busy": round(sum(used.values()) / elapsed, 3),
        "cpu_ms_per_utterance": ms,
        "server_cpu_ms_per_utterance": round(sum(v for m, v in ms.items() if m != "client"), 3),
    }


pool = build_pool(size=2000)
with TritonServer(repo) as server:
    url = server.grpc_url
    plan = make_plan(url, subset)  # the tasks, and each model's outputs
    workloads = {w: plan.models(w) for w in ("multitask", "per-task")}
    routes = None
    if subset:
        with MultitaskClient(url) as client:
            routes = [c.to_dict() for c in client.route(subset)]
        for c in routes:
            wanted = tuple(f"{t}_" for t in c["tasks"])
            plan.outputs[c["model"]] = [o for o in plan.outputs["multitask"] if o.startswith(wanted)]
        workloads = {"routed": [c["model"] for c in routes], "multitask-all": ["multitask"], **workloads}
        del workloads["multitask"]
        print(f"tasks {subset}: routed to {routes}")
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(url))
    for m in plan.outputs:  # warm every model once
        stub.ModelInfer(infer_request(m, pool[0], plan.outputs[m]))
    results = []
    for _ in range(rounds):
        for workload, models in workloads.items():
            results.append(window(server, workload, pool, plan, models))
            r = results[-1]
            print(
                f"{workload:<9} {r['utterances_per_s']:7.1f} utt/s  {r['cpu_cores_busy']:.2f} cores busy  "
                f"server {r['server_cpu_ms_per_utterance']:.2f} CPU ms/utt  "
                + "  ".join(f"{m} {v:.2f}" for m, v in r["cpu_ms_per_utterance"].items())
            )
json.dump(
    {
        "repo": repo,
        "tasks": subset,
        "routes": routes,
        "concurrency": concurrency,
        "seconds": seconds,
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "windows": results,
    },
    open(out, "w"),
    indent=2,
)
