"""The measuring process: Locust run headless and programmatically, one step of the search at a time.

The capacity search (loadtest/capacity.py) never imports Locust itself: Locust monkey-patches the
whole process for gevent, which the process that starts Triton and exports models should not be.
It starts this module as a child (`python -m mtserve.loadtest.locust_process`) and talks JSON lines over its
stdin/stdout; replies are the stdout lines that start with `@@mtserve `.

    {"op": "setup", "plan", "utterances", "timeout", "seed",
     "workers": N, "expect_workers": M, "master_bind": "HOST:PORT"}
        N > 1: this process becomes a Locust master and starts N local `locust --worker` processes;
        M > 0: a master that waits for M workers started elsewhere (k8s/loadtest) on master_bind;
        otherwise the users run in this process (Locust's LocalRunner)
    {"op": "probe", "workload", "n"}            n utterances one after another: unloaded latency
    {"op": "measure", "workload", "rate", "users", "duration", "warmup", "spawn", "csv_prefix",
     "windows": {"need", "max", "tolerance", "slo_ms"}}
        -> {"offered_rps", "achieved_rps", "count", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms",
            "error_examples", "windows": [{...} per window], "stability", "stability_reason",
            "models": {model: {...}}, "server": {model: {...}}, "generators", "client_cpu_warning"}
    {"op": "quit"}

One step: the workload's user class, `users` users paced by `constant_throughput(rate / users)`,
spawned over `spawn` seconds (a master spreads them over its workers). After `warmup` seconds the
measurement window opens (a `mtserve_window` message to every load generator, loadtest/locustfile.py);
`duration` seconds later it closes: generators stop starting utterances, let their in-flight ones finish
(bounded by the per-call timeout) and send every utterance that started inside the window to this
process, slow ones included. The next window opens at once, the users still running, until the stability
rule (loadtest/stability.py) ends the step; its figures pool the agreeing windows. Triton's statistics are
read just before the first window opens and after the last drained. With `csv_prefix`, Locust's own CSV
and HTML reports of the step are written there.
"""

# first: the locustfile imports locust (gevent patching), then initialises grpc's gevent integration
from mtserve.loadtest import locustfile as lf  # noqa: I001

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.event import Events  # noqa: E402
from locust.runners import MasterRunner  # noqa: E402

from mtserve.loadtest import protocol, stability  # noqa: E402
from mtserve.loadtest.workload import Utterance  # noqa: E402
from mtserve.serving.endpoint import Endpoint  # noqa: E402

