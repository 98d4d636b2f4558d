"""k8s/: the kustomize overlays, the renderer, the strict validator, `mtserve k8s` (no cluster, no network)."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mtserve.cli import main
from mtserve.core import registry
from mtserve.core.errors import UserError
from mtserve.deploy import kustomize as k8s_kustomize
from mtserve.deploy import liveness as k8s_liveness
from mtserve.deploy import render as k8s_render
from mtserve.deploy import schema as k8s_schema
from mtserve.deploy import upload as k8s_upload
from mtserve.deploy import validate as k8s_validate

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
COMMITTED = ["base", "overlays/multitask", "overlays/per-task", "overlays/autoscaling"]
LOADTEST = ["loadtest"]  # the Locust master and workers: a generated ConfigMap, two Jobs, a Service
TASKS = ["intent", "sentiment", "domain", "urgency"]
GROUPS = {"support": ["intent", "urgency"]}  # the rendered multitask variants load group_support
URI = "s3://mtserve-models/repository/v2"
TRITON_FLAGS = [
    "--model-repository=/mnt/models",
    "--model-control-mode=explicit",
    "--disable-auto-complete-config",
    "--strict-readiness=true",
    "--exit-on-error=true",
    "--grpc-port=9000",
    "--metrics-port=8002",
]


# ---------------------------------------------------------------- helpers
def isvcs(docs):
    return [d for d in docs if d["kind"] == "InferenceService"]


def loads(isvc) -> list[str]:
    """Every model an InferenceService's Triton loads (its --load-model flags), in order."""
    return [
        a.split("=", 1)[1]
        for a in isvc["spec"]["predictor"]["model"]["args"]
        if a.startswith("--load-model=")
    ]


def loaded_model(isvc) -> str:
    """The model a service serves: its first --load-model (a per-task service loads no other)."""
    models = loads(isvc)
    assert models and (models[0] == "multitask" or len(models) == 1), models
    return models[0]


def multitask_loads(tasks, groups=()) -> list[str]:
    return ["multitask", *(f"path_{t}" for t in sorted(tasks)), *(f"group_{g}" for g in sorted(groups))]


def triton_args(docs, isvc) -> list[str]:
    """What KServe runs: the runtime container's args followed by the InferenceService's."""
    rt = next(
        d
        for d in docs
        if d["kind"] == "ServingRuntime"
        and d["metadata"]["name"] == isvc["spec"]["predictor"]["model"]["runtime"]
    )
    container = next(c for c in rt["spec"]["containers"] if c["name"] == "kserve-container")
    return container["args"] + isvc["spec"]["predictor"]["model"]["args"]


@functools.cache
def _built(rel: str) -> list[dict]:
    return k8s_kustomize.build(K8S / rel)


def built(rel: str) -> list[dict]:
    """A committed kustomization as kubectl builds it: one kubectl run per folder for the whole module, a fresh
    copy for each caller to change."""
    return copy.deepcopy(_built(rel))


def base_isvc() -> dict:
    return isvcs(built("base"))[0]


