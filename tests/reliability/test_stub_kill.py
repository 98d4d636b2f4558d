"""A python-backend model process (stub) killed with SIGKILL under load.

Each case starts `mtserve serve` (a real process, explicit model control, every model loaded) on a copy of the
tiny test repository (model size does not matter here), sends open-loop traffic to `multitask`, and kills one
stub, found in /proc as a `triton_python_backend_stub` child of tritonserver whose command line names the model.
Measured: the requests that failed, whether Triton starts the stub again by itself, and the time until every
request succeeds again ("full service"), with the watchdog of `mtserve serve` (serving/watchdog.py) and without.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import pytest

from mtserve.serving.watchdog import stub_processes
from tests.conftest import first_segment
from tests.reliability.harness import Client, Section, Serve, closed_loop, open_loop

pytestmark = pytest.mark.reliability

RATE = 40.0  # utterances/s to multitask: a tenth of what the tiny repository serves here
DEADLINE_S = 5.0
BEFORE_S, OBSERVE_S = 5.0, 25.0
FULL_SERVICE_S = 10.0  # with the watchdog: every request succeeds again within this long after the kill


@pytest.fixture(scope="module")
def repo(tiny_repo, tmp_path_factory):
    path = tmp_path_factory.mktemp("stubkill") / "model_repository"
    shutil.copytree(tiny_repo, path)
    return path


def _traffic(box, client, seconds):
    box["t"] = open_loop(client, RATE, seconds, DEADLINE_S, "kill")


def kill_under_load(repo, model: str, *serve_args: str) -> dict:
    """Start `mtserve serve`, kill `model`'s stub under load, watch; what happened."""
    with Serve(repo, "--model-control", "explicit", "--load-model", "*", *serve_args) as serve:
        client = Client(serve.url)
        closed_loop(client, users=2, seconds=2, warmup=1)
        box = {}
        th = threading.Thread(target=_traffic, args=(box, client, BEFORE_S + OBSERVE_S))
        th.start()
        time.sleep(BEFORE_S)
        triton = serve.triton_pid
        before = [s for s in stub_processes(triton) if s.model == model]
        victim = before[0]
        t_kill = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        th.join(timeout=BEFORE_S + OBSERVE_S + DEADLINE_S + 60)
        client.close()
        traffic = box["t"]
        after = [c for c in traffic.calls if c.sent + c.latency >= t_kill]  # in flight at the kill, or later
        failed = [c for c in after if c.code != "OK"]
        # full service: from the kill to the first request after which no request failed
        last_bad = max((c.sent for c in failed), default=None)
        later_ok = [c.sent for c in after if c.code == "OK" and (last_bad is None or c.sent > last_bad)]
        full = None if last_bad is not None and not later_ok else max(0.0, min(later_ok or [t_kill]) - t_kill)
        if last_bad is not None and last_bad >= traffic.start + BEFORE_S + OBSERVE_S - 1.0:
            full = None  # still failing at the end of the observation
        # the killed instance's own process (the trunk runs two instances: the other one never died)
        replacement = [s for s in stub_processes(triton) if s.key == victim.key]
        import tritonclient.grpc as g

        with g.InferenceServerClient(serve.url) as c:
            still_ready = c.is_model_ready(model)
        t_stop = time.monotonic()
        code = serve.stop(timeout=120)
        return {
            "model": model,
            "instance": victim.instance,
            "instances": len({s.key for s in before}),
            "serve_args": list(serve_args),
            "killed_pid": victim.pid,
            "requests_after_kill": len(after),
            "failed": len(failed),
            "failure_codes": sorted({c.code for c in failed}),
            "failure_example": failed[0].detail[:200] if failed else None,
            "first_failure_latency_ms": round(1000 * failed[0].latency, 1) if failed else None,
            "full_service_s": None if full is None else round(full, 2),
            "stub_running_again": bool(replacement),
            "new_pid": replacement[0].pid if replacement else None,
            "model_still_ready": still_ready,
            "watchdog_log": serve.grep("watchdog:"),
            "stop_seconds": round(time.monotonic() - t_stop, 1),
            "serve_exit_code": code,
            "triton_exit_lines": serve.grep("Found 1 live models")[-1:],
        }


def test_stub_killed_under_load(repo):
    sec = Section("stub_kill", "A python-backend model process killed (SIGKILL) under load")
    sec.measurements["repository"] = (
        "tiny test BERT (4 layers, hidden 32), 4 tasks: model size does not matter"
    )
    sec.measurements["traffic"] = f"open loop, {RATE:g} utterances/s to multitask, deadline {DEADLINE_S:g} s"
    try:
        # Triton alone: what it does by itself
        alone = kill_under_load(repo, first_segment(repo), "--no-watchdog")
        sec.measurements["triton_alone"] = alone
        sec.check(
            "Triton alone: the killed instance not restarted, model still READY, requests fail to the end",
            {"restarted": alone["stub_running_again"], "ready": alone["model_still_ready"]},
            "not restarted, READY",
            not alone["stub_running_again"]
            and alone["model_still_ready"]
            and alone["full_service_s"] is None,
            f"{alone['failed']} of {alone['requests_after_kill']} requests failed in the {OBSERVE_S:g} s after the "
            f"kill ({', '.join(alone['failure_codes'])}; {alone['instances']} instance(s) of {alone['model']}: the "
            "ones that still run take part of the load); documents Triton 2.51: the watchdog exists for this",
        )
        sec.save()
        for model in (first_segment(repo), "tokenizer", "sentiment"):
            r = kill_under_load(repo, model)
            sec.measurements[f"watchdog_{model}"] = r
            sec.check(
                f"watchdog: {model} back to full service (s)",
                r["full_service_s"],
                FULL_SERVICE_S,
                r["full_service_s"] is not None
                and r["full_service_s"] <= FULL_SERVICE_S
                and r["stub_running_again"],
                f"{r['failed']} of {r['requests_after_kill']} requests failed; the model reloaded by "
                "`mtserve serve`'s watchdog (explicit mode)",
            )
            sec.save()
        # other modes: the watchdog can only say what is broken (Triton refuses loads outside explicit mode)
        with Serve(repo) as serve:
            time.sleep(BEFORE_S)
            victim = next(s for s in stub_processes(serve.triton_pid) if s.model == "trunk")
            os.kill(victim.pid, signal.SIGKILL)
            end = time.monotonic() + 15
            while not serve.grep("watchdog:") and time.monotonic() < end:
                time.sleep(0.2)
            said = serve.grep("watchdog:")
            sec.measurements["mode_none_report"] = said
            serve.stop(timeout=120)
        sec.check(
            "model-control none: the dead process is reported",
            bool(said),
            True,
            bool(said) and "restart the server" in said[0],
            "a line naming the model and what to do, within 15 s",
        )
    finally:
        sec.notes.append(
            "Triton 2.51 never restarts a python-backend stub that died: the model stays READY and every "
            "request the dead instance takes (all of them for a one-instance model; for the trunk's two "
            'instances the share the batcher gives it) fails with INTERNAL "Stub process ... is not '
            'healthy", and so does every ensemble request that uses it, until the model is loaded again with a changed config (an unchanged load keeps the dead '
            "instance). `mtserve serve` in explicit mode does that by itself (its watchdog); in `none`/`poll` "
            "mode it reports the model and a restart is needed. A model whose stub died also never finishes "
            "unloading: Triton's shutdown then waits out its exit timeout (30 s) and `mtserve serve` kills it "
            "(stop_seconds, serve_exit_code)."
        )
        sec.save()
    assert not sec.failed(), "\n".join(sec.failed())
