"""The measuring process: Locust run headless and programmatically, one step of the search at a time.

The capacity search (loadtest/capacity.py) never imports Locust itself: Locust monkey-patches the
whole process for gevent, which the process that starts Triton and exports models should not be.
It starts this module as a child (`python -m mtserve.loadtest.worker`) and talks JSON lines over its
stdin/stdout; replies are the stdout lines that start with `@@mtserve `.

    {"op": "setup", "url", "per_task_url", "plan", "utterances", "timeout", "seed"}
    {"op": "probe", "workload", "n"}            n utterances one after another: unloaded latency
    {"op": "measure", "workload", "rate", "users", "duration", "warmup", "spawn"}
        -> {"offered_rps", "achieved_rps", "count", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms",
            "error_examples", "models": {model: {...}}, "client_cpu_warning"}
    {"op": "quit"}

One step: an `Environment` with the workload's user class, `users` users paced by
`constant_throughput(rate / users)`, spawned over `spawn` seconds; after `warmup` seconds a
measurement window of `duration` seconds opens. Utterances *started* inside the window are the
sample (a request-event listener collects them), including the slow ones that finish after it:
the window closes to new utterances, in-flight ones drain (bounded by the per-call timeout), then
the users stop.
"""

# first: the locustfile imports locust (gevent patching), then initialises grpc's gevent integration
from mtserve.loadtest import locustfile as lf  # noqa: I001

import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.event import Events  # noqa: E402

from mtserve.loadtest import protocol  # noqa: E402
from mtserve.loadtest.workload import Utterance  # noqa: E402

PREFIX = "@@mtserve "