def errors_of(doc) -> list[str]:
    return k8s_validate.validate_docs([doc])


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of k8s/ to render into, so the tests never touch the committed overlays."""
    dst = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, dst)
    return dst


@pytest.fixture(scope="module")
def variants(tree):
    """Every overlay shape the renderer makes, built: name -> resources."""
    out = {}
    for mode in ("raw", "serverless"):
        for autoscale in (False, True):
            tag = f"{mode}{'-autoscale' if autoscale else ''}"
            d = tree / "rendered" / f"per-task-{tag}"
            k8s_render.render_overlay(
                which="per-task",
                repo_uri=URI,
                tasks=sorted(TASKS),
                mode=mode,
                out=d,
                k8s_dir=tree,
                autoscale=autoscale,
            )
            out[f"per-task-{tag}"] = k8s_kustomize.build(d)
            d = tree / "rendered" / f"multitask-{tag}"
            k8s_render.render_overlay(
                which="multitask",
                repo_uri=URI,
                tasks=sorted(TASKS),
                groups=GROUPS,
                mode=mode,
                out=d,
                k8s_dir=tree,
                autoscale=autoscale,
            )
            out[f"multitask-{tag}"] = k8s_kustomize.build(d)
    for rel in COMMITTED:
        out[rel] = built(rel)
    return out


# ---------------------------------------------------------------- everything rendered validates
@pytest.mark.parametrize("rel", COMMITTED)
def test_committed_kustomizations_build_and_validate(rel):
    docs = built(rel)
    assert k8s_validate.validate_docs(docs) == []
    assert {d["kind"] for d in docs} == {"InferenceService", "ServingRuntime", "ServiceAccount"}


@pytest.mark.parametrize("rel", LOADTEST)
def test_loadtest_kustomization_builds_and_validates(rel, tmp_path):
    docs = built(rel)
    assert k8s_validate.validate_docs(docs) == []
    by_kind: dict[str, list] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    assert sorted(by_kind) == ["ConfigMap", "Job", "Service"]
    (cm,) = by_kind["ConfigMap"]
    # kustomize names the generated ConfigMap by its content, and both Jobs mount and read that very name
    name = cm["metadata"]["name"]
    assert re.fullmatch(r"mtserve-loadtest-[a-z0-9]{10}", name)
    assert cm["data"]["locustfile.py"] == (K8S / rel / "locustfile.py").read_text()
    assert "mtserve loadtest" in cm["data"]["run-search.sh"]
    jobs = {j["metadata"]["name"]: j for j in by_kind["Job"]}
    for job in jobs.values():
        pod = job["spec"]["template"]["spec"]
        assert {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} == {name}
        assert all(c["image"] == "mtserve-loadtest:0.1.0" for c in pod["containers"])
        assert pod["securityContext"]["runAsNonRoot"] is True
    master = jobs["mtserve-loadtest-master"]["spec"]["template"]
    assert master["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == name
    (svc,) = by_kind["Service"]
    assert svc["spec"]["selector"].items() <= master["metadata"]["labels"].items()
    workers = jobs["mtserve-loadtest-workers"]
    assert workers["spec"]["parallelism"] == workers["spec"]["completions"] == int(cm["data"]["WORKERS"])
    cmd = workers["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--master-host") + 1] == svc["metadata"]["name"]
    # a changed setting is a new ConfigMap name: the pods never run stale files
    copy_dir = tmp_path / "loadtest"
    shutil.copytree(K8S / rel, copy_dir)
    kfile = copy_dir / "kustomization.yaml"
    kfile.write_text(kfile.read_text().replace("SLO_MS=200", "SLO_MS=100"))
    changed = k8s_kustomize.build(copy_dir)
    assert next(d for d in changed if d["kind"] == "ConfigMap")["metadata"]["name"] != name
    assert main(["k8s", "validate", str(K8S / rel)]) == 0


def test_every_rendered_variant_validates(variants):
    for name, docs in variants.items():
        assert k8s_validate.validate_docs(docs) == [], name


def test_validator_knows_every_type_the_specs_reach():
    """Every OpenAPI type under InferenceService and ServingRuntime resolves to an SDK model or a scalar,
    so 'strict' really is strict all the way down (containers, volumes, probes are kubernetes models)."""
    seen, unresolved = set(), set()

    def walk(t):
        m = k8s_schema._LIST_T.match(t) or k8s_schema._DICT_T.match(t)
        if m:
            return walk(next(g for g in m.groups() if g))
        r = k8s_schema.resolve_type(t)
        if isinstance(r, str):
            if r == "object" and t != "object":
                unresolved.add(t)
            return
        if r.name not in seen:
            seen.add(r.name)
            for _, sub in r.fields.values():
                walk(sub)

    walk("V1beta1InferenceServiceSpec")
    walk("V1alpha1ServingRuntimeSpec")
    assert not unresolved
    assert {"V1Container", "V1Volume", "V1Probe", "V1beta1ModelSpec"} <= seen


# The kserve models are read from their source (k8s_schema.py says why: importing them runs kserve/__init__.py,
# whose gRPC protos clash with tritonclient's in one process). A fresh process without tritonclient can import
# them: there, what the classes say must be what was read, for every model kserve has.
KSERVE_TRUTH = """
import json, kserve.models as km
out = {}
for name in dir(km):
    cls = getattr(km, name)
    if isinstance(cls, type) and hasattr(cls, "openapi_types"):
        required = set()
        for attr in cls.openapi_types:
            try:
                cls(**{a: (None if a == attr else 0) for a in cls.openapi_types})
            except ValueError as e:
                if "must not be `None`" in str(e):
                    required.add(cls.attribute_map[attr])
        fields = {cls.attribute_map[a]: [a, t] for a, t in cls.openapi_types.items()}
        out[name] = {"fields": fields, "required": sorted(required)}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_kserve_models_read_from_source_are_what_kserve_imports():
    run = subprocess.run([sys.executable, "-c", KSERVE_TRUTH], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    truth = json.loads(run.stdout)
    assert len(truth) > 100 and "V1beta1InferenceService" in truth
    for name, want in truth.items():
        model = k8s_schema.sdk_model(name)
        assert model is not None, name
        assert {k: list(v) for k, v in model.fields.items()} == want["fields"], name
        assert sorted(model.required) == want["required"], name
    assert (
        "modelFormat" in k8s_schema.sdk_model("V1beta1ModelSpec").required
    )  # the check has something to find


# ---------------------------------------------------------------- strict schema: field paths in errors
def test_misspelled_field_is_rejected_with_its_path():
    doc = base_isvc()
    model = doc["spec"]["predictor"]["model"]
    model["storageURI"] = model.pop("storageUri")
    errs = errors_of(doc)
    assert any("spec.predictor.model.storageURI: unknown field" in e for e in errs), errs
    assert any("did you mean storageUri" in e for e in errs)


def test_wrong_type_is_rejected_with_its_path():
    doc = base_isvc()
    doc["spec"]["predictor"]["minReplicas"] = "one"
    errs = errors_of(doc)
    assert any(
        e.endswith("spec.predictor.minReplicas: expected an integer, got a string ('one')") for e in errs
    ), errs


def test_missing_gpu_limit_is_rejected_by_policy():
    doc = base_isvc()
    del doc["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"]
    assert k8s_schema.validate_schema(doc) == []  # valid for the API server...
    errs = errors_of(doc)  # ...but not for us
    assert any(
        "spec.predictor.model.resources.limits.nvidia.com/gpu: missing GPU limit" in e for e in errs
    ), errs


@pytest.mark.parametrize(
    "mutate, expected",
    [
        # deep inside kubernetes models reached through the kserve ones
        (
            lambda d: d["spec"]["predictor"]["model"]["readinessProbe"]["httpGet"].update(prot=8080),
            "spec.predictor.model.readinessProbe.httpGet.prot: unknown field",
        ),
        (
            lambda d: d["spec"]["predictor"]["volumes"][0]["emptyDir"].update(sizeLimit="lots"),
            "spec.predictor.volumes[0].emptyDir.sizeLimit: expected a quantity",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"]["ports"][0].update(containerPort="9000"),
            "spec.predictor.model.ports[0].containerPort: expected an integer",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"]["resources"]["limits"].update(memory="16 GB"),
            "spec.predictor.model.resources.limits.memory: expected a quantity",
        ),
        (
            lambda d: d["metadata"]["annotations"].update({"prometheus.kserve.io/port": 8002}),
            "metadata.annotations[prometheus.kserve.io/port]: expected a string",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"]["volumeMounts"][0].pop("name"),
            "spec.predictor.model.volumeMounts[0].name: required field missing",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"].pop("modelFormat"),
            "spec.predictor.model.modelFormat: required field missing",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"].update(args="--load-model=multitask"),
            "spec.predictor.model.args: expected a list",
        ),
        (
            lambda d: d["spec"]["predictor"]["tolerations"][0].update(tolerationSeconds=True),
            "spec.predictor.tolerations[0].tolerationSeconds: expected an integer",
        ),
        (
            lambda d: d["spec"].update(predictorr={}),
            "spec.predictorr: unknown field (did you mean predictor?)",
        ),
    ],
)
def test_schema_errors_name_the_field(mutate, expected):
    doc = base_isvc()
    mutate(doc)
    errs = k8s_schema.validate_schema(doc)
    assert any(expected in e for e in errs), errs


def test_quantities_may_be_strings_or_numbers():
    doc = base_isvc()
    res = doc["spec"]["predictor"]["model"]["resources"]
    res["limits"]["nvidia.com/gpu"] = 1
    res["requests"].update(cpu=4, memory="8Gi")
    res["requests"]["nvidia.com/gpu"] = 1
    assert errors_of(doc) == []
    res["requests"]["cpu"] = "500m"
    assert errors_of(doc) == []


def test_serving_runtime_containers_are_checked_as_kubernetes_containers():
    rt = next(d for d in built("base") if d["kind"] == "ServingRuntime")
    bad = copy.deepcopy(rt)
    bad["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    bad["spec"]["containers"][0]["env"][1]["value"] = 1
    errs = k8s_schema.validate_schema(bad)
    assert any("spec.containers[0].imagePullPolicyy: unknown field" in e for e in errs), errs
    assert any("spec.containers[0].env[1].value: expected a string" in e for e in errs), errs
    bad = copy.deepcopy(rt)
    bad["spec"]["supportedModelFormats"][0]["autoselect"] = True
    assert any(
        "spec.supportedModelFormats[0].autoselect: unknown field (did you mean autoSelect?)" in e
        for e in k8s_schema.validate_schema(bad)
    )


def test_unknown_kinds_are_errors():
    errs = k8s_validate.validate_docs(
        [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}}]
    )
    assert errs and "ScaledObject" in errs[0]


