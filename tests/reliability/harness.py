"""What the reliability tests share: traffic (closed-loop and open-loop, real gRPC to 127.0.0.1), `mtserve serve`
as a real process, Triton's processes and their memory from /proc, and the results file.

Open loop means requests leave on a fixed schedule whatever the server does (as independent users do), so an
overloaded server meets more traffic than it answers; a closed loop (N callers, each waiting for its answer)
measures what the server can do at most. Every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from mtserve.core.machine import describe as describe_machine
from mtserve.loadtest.closed_loop import closed_loop as run_closed_loop
from mtserve.loadtest.protocol import GRPC_OPTIONS, infer_request
from mtserve.loadtest.workload import build_pool
from mtserve.serving.triton import free_port
from mtserve.serving.watchdog import rss_bytes, stub_processes

ROOT = Path(__file__).resolve().parents[2]
MTSERVE = ROOT / ".venv" / "bin" / "mtserve"
# where the results go (MTSERVE_REL_RESULTS: elsewhere, e.g. while trying a change out)
RESULTS = Path(os.environ.get("MTSERVE_REL_RESULTS") or ROOT / "docs" / "results" / "reliability")
TICK = os.sysconf("SC_CLK_TCK")
MAX_INFLIGHT = 20_000  # open loop: past this many unanswered requests the client stops sending (and says so)


# ---------------------------------------------------------------- numbers
def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def percentile(values, q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def ms(x: float | None) -> float | None:
    return None if x is None else round(1000.0 * x, 1)


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    return 60.0 * sum((t - mx) * (v - my) for t, v in points) / sxx


# ---------------------------------------------------------------- traffic
@dataclass
class Call:
    sent: float  # monotonic time it left
    latency: float  # seconds until its answer (or error)
    code: str  # "OK" or the gRPC status name
    detail: str = ""
    lag: float = 0.0  # how late it left against the open-loop schedule


@dataclass
class Traffic:
    """The calls of one phase; summaries by outcome."""

    name: str
    start: float
    end: float
    rate: float | None = None  # offered utterances/s (open loop)
    calls: list[Call] = field(default_factory=list)
    unsent: int = 0  # open loop: scheduled but not sent (client bound hit)

    def ok(self) -> list[Call]:
        return [c for c in self.calls if c.code == "OK"]

    def failed(self) -> list[Call]:
        return [c for c in self.calls if c.code != "OK"]

    def summary(self) -> dict:
        ok, bad = self.ok(), self.failed()
        span = max(1e-9, self.end - self.start)
        sends = [c.sent for c in self.calls]
        sent_span = (max(sends) - self.start) if sends else 0.0  # the client may fall behind its schedule
        codes = Counter(c.code for c in self.calls)
        examples = {}
        for c in bad:
            examples.setdefault(c.code, c.detail[:300])
        return {
            "seconds": round(span, 1),
            "offered_rps": None if self.rate is None else round(self.rate, 1),
            "sent": len(self.calls),
            "unsent": self.unsent,
            "ok": len(ok),
            "failed": len(bad),
            "codes": dict(codes),
            "error_examples": examples,
            "goodput_rps": round(len(ok) / span, 1),
            "ok_p50_ms": ms(percentile([c.latency for c in ok], 50)),
            "ok_p99_ms": ms(percentile([c.latency for c in ok], 99)),
            "ok_max_ms": ms(max((c.latency for c in ok), default=None)),
            "failed_p50_ms": ms(percentile([c.latency for c in bad], 50)),
            "failed_p99_ms": ms(percentile([c.latency for c in bad], 99)),
            "sent_rps": round(len(self.calls) / max(1e-9, sent_span), 1),
            "send_lag_p99_ms": ms(percentile([c.lag for c in self.calls], 99)),
        }

    def buckets(self, origin: float, width: float = 1.0) -> list[dict]:
        """Per `width`-second bucket of send time after `origin`: count, failures, p99 of every call."""
        out: dict[int, list[Call]] = {}
        for c in self.calls:
            out.setdefault(int((c.sent - origin) // width), []).append(c)
        return [
            {
                "t": round(k * width, 1),
                "n": len(v),
                "failed": sum(c.code != "OK" for c in v),
                "p99_ms": ms(percentile([c.latency for c in v], 99)),
            }
            for k, v in sorted(out.items())
        ]


class Client:
    """Raw gRPC to Triton (prebuilt requests, as the load test sends them), over several connections so that
    thousands of calls in flight are not queued inside one HTTP/2 connection on the client side."""

    def __init__(self, url: str, model: str = "multitask", connections: int = 8, pool_size: int = 500):
        from tritonclient.grpc import service_pb2_grpc

        self.url = url
        self.channels = [
            grpc.insecure_channel(url, options=GRPC_OPTIONS + [("mtserve.connection", i)])
            for i in range(connections)
        ]
        self.stubs = [service_pb2_grpc.GRPCInferenceServiceStub(ch) for ch in self.channels]
        self.requests = [infer_request(model, u, []) for u in build_pool(["corpus"], size=pool_size, seed=1)]
        self._n = 0

    def next(self):
        self._n += 1
        return self.stubs[self._n % len(self.stubs)], self.requests[self._n % len(self.requests)]

    def close(self) -> None:
        for ch in self.channels:
            ch.close()


def open_loop(
    client: Client,
    rate: float,
    seconds: float,
    deadline: float,
    name: str = "",
    max_calls: int = 2_000_000,
    stop: threading.Event | None = None,
) -> Traffic:
    """`rate` calls per second on a fixed schedule for `seconds` (or until `stop` is set), each with a
    `deadline` (seconds); returns once every call has its answer (bounded by the deadline)."""
    t0 = time.monotonic()
    tr = Traffic(name, t0, t0 + seconds, rate)
    lock = threading.Lock()
    inflight = [0]
    done = threading.Event()
    n_total = min(max_calls, int(rate * seconds))
    target = [n_total]  # calls that will have been sent or given up when the loop ends

    def finished(fut, sent, lag):
        lat = time.monotonic() - sent
        try:
            fut.result()
            call = Call(sent, lat, "OK", lag=lag)
        except grpc.RpcError as e:
            call = Call(sent, lat, e.code().name, e.details() or "", lag)
        except Exception as e:  # noqa: BLE001 - counted like any failure
            call = Call(sent, lat, type(e).__name__, str(e), lag)
        with lock:
            tr.calls.append(call)
            inflight[0] -= 1
            if inflight[0] == 0 and len(tr.calls) + tr.unsent >= target[0]:
                done.set()

    for i in range(n_total):
        if stop is not None and stop.is_set():
            with lock:
                target[0] = i  # the rest is never scheduled
            tr.end = time.monotonic()
            break
        due = t0 + i / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        with lock:
            if inflight[0] >= MAX_INFLIGHT:
                tr.unsent += 1
                continue
            inflight[0] += 1
        stub, req = client.next()
        sent = time.monotonic()
        fut = stub.ModelInfer.future(req, timeout=deadline)
        fut.add_done_callback(lambda f, s=sent, lag=sent - due: finished(f, s, lag))
    with lock:
        if inflight[0] == 0:
            done.set()
    done.wait(deadline + 30)
    return tr


def closed_loop(
    client: Client, users: int, seconds: float, deadline: float = 10.0, warmup: float = 3.0
) -> dict:
    """`users` callers, each sending its next request when its last is answered: the most the server does
    (loadtest/closed_loop.py drives it; here over the client's shared connections and prebuilt requests)."""

    def caller(_k: int):
        def send() -> None:
            stub, req = client.next()
            stub.ModelInfer(req, timeout=deadline)

        return send

    run = run_closed_loop(
        users, seconds, caller, warmup=warmup, join_timeout=seconds + warmup + deadline + 30
    )
    ok = run.ok()
    return {
        "users": users,
        "seconds": seconds,
        "throughput_rps": round(len(ok) / seconds, 1),
        "failed": len(run.failed()),
        "p50_ms": ms(percentile([c.latency for c in ok], 50)),
        "p99_ms": ms(percentile([c.latency for c in ok], 99)),
    }


def sustainable_rate(
    client: Client,
    closed_capacity: float,
    slo_ms: float = 200.0,
    step_s: float = 20.0,
    deadline: float = 5.0,
    fractions: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
) -> dict:
    """The highest open-loop rate the server keeps up with: fractions of the closed-loop capacity, rising, each
    for `step_s`, until one fails (a failed call, or p99 over `slo_ms`: the load test's default SLO). A closed
    loop of 16 callers keeps big batches forming; an open loop at the same rate sends them one by one, at a
    higher cost per request, so the closed-loop figure overstates what independent users can be served at.
    Returns the passing rate and every step."""
    steps, best = [], None
    for f in fractions:
        s = open_loop(client, f * closed_capacity, step_s, deadline, f"sustainable {f:g}").summary()
        ok = s["failed"] == 0 and s["ok_p99_ms"] is not None and s["ok_p99_ms"] <= slo_ms
        steps.append(
            {"fraction": f, "rate_rps": s["offered_rps"], "p99_ms": s["ok_p99_ms"], "failed": s["failed"]}
        )
        if not ok:
            break
        best = f * closed_capacity
        time.sleep(2.0)  # whatever the step left in flight drains before the next
    return {
        "rate_rps": None if best is None else round(best, 1),
        "slo_p99_ms": slo_ms,
        "step_s": step_s,
        "steps": steps,
    }


# ---------------------------------------------------------------- `mtserve serve`, a real process
class Serve:
    """`mtserve serve` in its own process on 127.0.0.1 (free ports), its output collected."""

    def __init__(self, repo: Path, *args: str, ready_timeout: float = 300.0):
        self.repo = Path(repo)
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.cmd = [
            str(MTSERVE),
            "serve",
            "--repo",
            str(repo),
            "--address",
            "127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            *args,
            # e.g. "--no-watchdog": to see a check fail on a server without a fix (recorded with the results)
            *os.environ.get("MTSERVE_REL_SERVE_ARGS", "").split(),
        ]
        self.ready_timeout = ready_timeout
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> Serve:
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        threading.Thread(target=self._pump, daemon=True).start()
        end = time.monotonic() + self.ready_timeout
        while time.monotonic() < end:
            if any(line.startswith("Triton ready") for line in self.lines):
                return self
            if self.proc.poll() is not None:
                time.sleep(0.5)  # the rest of its output
                raise RuntimeError(f"mtserve serve exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mtserve serve was not ready after {self.ready_timeout} s:\n{self.tail()}")

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def tail(self, n: int = 40) -> str:
        return "".join(self.lines[-n:])

    def grep(self, text: str) -> list[str]:
        return [line.rstrip() for line in self.lines if text in line]

    @property
    def triton_pid(self) -> int | None:
        """tritonserver: the child of `mtserve serve`."""
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid and "tritonserver" in (proc / "comm").read_text():
                    return int(proc.name)
            except (OSError, IndexError, ValueError):
                continue
        return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.triton_pid is not None

    def stop(self, timeout: float = 90.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def live(url: str) -> bool:
    import tritonclient.grpc as g

    try:
        with g.InferenceServerClient(url) as c:
            return bool(c.is_server_live(client_timeout=5))
    except Exception:  # noqa: BLE001 - not live is the answer
        return False


# ---------------------------------------------------------------- Triton's processes
def triton_memory(triton_pid: int) -> dict[str, int]:
    """Resident bytes of tritonserver and of each python-backend stub (by model instance)."""
    out = {"tritonserver": rss_bytes(triton_pid)}
    for s in stub_processes(triton_pid):
        out[f"{s.model}/{s.instance}"] = s.rss_bytes
    return out


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


def process_jiffies(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


class Sampler:
    """Every `interval` seconds, from /proc: the resident memory of tritonserver and each python-backend stub,
    and the CPU time of every process of this test (this client, tritonserver, the stubs, including stubs that
    come and go), against the whole machine's. Shared machines make numbers noisy: `quietness()` says how busy
    the machine was with other work meanwhile."""

    def __init__(
        self, triton_pid: int | None, interval: float = 1.0, url: str | None = None, model: str = ""
    ):
        self.triton_pid, self.interval = triton_pid, interval
        self.rss: list[tuple[float, dict[str, int]]] = []
        self.other: list[
            tuple[float, float]
        ] = []  # (seconds, cores used by other work in the interval before)
        # (seconds, cores used by this client, by Triton's processes) in the interval before: a client that
        # slows down over a long run shows here, not as server latency
        self.cores: list[tuple[float, float, float]] = []
        # with a url: (seconds, requests, mean server-side ms) of `model` in the interval before, from
        # Triton's own statistics: what the server took, without the client's share
        self.url, self.model = url, model
        self.server: list[tuple[float, int, float | None]] = []
        self._prev_stats: tuple[int, int] | None = None
        self._prev_split: tuple[int, int] | None = None
        self._prev: tuple[float, int, int] | None = None
        self._first: dict[int, int] = {}  # pid -> jiffies when first seen (0 for processes born later)
        self._last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.load_start = os.getloadavg()[0]
        self.t0 = time.monotonic()
        self.busy0, _ = cpu_jiffies()
        self._sample(initial=True)

    def _pids(self) -> list[int]:
        pids = [os.getpid()]
        if self.triton_pid and Path(f"/proc/{self.triton_pid}").exists():
            pids += [self.triton_pid] + [s.pid for s in stub_processes(self.triton_pid)]
        return pids

    def _sample(self, initial: bool = False) -> None:
        for pid in self._pids():
            j = process_jiffies([pid])
            self._first.setdefault(pid, j if initial else 0)
            self._last[pid] = j
        t = time.monotonic() - self.t0
        if self.triton_pid and Path(f"/proc/{self.triton_pid}").exists():
            self.rss.append((t, triton_memory(self.triton_pid)))
        # other work per interval: when errors come, was the machine busy with something else?
        busy, own = cpu_jiffies()[0], sum(self._last[p] - self._first[p] for p in self._last)
        client = self._last.get(os.getpid(), 0) - self._first.get(os.getpid(), 0)
        stats = self._server_stats()
        if self._prev is not None:
            t0, busy0, own0 = self._prev
            if t > t0:
                self.other.append(
                    (round(t, 1), round(max(0, (busy - busy0) - (own - own0)) / TICK / (t - t0), 2))
                )
                c0, s0 = self._prev_split
                self.cores.append(
                    (
                        round(t, 1),
                        round((client - c0) / TICK / (t - t0), 2),
                        round(((own - client) - s0) / TICK / (t - t0), 2),
                    )
                )
                if stats is not None and self._prev_stats is not None:
                    n, ns = stats[0] - self._prev_stats[0], stats[1] - self._prev_stats[1]
                    self.server.append((round(t, 1), n, round(ns / n / 1e6, 2) if n > 0 else None))
        self._prev = (t, busy, own)
        self._prev_split = (client, own - client)
        if stats is not None:
            self._prev_stats = stats

    def _server_stats(self) -> tuple[int, int] | None:
        """(successful requests, their summed server-side ns) of the model so far, or None."""
        if not self.url:
            return None
        import tritonclient.grpc as g

        try:
            with g.InferenceServerClient(self.url) as c:
                st = c.get_inference_statistics(self.model, as_json=True, client_timeout=5)["model_stats"][0]
            ok = st["inference_stats"]["success"]
            return int(ok.get("count", 0)), int(ok.get("ns", 0))
        except Exception:  # noqa: BLE001 - a sample missed is a gap in the series, not a failure
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> Sampler:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._sample()
        return self

    def quietness(self) -> dict:
        seconds = max(1e-9, time.monotonic() - self.t0)
        busy1, _ = cpu_jiffies()
        own = sum(self._last[p] - self._first[p] for p in self._last)
        other = max(0, (busy1 - self.busy0) - own)
        return {
            "cores": os.cpu_count(),
            "seconds": round(seconds, 1),
            "loadavg_1m_start": round(self.load_start, 2),
            "loadavg_1m_end": round(os.getloadavg()[0], 2),
            "other_work_cores": round(other / TICK / seconds, 2),
            "this_test_cores": round(own / TICK / seconds, 2),
        }


# ---------------------------------------------------------------- results
def git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        # The suite's own results files do not count: after the first section of a run they always differ.
        own = [
            f":(exclude){p.relative_to(ROOT)}"
            for p in (RESULTS.with_suffix(".json"), RESULTS.with_suffix(".md"))
            if p.is_relative_to(ROOT)
        ]
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", ".", *own],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command() -> str:
    """What produced this: `make reliability ...` (the Makefile says so) or the pytest command line, with the
    environment variables that change the measurement."""
    made = os.environ.get("MTSERVE_RELIABILITY_COMMAND")
    cmd = made or "pytest " + " ".join(sys.argv[1:])
    env = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MTSERVE_REL_"))
    return (env + " " + cmd).strip()


@dataclass
class Section:
    """One part of the report: measurements and the checks asserted on them. Written to the results file
    before the test asserts, so a failing check is recorded too."""

    name: str
    title: str
    measurements: dict = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, value, limit, ok: bool, how: str) -> bool:
        self.checks.append({"check": name, "value": value, "limit": limit, "passed": bool(ok), "how": how})
        return bool(ok)

    def failed(self) -> list[str]:
        return [
            f"{c['check']}: {c['value']} (limit {c['limit']}; {c['how']})"
            for c in self.checks
            if not c["passed"]
        ]

    def save(self, path: Path = RESULTS) -> None:
        write_section(self, path)


def write_section(section: Section, path: Path = RESULTS) -> None:
    """Merge one section into reliability.json (the others are kept: `-k` runs update their part only) and
    write reliability.md from the whole file."""
    jpath = path.with_suffix(".json")
    jpath.parent.mkdir(parents=True, exist_ok=True)
    try:
        doc = json.loads(jpath.read_text())
    except (OSError, ValueError):
        doc = {}
    doc.setdefault("sections", {})
    doc["about"] = (
        "mtserve reliability suite (tests/reliability, `make reliability`): overload, faults and soak against a "
        "real local Triton; each section records the command, date, machine and commit that produced it"
    )
    doc["sections"][section.name] = {
        "title": section.title,
        "command": command(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": git_commit(),
        "machine": describe_machine(),
        "passed": all(c["passed"] for c in section.checks),
        "checks": section.checks,
        "notes": section.notes,
        "measurements": section.measurements,
    }
    jpath.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    path.with_suffix(".md").write_text(render_markdown(doc))


ORDER = ["overload", "soak", "soak_short", "stub_kill", "task_crash", "bad_files"]


def render_markdown(doc: dict) -> str:
    out = [
        "# Reliability: overload, faults, soak",
        "",
        "Generated by the reliability suite (`make reliability`; one part: "
        "`make reliability K=<section>`) from [reliability.json](reliability.json), which holds every number. "
        "Each section says which command produced it, when, on which machine and commit, and how busy the "
        "machine was with other work meanwhile (`other_work_cores`).",
        "",
    ]
    sections = doc.get("sections", {})
    for name in sorted(sections, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n)):
        s = sections[name]
        out += [
            f"## {s['title']}",
            "",
            f"- command: `{s['command']}`",
            f"- date: {s['date']}, commit {s['commit']}",
            f"- machine: {s['machine'].get('cpu')} ({s['machine'].get('cores')} cores, "
            f"{s['machine'].get('memory_gib')} GiB), {s['machine'].get('host')}",
            f"- result: {'all checks passed' if s['passed'] else 'FAILED: ' + ', '.join(c['check'] for c in s['checks'] if not c['passed'])}",
            "",
        ]
        for note in s.get("notes", []):
            out.append(f"{note}")
            out.append("")
        if s["checks"]:
            out += ["| check | measured | limit | passed | how |", "| --- | --- | --- | --- | --- |"]
            for c in s["checks"]:
                out.append(
                    f"| {c['check']} | {c['value']} | {c['limit']} | {'yes' if c['passed'] else '**no**'} | "
                    f"{c['how']} |"
                )
            out.append("")
        out += ["<details><summary>measurements</summary>", "", "```json"]
        out.append(json.dumps(s["measurements"], indent=1, default=str)[:20000])
        out += ["```", "", "</details>", ""]
    return "\n".join(out)
