"""The pods' liveness check: one real inference through the Triton model the service serves.

Why not Triton's `/v2/health/live`: a python-backend process (the tokenizer's stub) that dies leaves Triton live,
ready and the model READY, while every inference fails with INTERNAL "Stub process '<instance>' is not healthy"
(serving/watchdog.py); Kubernetes would keep such a pod serving errors. This check sends one utterance through
`multitask` (or a per-task service's `single_<task>`) on Triton's HTTP port inside the pod and fails on any error
except shedding: under overload Triton answers 503/429 (queue timeout, full queue) at once, which says the server
and its processes work; restarting a pod that sheds would only add to the overload.

It runs as an exec probe with what NVIDIA's stock Triton image has: `python3` and its standard library (the
image also has curl, but curl cannot tell a shed from a failure without a shell, and the image's `sh` + `curl`
quoting is harder to read than this). The script is written into the InferenceService manifests (base and every
rendered overlay) and checked by `mtserve k8s validate`: one owner, this module.

Timing (docs/results/liveness-probe.md): the check's latency was measured at 4x the demo repository's capacity
on the local CPU Triton; PERIOD_S, TIMEOUT_S and FAILURE_THRESHOLD are chosen from it. Standard library only.
"""

from __future__ import annotations

from mtserve.core import names

HTTP_PORT = 8080  # the runtime's --http-port (k8s/base/common/servingruntime.yaml)
# Measured (docs/results/liveness-probe.md): at 4x the demo repository's capacity on the local CPU Triton the check
# took 0.55 s at the median, 1.66 s at p99 and 1.78 s at most (59 checks: 25 answered, 34 shed, none failed), and
# up to 4.7 s in tests/test_liveness_probe.py's 4x burst on the tiny repository with the machine's load at 5 to 9.
# The check's own HTTP deadline (s): above the slowest answer seen, with room for a busier machine.
REQUEST_TIMEOUT_S = 8.0
# Kubernetes' timeout for the exec (s): the deadline plus python3's start-up (~50 ms) and margin.
TIMEOUT_S = 10
PERIOD_S = 10
# Consecutive failures before the kubelet restarts the container. A dead stub fails the check in about a second,
# so it is found within FAILURE_THRESHOLD * PERIOD_S (30 s) of its death; one slow or timed-out answer under
# overload never restarts a pod.
FAILURE_THRESHOLD = 3
MIN_FAILURE_THRESHOLD = 2

# Runs as `python3 -c SCRIPT MODEL [PORT [TIMEOUT]]`. Exit 0: answered, or shed (503/429); exit 1: anything else.
SCRIPT = """\
# mtserve liveness check (deploy/liveness.py): one inference through the served model
import json, sys, urllib.error, urllib.request
model = sys.argv[1]
port = sys.argv[2] if len(sys.argv) > 2 else "8080"
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else @TIMEOUT@
text = {"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": ["liveness check"]}
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/v2/models/{model}/infer",
    data=json.dumps({"inputs": [text]}).encode(),
    headers={"Content-Type": "application/json"},
)
try:
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        answer.read()
except urllib.error.HTTPError as e:
    detail = e.read()[:300].decode(errors="replace")
    if e.code in (429, 503):  # shed by a queue bound: the server and its processes work
        print(f"{model}: shed ({e.code}) {detail}")
        sys.exit(0)
    print(f"{model}: HTTP {e.code} {detail}")
    sys.exit(1)
except Exception as e:  # refused, timed out, reset
    print(f"{model}: {type(e).__name__}: {e}")
    sys.exit(1)
""".replace("@TIMEOUT@", f"{REQUEST_TIMEOUT_S:g}")


def command(model: str, port: int | None = None, timeout_s: float | None = None) -> list[str]:
    """The exec probe's command for `model` (the pod's HTTP port and deadline unless given: tests use others)."""
    cmd = ["python3", "-c", SCRIPT, model]
    if port is not None or timeout_s is not None:
        cmd.append(str(port if port is not None else HTTP_PORT))
    if timeout_s is not None:
        cmd.append(f"{timeout_s:g}")
    return cmd


def probe(model: str) -> dict:
    """The InferenceService's livenessProbe for a service that loads `model`."""
    return {
        "exec": {"command": command(model)},
        "periodSeconds": PERIOD_S,
        "timeoutSeconds": TIMEOUT_S,
        "failureThreshold": FAILURE_THRESHOLD,
    }


def problems(live: object, model: str | None, path: str) -> list[str]:
    """What is wrong with an InferenceService's livenessProbe, for a service that serves `model` (its first
    --load-model; None: unknown, the --load-model check reports that). The multitask service's other loads
    (path_<task>, group_<g>) are ensembles over the same processes `multitask` runs, so its check covers them."""
    if not isinstance(live, dict):
        return [f"{path}: required (the exec check of deploy/liveness.py)"]
    cmd = (live.get("exec") or {}).get("command") if isinstance(live.get("exec"), dict) else None
    if not isinstance(cmd, list):
        return [
            f"{path}: must be the exec check that sends an inference through the served model "
            f"(`python3 -c <deploy/liveness.py SCRIPT> <model>`): /v2/health/live stays 200 while a dead "
            "python-backend process fails every request"
        ]
    errors = []
    if cmd[:3] != ["python3", "-c", SCRIPT]:
        errors.append(f"{path}.exec.command: not the check of deploy/liveness.py (re-render the overlay)")
    elif model is not None and cmd[3:] != [model]:
        errors.append(
            f"{path}.exec.command: checks {cmd[3:]!r}, but the service serves {model!r} (its first --load-model)"
        )
    elif model is not None and not (model == names.MULTITASK or model.startswith(names.SINGLE_PREFIX)):
        errors.append(f"{path}.exec.command: {model!r} is not multitask or single_<task>")
    timeout = live.get("timeoutSeconds", 1)
    if not isinstance(timeout, int) or timeout <= REQUEST_TIMEOUT_S:
        errors.append(
            f"{path}.timeoutSeconds: {timeout!r} must exceed the check's own {REQUEST_TIMEOUT_S:g} s deadline "
            "(python3 starts too); the kubelet would count a slow but answered check as a failure"
        )
    period = live.get("periodSeconds", 10)
    if isinstance(period, int) and isinstance(timeout, int) and period < timeout:  # checks would overlap
        errors.append(f"{path}.periodSeconds: {period} is shorter than timeoutSeconds {timeout}")
    threshold = live.get("failureThreshold", 3)
    if not isinstance(threshold, int) or threshold < MIN_FAILURE_THRESHOLD:
        errors.append(
            f"{path}.failureThreshold: {threshold!r}: at least {MIN_FAILURE_THRESHOLD}, so that one slow answer "
            "under overload never restarts a pod"
        )
    return errors