# ---------------------------------------------------------------- project policy
@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda d: d["metadata"]["annotations"].pop("serving.kserve.io/deploymentMode"),
            "deploymentMode: must be set",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"]["ports"][0].update(name="h2c"),
            "must start with grpc in Standard",
        ),
        (
            lambda d: d["metadata"]["annotations"].update({"serving.kserve.io/deploymentMode": "Knative"}),
            "must be h2c in Knative mode",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"]["ports"].append(
                {"name": "http", "containerPort": 8080}
            ),
            "exactly one port",
        ),
        (
            lambda d: d["spec"]["predictor"]["volumes"][0]["emptyDir"].pop("sizeLimit"),
            "medium Memory with a sizeLimit",
        ),
        (lambda d: d["spec"]["predictor"]["model"].pop("volumeMounts"), "/dev/shm must be mounted"),
        (lambda d: d["spec"]["predictor"]["model"].update(args=[]), "no --load-model"),
        (
            lambda d: d["spec"]["predictor"]["model"].update(args=["--load-model=mtserve"]),
            "not multitask or single_<task>",
        ),
        (  # a multitask service loads the paths clients call, nothing else: not a baseline's BERT
            lambda d: d["spec"]["predictor"]["model"].update(
                args=["--load-model=multitask", "--load-model=path_intent", "--load-model=full_intent"]
            ),
            "args[2]: 'full_intent': a multitask service loads only path_<task> and group_<g>",
        ),
        (  # nor an inner ensemble (graph_<g> is what group_<g> runs)
            lambda d: d["spec"]["predictor"]["model"].update(
                args=["--load-model=multitask", "--load-model=graph_x"]
            ),
            "'graph_x': a multitask service loads only path_<task> and group_<g>",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"].update(
                args=["--load-model=multitask", "--load-model=path_intent", "--load-model=path_intent"]
            ),
            "args[2]: 'path_intent' is loaded twice",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"].update(
                args=["--load-model=path_intent", "--load-model=multitask"]
            ),
            "args[0]: 'path_intent' is not multitask or single_<task>",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"].update(
                args=["--load-model=single_intent", "--load-model=path_intent"]
            ),
            "a per-task service loads exactly one model (single_intent), not also path_intent",
        ),
        (lambda d: d["spec"]["predictor"]["model"].update(protocolVersion="v2"), "must be grpc-v2"),
        (lambda d: d["spec"]["predictor"]["model"].update(runtimeVersion="latest"), "pin the Triton release"),
        (
            lambda d: d["spec"]["predictor"]["model"]["securityContext"].update(
                allowPrivilegeEscalation=True
            ),
            "allowPrivilegeEscalation: must be false",
        ),
        (lambda d: d["spec"]["predictor"]["model"].pop("readinessProbe"), "readinessProbe.httpGet.path"),
        (
            lambda d: d["spec"]["predictor"]["model"].update(storageUri="s3://AKIA:secret@bucket/repo"),
            "credentials in the URI",
        ),
        (
            lambda d: d["spec"]["predictor"]["model"].update(
                env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}]
            ),
            "credential AWS_SECRET_ACCESS_KEY inline",
        ),
        (lambda d: d["metadata"]["annotations"].pop("prometheus.kserve.io/port"), "Prometheus scraping"),
    ],
)
def test_policy_rejections(mutate, expected):
    doc = base_isvc()
    mutate(doc)
    errs = errors_of(doc)
    assert any(expected in e for e in errs), errs


def test_runtime_version_must_match_the_runtime_image():
    docs = built("base")
    isvcs(docs)[0]["spec"]["predictor"]["model"]["runtimeVersion"] = "24.08-py3"
    assert any(
        "differs from the runtime image tag '26.08-py3'" in e for e in k8s_validate.validate_docs(docs)
    )
    docs = built("base")
    isvcs(docs)[0]["spec"]["predictor"]["model"]["runtime"] = "kserve-tritonserver-typo"
    assert any("is not among the rendered ServingRuntimes" in e for e in k8s_validate.validate_docs(docs))
    docs = built("base")  # pinned by digest: runtimeVersion would undo it
    rt = next(d for d in docs if d["kind"] == "ServingRuntime")
    rt["spec"]["containers"][0]["image"] = "nvcr.io/nvidia/tritonserver@sha256:" + "0" * 64
    assert (
        k8s_validate.validate_docs(docs) == []
    )  # the base sets no runtimeVersion: the runtime's image is it
    isvcs(docs)[0]["spec"]["predictor"]["model"]["runtimeVersion"] = "26.08-py3"
    assert any("drop runtimeVersion" in e for e in k8s_validate.validate_docs(docs))
    del isvcs(docs)[0]["spec"]["predictor"]["model"]["runtimeVersion"]
    isvcs(docs)[0]["spec"]["predictor"]["model"]["runtime"] = "kserve-tritonserver"
    assert any(
        "runtimeVersion: pin the Triton release" in e for e in k8s_validate.validate_docs([isvcs(docs)[0]])
    )


def test_runtime_policy():
    rt = next(d for d in built("base") if d["kind"] == "ServingRuntime")
    bad = copy.deepcopy(rt)
    bad["spec"]["containers"][0]["image"] = "nvcr.io/nvidia/tritonserver:latest"
    bad["spec"]["containers"][0]["args"].remove("--disable-auto-complete-config")
    errs = k8s_validate.validate_docs([bad])
    assert any("pin a Triton release" in e for e in errs)
    assert any("--disable-auto-complete-config missing" in e for e in errs)


