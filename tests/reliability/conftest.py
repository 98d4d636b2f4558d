"""The reliability suite (issue 15): overload, faults and soak against a real local Triton, measured and asserted.

    make reliability                 everything (about 35 minutes: the soak alone is 20)
    make reliability K=overload      one part (pytest's -k); its section of docs/results/reliability.* is
                                     replaced, the others are kept

Durations are parameters (environment variables, recorded with the results): MTSERVE_REL_OVERLOAD_S (60),
MTSERVE_REL_SOAK_S (1200), MTSERVE_REL_DEADLINE_S (2). Never part of `make test` (`-m "not reliability"`); and
collected here without `-m reliability` its tests are skipped, so a bare `pytest tests` stays short too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.hookimpl(tryfirst=True)  # before -m filters: every test here carries the marker
def pytest_collection_modifyitems(config, items):
    expr = config.getoption("markexpr") or ""
    chosen = "reliability" in expr.replace("not reliability", "")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)
            if not chosen:
                item.add_marker(
                    pytest.mark.skip(reason="reliability suite: `make reliability` (-m reliability)")
                )


def _export_code_hash() -> str:
    """What a cached repository was exported with: a change to the exporter (queue policy, configs) or to the
    served models builds a new one, so a measurement never runs on a stale export."""
    h = hashlib.sha256()
    files = [ROOT / "training" / f for f in ("export.py", "model_config.py", "onnx_export.py")]
    files += [ROOT / "loadtest" / "synthetic.py", *sorted((ROOT / "serving" / "models").glob("*.py"))]
    for f in files:
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


@pytest.fixture(scope="session")
def demo_repo():
    """The demo-shaped repository the overload and soak measurements run on: `make demo`'s
    model_repository/multitask when it exists (trained MiniLM-L6, 4 tasks), else a synthetic one of the same
    shape (random MiniLM-L6-shaped weights, 4 tasks: export/synthetic.py), exported by this checkout.
    MTSERVE_REL_DEMO_REPO names another. Returns (path, description)."""
    from mtserve.core import registry
    from mtserve.export.synthetic import synthetic_repo

    given = os.environ.get("MTSERVE_REL_DEMO_REPO")
    if given:
        return Path(given), f"{given} (MTSERVE_REL_DEMO_REPO)"
    demo = ROOT / "model_repository" / "multitask"
    if (demo / "registry.json").is_file():
        reg = registry.load(demo)
        return demo, f"make demo's {demo.relative_to(ROOT)} ({reg.backbone}, {len(reg.tasks)} tasks)"
    cache = ROOT / "cache" / "reliability" / _export_code_hash()
    path = synthetic_repo(cache, n_tasks=4, shape="demo", log=lambda m: None)
    return path, (
        f"synthetic demo-shaped repository: 4 tasks on a random all-MiniLM-L6-v2-shaped BERT (6 layers, hidden "
        f"384, trunk of 5 layers, 1-layer heads, max length 128), exported by this checkout "
        f"(export/synthetic.py; cached in {path.relative_to(ROOT)})"
    )