PREFIX = "@@mtserve "
WORKER_READY_S = 120.0  # local worker processes: start (imports) and connect within this


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    def __init__(self):
        self.cfg: lf.LoadConfig | None = None
        self.env: Environment | None = None
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self.expected = 0
        self.window = 0

    # ------------------------------------------------------------ setup and teardown
    def setup(self, msg: dict) -> dict:
        plan = protocol.Plan.from_dict(msg["plan"])
        if not plan.endpoints and msg.get("url"):  # a plan without endpoints: one address for each workload
            mt = Endpoint(msg["url"])
            pt = Endpoint(msg.get("per_task_url") or msg["url"])
            plan.endpoints = {protocol.MULTITASK: mt, **{protocol.single_model(t): pt for t in plan.tasks}}
        utterances = [Utterance.from_list(u) for u in msg["utterances"]]
        if not utterances:
            raise ValueError("no utterances")
        self.cfg = lf.LoadConfig(
            plan, utterances, timeout=float(msg.get("timeout", 10.0)), seed=int(msg.get("seed", 0))
        )
        env = Environment(
            user_classes=list(lf.USER_CLASSES.values()),
            events=Events(),
            host=plan.endpoints[protocol.MULTITASK].address,
            stop_timeout=0,
        )
        env.mtserve_driven = True  # windows are opened and closed step by step, below
        workers, expect = int(msg.get("workers", 1)), int(msg.get("expect_workers", 0))
        if expect > 0 or workers > 1:
            host, _, port = (msg.get("master_bind") or "").rpartition(":")
            bind_host = host or "127.0.0.1"
            bind_port = int(port) if port.isdigit() and int(port) > 0 else _free_port()
            env.create_master_runner(master_bind_host=bind_host, master_bind_port=bind_port)
            lf.attach(env)
            self.env = env
            if expect <= 0:
                self._spawn_local_workers(workers, bind_port)
            self.expected = expect if expect > 0 else workers
            self._wait_for_workers(float(msg.get("workers_timeout", WORKER_READY_S)))
        else:
            env.create_local_runner()
            lf.attach(env)
            self.env = env
            self.expected = 1
        return {"tasks": plan.tasks, "load_generators": self.expected}

    def _spawn_local_workers(self, n: int, port: int) -> None:
        cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(Path(lf.__file__)),
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
        ]
        for _ in range(n):
            fd, name = tempfile.mkstemp(prefix="mtserve-locust-worker-", suffix=".log")
            with os.fdopen(fd, "wb") as logf:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            self.procs.append((proc, Path(name)))

    def _worker_logs(self) -> str:
        out = []
        for proc, path in self.procs:
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-8:]
                out.append(f"worker pid {proc.pid} (exit {proc.poll()}), {path}:\n" + "\n".join(tail))
        return "\n".join(out)

    def _wait_for_workers(self, timeout: float) -> None:
        runner = self.env.runner
        deadline = time.monotonic() + timeout
        while len(runner.clients.ready) < self.expected:
            dead = [p for p, _ in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(runner.clients.ready)} of {self.expected} Locust workers connected within "
                    f"{timeout:.0f} s"
                    + (f" ({len(dead)} exited)" if dead else "")
                    + "\n"
                    + self._worker_logs()
                )
            gevent.sleep(0.2)

    def close(self) -> None:
        if self.env is not None and self.env.runner is not None:
            with contextlib.suppress(Exception):
                self.env.runner.quit()
        for proc, path in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            if proc.returncode in (0, None):
                with contextlib.suppress(OSError):
                    path.unlink()
        self.procs = []

    # ------------------------------------------------------------ probes
    def probe(self, msg: dict) -> dict:
        """`n` utterances one after another, through the same user code, without Locust's runner."""
        workload, n = msg["workload"], int(msg.get("n", 5))
        env = Environment(user_classes=[lf.USER_CLASSES[workload]], events=Events(), stop_timeout=0)
        env.mtserve = dataclasses.replace(self.cfg, throughput=0.0)
        env.mtserve_sampler = lf.Sampler()
        env.events.request.add_listener(env.mtserve_sampler.on_request)
        env.mtserve_sampler.open("probe")
        user = lf.USER_CLASSES[workload](env)
        user.on_start()
        try:
            for _ in range(n):
                user.utterance()
        finally:
            user.on_stop()
        rows = env.mtserve_sampler.close(0.0)["rows"]
        return lf.summarize_rows(rows.get(f"{lf.UTTERANCE}:{workload}", []))

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

    # ------------------------------------------------------------ one step
    def _server_snapshot(self, workload: str) -> dict:
        out = {}
        for endpoint in self.cfg.plan.workload_endpoints(workload):
            try:
                out[endpoint] = protocol.server_statistics(endpoint, timeout=self.cfg.timeout)
            except Exception as e:  # noqa: BLE001 - the step's client numbers still stand; say why none
                out[endpoint] = {"error": str(e)}
        return out

    def _server_view(self, before: dict, after: dict, seconds: float) -> dict:
        """{model (or 'model @ endpoint' when the workload reaches several): per-request milliseconds}."""
        several = len(after) > 1
        view = {}
        for endpoint, stats in after.items():
            label = endpoint.authority or endpoint.address
            if "error" in stats or "error" in before.get(endpoint, {}):
                view[f"error @ {label}"] = {"error": stats.get("error") or before[endpoint].get("error")}
                continue
            for model, d in protocol.statistics_delta(before.get(endpoint, {}), stats).items():
                view[f"{model} @ {label}" if several else model] = protocol.summarize_statistics(d, seconds)
        return view

    def _window(self, workload: str, duration: float) -> tuple[list, dict, list[str]]:
        """One measurement window on every load generator: (its utterances' rows by key, generators, missing)."""
        env, runner = self.env, self.env.runner
        self.window += 1
        window = f"window-{self.window}"
        runner.send_message(lf.MSG_WINDOW, {"window": window, "open": True})
        gevent.sleep(duration)
        missing = lf.close_window(env, window)
        rows, gens = env.mtserve_collector.merged(window)
        env.mtserve_collector.windows.pop(window, None)
        return rows, gens, missing

    def measure(self, msg: dict) -> dict:
        """One step: users at `rate`, warm-up, then windows of `duration` s until the stability rule of
        loadtest/stability.py holds (`windows`: {"need", "max", "tolerance", "slo_ms"}; default one window)."""
        env, runner = self.env, self.env.runner
        workload = msg["workload"]
        rate, users = float(msg["rate"]), max(1, int(msg["users"]))
        duration, warmup = float(msg["duration"]), float(msg.get("warmup", 1.0))
        spawn = max(0.05, min(float(msg.get("spawn", 1.0)), warmup))
        rule = msg.get("windows") or {}
        need, max_windows = int(rule.get("need", 1)), max(1, int(rule.get("max", 1)))
        tolerance, slo_ms = float(rule.get("tolerance", stability.TOLERANCE)), float(rule.get("slo_ms", 0.0))
        cfg = dataclasses.replace(
            self.cfg, throughput=rate / users, timeout=float(msg.get("timeout") or self.cfg.timeout)
        )
        self._settle(workload, float(msg.get("settle_ms", 0.0)), float(msg.get("settle_s", 0.0)))
        if isinstance(runner, MasterRunner):  # workers rejoin after each stop (Locust re-registers them)
            self._wait_for_workers(30.0)
        env.mtserve = cfg  # sent to every worker when the test starts (locustfile: on_test_start)
        env.mtserve_sampler.accepting = True
        user_class = lf.USER_CLASSES[workload]
        key = f"{lf.UTTERANCE}:{workload}"
        measured: list[tuple[dict, dict, dict, list[str]]] = []  # (summary, rows, generators, missing)
        state, why = stability.MORE, ""
        starter = gevent.spawn(runner.start, users, users / spawn, user_classes=[user_class])
        try:
            gevent.sleep(warmup)
            before = self._server_snapshot(workload)
            t_open = time.monotonic()
            while state == stability.MORE:
                rows, gens, missing = self._window(workload, duration)
                summary = lf.summarize_rows(rows.get(key, []))
                summary["achieved_rps"] = summary["count"] / duration if duration > 0 else 0.0
                if missing:
                    summary["errors"] += 1
                measured.append((summary, rows, gens, missing))
                state, why = stability.verdict(
                    [m[0] for m in measured],
                    slo_ms or math.inf,
                    tolerance,
                    max_windows,
                    need,
                    count_slack=users,
                )
            drained_s = time.monotonic() - t_open
            after = self._server_snapshot(workload)
        finally:
            starter.kill(block=True)
            runner.stop()
        used = stability.pooled(measured, state, need)
        rows: dict[str, list] = {}
        gens: dict[str, dict] = {}
        missing = sorted({g for m in used for g in m[3]})
        for _, r, g, _ in used:
            for k, v in r.items():
                rows.setdefault(k, []).extend(v)
            for gid, info in g.items():
                total = gens.setdefault(
                    gid, {"index": info["index"], "started": 0, "recorded": 0, "undrained": 0}
                )
                for k in ("started", "recorded", "undrained"):
                    total[k] += info[k]
        samples = rows.get(key, [])
        out = lf.summarize_rows(samples)
        if missing:
            out["error_examples"] = [f"no samples from load generator(s) {missing}"] + out["error_examples"]
            out["errors"] += 1
        cpu = bool(runner.cpu_warning_emitted or getattr(runner, "worker_cpu_warning_emitted", False))
        pooled_s = duration * len(used)
        out.update(
            workload=workload,
            offered_rps=rate,
            users=users,
            duration_s=pooled_s,
            window_s=duration,
            warmup_s=warmup,
            achieved_rps=len(samples) / pooled_s if pooled_s > 0 else 0.0,
            windows=[
                {k: m[0][k] for k in ("count", "errors", "achieved_rps", "p50_ms", "p99_ms", "max_ms")}
                for m in measured
            ],
            pooled_windows=len(used),
            stability=state,
            stability_reason=why,
            undrained=sum(g["undrained"] for g in gens.values()),
            client_cpu_warning=cpu,
            generators=gens,
            models={
                k.split(":", 1)[1]: {
                    kk: v for kk, v in lf.summarize_rows(r).items() if kk != "error_examples"
                }
                for k, r in sorted(rows.items())
                if k.startswith(lf.GRPC + ":")
            },
            server=self._server_view(before, after, drained_s),
            server_window_s=drained_s,
        )
        if msg.get("csv_prefix"):
            out["locust_reports"] = self._write_locust_reports(Path(msg["csv_prefix"]))
        return out

    def _write_locust_reports(self, prefix: Path) -> list[str]:
        """Locust's own view of the step (its stats since the step's start, warm-up included): CSV + HTML."""
        import csv

        from locust.html import get_html_report
        from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

        prefix.parent.mkdir(parents=True, exist_ok=True)
        writer = StatsCSV(self.env, PERCENTILES_TO_REPORT)
        paths = []
        for suffix, fn in (
            ("_stats.csv", writer.requests_csv),
            ("_failures.csv", writer.failures_csv),
            ("_exceptions.csv", writer.exceptions_csv),
        ):
            path = prefix.with_name(prefix.name + suffix)
            with open(path, "w", newline="") as f:
                fn(csv.writer(f))
            paths.append(str(path))
        try:
            html = prefix.with_name(prefix.name + ".html")
            html.write_text(get_html_report(self.env, show_download_link=False))
            paths.append(str(html))
        except Exception as e:  # noqa: BLE001 - the HTML is a convenience; the CSVs are written
            print(f"mtserve: Locust's HTML report failed: {e}", file=sys.stderr)
        return paths


def main() -> int:
    channel = sys.stdout
    sys.stdout = sys.stderr  # anything else that prints must not corrupt the reply channel

    def reply(obj: dict) -> None:
        channel.write(PREFIX + json.dumps(protocol.json_safe(obj)) + "\n")
        channel.flush()

    worker = Worker()
    ops = {"setup": worker.setup, "probe": worker.probe, "measure": worker.measure}
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
                op = msg.get("op")
                if op == "quit":
                    worker.close()
                    reply({"ok": True})
                    break
                if op not in ops:
                    raise ValueError(f"unknown op {op!r}")
                if op != "setup" and worker.cfg is None:
                    raise ValueError("setup first")
                reply({"ok": True, **ops[op](msg)})
            except Exception as e:  # noqa: BLE001 - the driver turns it into a clear error
                reply({"ok": False, "error": f"{type(e).__name__}: {e}"})
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