# ---------------------------------------------------------------- overlays: one service per task / one multitask
def test_per_task_overlay_has_one_inference_service_per_task(variants):
    for tag in ("raw", "serverless", "raw-autoscale", "serverless-autoscale"):
        docs = variants[f"per-task-{tag}"]
        services = isvcs(docs)
        assert len(services) == len(TASKS)
        assert sorted(loaded_model(s) for s in services) == sorted(f"single_{t}" for t in TASKS)
        for s in services:
            task = s["metadata"]["labels"]["mtserve.io/task"]
            assert s["metadata"]["name"] == f"mtserve-{task}"
            assert loaded_model(s) == f"single_{task}" == s["metadata"]["labels"]["mtserve.io/model"]
            assert s["spec"]["predictor"]["model"]["storageUri"] == URI
            assert s["metadata"]["namespace"] == "mtserve"
        assert len([d for d in docs if d["kind"] == "ServingRuntime"]) == 1  # shared, not one per task


def test_multitask_overlays_have_exactly_one_inference_service(variants):
    from mtserve.core.corpus import TASKS as DEMO_TASKS

    for name, want in (
        ("base", ["multitask"]),  # no task list: multitask alone (every request runs every head)
        ("overlays/multitask", multitask_loads(DEMO_TASKS)),
        ("overlays/autoscaling", multitask_loads(DEMO_TASKS)),
        ("multitask-raw", multitask_loads(TASKS, GROUPS)),
        ("multitask-serverless", multitask_loads(TASKS, GROUPS)),
        ("multitask-raw-autoscale", multitask_loads(TASKS, GROUPS)),
    ):
        services = isvcs(variants[name])
        assert len(services) == 1, name
        assert loaded_model(services[0]) == "multitask"
        assert loads(services[0]) == want, name
        assert services[0]["metadata"]["name"] == "mtserve"


def test_committed_per_task_overlay_matches_the_demo_tasks():
    from mtserve.core.corpus import TASKS as DEMO_TASKS

    services = isvcs(built("overlays/per-task"))
    assert sorted(loaded_model(s) for s in services) == sorted(f"single_{t}" for t in DEMO_TASKS)


@pytest.mark.parametrize("rel", ["overlays/multitask", "overlays/per-task", "overlays/autoscaling"])
def test_committed_overlays_are_what_render_writes(rel, tmp_path):
    """Not hand-maintained: re-running the command in each file's header reproduces the folder."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    header = (K8S / rel / "kustomization.yaml").read_text()
    cmd = re.search(r"^#   (mtserve k8s render .*)$", header, re.M).group(1)
    argv = shlex.split(cmd)[1:]
    out_at = argv.index("--out")
    argv[out_at + 1] = str(tmp_path / argv[out_at + 1])
    shutil.rmtree(tree / rel)
    assert main([*argv, "--k8s-dir", str(tree)]) == 0
    want = {p.relative_to(K8S / rel): p.read_text() for p in (K8S / rel).rglob("*") if p.is_file()}
    got = {p.relative_to(tree / rel): p.read_text() for p in (tree / rel).rglob("*") if p.is_file()}
    assert got == want


# ---------------------------------------------------------------- what users report breaks
def test_no_common_labels_anywhere_in_k8s():
    for path in K8S.rglob("*"):
        if path.suffix in (".yaml", ".yml") or path.name == "Kustomization":
            assert "commonLabels" not in path.read_text(), path


def test_common_labels_are_refused(tmp_path):
    (tmp_path / "r.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}})
    )
    (tmp_path / "kustomization.yaml").write_text("resources: [r.yaml]\ncommonLabels: {a: b}\n")
    with pytest.raises(UserError, match="commonLabels.*use `labels:`"):
        k8s_kustomize.build(tmp_path)


def test_grpc_port_is_named_per_deployment_mode(variants):
    for name, docs in variants.items():
        for s in isvcs(docs):
            mode = s["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
            ports = s["spec"]["predictor"]["model"]["ports"]
            assert len(ports) == 1 and ports[0]["containerPort"] == 9000, name
            if "serverless" in name:
                assert mode == "Knative" and ports[0]["name"] == "h2c", name
            else:
                assert mode == "Standard" and ports[0]["name"].startswith("grpc"), name


def test_dev_shm_is_a_memory_empty_dir_with_a_size_limit(variants):
    for name, docs in variants.items():
        for s in isvcs(docs):
            mount = next(
                m for m in s["spec"]["predictor"]["model"]["volumeMounts"] if m["mountPath"] == "/dev/shm"
            )
            vol = next(v for v in s["spec"]["predictor"]["volumes"] if v["name"] == mount["name"])
            assert vol["emptyDir"]["medium"] == "Memory" and vol["emptyDir"]["sizeLimit"], name


def test_triton_args_load_their_models_from_the_repository_strictly(variants):
    for name, docs in variants.items():
        for s in isvcs(docs):
            args = triton_args(docs, s)
            assert args[0] == "tritonserver"
            for flag in TRITON_FLAGS:
                assert flag in args, (name, flag)
            assert "--strict-model-config=false" not in args
            # KServe appends the service's args to the runtime's, which load nothing themselves
            assert [a for a in args if a.startswith("--load-model")] == [
                f"--load-model={m}" for m in loads(s)
            ]
            if s["metadata"]["labels"].get("mtserve.io/deployment") == "per-task":
                assert loads(s) == [loaded_model(s)], name


def test_gpu_resources_probes_and_metrics(variants):
    for name, docs in variants.items():
        for s in isvcs(docs):
            model = s["spec"]["predictor"]["model"]
            assert str(model["resources"]["limits"]["nvidia.com/gpu"]) == "1"
            assert {"cpu", "memory"} <= set(model["resources"]["requests"])
            assert model["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
            # liveness: an inference through the very model this service loads (deploy/liveness.py)
            live = model["livenessProbe"]
            assert live["exec"]["command"] == k8s_liveness.command(loaded_model(s)), name
            assert live["timeoutSeconds"] > k8s_liveness.REQUEST_TIMEOUT_S
            if "serverless" in name:
                assert live["initialDelaySeconds"] >= 60 and "startupProbe" not in model
            else:
                assert model["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
            ann = s["metadata"]["annotations"]
            assert ann["prometheus.kserve.io/port"] == "8002"
            assert ann["serving.kserve.io/enable-prometheus-scraping"] == "true"
            sc = model["securityContext"]
            assert (
                sc["runAsNonRoot"]
                and sc["allowPrivilegeEscalation"] is False
                and sc["capabilities"]["drop"] == ["ALL"]
            )


def test_autoscaling_uses_triton_metrics_through_kserve(variants):
    for s in isvcs(variants["overlays/autoscaling"]) + isvcs(variants["per-task-raw-autoscale"]):
        assert s["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
        pred = s["spec"]["predictor"]
        assert pred["minReplicas"] == 1 and pred["maxReplicas"] > 1
        queries = [m["external"]["metric"]["query"] for m in pred["autoScaling"]["metrics"]]
        assert any("nv_inference_queue_duration_us" in q for q in queries)
        assert any("nv_inference_pending_request_count" in q for q in queries)
        assert all(f'pod=~"{s["metadata"]["name"]}-predictor-.*"' in q for q in queries)
    for s in isvcs(variants["per-task-serverless-autoscale"]):
        pred = s["spec"]["predictor"]
        assert pred["scaleMetric"] == "concurrency" and "autoScaling" not in pred
        assert "serving.kserve.io/autoscalerClass" not in s["metadata"]["annotations"]


def test_readme_client_calls_use_triton_model_names():
    text = (K8S / "README.md").read_text()
    names = re.findall(r"""model_name["']?\s*[=:]\s*["']([^"']+)["']""", text)
    names += re.findall(r"mtserve predict[^\n]*--model\s+(\S+)", text)
    assert names, "the runbook shows no client call"
    for n in names:
        assert n == "multitask" or re.fullmatch(r"(single|path|group)_[a-z][a-z0-9_]*", n), n
    assert "grpc.default_authority" in text and "-authority" in text
    assert "serving.kserve.io/deploymentMode" in text


