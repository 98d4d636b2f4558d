"""The liveness check's latency at 4x capacity: what k8s_liveness's period, timeout and threshold are chosen from.

    python scripts/liveness_latency.py OUT_STEM [SECONDS] [FACTOR] [REPO]

Serves REPO (default: the synthetic demo-shaped repository of `mtserve loadtest --synthetic`, cached in
cache/liveness) with a local Triton as the pod does (explicit mode, `multitask` only), measures its capacity (a
closed loop of 16 callers, 10 s), then sends FACTOR (4) x capacity open loop for SECONDS (60) while running the
liveness command every second exactly as the kubelet would (`python3 -c SCRIPT multitask PORT`, system python3,
but with a 30 s deadline, so that its latency is measured, not cut). Writes OUT_STEM.json (every check: start, seconds, exit, outcome)
and OUT_STEM.png (check latency over the burst), with `cat /proc/loadavg` before and after.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtserve.deploy import liveness as k8s_liveness  # noqa: E402
from mtserve.export.synthetic import synthetic_repo  # noqa: E402
from mtserve.serving.triton import TritonServer  # noqa: E402
from tests.reliability.harness import Client, closed_loop, open_loop, percentile  # noqa: E402

out = Path(sys.argv[1])
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
factor = float(sys.argv[3]) if len(sys.argv) > 3 else 4.0
repo = Path(sys.argv[4]) if len(sys.argv) > 4 else synthetic_repo(ROOT / "cache" / "liveness", 4, "demo")
loadavg = lambda: Path("/proc/loadavg").read_text().split()[:3]  # noqa: E731

server = TritonServer(repo, model_control="explicit", load_models=["multitask"])
server.start()
checks: list[dict] = []
try:
    client = Client(server.grpc_url)
    load_before = loadavg()
    capacity = closed_loop(client, users=16, seconds=10, warmup=2)
    print(f"capacity: {capacity}", flush=True)
    rate = factor * capacity["throughput_rps"]
    box: dict = {}
    t0 = time.monotonic()
    burst = threading.Thread(target=lambda: box.update(t=open_loop(client, rate, seconds, 5.0, "burst")))
    burst.start()
    # the check with a 30 s deadline of its own and no kubelet timeout: its latency itself is what is measured
    cmd = k8s_liveness.command("multitask", port=server.http_port, timeout_s=30)
    while burst.is_alive():
        s = time.monotonic()
        p = subprocess.run(cmd, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
        took = time.monotonic() - s
        out_text = (p.stdout + p.stderr).strip()
        outcome = "ok" if p.returncode == 0 and not out_text else ("shed" if p.returncode == 0 else "failed")
        checks.append(
            {
                "t": round(s - t0, 2),
                "seconds": round(took, 3),
                "exit": p.returncode,
                "outcome": outcome,
                "detail": out_text[:160],
            }
        )
        print(f"{s - t0:6.1f} s  check {outcome:6} {took:.2f} s", flush=True)
        time.sleep(max(0.0, 1.0 - took))
    burst.join()
    load_after = loadavg()
    traffic = box["t"].summary()
    client.close()
finally:
    server.stop(timeout=30)

lat = [c["seconds"] for c in checks]
result = {
    "command": "python scripts/liveness_latency.py " + " ".join(sys.argv[1:]),
    "repository": str(repo.relative_to(ROOT)) if repo.is_relative_to(ROOT) else repo.name,
    "loadavg_before": load_before,
    "loadavg_after": load_after,
    "machine_note": "2 shared cores; other engineers' jobs ran at the same time (see loadavg)",
    "capacity_closed_loop_16": capacity,
    "burst_factor": factor,
    "burst": traffic,
    "checks": len(checks),
    "check_outcomes": {k: sum(c["outcome"] == k for c in checks) for k in ("ok", "shed", "failed")},
    "check_p50_s": round(percentile(lat, 50), 3),
    "check_p99_s": round(percentile(lat, 99), 3),
    "check_max_s": round(max(lat), 3),
    "probe": {
        "request_timeout_s": k8s_liveness.REQUEST_TIMEOUT_S,
        "timeoutSeconds": k8s_liveness.TIMEOUT_S,
        "periodSeconds": k8s_liveness.PERIOD_S,
        "failureThreshold": k8s_liveness.FAILURE_THRESHOLD,
    },
    "each_check": checks,
}
out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
print(json.dumps({k: v for k, v in result.items() if k != "each_check"}, indent=1))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(8, 4))
for kind, color in (("ok", "tab:green"), ("shed", "tab:orange"), ("failed", "tab:red")):
    pts = [(c["t"], c["seconds"]) for c in checks if c["outcome"] == kind]
    if pts:
        ax.scatter(*zip(*pts, strict=True), label=kind, color=color, s=14)
ax.axhline(k8s_liveness.TIMEOUT_S, color="k", ls="--", lw=1, label="timeoutSeconds")
ax.axhline(k8s_liveness.REQUEST_TIMEOUT_S, color="gray", ls=":", lw=1, label="the check's own deadline")
ax.set_xlabel(f"seconds into the {factor:g}x burst ({rate:.0f} utterances/s)")
ax.set_ylabel("liveness check (s)")
ax.set_title(f"liveness check latency at {factor:g}x capacity (loadavg {' '.join(load_before)})")
ax.legend(loc="upper left", fontsize=8)
fig.tight_layout()
fig.savefig(out.with_suffix(".png"), dpi=110)
