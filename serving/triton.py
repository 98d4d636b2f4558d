# Over 900 lines: the local Triton's whole life - finding the bundled binary, its environment, start, stop, the CLI.
"""Start and stop a real local Triton Inference Server (the binary bundled in the `nvidia-pytriton` wheel).

`TritonServer` is what tests, the demo and `mtserve serve` use: it prepares a backend directory
for the python backend, builds the environment Triton and its python-backend stubs need, spawns
`tritonserver`, waits until `GET /v2/health/ready` answers 200, and stops it with SIGINT
(SIGKILL after a timeout).

The environment matters more than the command line (all of it is in `server_env`):

* `LD_LIBRARY_PATH` starts with the running interpreter's `LIBDIR`, then the wheel's
  `nvidia_pytriton.libs`. The python-backend stub is linked against `libpython3.X.so`; without
  `LIBDIR` first it may load another build of that library (the system's) than the one this
  Python's extension modules were built for, and e.g. `import ssl` fails with an undefined symbol.
* `PYTHONPATH` holds this interpreter's site-packages: the stub is an embedded interpreter that
  knows nothing about the virtual environment. The project itself is not on it: the repository's
  models import nothing from mtserve, as in NVIDIA's stock image.
* `OMP_NUM_THREADS=1` and friends: every python-backend model instance is its own process, so
  each one gets one math thread unless the caller's environment says otherwise.

Why one long module: each section below is a trap of this one binary (where the wheel keeps it, the backend
directory it needs, the environment its stubs need, readiness, a clean stop) and `mtserve serve` is the thin
command line over them; split apart, a fix to one trap would have to be repeated in the others' callers.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import ctypes.util
import glob
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

from mtserve.core.errors import UserError

MODEL_CONTROL_MODES = ("none", "poll", "explicit")

# Python-backend shared memory, per model instance. Each instance gets its own region of the default
# size, which grows in steps of the growth size when a request/response needs more. One hidden-state
# tensor of 64 x 128 x 768 fp32 is 24 MiB; an instance holds its input and output at once, so a 16 MiB
# start and 32 MiB steps reach that size in one or two steps, while a repository of a dozen instances
# reserves ~200 MiB of /dev/shm (tmpfs pages are only used once touched).
SHM_DEFAULT_BYTES = 16 * 1024 * 1024
SHM_GROWTH_BYTES = 32 * 1024 * 1024

# Environment variables that would make each python-backend process start a thread per core.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "MTSERVE_ORT_THREADS": "1",
}

_PORT_CLASH = re.compile(r"already in use|address in use|failed to start (grpc|http|metrics)", re.IGNORECASE)


# --------------------------------------------------------------------------------------------------
# Locating the bundled Triton
# --------------------------------------------------------------------------------------------------


def _pytriton_dir() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "nvidia-pytriton is not installed in this environment (it bundles the tritonserver binary): "
            "run `make venv` or `pip install nvidia-pytriton`"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _dist_dir() -> Path:
    return _pytriton_dir() / "tritonserver"


def find_tritonserver() -> Path:
    """The `tritonserver` binary bundled in the nvidia-pytriton wheel."""
    binary = _dist_dir() / "bin" / "tritonserver"
    if not binary.is_file():
        raise UserError(f"nvidia-pytriton is installed but its tritonserver binary is missing: {binary}")
    if not os.access(binary, os.X_OK):
        raise UserError(f"the bundled tritonserver is not executable: {binary}")
    return binary


def triton_libs_dir() -> Path:
    """The shared libraries the bundled binary, backend and stubs link against."""
    root = _pytriton_dir()
    for candidate in (root.parent / "nvidia_pytriton.libs", root / "tritonserver" / "external_libs"):
        if candidate.is_dir():
            return candidate
    raise UserError(f"nvidia-pytriton's shared libraries (nvidia_pytriton.libs) were not found beside {root}")


def _python_backend_sources() -> dict[str, Path]:
    dist = _dist_dir()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    sources = {
        "libtriton_python.so": dist / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": dist / "backends" / "python" / "triton_python_backend_utils.py",
        "triton_python_backend_stub": dist / "python_backend_stubs" / version / "triton_python_backend_stub",
    }
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        stubs = sorted(p.name for p in (dist / "python_backend_stubs").glob("*"))
        raise UserError(
            f"nvidia-pytriton lacks python-backend files for Python {version}: {', '.join(missing)}"
            + (f" (stubs exist for: {', '.join(stubs)})" if stubs else "")
        )
    return sources


def cache_root() -> Path:
    """Where mtserve keeps prepared files: $MTSERVE_CACHE_DIR, else $XDG_CACHE_HOME/mtserve, else ~/.cache/mtserve."""
    if os.environ.get("MTSERVE_CACHE_DIR"):
        return Path(os.environ["MTSERVE_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "mtserve"


def _backend_complete(directory: Path, sources: dict[str, Path]) -> bool:
    return all(
        (directory / "python" / name).is_file()
        and (directory / "python" / name).stat().st_size == src.stat().st_size
        for name, src in sources.items()
    )


def backend_directory(root: str | Path | None = None) -> Path:
    """A `--backend-directory` holding `python/` with the backend library, its utils and the stub
    built for the running Python. Built once per (pytriton install, Python version) under
    `cache_root()`; idempotent and safe when several processes race (each builds a private copy and
    renames it into place; the loser discards its copy)."""
    sources = _python_backend_sources()
    key = hashlib.sha256()
    for name, src in sorted(sources.items()):
        st = src.stat()
        key.update(f"{name}\0{src}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    name = f"triton-backends-py{sys.version_info[0]}.{sys.version_info[1]}-{key.hexdigest()[:12]}"

    roots = (
        [Path(root)]
        if root is not None
        else [cache_root(), Path(tempfile.gettempdir()) / f"mtserve-{os.getuid()}"]
    )
    errors = []
    for base in roots:
        final = base / name
        if _backend_complete(final, sources):
            return final
        try:
            base.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=base))
            try:
                (staging / "python").mkdir()
                for fname, src in sources.items():
                    shutil.copy2(src, staging / "python" / fname)
                os.chmod(staging / "python" / "triton_python_backend_stub", 0o755)
                try:
                    os.rename(staging, final)
                except OSError:
                    # Another process won the race (the target exists and is not empty), or a stale
                    # incomplete directory is in the way: move that aside and try once more.
                    if not _backend_complete(final, sources) and final.exists():
                        shutil.rmtree(final, ignore_errors=True)
                        with contextlib.suppress(OSError):
                            os.rename(staging, final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            if _backend_complete(final, sources):
                return final
            errors.append(f"{final}: incomplete after copying")
        except OSError as e:
            errors.append(f"{base}: {e}")
    raise UserError("could not prepare Triton's backend directory: " + "; ".join(errors))


# --------------------------------------------------------------------------------------------------
# Ports and environment
# --------------------------------------------------------------------------------------------------


def _free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it on 127.0.0.1)."""
    return _free_ports(1)[0]