# ---------------------------------------------------------------- render
def test_render_reads_the_task_list_from_the_registry(tmp_path, tree):
    repo = _fake_repo(tmp_path / "repo", ["intent", "urgency_level"])
    assert k8s_render.resolve_tasks(None, repo) == ["intent", "urgency_level"]
    assert k8s_render.resolve_tasks("intent", repo) == ["intent"]
    with pytest.raises(UserError, match="sentiment.*not in"):
        k8s_render.resolve_tasks("intent,sentiment", repo)
    out = tmp_path / "out"
    assert (
        main(
            [
                "k8s",
                "render",
                "--repo",
                str(repo),
                "--repo-uri",
                URI,
                "--out",
                str(out),
                "--k8s-dir",
                str(tree),
            ]
        )
        == 0
    )
    services = isvcs(k8s_kustomize.build(out))
    assert {s["metadata"]["name"]: loaded_model(s) for s in services} == {
        "mtserve-intent": "single_intent",
        "mtserve-urgency-level": "single_urgency_level",
    }


def test_multitask_render_loads_every_path_and_group_of_the_registry(tmp_path, tree, capsys):
    """`--overlay multitask --repo`: multitask, then path_<task> for each task and group_<g> for each group of
    registry.json; the header re-creates it without the repository; re-rendering follows a changed registry."""
    repo = _fake_repo(
        tmp_path / "repo", ["intent", "sentiment", "urgency"], groups={"support": ["urgency", "intent"]}
    )
    out = tmp_path / "mt"
    argv = [
        "k8s",
        "render",
        "--overlay",
        "multitask",
        "--repo-uri",
        URI,
        "--out",
        str(out),
        "--k8s-dir",
        str(tree),
    ]
    assert main([*argv, "--repo", str(repo)]) == 0
    assert "multitask, 3 task paths, 1 groups" in capsys.readouterr().out
    (s,) = isvcs(k8s_kustomize.build(out))
    assert loads(s) == [
        "multitask",
        "path_intent",
        "path_sentiment",
        "path_urgency",
        "group_support",
    ]
    assert s["spec"]["predictor"]["model"]["livenessProbe"]["exec"]["command"] == k8s_liveness.command(
        "multitask"
    )
    header = (out / "kustomization.yaml").read_text()
    assert "--tasks intent,sentiment,urgency --group support=intent,urgency" in header
    # --tasks narrows it; a group whose tasks are not all rendered is left out, and said so
    assert main([*argv, "--repo", str(repo), "--tasks", "intent,sentiment"]) == 0
    assert "group(s) support" in capsys.readouterr().err
    assert loads(isvcs(k8s_kustomize.build(out))[0]) == ["multitask", "path_intent", "path_sentiment"]
    # --group is checked against the registry
    with pytest.raises(
        UserError, match=r"--group support=intent,sentiment: .*registry\.json has support=urgency,intent"
    ):
        k8s_render.resolve_groups(["support=intent,sentiment"], repo, ["intent", "sentiment", "urgency"])
    with pytest.raises(UserError, match="--group other: no such group"):
        k8s_render.resolve_groups(["other=intent,sentiment"], repo, ["intent", "sentiment", "urgency"])
    # without a repository the header's --tasks and --group are the whole story
    assert k8s_render.resolve_groups(["g=b,a"], None, ["a", "b"]) == ({"g": ["a", "b"]}, [])
    # the per-task overlay serves no groups
    assert (
        main(["k8s", "render", "--repo-uri", URI, "--tasks", "a,b", "--group", "g=a,b", "--out", str(out)])
        == 2
    )
    assert "--overlay multitask only" in capsys.readouterr().err


def test_the_multitask_overlay_needs_the_task_list(tmp_path, tree, capsys):
    """Without --repo or --tasks the multitask service would load `multitask` alone: every request for one task
    would run every head. Refused, saying what to give."""
    argv = ["k8s", "render", "--overlay", "multitask", "--repo-uri", URI, "--out", str(tmp_path / "o")]
    assert main([*argv, "--k8s-dir", str(tree)]) == 2
    assert "give the task list: --tasks a,b,c or --repo DIR" in capsys.readouterr().err
    with pytest.raises(UserError, match="multitask overlay needs the task list"):
        k8s_render.render_overlay(
            which="multitask", repo_uri=URI, tasks=[], mode="raw", out=tmp_path / "o", k8s_dir=tree
        )
    # a task without a per-task baseline is fine for multitask: it serves the task's path
    repo = _fake_repo(tmp_path / "repo", ["intent", "sentiment"])
    reg = json.loads((repo / "registry.json").read_text())
    reg["tasks"]["intent"]["baseline"] = None
    (repo / "registry.json").write_text(json.dumps(reg))
    assert k8s_render.resolve_tasks(None, repo, per_task=False) == ["intent", "sentiment"]


