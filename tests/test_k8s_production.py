"""k8s/ for production: the admin key fails closed, Knative overlays carry nothing a default Knative rejects, mode
names follow the cluster's KServe release, the monitoring component validates offline, autoscaling reads a signal
that does not grow with the number of tasks, and the TensorRT engine cache is mounted where export points."""

from __future__ import annotations

import copy
import json
import re

import promql_parser
import pytest
import yaml

from mtserve.cli import main
from mtserve.core import names
from mtserve.deploy import kustomize as k8s_kustomize
from mtserve.deploy import monitoring as k8s_monitoring
from mtserve.deploy import render as k8s_render
from mtserve.deploy import validate as k8s_validate

from .test_k8s import K8S, URI, built, isvcs, tree  # noqa: F401 - tree is a fixture

TASKS = ["domain", "intent"]


def runtime(docs) -> dict:
    return next(d for d in docs if d["kind"] == "ServingRuntime")


def render(tree, tmp_path, **kw) -> list[dict]:  # noqa: F811
    out = tmp_path / "-".join(f"{k}{v}" for k, v in sorted(kw.items()))
    args = {"which": "multitask", "repo_uri": URI, "tasks": TASKS, "mode": "raw"} | kw
    k8s_render.render_overlay(out=out, k8s_dir=tree, **args)
    return k8s_kustomize.build(out)


# ---------------------------------------------------------------- the admin key fails closed
def test_without_the_admin_secret_triton_cannot_start_with_a_known_key():
    docs = built("base")
    c = runtime(docs)["spec"]["containers"][0]
    restricted = [
        a for a in c["args"] if a.startswith(("--http-restricted-api=", "--grpc-restricted-protocol="))
    ]
    assert len(restricted) == 2 and all(a.endswith("=$(TRITON_ADMIN_KEY)") for a in restricted)
    # the key's one definition: a required Secret reference. Kubernetes does not start a container whose
    # required secretKeyRef is missing (CreateContainerConfigError), so no pod runs with '$(TRITON_ADMIN_KEY)'.
    (entry,) = [e for e in c["env"] if e["name"] == "TRITON_ADMIN_KEY"]
    assert set(entry) == {"name", "valueFrom"} and set(entry["valueFrom"]) == {"secretKeyRef"}
    assert entry["valueFrom"]["secretKeyRef"].get("optional", False) is False
    assert k8s_validate.validate_docs(docs) == []


def _env_index(c, name):
    return next(i for i, e in enumerate(c["env"]) if e["name"] == name)


def _arg_index(c, prefix):
    return next(i for i, a in enumerate(c["args"]) if a.startswith(prefix))


def _optional(docs):
    c = runtime(docs)["spec"]["containers"][0]
    c["env"][_env_index(c, "TRITON_ADMIN_KEY")]["valueFrom"]["secretKeyRef"]["optional"] = True
    return (
        f"spec.containers[0].env[{_env_index(c, 'TRITON_ADMIN_KEY')}].valueFrom.secretKeyRef.optional: true"
    )


def _literal_arg(docs):
    c = runtime(docs)["spec"]["containers"][0]
    i = _arg_index(c, "--http-restricted-api=")
    c["args"][i] = "--http-restricted-api=model-repository:mtserve-admin=changeme"
    return f"spec.containers[0].args[{i}]: the admin key of --http-restricted-api is a literal"


def _undefined(docs):
    c = runtime(docs)["spec"]["containers"][0]
    del c["env"][_env_index(c, "TRITON_ADMIN_KEY")]
    i = _arg_index(c, "--grpc-restricted-protocol=")
    return f"spec.containers[0].args[{i}]: the admin key of --grpc-restricted-protocol is $(TRITON_ADMIN_KEY), which no env entry defines"


def _literal_env(docs):
    c = runtime(docs)["spec"]["containers"][0]
    j = _env_index(c, "TRITON_ADMIN_KEY")
    c["env"][j] = {"name": "TRITON_ADMIN_KEY", "value": "changeme"}
    return f"spec.containers[0].env[{j}].value: TRITON_ADMIN_KEY"


def _config_map(docs):
    c = runtime(docs)["spec"]["containers"][0]
    j = _env_index(c, "TRITON_ADMIN_KEY")
    c["env"][j]["valueFrom"] = {"configMapKeyRef": {"name": "mtserve", "key": "key"}}
    return f"spec.containers[0].env[{j}].valueFrom: TRITON_ADMIN_KEY"


