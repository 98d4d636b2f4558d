"""Live model control of a running Triton (explicit mode) serving a repository a task change rewrites: load
in dependency order, unload after the swap, and put back what was changed when the change is undone.
"""

from __future__ import annotations

import contextlib

from mtserve.core import names, registry
from mtserve.core.errors import Unreachable, UserError


# ---------------------------------------------------------------- the live server
def expected_outputs(tasks: dict[str, registry.TaskEntry]) -> set[str]:
    outs = set()
    for name, e in tasks.items():
        outs.add(names.scores(name))
        if e.labels is not None:
            outs.add(names.label(name))
    return outs


class Live:
    """A running Triton (explicit model control) serving this repository; loads and unloads in order and can
    put back what it changed."""

    def __init__(self, url: str, reg: registry.Registry, timeout: float = 600.0):
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        self.url, self.timeout, self._exc = url, timeout, InferenceServerException
        self.client = None
        try:
            self.client = grpcclient.InferenceServerClient(url=url)
            self._check(reg)
        except BaseException:
            self.close()
            raise
        self.touched: list[str] = []  # models this run loaded, in order
        self.unloaded: list[str] = []

    def _check(self, reg: registry.Registry) -> None:
        url = self.url
        try:
            if not self.client.is_server_live(client_timeout=10):
                raise Unreachable(f"Triton at {url} is not live")
            self.before = self.ready_versions()
            if names.MULTITASK not in self.before:
                raise UserError(
                    f"Triton at {url} does not serve `multitask` (ready: {sorted(self.before) or 'none'})"
                )
            cfg = self.client.get_model_config(names.MULTITASK, as_json=True, client_timeout=30)["config"]
        except UserError:
            raise
        except Exception as e:  # connection refused, DNS, timeouts: one line
            raise Unreachable(f"cannot reach Triton at {url}: {e}") from None
        served = {o["name"] for o in cfg.get("output", [])}
        if served != expected_outputs(reg.tasks):
            raise UserError(
                f"Triton at {url} serves a `multitask` with outputs {sorted(served)}, but the registry "
                f"lists tasks {sorted(reg.tasks)}: is it serving this repository (and has it loaded "
                "changes made without --server? then restart it, or `load` multitask first)?"
            )

    def ready_versions(self) -> dict[str, set[int]]:
        index = self.client.get_model_repository_index(as_json=True, client_timeout=30).get("models", [])
        out: dict[str, set[int]] = {}
        for m in index:
            if m.get("state") == "READY":
                out.setdefault(m["name"], set()).add(int(m.get("version") or 0))
        return out

    def load(self, name: str, version: int | None = None) -> None:
        self.touched.append(name)  # even if it fails: restore() then reloads it from the reverted files
        try:
            self.client.load_model(name, client_timeout=self.timeout)
            if version is not None and not self.client.is_model_ready(name, str(version), client_timeout=30):
                raise UserError(f"Triton at {self.url} loaded {name} but version {version} is not ready")
        except self._exc as e:
            if "not allowed" in (e.message() or ""):  # Triton refused before doing anything
                self.touched.pop()
                raise UserError(
                    f"Triton at {self.url} does not allow loading models ({e.message()}): a live change "
                    "needs `--model-control explicit`"
                ) from None
            raise UserError(f"Triton at {self.url} failed to load {name}: {e.message()}") from None

    def unload(self, name: str) -> str | None:
        try:
            self.client.unload_model(name, client_timeout=self.timeout)
            self.unloaded.append(name)
            return None
        except self._exc as e:
            return f"could not unload {name}: {e.message()}"

    def restore(self) -> list[str]:
        """After the files were reverted, put the server back: reload what this run unloaded, reload what it
        loaded in reverse order (the ensemble first, back to its old version), then unload the models that
        were not there before (nothing uses them any more)."""
        errors = []
        steps = [("load", m) for m in reversed(self.unloaded)]  # full_<task> before single_<task>
        steps += [("load", m) for m in dict.fromkeys(reversed(self.touched)) if m in self.before]
        steps += [("unload", m) for m in dict.fromkeys(reversed(self.touched)) if m not in self.before]
        for what, m in steps:
            try:
                if what == "load":
                    self.client.load_model(m, client_timeout=self.timeout)
                else:
                    self.client.unload_model(m, client_timeout=self.timeout)
            except self._exc as e:
                errors.append(f"{what} {m}: {e.message()}")
        self.touched, self.unloaded = [], []
        return errors

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()


def connect(url: str | None, reg: registry.Registry) -> Live | None:
    return Live(url, reg) if url else None