def test_render_warns_about_a_local_profile_repository(tmp_path, tree, capsys):
    repo = _fake_repo(tmp_path / "repo", ["intent"], profile="local")
    argv = ["k8s", "render", "--repo", str(repo), "--repo-uri", URI, "--out", str(tmp_path / "o")]
    assert main([*argv, "--k8s-dir", str(tree)]) == 0
    assert "was exported with --profile local" in capsys.readouterr().err


def test_render_refuses_a_repository_without_baselines(tmp_path):
    repo = _fake_repo(tmp_path / "repo", ["intent"])
    reg = json.loads((repo / "registry.json").read_text())
    reg["tasks"]["intent"]["baseline"] = None
    (repo / "registry.json").write_text(json.dumps(reg))
    with pytest.raises(UserError, match="no per-task baseline"):
        k8s_render.resolve_tasks(None, repo)


def test_render_and_upload_read_the_registry_through_its_validator(tmp_path):
    """A registry that mtserve.core.registry refuses is refused by render and upload, with its message."""
    repo = _fake_repo(tmp_path / "repo", ["intent"])
    reg = json.loads((repo / "registry.json").read_text())
    reg["profile"] = "cpu"
    (repo / "registry.json").write_text(json.dumps(reg))
    for call in (
        lambda: k8s_render.resolve_tasks(None, repo),
        lambda: k8s_upload.upload(repo, "s3://b/r", dry_run=True),
    ):
        with pytest.raises(UserError, match=r"registry\.json: profile must be 'local' or 'gpu'"):
            call()
    shutil.rmtree(repo / "single_intent")  # checked against the folders too
    reg["profile"] = "gpu"
    (repo / "registry.json").write_text(json.dumps(reg))
    with pytest.raises(UserError, match=r"single_intent/config\.pbtxt missing"):
        k8s_render.resolve_tasks("intent", repo)


def test_rerendering_drops_removed_tasks(tmp_path, tree):
    out = tmp_path / "pt"
    k8s_render.render_overlay(
        which="per-task", repo_uri=URI, tasks=["a", "b"], mode="raw", out=out, k8s_dir=tree
    )
    k8s_render.render_overlay(
        which="per-task", repo_uri=URI, tasks=["b", "c"], mode="raw", out=out, k8s_dir=tree
    )
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["b", "c"]
    assert sorted(loaded_model(s) for s in isvcs(k8s_kustomize.build(out))) == ["single_b", "single_c"]


@pytest.mark.parametrize(
    "tasks, match",
    [
        ("intent_", "must not end with _"),
        ("Intent", r"must match \[a-z\]"),
        ("a,a", "twice"),
        ("", "give the task list"),
    ],
)
def test_task_lists_are_checked(tasks, match):
    with pytest.raises(UserError, match=match):
        k8s_render.resolve_tasks(tasks or None, None)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"repo_uri": "s3://key:secret@bucket/r"}, "credentials in the URI"),
        ({"repo_uri": "ftp://x/y"}, "scheme must be"),
        ({"tasks": ["a" * 40]}, "too long for a DNS label"),
        ({"mode": "knative"}, "--mode must be"),
        ({"tasks": []}, "at least one task"),
        ({"groups": {"g": ["intent", "x"]}}, "multitask overlay only"),
        (
            {"which": "multitask", "groups": {"g": ["intent", "x"]}},
            r"group 'g': task\(s\) x not among the tasks",
        ),
        ({"which": "multitask", "groups": {"g": ["intent"]}}, "needs two or more distinct tasks"),
        ({"which": "multitask", "groups": {"G": ["intent", "intent"]}}, "must match"),
        ({"which": "multitask", "tasks": ["intent", "intent"]}, "listed twice"),
    ],
)
def test_render_rejects_bad_input(kwargs, match, tmp_path, tree):
    args = {
        "which": "per-task",
        "repo_uri": URI,
        "tasks": ["intent"],
        "mode": "raw",
        "out": tmp_path / "o",
        "k8s_dir": tree,
        **kwargs,
    }
    with pytest.raises(UserError, match=match):
        k8s_render.render_overlay(**args)


def test_render_does_not_overwrite_hand_written_kustomizations(tmp_path, tree):
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    with pytest.raises(UserError, match="not written by `mtserve k8s render`"):
        k8s_render.render_overlay(
            which="per-task", repo_uri=URI, tasks=["a"], mode="raw", out=tmp_path, k8s_dir=tree
        )


# ---------------------------------------------------------------- building with kubectl
def _write(d: Path, files: dict) -> Path:
    for name, content in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(
            content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        )
    return d


SA = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}


@pytest.mark.parametrize(
    "files, where, match",
    [
        # a nested kustomization that is not YAML: kubectl's own message would not name the file
        (
            {"kustomization.yaml": "resources: [sub]\n", "sub/kustomization.yaml": "resources: [\n"},
            "sub",
            "not valid YAML",
        ),
        # kubectl's errors, under the kustomization's path
        ({"kustomization.yaml": "resources: [missing.yaml]\n"}, "", "missing.yaml"),
        ({"kustomization.yaml": "resourcez: [sa.yaml]\n", "sa.yaml": SA}, "", 'unknown field "resourcez"'),
        (
            {"kustomization.yaml": "resources: [../outside.yaml]\n", "../outside.yaml": SA},
            "",
            "is not in or below",
        ),
    ],
)
def test_broken_kustomizations_name_the_file(files, where, match, tmp_path):
    root = _write(tmp_path / "k", files)
    with pytest.raises(UserError, match=match) as e:
        k8s_kustomize.build(root)
    assert str(e.value).startswith(f"{root / where / 'kustomization.yaml'}: "), e.value
    assert "E1" not in str(e.value) and "run.go" not in str(e.value)  # kubectl's log prefix is dropped


def test_build_needs_a_kustomization_directory(tmp_path):
    with pytest.raises(UserError, match="not a kustomization directory"):
        k8s_kustomize.build(tmp_path)
    with pytest.raises(UserError, match="not a kustomization directory"):
        k8s_kustomize.build(tmp_path / "missing")


