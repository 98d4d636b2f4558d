"""A corrupt or missing model file at load time, and a full disk during export.

On copies of the tiny test repository (the model's size does not matter here):
* start: `mtserve serve` on a repository with a truncated model.onnx, or without a model.py: it refuses to
  start, with a message naming the model and the file;
* live (explicit mode): loading a model whose model.onnx was truncated fails with a message naming it, and the
  server keeps serving everything it served (the version loaded before stays); a model without its model.py
  (Triton's own behaviour, measured: the load never answers);
* export onto a full disk (a real 3 MiB tmpfs holding the previous repository): a clear error, and the
  previous repository byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.harness import MTSERVE, Section, Serve

pytestmark = pytest.mark.reliability

START_LIMIT_S = 60.0  # a refused start answers well within the ready timeout (180 s), not by timing out


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def hash_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def serve_once(repo: Path, timeout: float = 240) -> tuple[int, str, float]:
    t0 = time.monotonic()
    r = subprocess.run(
        [str(MTSERVE), "serve", "--repo", str(repo), "--address", "127.0.0.1"]
        + ["--grpc-port=0", "--http-port=0", "--metrics-port=0"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return r.returncode, (r.stdout + r.stderr), time.monotonic() - t0


def answers_every_task(url: str) -> set[str]:
    import tritonclient.grpc as g

    with g.InferenceServerClient(url) as c:
        inp = g.InferInput("text", [1, 1], "BYTES")
        inp.set_data_from_numpy(np.array([[b"please book a table"]], dtype=np.object_))
        r = c.infer("multitask", [inp], client_timeout=30)
        return {o.name for o in r.get_response().outputs}


@pytest.fixture
def copy(tiny_repo, tmp_path):
    def make(name: str) -> Path:
        path = tmp_path / name / "model_repository"
        shutil.copytree(tiny_repo, path)
        return path

    return make


def test_bad_model_files_and_full_disk(copy, tiny_run, tmp_path):
    import tritonclient.grpc as g

    sec = Section("bad_files", "A corrupt or missing model file at load time; a full disk during export")
    sec.measurements["repository"] = "tiny test BERT, 4 tasks"
    try:
        # -- at start: a truncated model.onnx
        repo = copy("onnx")
        truncate(repo / "sentiment" / "1" / "model.onnx")
        code, out, took = serve_once(repo)
        last = [x for x in out.splitlines() if x.startswith("mtserve serve") or x.startswith("  model ")]
        sec.measurements["start_truncated_onnx"] = {
            "exit_code": code,
            "seconds": round(took, 1),
            "says": last,
        }
        said = "\n".join(last)
        sec.check(
            "start, truncated model.onnx: refused, naming model and file",
            code,
            "non-zero",
            code != 0
            and took < START_LIMIT_S
            and "model 'sentiment' version 1" in said
            and "model.onnx" in said,
            f"exit {code} after {took:.1f} s; the last lines name the model and the file",
        )
        # -- at start: no model.py
        repo = copy("nopy")
        (repo / "urgency" / "1" / "model.py").unlink()
        code, out, took = serve_once(repo)
        last = [x for x in out.splitlines() if x.startswith("mtserve serve")]
        sec.measurements["start_missing_model_py"] = {
            "exit_code": code,
            "seconds": round(took, 1),
            "says": last,
        }
        said = "\n".join(last)
        sec.check(
            "start, missing model.py: refused, naming model and file",
            code,
            2,
            code == 2 and took < 10 and "model 'urgency' version 1" in said and "urgency/1/model.py" in said,
            f"exit {code} after {took:.1f} s, before Triton starts (Triton itself would wait forever)",
        )
        sec.save()

        # -- live, explicit mode: a corrupt file loaded, and a missing model.py
        repo = copy("live")
        with Serve(repo, "--model-control", "explicit", "--load-model", "*") as serve:
            before = answers_every_task(serve.url)
            truncate(repo / "sentiment" / "1" / "model.onnx")
            t0 = time.monotonic()
            with g.InferenceServerClient(serve.url) as c:
                try:
                    c.load_model("sentiment", client_timeout=120)
                    error = None
                except g.InferenceServerException as e:
                    error = e.message()
                took = time.monotonic() - t0
                still = answers_every_task(serve.url)
                ready = c.is_model_ready("sentiment")
            sec.measurements["live_truncated_onnx"] = {
                "error": (error or "")[:300],
                "seconds": round(took, 1),
                "still_ready": ready,
                "served_before": sorted(before),
                "served_after": sorted(still),
            }
            sec.check(
                "live load of a truncated model.onnx: refused, the rest keeps serving",
                (error or "no error")[:120],
                "an error naming sentiment and model.onnx",
                error is not None
                and "sentiment" in error
                and "model.onnx" in error
                and still == before
                and ready,
                f"answered in {took:.1f} s; the loaded version stays READY and multitask answers every task",
            )
            sec.save()
            (repo / "urgency" / "1" / "model.py").unlink()
            t0 = time.monotonic()
            with g.InferenceServerClient(serve.url) as c:
                try:
                    c.load_model("urgency", client_timeout=20)
                    outcome = "loaded"
                except g.InferenceServerException as e:
                    outcome = e.message()[:200]
            took = time.monotonic() - t0
            still = answers_every_task(serve.url)
            sec.measurements["live_missing_model_py"] = {
                "outcome": outcome,
                "seconds": round(took, 1),
                "served_after": sorted(still),
            }
            t_stop = time.monotonic()
            serve.stop(timeout=120)
            sec.measurements["live_missing_model_py"]["stop_seconds"] = round(time.monotonic() - t_stop, 1)
        sec.check(
            "live load without model.py (Triton's behaviour): no answer, the rest keeps serving",
            outcome,
            "Deadline Exceeded after 20 s",
            "Deadline" in outcome and still == before,
            "documents Triton 2.51: the load waits for the stub forever; `mtserve serve` refuses such a "
            "repository at start, and `mtserve task` only loads versions it has just written complete",
        )
        sec.save()

        # -- a full disk during export
        mnt = tmp_path / "small-disk"
        mnt.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True
        )
        if mounted.returncode != 0:
            sec.notes.append(
                f"full disk: not measured, no tmpfs could be mounted ({mounted.stderr.decode()[:200]})"
            )
            pytest.skip("no tmpfs mount (needs root)")
        try:
            previous = mnt / "model_repository"
            shutil.copytree(copy("full"), previous)
            before = hash_tree(previous)
            free = shutil.disk_usage(mnt).free
            t0 = time.monotonic()
            r = subprocess.run(
                [str(MTSERVE), "export", "--run-dir", str(tiny_run), "--out", str(previous)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            took = time.monotonic() - t0
            left = sorted(p.name for p in mnt.iterdir())
            same = hash_tree(previous) == before
            sec.measurements["export_full_disk"] = {
                "disk": "tmpfs of 3 MiB holding the previous repository",
                "free_before_bytes": free,
                "exit_code": r.returncode,
                "seconds": round(took, 1),
                "says": r.stderr.strip().splitlines()[-1:] if r.stderr.strip() else [],
                "previous_untouched": same,
                "left_on_disk": left,
            }
            sec.check(
                "export onto a full disk: clear error, previous repository untouched",
                r.returncode,
                2,
                r.returncode == 2
                and "no space left" in r.stderr
                and "Traceback" not in r.stderr
                and same
                and left == ["model_repository"],
                "one line naming the device; the previous repository byte for byte; no partial copy left",
            )
        finally:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    finally:
        sec.save()
    assert not sec.failed(), "\n".join(sec.failed())
