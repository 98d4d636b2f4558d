#!/usr/bin/env bash
# make gpu-check: mtserve gpu-check (mtserve/gpu_check.py) with the first Python that can run it, arguments passed on.
#   1. this checkout's .venv, where it is built (a developer's machine: its torch may be a CPU build, then the check
#      says so and exits 0);
#   2. else $PYTHON, where it already has torch and transformers: a GPU image such as the lent GPU machines
#      (docs/measurements.md, "On a GPU"), where nothing can be downloaded and .venv (a CPU torch from the lock) cannot
#      be built. mtserve is laid out for it as an install would lay it out (pyproject.toml's package-dir: the layer
#      folders as mtserve.<folder>) by links in a temporary folder: nothing is built, installed or downloaded;
#   3. else `make venv` first, then 1.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ -x "$VENV/bin/mtserve" ]; then
  exec "$VENV/bin/mtserve" gpu-check "$@"
fi
if "$PYTHON" -c 'import torch, transformers' 2>/dev/null; then
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  mkdir "$site/mtserve"
  for f in mtserve/*.py; do ln -s "$root/$f" "$site/mtserve/"; done
  # the package-dir folders of pyproject.toml ([tool.setuptools.package-dir]), each linked under its mtserve name
  for d in $(sed -n '/^\[tool.setuptools.package-dir\]/,/^\[/s/^"mtserve\.\([a-z_]*\)" = "\([a-z_]*\)"$/\1:\2/p' pyproject.toml); do
    ln -s "$root/${d#*:}" "$site/mtserve/${d%%:*}"
  done
  echo "gpu-check: running with $("$PYTHON" -c 'import sys, torch; print(sys.executable, "torch", torch.__version__)')" >&2
  # PYTHONSAFEPATH: not this folder first on the path, where mtserve/ alone (without its layers) would shadow the links
  PYTHONSAFEPATH=1 PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m mtserve gpu-check "$@"
  exit $?
fi
make venv PYTHON="$PYTHON"
exec "$VENV/bin/mtserve" gpu-check "$@"