def _unrestricted(docs):
    c = runtime(docs)["spec"]["containers"][0]
    c["args"] = [a for a in c["args"] if not a.startswith("--http-restricted-api=")]
    return "spec.containers[0].args: --model-control-mode=explicit opens Triton's repository API"


def _isvc_overrides_the_key(docs):
    isvcs(docs)[0]["spec"]["predictor"]["model"]["env"] = [{"name": "TRITON_ADMIN_KEY", "value": "changeme"}]
    return "InferenceService/mtserve: spec.predictor.model.env[0].value: TRITON_ADMIN_KEY"


def _isvc_key_in_args(docs):
    isvcs(docs)[0]["spec"]["predictor"]["model"]["args"].append("--api-token=abc123")
    return (
        "InferenceService/mtserve: spec.predictor.model.args[1]: the credential in --api-token is a literal"
    )


@pytest.mark.parametrize(
    "unsafe",
    [
        _optional,
        _literal_arg,
        _undefined,
        _literal_env,
        _config_map,
        _unrestricted,
        _isvc_overrides_the_key,
        _isvc_key_in_args,
    ],
)
def test_validate_rejects_each_key_that_can_fall_back_to_a_known_value(unsafe):
    docs = built("base")
    expected = unsafe(docs)
    errors = k8s_validate.validate_docs(docs)
    assert any(expected in e for e in errors), (expected, errors)
    if not expected.startswith("InferenceService"):  # named on the runtime, as ServingRuntime/<name>
        assert any(e.startswith("ServingRuntime/mtserve-triton: " + expected) for e in errors), errors


# ---------------------------------------------------------------- Knative
def _knative_rejected(docs) -> list[str]:
    found = []
    for s in isvcs(docs):
        pred = s["spec"]["predictor"]
        found += [f"{s['metadata']['name']}: {k}" for k in k8s_validate.KNATIVE_POD_FIELDS if k in pred]
        for where, sc in (("model", pred["model"].get("securityContext") or {}),):
            found += [f"{where}.{k}" for k in k8s_validate.KNATIVE_CONTAINER_SECURITY if k in sc]
    sc = runtime(docs)["spec"]["containers"][0].get("securityContext") or {}
    found += [f"runtime.{k}" for k in k8s_validate.KNATIVE_CONTAINER_SECURITY if k in sc]
    return found


