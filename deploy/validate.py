# Over 500 lines: every rule the project holds its manifests to, in one pass over the built objects (one validator, one problem list).
"""`mtserve k8s validate`: the strict schema (deploy/schema.py) plus what this project requires of its manifests
(GPU limit, gRPC port name per deployment mode, probes, /dev/shm, Triton flags, pinned and consistent Triton
version, security context, no inline credentials, Prometheus annotations), on built or plain YAML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mtserve.core import names
from mtserve.core.errors import UserError
from mtserve.deploy import liveness as k8s_liveness
from mtserve.deploy.kustomize import build, kustomization_file
from mtserve.deploy.monitoring import (
    is_dashboard_config_map,
    validate_dashboard_config_map,
    validate_monitoring,
)
from mtserve.deploy.repository import uri_problem
from mtserve.deploy.schema import validate_schema

KNATIVE_MODES = {"Knative", "Serverless"}  # "Serverless": the name before KServe 0.16
STANDARD_MODES = {"Standard", "RawDeployment"}  # "RawDeployment": likewise
DEFAULT_KSERVE_VERSION = "0.16"
GPU = "nvidia.com/gpu"
KNATIVE_LIVENESS_DELAY_S = 60  # k8s/components/serverless: Knative takes no startup probe
# What an InferenceService serves, first of its --load-model flags: the multitask ensemble or a per-task baseline
SERVED_FIRST = re.compile(rf"({names.MULTITASK}|{names.SINGLE_PREFIX}{names.TASK_NAME_RULE})\Z")
# What a multitask service loads besides: the paths clients call for a subset of the tasks (deploy/render.py)
SUBSET_PATH = re.compile(rf"({names.PATH_PREFIX}|{names.GROUP_PREFIX}){names.TASK_NAME_RULE}\Z")
LOADS_RULE = (
    "exactly one --load-model=single_<task> (a per-task service), or --load-model=multitask first and then only "
    "--load-model=path_<task> / --load-model=group_<g> (the multitask service)"
)


def load_model_problems(args: list, path: str) -> tuple[str | None, list[str]]:
    """The model a service serves (its first --load-model: the one its liveness check calls; None when the loads
    are wrong) and what is wrong with its --load-model flags."""
    loads = [(i, str(a).split("=", 1)[1]) for i, a in enumerate(args) if str(a).startswith("--load-model=")]
    if not loads:
        return None, [f"{path}: no --load-model: {LOADS_RULE}"]
    errors = []
    (i0, first), rest = loads[0], loads[1:]
    if not SERVED_FIRST.match(first):
        errors.append(f"{path}[{i0}]: {first!r} is not multitask or single_<task>: {LOADS_RULE}")
    elif first != names.MULTITASK and rest:
        errors.append(
            f"{path}: a per-task service loads exactly one model ({first}), not also "
            f"{', '.join(m for _, m in rest)}"
        )
    else:
        seen = {first}
        for i, m in rest:
            if m in seen:
                errors.append(f"{path}[{i}]: {m!r} is loaded twice")
            elif m == names.MULTITASK:
                errors.append(
                    f"{path}[{i}]: --load-model=multitask must come first (the liveness check calls the first)"
                )
            elif not SUBSET_PATH.match(m):
                errors.append(
                    f"{path}[{i}]: {m!r}: a multitask service loads only path_<task> and group_<g> besides "
                    "multitask (what clients call; Triton loads what those run with them)"
                )
            seen.add(m)
    return (first if not errors else None), errors


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


def parse_kserve_version(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(\.\d+)?", str(text).strip())
    if not m:
        raise UserError(f"--kserve-version {text!r}: expected MAJOR.MINOR, e.g. 0.15 or 0.16")
    return int(m.group(1)), int(m.group(2))


def mode_names(kserve_version: str = DEFAULT_KSERVE_VERSION) -> dict[str, str]:
    """The deploymentMode annotation values a KServe release understands: 0.16 renamed RawDeployment to Standard
    and Serverless to Knative. An InferenceService created on 0.16+ with an old name is rejected on every later
    update, deletion included (kserve#5885), and 0.15 does not know the new names."""
    if parse_kserve_version(kserve_version) >= (0, 16):
        return {"raw": "Standard", "serverless": "Knative"}
    return {"raw": "RawDeployment", "serverless": "Serverless"}


# Pod and container fields a Knative Serving install rejects with its default config-features (the flag that
# allows each; None: never allowed), from knative/serving pkg/apis/serving/fieldmask.go and k8s_flags.go.
KNATIVE_POD_FIELDS = {
    "tolerations": "kubernetes.podspec-tolerations",
    "affinity": "kubernetes.podspec-affinity",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "securityContext": "kubernetes.podspec-securitycontext",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "schedulerName": "kubernetes.podspec-schedulername",
    "initContainers": "kubernetes.podspec-init-containers",
    "topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",
    "hostAliases": "kubernetes.podspec-hostaliases",
    "shareProcessNamespace": "kubernetes.podspec-shareprocessnamespace",
    "hostNetwork": None,
    "hostPID": None,
    "hostIPC": None,
    "nodeName": None,
    "dnsConfig": None,
}
KNATIVE_CONTAINER_SECURITY = {"privileged": None, "seLinuxOptions": None, "procMount": None}
KNATIVE_CONTAINER_FIELDS = {"lifecycle": None, "stdin": None, "tty": None, "volumeDevices": None}


def _knative_rejects(pred: dict, model: dict) -> list[str]:
    errors = []

    def why(flag):
        return (
            f"a default Knative rejects it ({flag} is disabled in config-features)"
            if flag
            else "Knative never accepts it"
        )

    for key, flag in KNATIVE_POD_FIELDS.items():
        if key in pred:
            errors.append(f"spec.predictor.{key}: {why(flag)}; k8s/components/serverless removes it")
    for key, flag in KNATIVE_CONTAINER_FIELDS.items():
        if key in model:
            errors.append(f"spec.predictor.model.{key}: {why(flag)}")
    sc = model.get("securityContext") or {}
    for key, flag in KNATIVE_CONTAINER_SECURITY.items():
        if key in sc:
            errors.append(f"spec.predictor.model.securityContext.{key}: {why(flag)}, even set to false")
    if _get(sc, "capabilities", "add"):
        errors.append(
            f"spec.predictor.model.securityContext.capabilities.add: {why('kubernetes.containerspec-addcapabilities')}"
        )
    return errors


def policy_inference_service(doc: dict, kserve_version: str = DEFAULT_KSERVE_VERSION) -> list[str]:
    """What this project requires of an InferenceService on top of the schema."""
    errors: list[str] = []
    ann = _get(doc, "metadata", "annotations") or {}
    mode = ann.get("serving.kserve.io/deploymentMode")
    names_now = mode_names(kserve_version)
    other = mode_names("0.15" if names_now["raw"] == "Standard" else "0.16")
    f = "metadata.annotations.serving.kserve.io/deploymentMode"
    if mode in other.values():
        errors.append(
            f"{f}: {mode!r} is not a mode name of KServe {kserve_version} (it takes "
            f"{names_now['raw']} or {names_now['serverless']}; render with --kserve-version)"
        )
    elif mode not in names_now.values():
        errors.append(
            f"{f}: must be set explicitly to {names_now['raw']} or {names_now['serverless']} "
            "(KServe's default differs between releases)"
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
        errors.append(f"{p}.runtimeVersion: pin the Triton release (e.g. 26.08-py3), not {version!r}")
    if version is None and model.get("runtime") in (None, "kserve-tritonserver"):
        errors.append(
            f"{p}.runtimeVersion: pin the Triton release (e.g. 26.08-py3); the cluster runtime's "
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
    served, load_errors = load_model_problems(model.get("args") or [], f"{p}.args")
    live = model.get("livenessProbe")
    errors += k8s_liveness.problems(live, served, f"{p}.livenessProbe")
    if mode in KNATIVE_MODES:
        if "startupProbe" in model:
            errors.append(f"{p}.startupProbe: Knative does not accept startup probes")
        if isinstance(live, dict) and (live.get("initialDelaySeconds") or 0) < KNATIVE_LIVENESS_DELAY_S:
            errors.append(
                f"{p}.livenessProbe.initialDelaySeconds: at least {KNATIVE_LIVENESS_DELAY_S} in Knative mode (no "
                "startup probe there: Triton answers only once its models are loaded)"
            )
    mounts = {
        m.get("mountPath"): m.get("name") for m in model.get("volumeMounts") or [] if isinstance(m, dict)
    }
    volumes = {v.get("name"): v for v in pred.get("volumes") or [] if isinstance(v, dict)}
    shm = volumes.get(mounts.get("/dev/shm")) if "/dev/shm" in mounts else None
    if shm is None:
        errors.append(f"{p}.volumeMounts: /dev/shm must be mounted from a memory emptyDir (python backend)")
    elif _get(shm, "emptyDir", "medium") != "Memory" or not _get(shm, "emptyDir", "sizeLimit"):
        errors.append(f"spec.predictor.volumes.{shm.get('name')}.emptyDir: medium Memory with a sizeLimit")
    errors += load_errors
    _secure_container(model.get("securityContext"), f"{p}.securityContext", errors)
    if mode in KNATIVE_MODES:
        # the container's runAsNonRoot (checked above) stands in for the pod's, which Knative does not take
        errors += _knative_rejects(pred, model)
    elif _get(pred, "securityContext", "runAsNonRoot") is not True:
        errors.append("spec.predictor.securityContext.runAsNonRoot: must be true")
    trt = volumes.get(mounts.get(names.TRT_CACHE_PATH)) if names.TRT_CACHE_PATH in mounts else None
    if trt is None:
        errors.append(
            f"{p}.volumeMounts: {names.TRT_CACHE_PATH} must be mounted (an emptyDir or a claim): "
            "`mtserve export --tensorrt` caches TensorRT engines there"
        )
    elif (
        not ("emptyDir" in trt or "persistentVolumeClaim" in trt)
        or _get(trt, "emptyDir", "medium") == "Memory"
    ):
        errors.append(
            f"spec.predictor.volumes.{trt.get('name')}: the TensorRT engine cache needs a disk emptyDir or a "
            "persistentVolumeClaim (engines are hundreds of MB: not in memory)"
        )
    _no_inline_credentials(model.get("env"), f"{p}.env", errors)
    errors += admin_key_problems(model, p)
    return errors


# ---------------------------------------------------------------- credentials fail closed
RESTRICTED_FLAG = re.compile(
    r"^--(grpc-restricted-protocol|http-restricted-api)=(?P<apis>[^:]*):(?P<header>[^=]+)=(?P<key>.*)$"
)
ENV_REF = re.compile(r"^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$")
CREDENTIAL_ARG = re.compile(r"^--[\w-]*(key|token|password|secret|credential)[\w-]*=(?P<value>.+)$", re.I)


def admin_key_problems(container: dict, path: str, env: list[tuple[str, dict]] | None = None) -> list[str]:
    """Every way the container's admin key (Triton's restricted-API header value) or another credential in its
    args could fall back to a value known to anyone who reads the manifests: a literal key, a $(VAR) that no env
    entry defines (Kubernetes then passes the text itself), or one defined by a literal, a ConfigMap or an
    optional Secret reference (a missing Secret then starts the pod with the literal `$(VAR)`). `env`: the
    container's effective env as (where, entry) when another resource's entries override it (KServe merges the
    InferenceService's container into the runtime's, env entries by name)."""
    errors: list[str] = []
    if env is None:
        env = [(f"{path}.env[{j}]", e) for j, e in enumerate(container.get("env") or [])]
    by_name = {e.get("name"): (where, e) for where, e in env if isinstance(e, dict)}
    for i, arg in enumerate(container.get("args") or []):
        arg = str(arg)
        m = RESTRICTED_FLAG.match(arg)
        value = m.group("key") if m else None
        if m is None:
            c = CREDENTIAL_ARG.match(arg)
            value = c.group("value") if c else None
        if value is None:
            continue
        what = (
            f"the admin key of {arg.split('=', 1)[0]}" if m else f"the credential in {arg.split('=', 1)[0]}"
        )
        ref = ENV_REF.match(value)
        if ref is None:
            errors.append(
                f"{path}.args[{i}]: {what} is a literal in the manifest; pass $(VAR) with env VAR from "
                "valueFrom.secretKeyRef"
            )
            continue
        var = ref.group(1)
        if var not in by_name:
            errors.append(
                f"{path}.args[{i}]: {what} is $({var}), which no env entry defines: Kubernetes then passes the text "
                f"'$({var})' itself, a key anyone reading this manifest knows"
            )
            continue
        where, e = by_name[var]
        if "value" in e:
            errors.append(f"{where}.value: {var} ({what}) is a literal; use valueFrom.secretKeyRef")
        elif not isinstance(_get(e, "valueFrom", "secretKeyRef"), dict):
            errors.append(f"{where}.valueFrom: {var} ({what}) must come from a Secret (secretKeyRef)")
        elif _get(e, "valueFrom", "secretKeyRef", "optional") is True:
            errors.append(
                f"{where}.valueFrom.secretKeyRef.optional: true lets the pod start without Secret "
                f"{_get(e, 'valueFrom', 'secretKeyRef', 'name')!r}, and {what} falls back to the literal '$({var})'"
            )
    args = [str(a) for a in container.get("args") or []]
    if "--model-control-mode=explicit" in args:
        for flag in ("--http-restricted-api", "--grpc-restricted-protocol"):
            if not any(
                a.startswith(flag + "=") and "model-repository" in a.split("=", 1)[1].split(":", 1)[0]
                for a in args
            ):
                errors.append(
                    f"{path}.args: --model-control-mode=explicit opens Triton's repository API (load/unload); "
                    f"restrict it with {flag}=model-repository,...:<header>=$(KEY) from a Secret"
                )
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
        "--metrics-config=summary_latencies=true",  # the p99 alert (k8s/components/monitoring) reads these
    ):
        if flag not in args:
            errors.append(f"{p}.args: {flag} missing")
    if any(a.startswith("--load-model") for a in args):
        errors.append(f"{p}.args: --load-model belongs to each InferenceService, not the shared runtime")
    _secure_container(c.get("securityContext"), f"{p}.securityContext", errors)
    _no_inline_credentials(c.get("env"), f"{p}.env", errors)
    errors += admin_key_problems(c, p)
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
        container = next(
            (c for c in _get(rt, "spec", "containers") or [] if c.get("name") == "kserve-container"), {}
        )
        image = container.get("image", "")
        mode = _get(d, "metadata", "annotations", "serving.kserve.io/deploymentMode")
        if mode in KNATIVE_MODES:  # KServe merges the runtime's container into the Knative revision's
            for key in KNATIVE_CONTAINER_SECURITY:
                if key in (container.get("securityContext") or {}):
                    errors.append(
                        f"{_res_id(rt)}: spec.containers[kserve-container].securityContext.{key}: "
                        f"{_res_id(d)} runs in Knative mode, which never accepts it (even set to false)"
                    )
        # What runs: the runtime's args, then the InferenceService's; the runtime's env with the InferenceService's
        # entries replacing those of the same name. Problems the InferenceService brings in (its args, its env
        # entries) are reported here; the runtime's own are reported on the runtime.
        isvc_env = [(f"spec.predictor.model.env[{j}]", e) for j, e in enumerate(model.get("env") or [])]
        overrides = {e.get("name") for _, e in isvc_env if isinstance(e, dict)}
        rt_env = [
            (f"ServingRuntime/{name} spec.containers[kserve-container].env[{j}]", e)
            for j, e in enumerate(container.get("env") or [])
            if isinstance(e, dict) and e.get("name") not in overrides
        ]
        n_rt_args = len(container.get("args") or [])
        merged = {"args": list(container.get("args") or []) + list(model.get("args") or [])}
        for problem in admin_key_problems(merged, "args", rt_env + isvc_env):
            m = re.match(r"args\[(\d+)\]", problem)
            if m and int(m.group(1)) >= n_rt_args:  # one of the InferenceService's args
                problem = (
                    f"spec.predictor.model.args[{int(m.group(1)) - n_rt_args}]" + problem[len(m.group(0)) :]
                )
            elif not problem.startswith("spec.predictor.model.env["):
                continue
            errors.append(f"{_res_id(d)}: {problem}")
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


def validate_docs(
    docs: list[dict], policy: bool = True, kserve_version: str = DEFAULT_KSERVE_VERSION
) -> list[str]:
    """Every error of a set of resources, as '<Kind>/<name>: <field path>: <problem>'; the deployment-mode
    names are those of `kserve_version`."""
    errors = []
    for d in docs:
        rid = _res_id(d)
        errs = validate_monitoring(d)  # PodMonitor, PrometheusRule: no SDK models them (deploy/monitoring.py)
        if errs is None:
            errs = validate_schema(d)
            if not errs and is_dashboard_config_map(d):
                errs = validate_dashboard_config_map(d)
        if policy and not errs:
            if d.get("kind") == "InferenceService":
                errs = policy_inference_service(d, kserve_version)
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