def _site_packages() -> list[str]:
    paths = []
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p and p not in paths and os.path.isdir(p):
            paths.append(p)
    return paths


def _join(*parts: str | None) -> str:
    out: list[str] = []
    for part in parts:
        for p in (part or "").split(os.pathsep):
            if p and p not in out:
                out.append(p)
    return os.pathsep.join(out)


def server_env(extra: dict | None = None, base: dict | None = None) -> dict[str, str]:
    """The environment `tritonserver` (and every python-backend stub it spawns) runs with."""
    env = dict(os.environ if base is None else base)
    libdir = sysconfig.get_config_var("LIBDIR")
    env["LD_LIBRARY_PATH"] = _join(
        libdir if libdir and os.path.isdir(libdir) else None,
        str(triton_libs_dir()),
        env.get("LD_LIBRARY_PATH"),
    )
    env["PYTHONPATH"] = _join(*_site_packages(), env.get("PYTHONPATH"))
    env["PATH"] = _join(str(Path(sys.executable).parent), env.get("PATH") or os.defpath)
    for k, v in SINGLE_THREAD_ENV.items():
        env.setdefault(k, v)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: Triton stops if the process that started it dies


def _child_setup(cpus: frozenset[int] | None) -> Callable[[], None]:
    """What the child runs between fork and exec: PDEATHSIG, and its CPUs when given (inherited by the python
    backend's stub processes Triton starts, so the whole server stays on them)."""

    def setup() -> None:
        _set_pdeathsig()
        if cpus:
            os.sched_setaffinity(0, cpus)

    return setup


# --------------------------------------------------------------------------------------------------
# Before and after a start: what Triton would not say clearly
# --------------------------------------------------------------------------------------------------