def test_knative_overlays_have_no_field_a_default_knative_rejects(tree, tmp_path):  # noqa: F811
    raw = render(tree, tmp_path, which="per-task")
    assert _knative_rejected(raw)  # Standard mode keeps tolerations, the pod securityContext, privileged
    for which in ("per-task", "multitask"):
        for autoscale in (False, True):
            docs = render(tree, tmp_path, which=which, mode="serverless", autoscale=autoscale)
            assert _knative_rejected(docs) == [], (which, autoscale)
            assert k8s_validate.validate_docs(docs) == []
            s = isvcs(docs)[0]
            sc = s["spec"]["predictor"]["model"]["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
    # the validator names what a default Knative would reject
    s = isvcs(docs)[0]
    s["spec"]["predictor"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    errors = k8s_validate.validate_docs([s])
    assert any(
        "spec.predictor.tolerations: a default Knative rejects it (kubernetes.podspec-tolerations" in e
        for e in errors
    )


# ---------------------------------------------------------------- KServe releases
@pytest.mark.parametrize(
    "version, raw, knative", [("0.15", "RawDeployment", "Serverless"), ("0.16", "Standard", "Knative")]
)
def test_render_writes_the_mode_names_of_the_kserve_version(version, raw, knative, tree, tmp_path):  # noqa: F811
    for mode, want in (("raw", raw), ("serverless", knative)):
        docs = render(tree, tmp_path, mode=mode, kserve_version=version)
        assert {s["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] for s in isvcs(docs)} == {
            want
        }
        assert k8s_validate.validate_docs(docs, kserve_version=version) == []
        other = "0.16" if version == "0.15" else "0.15"
        errors = k8s_validate.validate_docs(docs, kserve_version=other)
        assert any(f"deploymentMode: '{want}' is not a mode name of KServe {other}" in e for e in errors), (
            errors
        )


def test_cli_render_and_validate_take_the_kserve_version(tmp_path, capsys):
    out = tmp_path / "o"
    assert (
        main(
            [
                "k8s",
                "render",
                "--overlay",
                "multitask",
                "--repo-uri",
                URI,
                "--tasks",
                ",".join(TASKS),
                "--kserve-version",
                "0.15",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "RawDeployment" in (out / "patch.yaml").read_text()
    assert main(["k8s", "validate", "--kserve-version", "0.15", str(out)]) == 0
    assert main(["k8s", "validate", str(out)]) == 1
    assert (
        main(["k8s", "render", "--overlay", "multitask", "--repo-uri", URI, "--kserve-version", "zero"]) == 2
    )
    assert "expected MAJOR.MINOR" in capsys.readouterr().err


# ---------------------------------------------------------------- monitoring
def test_monitoring_component_renders_and_validates(tree, tmp_path):  # noqa: F811
    docs = render(tree, tmp_path, which="per-task", monitoring=True)
    kinds = {d["kind"] for d in docs}
    assert {"PodMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    assert k8s_validate.validate_docs(docs) == []
    pm = next(d for d in docs if d["kind"] == "PodMonitor")
    assert (
        pm["metadata"]["namespace"] == "mtserve"
        and pm["spec"]["podMetricsEndpoints"][0]["targetPort"] == 8002
    )
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "MtserveP99OverSLO",
        "MtserveP99Unmeasured",
        "MtserveQueueTimeHigh",
        "MtserveRequestFailures",
        "MtserveModelNotReady",
        "MtserveGPUMemoryHigh",
    } <= alerts
    cm = next(d for d in docs if k8s_monitoring.is_dashboard_config_map(d))
    titles = " | ".join(p["title"] for p in json.loads(cm["data"]["dashboard.json"])["panels"])
    for what in (
        "Per-task requests/s",
        "Per-task mean latency",
        "Trunk batch size",
        "Trunk queue time",
        "GPU utilisation",
        "Utterances/s per GPU",
    ):
        assert what in titles


def _mon_docs():
    text = (K8S / "components/monitoring").joinpath
    docs = [yaml.safe_load(text(f).read_text()) for f in ("podmonitor.yaml", "prometheusrule.yaml")]
    dashboard = text("dashboard.json").read_text()
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "d", "labels": {"grafana_dashboard": "1"}},
        "data": {"dashboard.json": dashboard},
    }
    return docs + [cm]


def _bad_dashboard(edit):
    def mutate(docs):
        d = json.loads(docs[2]["data"]["dashboard.json"])
        edit(d)
        docs[2]["data"]["dashboard.json"] = json.dumps(d)

    return mutate


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda docs: docs[0]["spec"].update(podMetricEndpoints=[]),
            "PodMonitor/mtserve-triton: spec.podMetricEndpoints: unknown field",
        ),
        (
            lambda docs: docs[0]["spec"]["podMetricsEndpoints"][0].update(targetPort=8080),
            "none scrapes Triton's metrics",
        ),
        (
            lambda docs: docs[0]["spec"]["podMetricsEndpoints"][0].update(interval="15 seconds"),
            "spec.podMetricsEndpoints[0].interval: '15 seconds' is not a Prometheus duration",
        ),
        (lambda docs: docs[0]["spec"]["selector"].update(matchLabel={"a": "b"}), "spec.selector"),
        (
            lambda docs: docs[1]["spec"]["groups"][0]["rules"][0].update(
                expr="max by (pod) (nv_inference_request_summary_us"
            ),
            "spec.groups[0].rules[0] (MtserveP99OverSLO).expr: does not parse as PromQL",
        ),
        (
            lambda docs: docs[1]["spec"]["groups"][0]["rules"][2].update({"for": "ten minutes"}),
            "rules[2] (MtserveQueueTimeHigh).for",
        ),
        (
            lambda docs: docs[1]["spec"]["groups"][0]["rules"][3].update(severity="page"),
            "rules[3].severity: unknown field",
        ),
        (
            lambda docs: docs[1]["spec"]["groups"][0]["rules"][0].update(expr='{__name__=~"nv_.+"} > 1'),
            "a selector without a metric name",
        ),
        (
            _bad_dashboard(
                lambda d: d["panels"][0]["targets"][0].update(
                    expr="rate(nv_inference_count[$__rate_interval])"
                )
            ),
            "data.dashboard.json.panels[0].targets[0].expr: does not parse as PromQL",
        ),
        (
            _bad_dashboard(
                lambda d: d["panels"][1]["targets"][0].update(expr='nv_inference_count{namespace="$ns"}')
            ),
            "Grafana variable $ns is not defined",
        ),
        (
            _bad_dashboard(lambda d: d["panels"][2].update(gridpos={})),
            "data.dashboard.json.panels[2].gridpos: unknown field",
        ),
    ],
)
def test_monitoring_validation_names_each_mistake(mutate, expected):
    docs = _mon_docs()
    assert k8s_validate.validate_docs(docs) == []
    mutate(docs)
    errors = k8s_validate.validate_docs(docs)
    assert any(expected in e for e in errors), (expected, errors)


# ---------------------------------------------------------------- autoscaling and the TensorRT cache
def test_autoscaling_signal_does_not_grow_with_the_number_of_tasks():
    for query in (
        k8s_render.queue_time_query("mtserve", "mtserve"),
        k8s_render.pending_query("mtserve", "mtserve"),
    ):
        ast = promql_parser.parse(query)
        while isinstance(ast, promql_parser.BinaryExpr):  # 1e-3 * max(...)
            ast = ast.rhs
        # the maximum over steps of each step's own figure: a head added beside the trunk adds a series to the
        # max, never a term to a sum
        assert isinstance(ast, promql_parser.AggregateExpr) and str(ast.op) in (
            "max",
            "TokenType(max)",
            "Max",
        ), query
        assert not re.search(r"^\s*(1e-3 \* )?sum\(", query)
        assert "sum by (model)" in query
    (s,) = isvcs(built("overlays/autoscaling"))
    metrics = s["spec"]["predictor"]["autoScaling"]["metrics"]
    assert metrics[0]["external"]["metric"]["query"] == k8s_render.queue_time_query("mtserve", "mtserve")
    assert metrics[0]["external"]["target"]["value"] == k8s_render.QUEUE_TIME_TARGET_MS


def test_monitoring_names_the_models_as_the_autoscaling_queries_do():
    """One owner for what clients call and what is an ensemble (deploy/render.py SERVED_MODELS, ENSEMBLES): the
    alerts and the dashboard use the same regexes, and the paths for subsets count as served, their inner graphs
    as ensembles (a queue query that read an ensemble would add its whole-request latency to the signal)."""
    served = re.compile(rf"(?:{k8s_render.SERVED_MODELS})\Z")  # PromQL regexes are anchored at both ends
    ensembles = re.compile(rf"(?:{k8s_render.ENSEMBLES})\Z")
    for m in ("multitask", "path_intent", "group_support", "single_intent"):
        assert served.match(m) and ensembles.match(m), m
    for m in ("multitask_graph", "graph_support"):
        assert not served.match(m) and ensembles.match(m), m
    for m in ("tokenizer", "trunk_0_2", "trunk_2_4", "intent", "support", "full_intent"):
        assert not ensembles.match(m), m
    rule = yaml.safe_load((K8S / "components/monitoring/prometheusrule.yaml").read_text())
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    dashboard = json.loads((K8S / "components/monitoring/dashboard.json").read_text())
    panels = [e for _, e in k8s_monitoring.dashboard_expressions(dashboard)]
    selected = lambda op, texts: {v for e in texts for v in re.findall(rf'model{op}"([^"]+)"', e)}  # noqa: E731
    assert selected("=~", exprs) == {k8s_render.SERVED_MODELS}
    assert selected("!~", exprs) == {k8s_render.ENSEMBLES}
    assert k8s_render.SERVED_MODELS in selected("=~", panels)
    # the per-head panels skip every ensemble and every step that is no head
    assert selected("!~", panels) == {f"{k8s_render.ENSEMBLES}|full_.+|tokenizer|trunk_.+"}
    assert 'model="trunk"' not in json.dumps(dashboard)  # the trunk is served as segments


def test_tensorrt_engine_cache_is_mounted_where_export_points():
    from mtserve.export.model_config import TRT_CACHE_PATH

    assert TRT_CACHE_PATH == names.TRT_CACHE_PATH
    s = isvcs(built("base"))[0]
    mounts = {m["mountPath"]: m["name"] for m in s["spec"]["predictor"]["model"]["volumeMounts"]}
    volume = next(v for v in s["spec"]["predictor"]["volumes"] if v["name"] == mounts[TRT_CACHE_PATH])
    assert "emptyDir" in volume and volume["emptyDir"].get("medium") != "Memory"
    bad = copy.deepcopy(s)
    bad["spec"]["predictor"]["model"]["volumeMounts"] = [
        m for m in bad["spec"]["predictor"]["model"]["volumeMounts"] if m["mountPath"] != TRT_CACHE_PATH
    ]
    assert any(
        f"volumeMounts: {TRT_CACHE_PATH} must be mounted" in e for e in k8s_validate.validate_docs([bad])
    )
