"""The parent side of loadtest/locust_process.py: the capacity search's measuring child process (Locust runs there,
after gevent has patched it, never in the process that decides the search), driven over JSON lines."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtserve.core.errors import UserError


class LocustWorker:
    """A `python -m mtserve.loadtest.locust_process` child; `call` sends one JSON request and waits (bounded) for its reply."""

    def __init__(self, cpus: frozenset[int] | None = None):
        """`cpus`: the CPUs the child (and the Locust worker processes it starts) may run on; None: every CPU."""
        fd, name = tempfile.mkstemp(prefix="mtserve-locust-", suffix=".log")
        self.log_path = Path(name)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mtserve.loadtest.locust_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            )
        self._buf = b""
        self.keep_log = False

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _readline(self, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError
                self._buf += chunk
            elif self.proc.poll() is not None:
                raise EOFError
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def call(self, msg: dict, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
            while True:
                line = self._readline(deadline).decode("utf-8", errors="replace")
                if line.startswith(_PREFIX):
                    reply = json.loads(line[len(_PREFIX) :])
                    break
        except TimeoutError:
            self.close(kill=True)
            self.keep_log = True  # the error names it
            raise UserError(
                f"the Locust worker gave no answer to {msg.get('op')!r} within {timeout:.0f} s "
                f"(log: {self.log_path})"
            ) from None
        except (EOFError, BrokenPipeError):
            code = self.proc.poll()
            raise UserError(
                f"the Locust worker exited (code {code}) during {msg.get('op')!r}:\n{self.log_tail()}"
            ) from None
        if not reply.get("ok"):
            raise UserError(f"Locust worker, {msg.get('op')}: {reply.get('error')}")
        return reply

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if not kill:
                with contextlib.suppress(Exception):
                    self.proc.stdin.write(b'{"op": "quit"}\n')
                    self.proc.stdin.flush()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=10)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                f.close()

    def __enter__(self) -> LocustWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        if not self.keep_log:
            with contextlib.suppress(OSError):
                self.log_path.unlink()


_PREFIX = "@@mtserve "  # loadtest/locust_process.py PREFIX (not imported: that module imports Locust)
