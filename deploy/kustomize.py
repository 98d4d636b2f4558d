"""Building the kustomizations under k8s/ with the real `kubectl kustomize`."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mtserve.core.errors import UserError

# `kubectl kustomize` builds every manifest: whatever it prints is what `kubectl apply -k` sends. Before it
# runs, the kustomization files it will read are parsed here only for what kubectl does not do for us:
# a YAML error named by its file and line, and the refusal of commonLabels (see _check_kustomizations).
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUBECTL_TIMEOUT_S = 120
INSTALL_KUBECTL = (
    "install kubectl 1.27 or newer (it ships kustomize v5): https://kubernetes.io/docs/tasks/tools/"
)


def kustomization_file(d: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (d / name).is_file():
            return d / name
    return None


def kubectl() -> str:
    """The kubectl on PATH, or a UserError saying what to install."""
    found = shutil.which("kubectl")
    if found is None:
        raise UserError(
            f"kubectl not found on PATH: mtserve builds manifests with `kubectl kustomize`; {INSTALL_KUBECTL}"
        )
    return found


def kustomize(path: str | os.PathLike) -> str:
    """What `kubectl kustomize PATH` prints (what `kubectl apply -k PATH` sends)."""
    d = Path(path)
    kfile = kustomization_file(d) if d.is_dir() else None
    if kfile is None:
        raise UserError(f"{d}: not a kustomization directory (no kustomization.yaml)")
    _check_kustomizations(d.resolve(), set())
    cmd = [kubectl(), "kustomize", str(d)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"{kfile}: `{shlex.join(cmd)}` did not finish in {KUBECTL_TIMEOUT_S} s") from None
    if run.returncode != 0:
        raise UserError(f"{kfile}: `{shlex.join(cmd)}` failed: {_kubectl_error(run.stderr)}")
    for line in run.stderr.splitlines():  # deprecation warnings and the like: the user's to see
        print(line, file=sys.stderr)
    return run.stdout


def build(path: str | os.PathLike) -> list[dict]:
    """The resources `kubectl kustomize PATH` prints, in its order."""
    text = kustomize(path)
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as e:  # not kubectl's YAML: a wrapper script printing more than kubectl
        raise UserError(f"{path}: `kubectl kustomize` printed invalid YAML: {e}") from None


def _kubectl_error(stderr: str) -> str:
    """kubectl's message without its log prefix: `E1129 07:15:48 run.go:72] "command failed" err="..."`."""
    m = re.search(r'err="(.*)"\s*$', stderr.strip(), re.S)
    return m.group(1).replace('\\"', '"') if m else stderr.strip() or "no message"


def _check_kustomizations(d: Path, seen: set[Path]) -> None:
    """Every local kustomization `kubectl kustomize d` reads (d, and the folders its resources and components
    name) parses as YAML and sets no commonLabels. kubectl reports a YAML error without the file's name when
    the file is a nested one, and it accepts commonLabels, which also rewrites selectors: immutable on a
    Deployment, and KServe owns those. Everything else (missing files, unknown fields, cycles) kubectl reports."""
    kfile = kustomization_file(d)
    if kfile is None or d in seen:
        return
    seen.add(d)
    try:
        k = yaml.safe_load(kfile.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{kfile}: not valid YAML: {e}") from None
    if k is None:
        return  # empty: kubectl says so
    if not isinstance(k, dict):
        raise UserError(f"{kfile}: a kustomization is a mapping, not a {type(k).__name__}")
    if "commonLabels" in k:
        raise UserError(
            f"{kfile}: commonLabels also rewrites selectors (immutable on Deployments, and "
            f"KServe owns those); use `labels:` with includeSelectors: false"
        )
    for field in ("resources", "components"):
        for entry in k.get(field) or []:
            if isinstance(entry, str) and "://" not in entry and (d / entry).is_dir():
                _check_kustomizations((d / entry).resolve(), seen)
