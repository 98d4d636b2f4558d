"""Python-backend model processes that die: find them, and reload their models (explicit model control).

Every python-backend model instance is its own process, `triton_python_backend_stub`, a child of tritonserver.
What Triton 2.51 does when one dies (SIGKILL, the OOM killer, a crash in native code): nothing that heals. The
model stays READY in the repository index and in /v2/models/<m>/ready, and every request to it, and to every
ensemble that uses it, fails after about a second with INTERNAL "Stub process '<instance>' is not healthy.",
for as long as the server runs; the backend never starts the stub again. Loading the model again does not help:
its config and files did not change, so Triton keeps the instance, dead stub and all. A load whose config
differs does: Triton then builds new instances (new stubs) before it retires the old ones. So the watchdog
reloads a model whose stub died with the served config plus one parameter, `mtserve_restart`, as the load's
config override. Measured in tests/reliability/test_stub_kill.py (docs/results/reliability.md).

Only in explicit model-control mode may a client load models; in `none` and `poll` modes the watchdog can only
say, loudly and once per dead process, which model is broken and that a restart of the server is needed.

Standard library and tritonclient only (the `serve` role).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

STUB = "triton_python_backend_stub"
RESTART_PARAMETER = "mtserve_restart"


@dataclass(frozen=True)
class Stub:
    """One python-backend process: the model instance it runs, read from its command line."""

    pid: int
    model: str
    version: str
    instance: str
    rss_bytes: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.version, self.instance)


def _stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], rss pages [21])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (VmRSS), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def stub_processes(triton_pid: int) -> list[Stub]:
    """The live python-backend stubs of the tritonserver process `triton_pid` (its children, zombies
    excluded). Their command line: stub, <repo>/<model>/<version>/model.py, shm region, shm sizes, parent pid,
    library path, IPC handle, instance name, ... . A stub whose instance name is the model name alone is the
    short-lived one the python backend runs while loading (to complete the config), not an instance."""
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not cmd or not cmd[0].endswith(STUB.encode()) or len(cmd) < 9:
            continue
        stat = _stat(proc.name)
        if stat is None or stat[0] in ("Z", "X") or int(stat[1]) != triton_pid:
            continue
        parts = Path(cmd[1].decode(errors="replace")).parts
        if len(parts) < 3:
            continue
        model, version, instance = parts[-3], parts[-2], cmd[8].decode(errors="replace")
        if instance == model:
            continue
        pid = int(proc.name)
        out.append(Stub(pid, model, version, instance, rss_bytes(pid)))
    return out


@dataclass
class Event:
    time: float  # time.time()
    model: str
    instance: str
    dead_pid: int
    action: str  # "reloaded", "reload failed", "reported"
    seconds: float = 0.0  # the reload's duration
    detail: str = ""


@dataclass
class StubWatchdog:
    """Every `interval` seconds: the stubs of `triton_pid` against the READY models of the server at `url`. An
    instance seen alive whose process is gone while its model stays READY for `grace` scans is dead: its model
    is reloaded (`reload`: explicit mode) or reported."""

    triton_pid: int
    url: str
    reload: bool = True
    interval: float = 0.5
    grace: int = 2
    log: object = print
    events: list[Event] = field(default_factory=list)

    def __post_init__(self):
        self._known: dict[tuple, int] = {}  # established instances -> their last pid
        self._strikes: dict[tuple, int] = {}
        self._reported: set[int] = set()
        self._backoff: dict[str, float] = {}  # model -> no reload attempt before this time (after a failure)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None

    # -- the server
    def _grpc(self):
        if self._client is None:
            import tritonclient.grpc as grpcclient

            self._client = grpcclient.InferenceServerClient(self.url)
        return self._client

    def _ready(self) -> set[tuple[str, str]]:
        index = self._grpc().get_model_repository_index(as_json=True, client_timeout=5).get("models", [])
        return {(m["name"], str(m.get("version", ""))) for m in index if m.get("state") == "READY"}

    def _reload(self, model: str, why: str) -> None:
        """Load `model` with its served config plus a changed parameter: a config that differs makes Triton
        build new instances (and stubs) before it retires the old ones; an unchanged one would keep the dead."""
        cfg = self._grpc().get_model_config(model, as_json=True, client_timeout=10)["config"]
        cfg.setdefault("parameters", {})[RESTART_PARAMETER] = {"string_value": f"{time.time():.3f} {why}"}
        self._grpc().load_model(model, config=json.dumps(cfg), client_timeout=300)

    # -- one scan
    def check(self) -> list[Event]:
        """One scan; the events it produced."""
        try:
            ready = self._ready()
        except Exception:  # noqa: BLE001 - the server is busy or stopping: not a stub's death
            return []
        alive: dict[tuple, set[int]] = {}
        for s in stub_processes(self.triton_pid):
            alive.setdefault(s.key, set()).add(s.pid)
        new = []
        for key, pids in alive.items():
            if key[:2] in ready:
                # an instance of a READY model (the python backend's other, short-lived stub - the one that
                # completes the config while a model loads - is left out by stub_processes)
                self._known[key] = max(pids)
                self._strikes.pop(key, None)
        dead: dict[str, list[tuple]] = {}
        for key in list(self._known):
            if key in alive:
                continue
            if key[:2] not in ready:  # unloaded or replaced by a new version: not a death
                self._known.pop(key)
                self._strikes.pop(key, None)
                continue
            self._strikes[key] = self._strikes.get(key, 0) + 1
            if self._strikes[key] >= self.grace:
                dead.setdefault(key[0], []).append(key)
        for model, keys in dead.items():
            pids = [self._known[k] for k in keys]
            what = ", ".join(f"{k[2]} (pid {self._known[k]})" for k in keys)
            if not self.reload:
                for k in keys:
                    if self._known[k] not in self._reported:
                        self._reported.add(self._known[k])
                        self.log(
                            f"model {model}: its python-backend process {k[2]} (pid {self._known[k]}) died; "
                            "Triton does not restart it and still reports the model READY, so every request "
                            f"to {model} fails: restart the server (with --model-control explicit the "
                            "watchdog reloads such a model by itself)"
                        )
                        new.append(Event(time.time(), model, k[2], self._known[k], "reported"))
                continue
            if time.monotonic() < self._backoff.get(model, 0.0):
                continue
            t0 = time.monotonic()
            try:
                self._reload(model, f"pid {','.join(map(str, pids))} died")
            except Exception as e:  # noqa: BLE001 - said, and tried again later
                msg = e.message() if hasattr(e, "message") else str(e)
                self._backoff[model] = time.monotonic() + 10.0
                self.log(f"model {model}: reloading after {what} died failed: {msg}; trying again in 10 s")
                new.append(Event(time.time(), model, keys[0][2], pids[0], "reload failed", detail=msg))
                continue
            took = time.monotonic() - t0
            self.log(f"model {model}: its process {what} died; reloaded it in {took:.1f} s")
            for k in keys:
                self._known.pop(k, None)
                self._strikes.pop(k, None)
            new.append(Event(time.time(), model, keys[0][2], pids[0], "reloaded", took))
        self.events += new
        return new

    # -- in the background
    def _loop(self) -> None:
        while True:  # the first scan at once: a process must be seen alive once to be missed later
            try:
                self.check()
            except Exception as e:  # noqa: BLE001 - the watchdog never takes the server down
                self.log(f"watchdog: {type(e).__name__}: {e}")
            if self._stop.wait(self.interval):
                return

    def start(self) -> StubWatchdog:
        self._thread = threading.Thread(target=self._loop, name="stub-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
