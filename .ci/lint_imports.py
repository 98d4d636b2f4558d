"""`make lint`'s import contracts (pyproject.toml, [tool.importlinter]) on the source tree.

import-linter builds its graph by walking the root package's folder, but `mtserve`'s layers live in top-level
folders mapped into it by pyproject.toml's package-dir (mtserve/__init__.py says why), so the walk from an
installed `mtserve` sees none of them. This lays the same modules out as one package in a temporary folder
(copies, so nothing follows links), puts that folder first on the path and runs `lint-imports` there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = setuptools["package-dir"]  # {"mtserve.core": "core", ...}
    with tempfile.TemporaryDirectory(prefix="mtserve-lint-") as tmp:
        top = Path(tmp) / "mtserve"
        shutil.copytree(ROOT / "mtserve", top, ignore=shutil.ignore_patterns("__pycache__"))
        for package, folder in package_dir.items():
            shutil.copytree(
                ROOT / folder, Path(tmp, *package.split(".")), ignore=shutil.ignore_patterns("__pycache__")
            )
        env = {**os.environ, "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", "")}
        lint_imports = Path(sys.executable).with_name("lint-imports")
        return subprocess.call(
            [str(lint_imports), "--no-cache", str(ROOT / "pyproject.toml")], cwd=tmp, env=env
        )


if __name__ == "__main__":
    sys.exit(main())
