"""A python-backend process killed in a pod-like server: no watchdog, the liveness command as Kubernetes runs it.

`mtserve serve --no-watchdog` as the pod's Triton (explicit mode, `multitask` loaded) on a copy of the tiny test
repository, with open-loop traffic; the tokenizer's stub is killed with SIGKILL. A kubelet stand-in runs the pod's
liveness command (deploy/liveness.py: `python3 -c SCRIPT multitask PORT`, system python3) every
`periodSeconds`, and after `failureThreshold` consecutive failures restarts the "container" (stops the server and
starts it again, as the kubelet restarts a container in place). Measured: from the kill to the first failing check,
to the restart, and to service again (the first check that passes on the new server).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from mtserve.deploy import liveness as k8s_liveness
from mtserve.serving.watchdog import stub_processes
from tests.reliability.harness import Section, Serve

pytestmark = pytest.mark.reliability

SERVE_ARGS = ("--no-watchdog", "--model-control", "explicit", "--load-model", "multitask")
# kill -> restart decision, at most: the threshold's checks one period apart, plus the first check's wait
RESTART_WITHIN_S = (k8s_liveness.FAILURE_THRESHOLD + 1) * k8s_liveness.PERIOD_S


def check(port: int) -> tuple[bool, float, str]:
    """The liveness command, as the kubelet runs it (its timeout too)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(
            k8s_liveness.command("multitask", port=port),
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=k8s_liveness.TIMEOUT_S,
        )
        ok, out = p.returncode == 0, (p.stdout + p.stderr).strip()
    except subprocess.TimeoutExpired:
        ok, out = False, "timed out"
    return ok, time.monotonic() - t0, out


@pytest.fixture(scope="module")
def repo(tiny_repo, tmp_path_factory):
    path = tmp_path_factory.mktemp("podkill") / "model_repository"
    shutil.copytree(tiny_repo, path)
    return path


def test_pod_like_stub_kill_is_found_by_the_liveness_check_and_healed_by_a_restart(repo):
    sec = Section("pod_stub_kill", "A pod's python-backend process killed: the liveness check and a restart")
    sec.measurements["probe"] = {
        "command": "python3 -c <deploy/liveness.py SCRIPT> multitask",
        "periodSeconds": k8s_liveness.PERIOD_S,
        "timeoutSeconds": k8s_liveness.TIMEOUT_S,
        "failureThreshold": k8s_liveness.FAILURE_THRESHOLD,
    }
    sec.measurements["server"] = "mtserve serve " + " ".join(SERVE_ARGS) + " (tiny test repository)"
    serve = Serve(repo, *SERVE_ARGS).start()
    events = []
    try:
        ok, took, out = check(serve.http_port)
        assert ok, out
        victim = next(s for s in stub_processes(serve.triton_pid) if s.model == "tokenizer")
        t_kill = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        # the kubelet: a check every period (the first one somewhere in the period after the kill: here at once,
        # the best case, and the period is added for the worst)
        failures, t_first_fail, t_restart = 0, None, None
        while time.monotonic() - t_kill < RESTART_WITHIN_S + 30:
            t = time.monotonic()
            ok, took, out = check(serve.http_port)
            events.append({"t": round(t - t_kill, 2), "ok": ok, "seconds": round(took, 2), "out": out[:120]})
            failures = 0 if ok else failures + 1
            if not ok and t_first_fail is None:
                t_first_fail = t + took - t_kill
            if failures >= k8s_liveness.FAILURE_THRESHOLD:
                t_restart = time.monotonic() - t_kill
                break
            time.sleep(max(0.0, k8s_liveness.PERIOD_S - (time.monotonic() - t)))
        assert t_restart is not None, events
        serve.stop(timeout=60)  # the container restart: the same pod, a new Triton
        serve = Serve(repo, *SERVE_ARGS).start()
        while True:
            ok, took, out = check(serve.http_port)
            if ok:
                break
            time.sleep(0.5)
        t_service = time.monotonic() - t_kill
    finally:
        serve.stop(timeout=60)
        sec.measurements["checks_after_kill"] = events
    sec.measurements["kill_to_first_failing_check_s"] = round(t_first_fail, 2)
    sec.measurements["kill_to_restart_s"] = round(t_restart, 2)
    sec.measurements["kill_to_service_s"] = round(t_service, 2)
    sec.check(
        "kill -> first failing liveness check (s)",
        round(t_first_fail, 2),
        k8s_liveness.TIMEOUT_S,
        t_first_fail <= k8s_liveness.TIMEOUT_S,
        "the first check after the kill fails, within the probe's timeout (a 500 naming the dead stub)",
    )
    sec.check(
        "kill -> restart (s)",
        round(t_restart, 2),
        RESTART_WITHIN_S,
        t_restart <= RESTART_WITHIN_S,
        f"{k8s_liveness.FAILURE_THRESHOLD} failed checks {k8s_liveness.PERIOD_S} s apart; the kubelet's first "
        "check may come up to one period after the kill (here: at once)",
    )
    sec.check(
        "kill -> service again after the restart (s)",
        round(t_service, 2),
        RESTART_WITHIN_S + 120,
        t_service <= RESTART_WITHIN_S + 120,
        "the restart, then Triton loading multitask (the tiny repository: seconds; a GPU pod loads BERT)",
    )
    sec.notes.append(
        "Without the watchdog (a pod) Triton keeps a model whose stub died READY and failing; /v2/health/live and "
        "/v2/health/ready stay 200. The liveness check is what finds it; the restart is what heals it."
    )
    sec.save()
    assert not sec.failed(), "\n".join(sec.failed())
