"""`mtserve k8s validate`: the strict schema (k8s_schema) plus what this project requires of its manifests
(GPU limit, gRPC port name per deployment mode, probes, /dev/shm, Triton flags, pinned and consistent Triton
version, security context, no inline credentials, Prometheus annotations), on built or plain YAML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mtserve.serving import names
from mtserve.serving.errors import UserError
from mtserve.serving.k8s_kustomize import build, kustomization_file
from mtserve.serving.k8s_monitoring import (
    is_dashboard_config_map,
    validate_dashboard_config_map,
    validate_monitoring,
)
from mtserve.serving.k8s_repository import uri_problem
from mtserve.serving.k8s_schema import validate_schema

KNATIVE_MODES = {"Knative", "Serverless"}  # "Serverless": the name before KServe 0.16, still accepted
STANDARD_MODES = {"Standard", "RawDeployment"}  # "RawDeployment": likewise
GPU = "nvidia.com/gpu"
# the one Triton model an InferenceService loads: the multitask ensemble or a per-task baseline
LOAD_MODEL = re.compile(rf"--load-model=({names.MULTITASK}|{names.SINGLE_PREFIX}{names.TASK_NAME_RULE})\Z")


def _res_id(d: dict) -> str:
    meta = d.get("metadata") or {}
    ns = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{d.get('kind', '?')}/{ns}{meta.get('name', '?')}"


def _get(d: Any, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _quantity_value(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and re.match(r"^\d+(\.\d+)?$", v):
        return float(v)
    return None


def _secure_container(sc: Any, path: str, errors: list[str]) -> None:
    if not isinstance(sc, dict):
        errors.append(
            f"{path}: missing (runAsNonRoot, allowPrivilegeEscalation: false, drop ALL capabilities)"
        )
        return
    if sc.get("runAsNonRoot") is not True:
        errors.append(f"{path}.runAsNonRoot: must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        errors.append(f"{path}.allowPrivilegeEscalation: must be false")
    if sc.get("privileged"):
        errors.append(f"{path}.privileged: must not be true")
    if "ALL" not in (_get(sc, "capabilities", "drop") or []):
        errors.append(f"{path}.capabilities.drop: must include ALL")
    if _get(sc, "capabilities", "add"):
        errors.append(f"{path}.capabilities.add: no capabilities may be added")


SECRET_ENV = re.compile(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL|PRIVATE_KEY)", re.I)


def _no_inline_credentials(env: Any, path: str, errors: list[str]) -> None:
    for i, e in enumerate(env or []):
        if isinstance(e, dict) and "value" in e and SECRET_ENV.search(str(e.get("name", ""))):
            errors.append(
                f"{path}[{i}].value: credential {e.get('name')} inline; use valueFrom.secretKeyRef "
                f"or the ServiceAccount"
            )


def policy_inference_service(doc: dict) -> list[str]:
    """What this project requires of an InferenceService on top of the schema."""
    errors: list[str] = []
    ann = _get(doc, "metadata", "annotations") or {}
    mode = ann.get("serving.kserve.io/deploymentMode")
    if mode not in KNATIVE_MODES | STANDARD_MODES:
        errors.append(
            "metadata.annotations.serving.kserve.io/deploymentMode: must be set explicitly to "
            "Standard or Knative (KServe's default differs between releases)"
        )
    if (
        ann.get("serving.kserve.io/enable-prometheus-scraping") != "true"
        or ann.get("prometheus.kserve.io/port") != "8002"
    ):
        errors.append(
            "metadata.annotations: Prometheus scraping of Triton's :8002 needs "
            'serving.kserve.io/enable-prometheus-scraping: "true" and prometheus.kserve.io/port: "8002"'
        )
    pred = _get(doc, "spec", "predictor") or {}
    model = pred.get("model")
    p = "spec.predictor.model"
    if not isinstance(model, dict):
        return errors + [f"{p}: required (modelFormat triton on the Triton runtime)"]
    if _get(model, "modelFormat", "name") != "triton":
        errors.append(f"{p}.modelFormat.name: must be triton")
    if model.get("protocolVersion") != "grpc-v2":
        errors.append(f"{p}.protocolVersion: must be grpc-v2 (clients speak Triton's gRPC API)")
    version = model.get("runtimeVersion")
    if version is not None and "latest" in str(version):
        errors.append(f"{p}.runtimeVersion: pin the Triton release (e.g. 25.03-py3), not {version!r}")
    if version is None and model.get("runtime") in (None, "kserve-tritonserver"):
        errors.append(
            f"{p}.runtimeVersion: pin the Triton release (e.g. 25.03-py3); the cluster runtime's "
            f"image is whatever KServe was installed with"
        )
    uri = model.get("storageUri")
    if not uri:
        errors.append(f"{p}.storageUri: required (the model repository root)")
    elif uri_problem(str(uri)):
        errors.append(f"{p}.storageUri: {uri_problem(str(uri))}")
    limits = _get(model, "resources", "limits") or {}
    gpus = _quantity_value(limits.get(GPU))
    if gpus is None or gpus < 1:
        errors.append(f"{p}.resources.limits.{GPU}: missing GPU limit (every Triton service needs a GPU)")
    requests = _get(model, "resources", "requests") or {}
    for r in ("cpu", "memory"):
        if r not in requests:
            errors.append(f"{p}.resources.requests.{r}: required")
    ports = model.get("ports") or []
    if len(ports) != 1:
        errors.append(f"{p}.ports: exactly one port (Triton's gRPC port 9000), got {len(ports)}")
    else:
        name, number = ports[0].get("name"), ports[0].get("containerPort")
        if number != 9000:
            errors.append(f"{p}.ports[0].containerPort: must be 9000 (--grpc-port)")
        if mode in KNATIVE_MODES and name != "h2c":
            errors.append(
                f"{p}.ports[0].name: must be h2c in Knative mode (Knative proxies HTTP/2 only to h2c)"
            )
        if mode in STANDARD_MODES and not str(name).startswith("grpc"):
            errors.append(f"{p}.ports[0].name: must start with grpc in Standard mode, e.g. grpc-port")
    ready = _get(model, "readinessProbe", "httpGet", "path")
    if ready != "/v2/health/ready":
        errors.append(f"{p}.readinessProbe.httpGet.path: must be Triton's /v2/health/ready")
    live = model.get("livenessProbe")
    if not isinstance(live, dict):
        errors.append(f"{p}.livenessProbe: required (Triton's /v2/health/live, or its gRPC health service)")
    elif mode in KNATIVE_MODES:
        if _get(live, "grpc", "port") != 9000 and _get(live, "tcpSocket", "port") != 9000:
            errors.append(
                f"{p}.livenessProbe: in Knative mode probe the serving port 9000 (grpc or tcpSocket)"
            )
        if "startupProbe" in model:
            errors.append(f"{p}.startupProbe: Knative does not accept startup probes")
    elif _get(live, "httpGet", "path") != "/v2/health/live":
        errors.append(f"{p}.livenessProbe.httpGet.path: must be Triton's /v2/health/live")
    mounts = {
        m.get("mountPath"): m.get("name") for m in model.get("volumeMounts") or [] if isinstance(m, dict)
    }
    volumes = {v.get("name"): v for v in pred.get("volumes") or [] if isinstance(v, dict)}
    shm = volumes.get(mounts.get("/dev/shm")) if "/dev/shm" in mounts else None
    if shm is None:
        errors.append(f"{p}.volumeMounts: /dev/shm must be mounted from a memory emptyDir (python backend)")
    elif _get(shm, "emptyDir", "medium") != "Memory" or not _get(shm, "emptyDir", "sizeLimit"):
        errors.append(f"spec.predictor.volumes.{shm.get('name')}.emptyDir: medium Memory with a sizeLimit")
    loads = [a for a in model.get("args") or [] if str(a).startswith("--load-model=")]
    if len(loads) != 1:
        errors.append(f"{p}.args: exactly one --load-model=<Triton model> (multitask or single_<task>)")
    elif not LOAD_MODEL.match(loads[0]):
        errors.append(f"{p}.args: {loads[0]!r} is not multitask or single_<task>")
    _secure_container(model.get("securityContext"), f"{p}.securityContext", errors)
    if _get(pred, "securityContext", "runAsNonRoot") is not True:
        errors.append("spec.predictor.securityContext.runAsNonRoot: must be true")
    _no_inline_credentials(model.get("env"), f"{p}.env", errors)
    return errors


def policy_serving_runtime(doc: dict) -> list[str]:
    errors: list[str] = []
    containers = _get(doc, "spec", "containers") or []
    idx = next((i for i, c in enumerate(containers) if c.get("name") == "kserve-container"), None)
    if idx is None:
        return ["spec.containers: needs the kserve-container"]
    c, p = containers[idx], f"spec.containers[{idx}]"
    image = str(c.get("image", ""))
    if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
        errors.append(f"{p}.image: pin a Triton release tag or digest (got {image!r})")
    args = [str(a) for a in c.get("args") or []]
    for flag in (
        "--model-repository=/mnt/models",
        "--model-control-mode=explicit",
        "--disable-auto-complete-config",
        "--grpc-port=9000",
        "--http-port=8080",
        "--metrics-port=8002",
    ):
        if flag not in args:
            errors.append(f"{p}.args: {flag} missing")
    if any(a.startswith("--load-model") for a in args):
        errors.append(f"{p}.args: --load-model belongs to each InferenceService, not the shared runtime")
    _secure_container(c.get("securityContext"), f"{p}.securityContext", errors)
    _no_inline_credentials(c.get("env"), f"{p}.env", errors)
    return errors


def _image_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1].split("@")[0] if ":" in last else ""


def policy_cross(docs: list[dict]) -> list[str]:
    """Between resources: each InferenceService's runtime is here and its runtimeVersion is the runtime's tag."""
    errors = []
    runtimes = {_get(d, "metadata", "name"): d for d in docs if d.get("kind") == "ServingRuntime"}
    if not runtimes:
        return []
    for d in docs:
        if d.get("kind") != "InferenceService":
            continue
        model = _get(d, "spec", "predictor", "model") or {}
        name = model.get("runtime")
        rt = runtimes.get(name)
        if rt is None:
            errors.append(
                f"{_res_id(d)}: spec.predictor.model.runtime: {name!r} is not among the rendered "
                f"ServingRuntimes ({', '.join(sorted(map(str, runtimes)))})"
            )
            continue
        image = next(
            (
                c.get("image", "")
                for c in _get(rt, "spec", "containers") or []
                if c.get("name") == "kserve-container"
            ),
            "",
        )
        if model.get("runtimeVersion") and "@sha256:" in image:
            errors.append(
                f"{_res_id(d)}: spec.predictor.model.runtimeVersion: KServe would replace the runtime's image "
                f"digest with this tag; drop runtimeVersion when the image is pinned by digest"
            )
        elif model.get("runtimeVersion") and _image_tag(image) != model.get("runtimeVersion"):
            errors.append(
                f"{_res_id(d)}: spec.predictor.model.runtimeVersion: {model.get('runtimeVersion')!r} "
                f"differs from the runtime image tag {_image_tag(image)!r}"
            )
    return errors


def validate_docs(docs: list[dict], policy: bool = True) -> list[str]:
    """Every error of a set of resources, as '<Kind>/<name>: <field path>: <problem>'."""
    errors = []
    for d in docs:
        rid = _res_id(d)
        errs = validate_monitoring(d)  # PodMonitor, PrometheusRule: no SDK models them (k8s_monitoring)
        if errs is None:
            errs = validate_schema(d)
            if not errs and is_dashboard_config_map(d):
                errs = validate_dashboard_config_map(d)
        if policy and not errs:
            if d.get("kind") == "InferenceService":
                errs = policy_inference_service(d)
            elif d.get("kind") in ("ServingRuntime", "ClusterServingRuntime"):
                errs = policy_serving_runtime(d)
        errors.extend(f"{rid}: {e}" for e in errs)
    if policy:
        errors.extend(policy_cross(docs))
    return errors


def load_for_validation(path: Path) -> list[dict]:
    """A kustomization directory is built; a plain directory's *.yaml files and a file are read as they are."""
    if path.is_dir():
        if kustomization_file(path):
            return build(path)
        docs = []
        for f in sorted([*path.glob("*.yaml"), *path.glob("*.yml")]):
            docs.extend(load_yaml_docs(f))
        if not docs:
            raise UserError(f"{path}: no kustomization.yaml and no *.yaml files")
        return docs
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    return load_yaml_docs(path)


def load_yaml_docs(path: Path) -> list[dict]:
    """Every non-empty document of a YAML file; each must be a mapping."""
    try:
        docs = list(yaml.safe_load_all(Path(path).read_text()))
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {e}") from None
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None
    out = []
    for i, d in enumerate(docs):
        if d is None:
            continue
        if not isinstance(d, dict):
            raise UserError(f"{path}: document {i + 1} is a {type(d).__name__}, not a mapping")
        out.append(d)
    return out