def _percentile(sorted_ms: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on a sorted list."""
    if not sorted_ms:
        return float("nan")
    pos = (len(sorted_ms) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


def _summary(samples: list[tuple[float, str | None]]) -> dict:
    ok = sorted(ms for ms, err in samples if err is None)
    every = sorted(ms for ms, _ in samples)
    errors = [err for _, err in samples if err is not None]
    examples = list(dict.fromkeys(errors))[:5]
    return {
        "count": len(samples),
        "errors": len(errors),
        "error_examples": examples,
        "p50_ms": _percentile(every, 50),
        "p90_ms": _percentile(every, 90),
        "p99_ms": _percentile(every, 99),
        "max_ms": every[-1] if every else float("nan"),
        "mean_ok_ms": sum(ok) / len(ok) if ok else float("nan"),
    }


class Worker:
    def __init__(self):
        self.cfg: lf.LoadConfig | None = None

    def setup(self, msg: dict) -> dict:
        plan = protocol.Plan.from_dict(msg["plan"])
        utterances = [Utterance.from_list(u) for u in msg["utterances"]]
        if not utterances:
            raise ValueError("no utterances")
        self.cfg = lf.LoadConfig(
            protocol.normalize_url(msg["url"]),
            protocol.normalize_url(msg["per_task_url"]),
            plan,
            utterances,
            timeout=float(msg.get("timeout", 10.0)),
            seed=int(msg.get("seed", 0)),
        )
        return {"tasks": plan.tasks}

    def _env(self, workload: str, cfg: lf.LoadConfig) -> Environment:
        env = Environment(
            user_classes=[lf.USER_CLASSES[workload]], events=Events(), host=cfg.url, stop_timeout=0
        )
        env.mtserve = cfg
        return env

    def probe(self, msg: dict) -> dict:
        """`n` utterances one after another, through the same user code, without Locust's runner."""
        workload, n = msg["workload"], int(msg.get("n", 5))
        cfg = dataclasses.replace(self.cfg, throughput=0.0, stop_at=None, inflight=0)
        env = self._env(workload, cfg)
        samples: list[tuple[float, str | None]] = []

        def on_request(request_type, response_time, exception, **_kw):
            if request_type == lf.UTTERANCE:
                samples.append((response_time, None if exception is None else str(exception)))

        env.events.request.add_listener(on_request)
        user = lf.USER_CLASSES[workload](env)
        user.on_start()
        try:
            for _ in range(n):
                user.utterance()
        finally:
            user.on_stop()
        return _summary(samples)

    def _settle(self, workload: str, settle_ms: float, settle_s: float) -> float:
        """Before a step: single utterances until one takes <= settle_ms (the server is idle again after an
        overloaded step, whose queues may still drain), for at most settle_s seconds. Returns seconds spent."""
        if settle_ms <= 0 or settle_s <= 0:
            return 0.0
        t0 = time.monotonic()
        while time.monotonic() - t0 < settle_s:
            p = self.probe({"workload": workload, "n": 1})
            if p["count"] and not p["errors"] and p["p50_ms"] <= settle_ms:
                break
            gevent.sleep(0.2)
        return time.monotonic() - t0

    def measure(self, msg: dict) -> dict:
        workload = msg["workload"]
        rate, users = float(msg["rate"]), max(1, int(msg["users"]))
        duration, warmup = float(msg["duration"]), float(msg.get("warmup", 1.0))
        spawn = max(0.05, min(float(msg.get("spawn", 1.0)), warmup))
        cfg = dataclasses.replace(
            self.cfg,
            throughput=rate / users,
            stop_at=None,
            inflight=0,
            timeout=float(msg.get("timeout") or self.cfg.timeout),
        )
        env = self._env(workload, cfg)
        window = [math.inf, math.inf]
        samples: list[tuple[float, str | None]] = []
        per_model: dict[str, list[tuple[float, str | None]]] = {}

        def on_request(request_type, name, response_time, exception, context, **_kw):
            start = (context or {}).get("start", -1.0)
            if not window[0] <= start < window[1]:
                return
            row = (response_time, None if exception is None else str(exception))
            if request_type == lf.UTTERANCE:
                samples.append(row)
            else:
                per_model.setdefault(name, []).append(row)

        env.events.request.add_listener(on_request)
        self._settle(workload, float(msg.get("settle_ms", 0.0)), float(msg.get("settle_s", 0.0)))
        runner = env.create_local_runner()
        try:
            runner.start(users, spawn_rate=users / spawn, wait=False)
            gevent.sleep(warmup)
            window[0] = time.monotonic()
            window[1] = window[0] + duration
            gevent.sleep(duration)
            cfg.stop_at = window[1]
            deadline = (
                time.monotonic() + cfg.timeout * 2 + 1.0
            )  # a per-task utterance waits on its slowest call
            while cfg.inflight > 0 and time.monotonic() < deadline:
                gevent.sleep(0.02)
            undrained = cfg.inflight
        finally:
            runner.quit()
        out = _summary(samples)
        out.update(
            workload=workload,
            offered_rps=rate,
            users=users,
            duration_s=duration,
            warmup_s=warmup,
            achieved_rps=len(samples) / duration if duration > 0 else 0.0,
            undrained=undrained,
            client_cpu_warning=bool(runner.cpu_warning_emitted),
            models={
                name: {k: v for k, v in _summary(rows).items() if k != "error_examples"}
                for name, rows in sorted(per_model.items())
            },
        )
        return out


def main() -> int:
    channel = sys.stdout
    sys.stdout = sys.stderr  # anything else that prints must not corrupt the reply channel

    def reply(obj: dict) -> None:
        channel.write(PREFIX + json.dumps(protocol.json_safe(obj)) + "\n")
        channel.flush()

    worker = Worker()
    ops = {"setup": worker.setup, "probe": worker.probe, "measure": worker.measure}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            op = msg.get("op")
            if op == "quit":
                reply({"ok": True})
                break
            if op not in ops:
                raise ValueError(f"unknown op {op!r}")
            if op != "setup" and worker.cfg is None:
                raise ValueError("setup first")
            reply({"ok": True, **ops[op](msg)})
        except Exception as e:  # noqa: BLE001 - the driver turns it into a clear error
            reply({"ok": False, "error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