def test_without_kubectl_the_error_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no kubectl on it
    with pytest.raises(UserError, match=r"kubectl not found on PATH.*install kubectl 1\.27 or newer"):
        k8s_kustomize.build(K8S / "base")
    assert main(["k8s", "validate", str(K8S / "overlays/multitask")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install kubectl" in err and "Traceback" not in err


def test_kubectl_transformers_reach_the_output(tmp_path):
    """namespace, nameSuffix and metadata-only labels as the per-task overlays use them, applied by kubectl."""
    _write(
        tmp_path,
        {
            "base/sa.yaml": SA,
            "base/kustomization.yaml": {"resources": ["sa.yaml"]},
            "ov/kustomization.yaml": {
                "resources": ["../base"],
                "namespace": "ns",
                "nameSuffix": "-s",
                "labels": [{"pairs": {"k": "v"}, "includeSelectors": False}],
            },
        },
    )
    assert k8s_kustomize.build(tmp_path / "ov") == [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"labels": {"k": "v"}, "name": "sa-s", "namespace": "ns"},
        }
    ]


# ---------------------------------------------------------------- upload
def _fake_repo(
    repo: Path, tasks: list[str], profile: str = "gpu", groups: dict[str, list[str]] | None = None
) -> Path:
    groups = groups or {}
    for model in [
        "tokenizer",
        "trunk_0_1",
        "multitask",
        *tasks,
        *(f"path_{t}" for t in tasks),
        *(f"group_{g}" for g in groups),
        *(f"full_{t}" for t in tasks),
        *(f"single_{t}" for t in tasks),
    ]:
        (repo / model / "1").mkdir(parents=True)
        (repo / model / "config.pbtxt").write_text(f'name: "{model}"\n')
    (repo / "tokenizer/1/model.py").write_text("# tokenizer\n")
    (repo / "tokenizer/1/__pycache__").mkdir()
    (repo / "tokenizer/1/__pycache__/model.cpython-311.pyc").write_bytes(b"\0")
    # a registry as `mtserve export` writes it (save refuses an invalid one); the k8s code reads it through
    # registry.load
    entry = {
        "labels": ["a", "b"],
        "metric": "accuracy",
        "is_pair": False,
        "branch_depth": 1,
        "task_layers": 1,
    }
    reg = registry.Registry(
        profile=profile,
        backbone="tiny",
        num_layers=2,
        hidden_size=32,
        max_length=32,
        trunk=registry.TrunkEntry(version=1, depths=[1], layers=1),
        tasks={t: registry.TaskEntry(name=t, head_version=1, baseline=f"single_{t}", **entry) for t in tasks},
        groups=groups,
    )
    registry.save(repo, reg)
    return repo


def test_upload_to_a_pvc_copies_the_repository(tmp_path, capsys):
    repo = _fake_repo(tmp_path / "repo", ["intent"])
    mount = tmp_path / "claim"
    mount.mkdir()
    assert k8s_upload.upload(repo, "pvc://models/repository/v1", pvc_mount=mount) == 0
    dest = mount / "repository/v1"
    assert (dest / "registry.json").is_file() and (dest / "single_intent/config.pbtxt").is_file()
    assert not list(dest.rglob("*.pyc")) and not list(dest.rglob("__pycache__"))
    assert "storageUri: pvc://models/repository/v1" in capsys.readouterr().out
    with pytest.raises(UserError, match="not empty"):
        k8s_upload.upload(repo, "pvc://models/repository/v1", pvc_mount=mount)
    assert k8s_upload.upload(repo, "pvc://models/repository/v1", pvc_mount=mount, overwrite=True) == 0
    with pytest.raises(UserError, match="--pvc-mount"):
        k8s_upload.upload(repo, "pvc://models/repository/v2")


