"""`mtserve k8s upload`: put a model repository where a storageUri points (s3://, gs://, pvc://)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from mtserve.core import exit_codes, names
from mtserve.core.errors import UserError
from mtserve.deploy.repository import RepositoryFacts, repository_facts, uri_problem

SKIP_NAMES = {"__pycache__", ".DS_Store", ".ipynb_checkpoints"}


def repository_files(repo: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_NAMES and not d.startswith("."))
        for f in sorted(filenames):
            # the placeholder holds an ensemble's otherwise empty version folder in object stores
            if (
                f in SKIP_NAMES
                or f.endswith(".pyc")
                or (f.startswith(".") and f != names.ENSEMBLE_PLACEHOLDER)
            ):
                continue
            files.append(Path(dirpath) / f)
    return files


def check_repository(repo: Path, allow_local_profile: bool) -> RepositoryFacts:
    if not repo.is_dir():
        raise UserError(f"{repo}: no such directory")
    for need in (names.MULTITASK, names.TOKENIZER):
        if not (repo / need / "config.pbtxt").is_file():
            raise UserError(f"{repo}: {need}/config.pbtxt missing; not a repository from `mtserve export`")
    facts = repository_facts(repo)
    if facts.profile == "local" and not allow_local_profile:
        raise UserError(
            f"{repo} was exported with --profile local (python backend on CPU, needs onnxruntime "
            f"in the image); the cluster serves `mtserve export --profile gpu` "
            f"(--allow-local-profile to upload it anyway)"
        )
    return facts


def _sync_command(repo: Path, uri: str) -> str:
    if uri.startswith("s3://"):
        return f"aws s3 sync {shlex.quote(str(repo))} {shlex.quote(uri.rstrip('/') + '/')} --exclude '*.pyc' --exclude '*/__pycache__/*'"
    return f"gsutil -m rsync -r -x '.*\\.pyc$|.*/__pycache__/.*' {shlex.quote(str(repo))} {shlex.quote(uri.rstrip('/'))}"


# what to say when an object store's client library is missing (the sync command follows)
MISSING_CLIENT = {
    "s3": "boto3 is not installed; upload with the AWS CLI (credentials from your AWS profile or role)",
    "gs": "google-cloud-storage is not installed; upload with gsutil (credentials from `gcloud auth` or "
    "workload identity)",
}


def upload(
    repo: Path,
    to: str,
    *,
    pvc_mount: Path | None = None,
    overwrite: bool = False,
    dry_run: bool = False,
    allow_local_profile: bool = False,
    out=None,
) -> int:
    """Put a model repository where `to` (a storageUri) points. Credentials come from the environment
    (AWS/GCP default chains, workload identity), never from arguments."""
    out = out or sys.stdout
    repo = Path(repo).resolve()
    problem = uri_problem(to)
    if problem:
        raise UserError(problem)
    check_repository(repo, allow_local_profile)
    files = repository_files(repo)
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    if dry_run:
        for f in files:
            print(f"{to.rstrip('/')}/{f.relative_to(repo).as_posix()}", file=out)
        print(f"{len(files)} files, {total_mb:.1f} MB (dry run: nothing copied)", file=out)
        return 0
    u = urlparse(to)
    if u.scheme == "pvc":
        dest = _copy_to_claim(repo, files, to, pvc_mount, overwrite)
        print(f"copied {len(files)} files ({total_mb:.1f} MB) to {dest}; storageUri: {to}", file=out)
        return 0
    if u.scheme not in MISSING_CLIENT:
        raise UserError(
            f"{to}: upload supports s3://, gs:// and pvc:// (for https, serve the files yourself)"
        )
    store = _object_store(u.scheme, u.netloc)
    if store is None:
        print(f"{MISSING_CLIENT[u.scheme]}, then render with this storageUri:", file=sys.stderr)
        print(_sync_command(repo, to), file=out)
        return exit_codes.USAGE  # this environment cannot do it (no storage library): run the printed command
    holds_objects, put = store
    prefix = u.path.strip("/")
    if not overwrite and holds_objects(prefix + "/"):
        raise UserError(
            f"{to} already holds objects; upload each repository version to a new prefix (or --overwrite)"
        )
    for f in files:
        put(f, f"{prefix}/{f.relative_to(repo).as_posix()}".lstrip("/"))
    print(f"uploaded {len(files)} files ({total_mb:.1f} MB) to {to}", file=out)
    return 0


def _copy_to_claim(repo: Path, files: list[Path], to: str, pvc_mount: Path | None, overwrite: bool) -> Path:
    """Copy into the mounted claim through a temporary folder beside the destination, renamed into place, so a
    pod never sees half a repository."""
    u = urlparse(to)
    if pvc_mount is None:
        raise UserError(
            f"{to}: pvc:// needs --pvc-mount, the path where claim {u.netloc!r} is mounted "
            f"here (e.g. a pod with the claim, or a node path)"
        )
    mount = Path(pvc_mount)
    if not mount.is_dir():
        raise UserError(f"--pvc-mount {mount}: no such directory")
    prefix = u.path.strip("/")
    dest = mount / prefix if prefix else mount
    if dest == mount:
        raise UserError(
            f"{to}: give a path inside the claim (pvc://{u.netloc}/repository/v2), so that "
            f"each repository version gets its own folder"
        )
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise UserError(f"{dest} is not empty; upload each repository version to a new path (or --overwrite)")
    tmp = Path(
        tempfile.mkdtemp(prefix=".mtserve-upload-", dir=dest.parent if dest.parent.exists() else mount)
    )
    try:
        for f in files:
            target = tmp / f.relative_to(repo)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _object_store(
    scheme: str, bucket: str
) -> tuple[Callable[[str], bool], Callable[[Path, str], None]] | None:
    """(holds_objects(prefix), put(file, key)) on an s3:// or gs:// bucket, or None when the client library
    is not installed."""
    if scheme == "s3":
        try:
            import boto3  # type: ignore[import-not-found]
        except ImportError:
            return None
        s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        return (
            lambda prefix: bool(s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount")),
            lambda f, key: s3.upload_file(str(f), bucket, key),
        )
    try:
        from google.cloud import storage  # type: ignore[import-not-found]
    except ImportError:
        return None
    gcs = storage.Client().bucket(bucket)
    return (
        lambda prefix: any(True for _ in gcs.list_blobs(prefix=prefix, max_results=1)),
        lambda f, key: gcs.blob(key).upload_from_filename(str(f)),
    )