_FAILED_LOAD = re.compile(r"failed to load '([^']+)' version (\d+): (.*?)(?:\\n|\"$|$)", re.MULTILINE)


def load_failures(log: str) -> list[str]:
    """One line per model Triton failed to load, from its log: "model 'x' version 1: <reason>" (the reason's
    first line: it names the file, e.g. "Load model from .../model.onnx failed: Protobuf parsing failed")."""
    out = {}
    for m in _FAILED_LOAD.finditer(log):
        out.setdefault((m.group(1), m.group(2)), m.group(3).strip())
    return [f"model '{name}' version {v}: {why}" for (name, v), why in out.items()]


def missing_model_files(repo: Path, models: list[str] | None = None) -> list[str]:
    """Python-backend model versions Triton would load without their model.py: Triton 2.51 does not fail such
    a load, it waits for the stub forever (at start: never ready; a live load: never answered). `models`: the
    models to look at (None or '*': all)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    problems = []
    wanted = None if models is None or "*" in models else set(models)
    for cfg_path in sorted(Path(repo).glob("*/config.pbtxt")):
        folder = cfg_path.parent
        if wanted is not None and folder.name not in wanted:
            continue
        try:
            cfg = text_format.Parse(cfg_path.read_text(), mc.ModelConfig())
        except (OSError, text_format.ParseError, UnicodeDecodeError):
            continue  # Triton says what is wrong with a config itself, at once
        if cfg.backend != "python":
            continue
        versions = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
        policy = cfg.version_policy
        if policy.HasField("specific"):
            versions = [v for v in versions if v in set(policy.specific.versions)]
        elif not policy.HasField("all"):  # latest (the default)
            n = policy.latest.num_versions or 1
            versions = versions[-n:]
        for v in versions:
            script = folder / str(v) / "model.py"
            if not script.is_file():
                problems.append(
                    f"model '{folder.name}' version {v}: {script} is missing (a python-backend model runs it; "
                    "Triton 2.51 would wait for it forever instead of failing the load)"
                )
    return problems


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------

_RUNNING: weakref.WeakSet[TritonServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop(timeout=10)


class TritonServer:
    """One `tritonserver` process on a model repository.

    Ports left as None are chosen free on 127.0.0.1 (and re-chosen if Triton finds one taken).
    `address` is where Triton listens: 127.0.0.1 by default here, None for Triton's own default
    (all interfaces), which `mtserve serve` uses. `log_file`: None writes Triton's output to a
    temporary file (removed after a clean stop), "-" lets it go to this process's stdout/stderr.
    `cpus`: the CPUs the server (and every python-backend process it starts) may run on.
    """

    def __init__(
        self,
        repo: str | Path,
        *,
        grpc_port: int | None = None,
        http_port: int | None = None,
        metrics_port: int | None = None,
        model_control: str = "none",
        load_models: list[str] | None = None,
        log_file: str | Path | None = None,
        log_verbose: int = 0,
        extra_args: Sequence[str] = (),
        env: dict | None = None,
        address: str | None = "127.0.0.1",
        shm_default_bytes: int = SHM_DEFAULT_BYTES,
        shm_growth_bytes: int = SHM_GROWTH_BYTES,
        repository_poll_secs: int | None = None,
        cache_config: str | None = None,
        cpus: Sequence[int] | None = None,
    ):
        if model_control not in MODEL_CONTROL_MODES:
            raise ValueError(f"model_control must be one of {MODEL_CONTROL_MODES}, got {model_control!r}")
        if load_models and model_control != "explicit":
            raise ValueError(
                "load_models needs model_control='explicit' (Triton refuses --load-model otherwise)"
            )
        self.repo = Path(repo).expanduser().resolve()
        self.model_control = model_control
        self.load_models = list(load_models or [])
        self.log_verbose = int(log_verbose)
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.address = address
        self.shm_default_bytes = int(shm_default_bytes)
        self.shm_growth_bytes = int(shm_growth_bytes)
        self.repository_poll_secs = repository_poll_secs
        # Triton's response cache, e.g. "local,size=268435456": used by the models whose config enables it
        # (`mtserve export --response-cache` enables it on the ensembles)
        self.cache_config = check_cache_config(cache_config) if cache_config else None
        # the CPUs the server and its python-backend processes may run on (None: every CPU this process may use);
        # `mtserve loadtest --repo --load-generator-cpus N` keeps its load generator off them
        self.cpus = frozenset(cpus) if cpus else None
        self._auto_ports = {
            "grpc": grpc_port is None,
            "http": http_port is None,
            "metrics": metrics_port is None,
        }
        self._ports = {"grpc": grpc_port, "http": http_port, "metrics": metrics_port}
        self._pick_ports()
        self._echo = log_file == "-"
        self._own_log = log_file is None  # a temporary file, made at start
        self._log_path: Path | None = None
        if log_file is not None and not self._echo:
            self._log_path = Path(log_file).expanduser().resolve()
        self.server_id = next((a.split("=", 1)[1] for a in self.extra_args if a.startswith("--id=")), None)
        if self.server_id is None:
            self.server_id = f"mtserve-triton-{uuid.uuid4().hex[:12]}"
            self.extra_args.insert(0, f"--id={self.server_id}")
        self._shm_prefix = f"mtserve{os.getpid()}x{uuid.uuid4().hex[:8]}_"
        self._proc: subprocess.Popen | None = None
        self._returncode: int | None = None
        self._final_tail: str | None = None
        self._signaled = False
        self._echo_tail: collections.deque[bytes] = collections.deque(maxlen=2000)
        self._lock = threading.RLock()
        self.startup_seconds: float | None = None

    # -- addresses ------------------------------------------------------------------------------

    def _pick_ports(self) -> None:
        auto = [k for k, is_auto in self._auto_ports.items() if is_auto]
        taken = {v for k, v in self._ports.items() if not self._auto_ports[k]}
        while auto:
            ports = [p for p in _free_ports(len(auto)) if p not in taken]
            if len(ports) == len(auto):
                self._ports.update(zip(auto, ports, strict=True))
                return

    @property
    def host(self) -> str:
        """The address clients on this machine use to reach the server."""
        if self.address in (None, "", "0.0.0.0"):
            return "127.0.0.1"
        if self.address == "::":
            return "[::1]"
        return f"[{self.address}]" if ":" in self.address else self.address

    @property
    def grpc_port(self) -> int:
        return self._ports["grpc"]

    @property
    def http_port(self) -> int:
        return self._ports["http"]

    @property
    def metrics_port(self) -> int:
        return self._ports["metrics"]

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.host}:{self.metrics_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- command line ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        args = [
            str(find_tritonserver()),
            f"--model-repository={self.repo}",
            f"--backend-directory={backend_directory()}",
            f"--cache-directory={_dist_dir() / 'caches'}",
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            f"--model-control-mode={self.model_control}",
            f"--log-verbose={self.log_verbose}",
            f"--backend-config=python,shm-default-byte-size={self.shm_default_bytes}",
            f"--backend-config=python,shm-growth-byte-size={self.shm_growth_bytes}",
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
        ]
        if self.address is not None:
            args += [
                f"--grpc-address={self.address}",
                f"--http-address={self.address}",
                f"--metrics-address={self.address}",
            ]
        if self.cache_config:
            args.append(f"--cache-config={self.cache_config}")
        if self.model_control == "poll" and self.repository_poll_secs is not None:
            args.append(f"--repository-poll-secs={int(self.repository_poll_secs)}")
        args += [f"--load-model={m}" for m in self.load_models]
        return args + self.extra_args

    # -- lifecycle ------------------------------------------------------------------------------

    def _spawn(self) -> None:
        if self._echo:
            # through a pipe, copied to our stdout line by line, so the tail stays readable (log_tail, and the
            # reason a start failed) when Triton's log goes to the terminal
            out = subprocess.PIPE
        else:
            if self._own_log:
                if self._log_path is not None:  # an earlier attempt's log
                    with contextlib.suppress(OSError):
                        self._log_path.unlink()
                fd, name = tempfile.mkstemp(prefix="mtserve-triton-", suffix=".log")
                os.close(fd)
                self._log_path = Path(name)
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self._log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=server_env(self.env),
                cwd=str(self.repo),
                start_new_session=True,  # terminal Ctrl-C reaches us only; we stop Triton ourselves
                preexec_fn=_child_setup(self.cpus),
            )
        finally:
            if out not in (None, subprocess.PIPE):
                out.close()
        if self._echo:
            self._echo_tail.clear()
            threading.Thread(target=self._pump, args=(self._proc.stdout,), daemon=True).start()
        self._returncode = None
        self._final_tail = None
        self._signaled = False

    def _pump(self, pipe) -> None:
        out = getattr(sys.stdout, "buffer", None)
        for line in iter(pipe.readline, b""):
            self._echo_tail.append(line)
            with contextlib.suppress(Exception):
                if out is not None:
                    out.write(line)
                    out.flush()
                else:
                    print(line.decode(errors="replace"), end="", flush=True)
        pipe.close()

    def ready(self, timeout: float = 2.0) -> bool:
        """True when `GET /v2/health/ready` answers 200, and the server answering is this one (its
        `--id` in `GET /v2`), not another that holds the port."""
        if not self.is_running():
            return False
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        try:
            with opener.open(f"http://{self.http_url}/v2/health/ready", timeout=timeout) as r:
                if r.status != 200:
                    return False
            with opener.open(f"http://{self.http_url}/v2", timeout=timeout) as r:
                return json.loads(r.read()).get("name") == self.server_id and self.is_running()
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _metrics_listening(self) -> bool:
        """Triton opens its metrics port last, about 40 ms after the HTTP one here ("Started Metrics Service" in its
        log): ready over HTTP, a scrape right after could be refused (it was once, in a fresh-clone test run on a
        busy machine). Started means every endpoint listens."""
        try:
            with socket.create_connection((self.host, self.metrics_port), timeout=1.0):
                return True
        except OSError:
            return False

    def start(self, timeout: float = 180.0, *, abort: Callable[[], bool] | None = None) -> TritonServer:
        """Spawn Triton and wait until it is ready. On exit or timeout: RuntimeError with the log tail.
        `abort` (polled) lets a caller give up early, e.g. on a signal; Triton is then stopped and
        RuntimeError raised."""
        with self._lock:
            if self.is_running():
                raise RuntimeError(f"Triton is already running (pid {self.pid})")
            if not self.repo.is_dir():
                raise UserError(f"model repository not found: {self.repo}")
            missing = missing_model_files(
                self.repo, None if self.model_control != "explicit" else self.load_models
            )
            if missing:
                raise UserError(f"cannot serve {self.repo}: " + "; ".join(missing))
            t0 = time.monotonic()
            attempts = 3 if any(self._auto_ports.values()) else 1
            for attempt in range(attempts):
                if attempt:
                    self._pick_ports()
                self._spawn()
                _RUNNING.add(self)
                deadline = time.monotonic() + timeout
                while True:
                    if self.ready() and self._metrics_listening():
                        self.startup_seconds = time.monotonic() - t0
                        return self
                    code = self._proc.poll()
                    if code is not None:
                        tail = self.log_tail()
                        if attempt + 1 < attempts and _PORT_CLASH.search(tail):
                            self._finish(code)
                            break  # a port picked for us was taken in the meantime: pick again
                        self._finish(code)
                        raise RuntimeError(
                            self._failure(f"exited with code {code} before it was ready", tail)
                        )
                    if time.monotonic() > deadline:
                        tail = self.log_tail()
                        self.stop(timeout=10)
                        raise RuntimeError(self._failure(f"was not ready after {timeout:.0f} s", tail))
                    if abort is not None and abort():
                        self.stop()
                        raise RuntimeError("Triton start aborted")
                    time.sleep(0.1)
            raise AssertionError("unreachable")

    def _failure(self, what: str, tail: str) -> str:
        where = f" (log: {self._log_path})" if self._log_path else ""
        failed = load_failures(self.log_tail(2000))
        why = "".join(f"\n  {f}" for f in failed)
        if self._echo:  # the whole log is on the terminal already
            return f"Triton on {self.repo} {what}" + (f"; models that failed to load:{why}" if why else "")
        body = f"\n--- last lines of the Triton log ---\n{tail}" if tail else ""
        return (
            f"Triton on {self.repo} {what}{where}"
            + (f"\nmodels that failed to load:{why}" if why else "")
            + body
        )

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to exit on its own; its exit code, or None on timeout."""
        if self._proc is None:
            return self._returncode
        try:
            code = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._finish(code)
        return code

    def send_signal(self, sig: int) -> None:
        """Send `sig` to Triton alone (not its stubs: Triton shuts them down itself)."""
        if self.is_running():
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)
            if sig in (signal.SIGINT, signal.SIGTERM):
                self._signaled = True

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT (Triton unloads its models and exits), wait up to `timeout`, then SIGKILL the whole
        process group (Triton and its stubs). Idempotent; returns the exit code (negative: killed by
        that signal, as subprocess reports it). A server never started returns 0."""
        with self._lock:
            if self._proc is None:
                return 0 if self._returncode is None else self._returncode
            if self._proc.poll() is None:
                if not self._signaled:
                    self.send_signal(signal.SIGINT)
                try:
                    self._proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self._proc.pid, signal.SIGKILL)
                    self._proc.wait(timeout=30)
            self._finish(self._proc.returncode)
            return self._returncode

    def _finish(self, code: int) -> None:
        if self._returncode is not None:
            return
        self._returncode = code
        _RUNNING.discard(self)
        # Triton leads its own process group. Anything left in it now is a python-backend stub that
        # outlived Triton (Triton killed, or stopped while still loading models: such a stub ignores
        # SIGTERM and keeps our stdout open). The group id cannot be reused while a member lives.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        # Stubs of a killed server leave their shared-memory regions behind; the prefix is ours alone.
        for path in glob.glob(f"/dev/shm/{glob.escape(self._shm_prefix)}*"):
            with contextlib.suppress(OSError):
                os.unlink(path)
        if self._own_log and code == 0 and self._log_path is not None:
            self._final_tail = self.log_tail(200)
            with contextlib.suppress(OSError):
                self._log_path.unlink()

    def log_tail(self, n: int = 60) -> str:
        """The last `n` lines Triton wrote."""
        if self._echo:
            lines = list(self._echo_tail)[-n:]
            return "\n".join(x.decode("utf-8", errors="replace").rstrip("\n") for x in lines)
        if self._final_tail is not None and (self._log_path is None or not self._log_path.exists()):
            return "\n".join(self._final_tail.splitlines()[-n:])
        if self._log_path is None or not self._log_path.exists():
            return ""
        with open(self._log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max(64 * 1024, n * 400)))
            data = f.read()
        return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-n:])

    def __enter__(self) -> TritonServer:
        if not self.is_running():
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"TritonServer({str(self.repo)!r}, grpc={self.grpc_url}, http={self.http_url}, {state})"


# --------------------------------------------------------------------------------------------------
# `mtserve serve`
# --------------------------------------------------------------------------------------------------


def configure(parser) -> None:
    parser.add_argument("--repo", required=True, metavar="DIR", help="Triton model repository")
    parser.add_argument(
        "--grpc-port", type=int, default=8001, help="gRPC port (0: any free port; default 8001)"
    )
    parser.add_argument(
        "--http-port", type=int, default=8000, help="HTTP port (0: any free port; default 8000)"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=8002, help="metrics port (0: any free port; default 8002)"
    )
    parser.add_argument(
        "--address", default=None, help="address to listen on (default: Triton's default, all interfaces)"
    )
    parser.add_argument(
        "--model-control",
        choices=MODEL_CONTROL_MODES,
        default="none",
        help="Triton's model control mode (default none: load everything at start)",
    )
    parser.add_argument(
        "--load-model",
        action="append",
        default=[],
        metavar="NAME",
        help="with --model-control explicit: load this model at start (repeatable, '*' = all)",
    )
    parser.add_argument(
        "--log-verbose", type=int, default=0, metavar="N", help="Triton's --log-verbose level"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=180.0,
        metavar="S",
        help="seconds to wait for the server to become ready (default 180)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds to wait after forwarding SIGINT/SIGTERM before killing Triton (default 30)",
    )
    parser.add_argument(
        "--cache-config",
        metavar="local,size=BYTES",
        help="Triton's response cache for models that enable it (mtserve export --response-cache), "
        "e.g. local,size=268435456",
    )
    parser.add_argument(
        "--trace-rate",
        type=int,
        metavar="N",
        help="OpenTelemetry tracing: trace one request in N (needs --trace-endpoint)",
    )
    parser.add_argument(
        "--trace-endpoint",
        metavar="URL",
        help="OTLP/HTTP endpoint for the traces, e.g. http://127.0.0.1:4318/v1/traces",
    )
    parser.add_argument(
        "--no-watchdog",
        dest="watchdog",
        action="store_false",
        help="do not watch the python-backend model processes (by default a model whose process died is "
        "reloaded in explicit mode, and reported in the other modes: Triton itself leaves it broken)",
    )
    parser.add_argument(
        "--triton-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for tritonserver, e.g. --triton-arg=--exit-timeout-secs=5 (repeatable)",
    )


def check_cache_config(value: str) -> str:
    """`--cache-config` as Triton takes it: `local,size=<bytes>` (the cache bundled with Triton), size > 0."""
    cache, _, rest = value.partition(",")
    settings = dict(kv.partition("=")[::2] for kv in rest.split(",") if kv)
    if (
        cache != "local"
        or set(settings) != {"size"}
        or not settings["size"].isdigit()
        or int(settings["size"]) < 1024
    ):
        raise UserError(
            f"--cache-config {value!r}: expected local,size=<bytes> with at least 1024 bytes, e.g. "
            "local,size=268435456 (Triton's local response cache; smaller sizes fail to initialise)"
        )
    return value


TRACE_LEVELS = ("TIMESTAMPS", "TENSORS")


def trace_args(rate: int, endpoint: str, service: str = "mtserve", level: str = "TIMESTAMPS") -> list[str]:
    """Triton's OpenTelemetry tracing: one request in `rate` traced, spans exported over OTLP/HTTP to
    `endpoint` (an OpenTelemetry collector, e.g. http://otel-collector:4318/v1/traces)."""
    if rate < 1:
        raise UserError(f"--trace-rate {rate}: trace one request in N, N >= 1")
    if level not in TRACE_LEVELS:
        raise UserError(f"--trace-level {level!r}: one of {', '.join(TRACE_LEVELS)}")
    return [
        "--trace-config=mode=opentelemetry",
        f"--trace-config=rate={rate}",
        f"--trace-config=level={level}",
        f"--trace-config=opentelemetry,url={endpoint}",
        f"--trace-config=opentelemetry,resource=service.name={service}",
    ]


def _exit_status(code: int | None) -> int:
    if code is None:
        return 1
    return 128 - code if code < 0 else code


def run(args) -> int:
    repo = Path(args.repo).expanduser()
    if not repo.is_dir():
        raise UserError(f"model repository not found: {repo}")
    if args.load_model and args.model_control != "explicit":
        raise UserError("--load-model needs --model-control explicit")
    find_tritonserver()  # a clear error before anything starts
    if (args.trace_rate is None) != (args.trace_endpoint is None):
        raise UserError("tracing needs both --trace-rate and --trace-endpoint")
    extra = list(args.triton_arg)
    if args.trace_rate is not None:
        extra += trace_args(args.trace_rate, args.trace_endpoint)

    stop_requested = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        stop_requested.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    watchdog = None
    server = TritonServer(
        repo,
        grpc_port=args.grpc_port or None,
        http_port=args.http_port or None,
        metrics_port=args.metrics_port or None,
        model_control=args.model_control,
        load_models=args.load_model,
        log_file="-",
        log_verbose=args.log_verbose,
        extra_args=extra,
        address=args.address,
        cache_config=args.cache_config,
    )
    try:
        try:
            server.start(timeout=args.ready_timeout, abort=stop_requested.is_set)
        except RuntimeError as e:
            if stop_requested.is_set():
                print("mtserve serve: stopped before Triton was ready", file=sys.stderr, flush=True)
                return _exit_status(server.stop(args.stop_timeout))
            print(f"mtserve serve: {e}", file=sys.stderr, flush=True)
            return _exit_status(server.returncode) or 1
        print(
            f"Triton ready: grpc {server.grpc_url} http {server.http_url} metrics {server.metrics_url} "
            f"({server.startup_seconds:.1f} s)",
            flush=True,
        )
        if args.watchdog:
            from mtserve.serving.watchdog import StubWatchdog

            watchdog = StubWatchdog(
                server.pid,
                server.grpc_url,
                reload=args.model_control == "explicit",
                log=lambda m: print(f"mtserve serve: watchdog: {m}", file=sys.stderr, flush=True),
            ).start()
        while not stop_requested.wait(0.5):
            code = server.returncode
            if code is not None:
                print(
                    f"mtserve serve: Triton exited on its own with code {code}", file=sys.stderr, flush=True
                )
                return _exit_status(server.stop())
        if watchdog is not None:  # a model unloading at shutdown is no death to repair
            watchdog.stop()
        # Forward the signal we got (Triton treats SIGINT and SIGTERM alike: unload, then exit 0).
        server.send_signal(received[0] if received else signal.SIGINT)
        return _exit_status(server.stop(args.stop_timeout))
    finally:
        if watchdog is not None:
            watchdog.stop()
        server.stop(args.stop_timeout)
        for s, handler in previous.items():
            signal.signal(s, handler)
