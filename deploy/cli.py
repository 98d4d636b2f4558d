"""`mtserve k8s`: render, build, validate and upload the KServe deployment in k8s/.

    render    write the per-task (or multitask) overlay for a task list and a repository URI (deploy/render.py);
              the multitask service loads multitask and every task's path_<task> and group's group_<g>
    build     print what `kubectl kustomize DIR` prints: kubectl builds every manifest here (deploy/kustomize.py)
    validate  check built or plain YAML strictly against the kserve / kubernetes SDK models (deploy/schema.py),
              plus this project's policy: GPU limit, gRPC port name per mode, /dev/shm, probes, ... (deploy/validate.py)
    upload    put a model repository where a storageUri points: s3://, gs://, pvc:// (deploy/upload.py)

Imports neither torch nor transformers nor Triton: a `mtserve k8s` user needs only kubectl, pyyaml, kubernetes
and kserve (whose models are read, not imported: deploy/schema.py says why).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtserve.core.errors import UserError
from mtserve.deploy.kustomize import build, kustomize
from mtserve.deploy.render import (
    DEFAULT_NAMESPACE,
    DEFAULT_PROMETHEUS,
    K8S_DIR,
    render_overlay,
    resolve_groups,
    resolve_tasks,
)
from mtserve.deploy.repository import repository_facts
from mtserve.deploy.upload import upload
from mtserve.deploy.validate import (
    DEFAULT_KSERVE_VERSION,
    load_for_validation,
    parse_kserve_version,
    validate_docs,
)


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="k8s_command", metavar="ACTION", required=True)

    r = sub.add_parser(
        "render",
        help="write the per-task (or multitask) kustomize overlay",
        description="Write a kustomize overlay for the current task list and repository URI.",
    )
    r.add_argument(
        "--repo-uri", required=True, help="storageUri of the model repository root (s3://, gs://, pvc://)"
    )
    r.add_argument("--tasks", help="comma-separated tasks (default: every task in --repo's registry.json)")
    r.add_argument(
        "--repo",
        type=Path,
        help="local model repository: the task list (and the task groups) come from its registry.json",
    )
    r.add_argument(
        "--group",
        action="append",
        metavar="NAME=a,b",
        help="multitask: a task group whose group_NAME the service loads (repeatable; default: every group "
        "of --repo's registry.json whose tasks are rendered; with --repo, each must be the registry's)",
    )
    r.add_argument(
        "--overlay",
        choices=["per-task", "multitask"],
        default="per-task",
        help="one InferenceService per task (single_<task>), or the multitask one, which loads multitask, "
        "path_<task> for every task and group_<g> for every group (default: per-task)",
    )
    r.add_argument(
        "--mode",
        choices=["raw", "serverless"],
        default="raw",
        help="raw: KServe Standard (Deployment, gRPC port grpc-port); serverless: Knative (port h2c)",
    )
    r.add_argument("--out", type=Path, help="output folder (default: k8s/overlays/<overlay>)")
    r.add_argument("--namespace", default=DEFAULT_NAMESPACE, help=f"namespace (default: {DEFAULT_NAMESPACE})")
    r.add_argument(
        "--autoscale",
        action="store_true",
        help="raw: KEDA on Triton's queue time and pending requests; serverless: Knative concurrency",
    )
    r.add_argument("--max-replicas", type=int, default=4, help="upper bound with --autoscale (default: 4)")
    r.add_argument(
        "--kserve-version",
        default=DEFAULT_KSERVE_VERSION,
        help="the cluster's KServe release: mode names RawDeployment/Serverless before 0.16, Standard/Knative "
        f"from 0.16 (default {DEFAULT_KSERVE_VERSION})",
    )
    r.add_argument(
        "--monitoring",
        action="store_true",
        help="add k8s/components/monitoring: PodMonitor, PrometheusRule alerts, Grafana dashboard",
    )
    r.add_argument("--prometheus-url", default=DEFAULT_PROMETHEUS, help="Prometheus that KEDA queries")
    r.add_argument("--k8s-dir", type=Path, default=K8S_DIR, help=argparse.SUPPRESS)

    b = sub.add_parser(
        "build",
        help="print `kubectl kustomize DIR` (what `kubectl apply -k DIR` sends), commonLabels refused",
    )
    b.add_argument("dir", type=Path, help="a folder with a kustomization.yaml")

    v = sub.add_parser("validate", help="validate rendered YAML strictly (schema + project policy)")
    v.add_argument(
        "paths", nargs="+", type=Path, help="kustomization folders (built first), YAML folders or files"
    )
    v.add_argument("--schema-only", action="store_true", help="skip the project's policy checks")
    v.add_argument(
        "--kserve-version",
        default=DEFAULT_KSERVE_VERSION,
        help=f"the deployment-mode names of this KServe release are the valid ones (default {DEFAULT_KSERVE_VERSION})",
    )

    u = sub.add_parser(
        "upload",
        help="put a model repository where a storageUri points",
        description="Upload a model repository for KServe's storage initializer. Credentials come "
        "from the environment (AWS/GCP default credential chains, workload identity).",
    )
    u.add_argument(
        "--repo", type=Path, required=True, help="the model repository (from `mtserve export --profile gpu`)"
    )
    u.add_argument(
        "--to",
        required=True,
        help="destination storageUri: s3://bucket/path, gs://bucket/path, pvc://claim/path",
    )
    u.add_argument("--pvc-mount", type=Path, help="for pvc://: where the claim is mounted on this machine")
    u.add_argument("--overwrite", action="store_true", help="write into a non-empty destination")
    u.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    u.add_argument("--allow-local-profile", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    cmd = args.k8s_command
    if getattr(args, "kserve_version", None) is not None:
        parse_kserve_version(args.kserve_version)  # a clear error before anything is written
    if cmd == "build":
        sys.stdout.write(kustomize(args.dir))
        return 0
    if cmd == "validate":
        failed = False
        for path in args.paths:
            docs = load_for_validation(path)
            errors = validate_docs(docs, policy=not args.schema_only, kserve_version=args.kserve_version)
            kinds: dict[str, int] = {}
            for d in docs:
                kinds[str(d.get("kind"))] = kinds.get(str(d.get("kind")), 0) + 1
            if errors:
                failed = True
                for e in errors:
                    print(f"{path}: {e}", file=sys.stderr)
            else:
                summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                print(f"OK {path}: {summary}")
        return 1 if failed else 0
    if cmd == "render":
        if args.repo is not None and args.overlay == "multitask" and not (args.repo / "multitask").is_dir():
            raise UserError(f"{args.repo}: multitask/ missing")
        per_task = args.overlay == "per-task"
        if per_task and args.group:
            raise UserError("--group: task groups are served by --overlay multitask only")
        tasks = resolve_tasks(args.tasks, args.repo, per_task=per_task)
        groups, skipped = ({}, []) if per_task else resolve_groups(args.group, args.repo, tasks)
        if skipped:
            print(
                f"note: group(s) {', '.join(skipped)} of {args.repo} left out: not every task of theirs is in "
                f"--tasks",
                file=sys.stderr,
            )
        if args.repo is not None and repository_facts(args.repo).profile == "local":
            print(
                f"warning: {args.repo} was exported with --profile local; the cluster needs the "
                f"--profile gpu export at {args.repo_uri}",
                file=sys.stderr,
            )
        out = args.out or (Path(args.k8s_dir) / "overlays" / args.overlay)
        files = render_overlay(
            which=args.overlay,
            repo_uri=args.repo_uri,
            tasks=tasks,
            mode=args.mode,
            out=out,
            k8s_dir=args.k8s_dir,
            namespace=args.namespace,
            autoscale=args.autoscale,
            prometheus=args.prometheus_url,
            max_replicas=args.max_replicas,
            kserve_version=args.kserve_version,
            monitoring=args.monitoring,
            groups=groups,
        )
        errors = validate_docs(build(out), kserve_version=args.kserve_version)
        for e in errors:
            print(f"{out}: {e}", file=sys.stderr)
        what = (
            f"{len(tasks)} per-task services"
            if per_task
            else f"the multitask service: multitask, {len(tasks)} task paths, {len(groups)} groups"
        )
        print(f"wrote {len(files)} files to {out} ({what}, {args.mode} mode)")
        if not errors:
            print(f"next: kubectl apply -k {out}")
        return 1 if errors else 0
    if cmd == "upload":
        return upload(
            args.repo,
            args.to,
            pvc_mount=args.pvc_mount,
            overwrite=args.overwrite,
            dry_run=args.dry_run,
            allow_local_profile=args.allow_local_profile,
        )
    raise UserError(f"unknown action {cmd!r}")