def test_upload_keeps_empty_ensemble_version_folders(tiny_repo, tmp_path):
    """Triton needs multitask/1/ to exist; an object store keeps no empty folder, so export writes a
    placeholder and upload carries it."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    reg = json.loads((repo / "registry.json").read_text())
    reg["profile"] = "gpu"  # upload refuses the local profile; the files in question are the same
    (repo / "registry.json").write_text(json.dumps(reg))
    files = {f.relative_to(repo).as_posix() for f in k8s_upload.repository_files(repo)}
    assert "multitask/1/.keep" in files
    assert all(f"single_{t}/1/.keep" in files for t in reg["tasks"])


@pytest.mark.parametrize(
    "uri, module, command",
    [
        ("s3://bucket/mtserve/v1", "boto3", "aws s3 sync"),
        ("gs://bucket/mtserve/v1", "google.cloud", "gsutil -m rsync -r"),
    ],
)
def test_upload_without_the_cloud_library_prints_the_sync_command(
    uri, module, command, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    repo = _fake_repo(tmp_path / "repo", ["intent"])
    assert k8s_upload.upload(repo, uri) != 0
    out = capsys.readouterr()
    assert out.out.strip().startswith(command) and str(repo) in out.out and uri in out.out
    assert "not installed" in out.err


def test_upload_refuses_the_local_profile_and_non_repositories(tmp_path):
    with pytest.raises(UserError, match="--profile local"):
        k8s_upload.upload(_fake_repo(tmp_path / "local", ["a"], profile="local"), "s3://b/r")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a repository"):
        k8s_upload.upload(tmp_path / "empty", "s3://b/r")


def test_upload_dry_run_lists_files(tmp_path, capsys):
    assert k8s_upload.upload(_fake_repo(tmp_path / "repo", ["a"]), "s3://b/r/v1", dry_run=True) == 0
    out = capsys.readouterr().out
    assert "s3://b/r/v1/registry.json" in out and "dry run" in out and ".pyc" not in out


# ---------------------------------------------------------------- CLI
def test_cli_validate_build_and_errors(tmp_path, capsys):
    assert (
        main(
            ["k8s", "validate", str(K8S / "overlays/per-task"), str(K8S / "base/common/servingruntime.yaml")]
        )
        == 0
    )
    assert "OK" in capsys.readouterr().out
    bad = base_isvc()
    bad["spec"]["predictor"]["model"]["storageURI"] = bad["spec"]["predictor"]["model"].pop("storageUri")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    assert main(["k8s", "validate", str(tmp_path / "bad.yaml")]) == 1
    assert "spec.predictor.model.storageURI: unknown field" in capsys.readouterr().err
    assert main(["k8s", "build", str(K8S / "overlays/multitask")]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert docs == built("overlays/multitask")
    assert main(["k8s", "render", "--repo-uri", URI, "--tasks", "Bad", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err
    assert main(["k8s", "validate", str(tmp_path / "missing.yaml")]) == 2


# Modules whose import means the ML or serving stack came along; a `pip install '.[k8s]'` user has only kubectl,
# pyyaml, kubernetes and kserve (whose models k8s_schema reads without importing kserve).
HEAVY = ("torch", "transformers", "tritonclient", "tritonserver", "pytriton", "onnxruntime", "kserve")
LIGHT_PROCESS = """
import sys
import mtserve.deploy.cli
from mtserve.cli import main
assert main(["k8s", "validate", sys.argv[1]]) == 0
print("loaded:", sorted(m for m in sys.argv[2:] if m in sys.modules))
"""


def test_k8s_cli_imports_no_ml_or_triton_stack():
    args = [sys.executable, "-c", LIGHT_PROCESS, str(K8S / "overlays/per-task"), *HEAVY]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "loaded: []" in run.stdout, run.stdout


# ---------------------------------------------------------------- the runtime's flags on a real Triton
@pytest.fixture(scope="module")
def grouped_repo(tiny_run, tmp_path_factory):
    """The tiny run exported with a task group (no baselines: the multitask service loads none)."""
    from mtserve.export.export import export_run

    repo = tmp_path_factory.mktemp("grouped") / "model_repository"
    export_run(tiny_run, repo, with_baseline=False, progress=False, groups={"support": ["intent", "urgency"]})
    return repo


@pytest.mark.slow
def test_the_queue_queries_skip_exactly_the_ensembles_of_an_export(grouped_repo, tiny_repo):
    """Every ensemble an export writes (multitask, its graph, paths, groups and their graphs, single_<task>) is
    matched by deploy/render.py ENSEMBLES, and no model that runs (tokenizer, segments, heads, full_<task>)."""
    from mtserve.export.model_config import read_config

    ensembles = re.compile(rf"(?:{k8s_render.ENSEMBLES})\Z")  # PromQL regexes are anchored
    seen = set()
    for repo in (grouped_repo, tiny_repo):
        for cfg_file in repo.glob("*/config.pbtxt"):
            cfg = read_config(cfg_file.parent)
            assert bool(ensembles.match(cfg.name)) == (cfg.platform == "ensemble"), cfg.name
            seen.add(cfg.name)
    assert {"graph_support", "group_support", "path_intent", "multitask_graph"} <= seen


@pytest.mark.triton
@pytest.mark.slow
@pytest.mark.parametrize("model", ["single_intent", "multitask"])
def test_runtime_flags_on_a_real_triton(model, tiny_repo, grouped_repo, tmp_path):
    """The ServingRuntime's Triton flags plus an InferenceService's --load-model flags as `mtserve k8s render`
    writes them for the repository: only those models and their composing models load (the multitask service:
    every task's path and every group's too), strictly configured, and the repository API (load/unload) refuses
    callers without the admin header."""
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from mtserve.serving.triton import TritonServer

    repo = grouped_repo if model == "multitask" else tiny_repo
    out = tmp_path / "overlay"
    overlay = "multitask" if model == "multitask" else "per-task"
    argv = ["k8s", "render", "--overlay", overlay, "--repo", str(repo), "--repo-uri", URI, "--out", str(out)]
    assert main([*argv, "--tasks", "intent"] if model == "single_intent" else argv) == 0
    (isvc,) = isvcs(k8s_kustomize.build(out))
    assert loaded_model(isvc) == model

    rt = next(d for d in built("base") if d["kind"] == "ServingRuntime")
    args = rt["spec"]["containers"][0]["args"]
    local = (
        "tritonserver",
        "--model-repository",
        "--model-control-mode",
        "--http-port",
        "--grpc-port",
        "--metrics-port",
    )
    extra = [a.replace("$(TRITON_ADMIN_KEY)", "k3y") for a in args if not a.startswith(local)]
    assert "--disable-auto-complete-config" in extra and any("restricted" in a for a in extra)
    server = TritonServer(repo, model_control="explicit", load_models=loads(isvc), extra_args=extra)
    server.start(timeout=180)
    try:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        with pytest.raises(InferenceServerException, match="restricted"):
            client.get_model_repository_index()
        index = client.get_model_repository_index(
            headers={"triton-grpc-protocol-mtserve-admin": "k3y"}, as_json=True
        )
        ready = {m["name"] for m in index["models"] if m.get("state") == "READY"}
        reg = registry.load(repo)
        if model == "multitask":
            segments = {f"trunk_{a}_{b}" for a, b in reg.segments()}
            paths = {f"path_{t}" for t in reg.tasks} | {"group_support", "graph_support"}
            assert ready == {"multitask", "multitask_graph", "tokenizer", *segments, *reg.tasks, *paths}
        else:
            assert ready == {model, "tokenizer", "full_intent"}
        text = grpcclient.InferInput("text", [1, 1], "BYTES")
        text.set_data_from_numpy(np.array([["book a table for two tomorrow"]], dtype=object))
        result = client.infer(model, [text])  # the Triton model name, as the runbook's client calls it
        assert result.as_numpy("intent_label") is not None
        if model == "multitask":  # what a client calls for some tasks answers, and only those tasks
            for served, outputs in (
                ("path_sentiment", {"sentiment_scores", "sentiment_label"}),
                ("group_support", {"intent_scores", "intent_label", "urgency_scores"}),  # urgency: regression
            ):
                answer = client.infer(served, [text])
                assert {o.name for o in answer.get_response().outputs} == outputs, served
        with pytest.raises(InferenceServerException, match="restricted"):
            client.unload_model(model)
    finally:
        server.stop()


def test_an_older_triton_image_is_one_kustomize_images_entry(tmp_path):
    """Teams pinned to an older Triton (k8s/README.md, "The Triton image"): an overlay with an `images:` entry is the
    whole change, and it validates; the base pins 26.08, the first image set with all the upstream fixes we met."""
    rt = next(d for d in built("base") if d["kind"] == "ServingRuntime")
    assert rt["spec"]["containers"][0]["image"] == "nvcr.io/nvidia/tritonserver:26.08-py3"
    assert all("runtimeVersion" not in s["spec"]["predictor"]["model"] for s in isvcs(built("base")))
    overlay = tmp_path / "older"
    overlay.mkdir()
    base = Path(os.path.relpath(K8S / "overlays" / "multitask", overlay)).as_posix()
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{base}]\nimages:\n- name: nvcr.io/nvidia/tritonserver\n  newTag: 25.03-py3\n"
    )
    docs = k8s_kustomize.build(overlay)
    rt = next(d for d in docs if d["kind"] == "ServingRuntime")
    assert rt["spec"]["containers"][0]["image"] == "nvcr.io/nvidia/tritonserver:25.03-py3"
    assert k8s_validate.validate_docs(docs) == []
