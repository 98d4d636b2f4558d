"""Offline validation of the monitoring resources (k8s/components/monitoring): the Prometheus Operator's PodMonitor
and PrometheusRule, and the Grafana dashboard ConfigMap.

No SDK models these CRDs, so this is a strict check of the fields the project uses: an unknown or misspelled
field is an error with its path (as `kubectl apply` would silently drop it), types and required fields are
checked, label selectors and metadata go through the kubernetes client's own models (deploy/schema.py), every PromQL
expression is parsed (promql-parser, the Rust parser of GreptimeDB, bound for Python), and `metric_names` lists
the metric names they read, which tests/test_monitoring.py finds on a real Triton's /metrics.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mtserve.deploy.schema import check_model, resolve_type

GROUP = "monitoring.coreos.com"
DASHBOARD_LABEL = "grafana_dashboard"
TRITON_METRICS_PORT = 8002
# Triton exports these only where it finds a GPU (through DCGM): Triton's metrics guide, "GPU Metrics"
# (docs/user_guide/metrics.md of triton-inference-server/server, r24.10 = the Triton 2.51 the tests run; the
# cluster's 25.03 image exports the same). A CPU-only Triton (this project's tests) cannot show them, so the
# scrape test allows exactly these names and checks them for real wherever a GPU is present.
TRITON_GPU_METRICS = frozenset(
    {
        "nv_gpu_utilization",
        "nv_gpu_memory_total_bytes",
        "nv_gpu_memory_used_bytes",
        "nv_gpu_power_usage",
        "nv_gpu_power_limit",
        "nv_energy_consumption",
    }
)
# metric names Prometheus itself writes for every target (not Triton's): allowed in expressions
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
ALERT_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Grafana variables in a dashboard query: `$name` or `${name}` inside label values only (PromQL has no `$`)
GRAFANA_VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)\}?")

POD_MONITOR_SPEC = {"selector", "namespaceSelector", "podMetricsEndpoints", "jobLabel", "podTargetLabels"}
POD_ENDPOINT = {
    "port",
    "portNumber",
    "targetPort",
    "path",
    "scheme",
    "interval",
    "scrapeTimeout",
    "honorLabels",
    "relabelings",
    "metricRelabelings",
}
RULE_GROUP = {"name", "interval", "rules", "limit"}
RULE = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
DASHBOARD = {
    "uid",
    "title",
    "description",
    "tags",
    "timezone",
    "schemaVersion",
    "version",
    "editable",
    "refresh",
    "time",
    "templating",
    "panels",
}
PANEL = {"id", "type", "title", "description", "datasource", "gridPos", "fieldConfig", "options", "targets"}
PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table"}
TARGET = {"refId", "expr", "legendFormat", "datasource", "interval", "instant", "range"}
VARIABLE = {"name", "label", "type", "query", "current", "hide", "options"}


def _promql():
    import promql_parser  # the PromQL grammar; imported when a monitoring resource is checked

    return promql_parser


def _unknown(obj: dict, allowed: set[str], path: str, errors: list[str]) -> None:
    for key in sorted(set(obj) - allowed):
        errors.append(f"{path}.{key}: unknown field (known: {', '.join(sorted(allowed))})")


def _mapping(value: Any, path: str, errors: list[str]) -> dict:
    if not isinstance(value, dict):
        errors.append(f"{path}: must be a mapping, got {type(value).__name__}")
        return {}
    return value


def _str_map(value: Any, path: str, errors: list[str]) -> None:
    for k, v in _mapping(value, path, errors).items():
        if not isinstance(v, str):
            errors.append(f"{path}.{k}: must be a string, got {type(v).__name__}")


def _duration(value: Any, path: str, errors: list[str]) -> None:
    try:
        if not isinstance(value, str):
            raise ValueError(f"a string, got {type(value).__name__}")
        _promql().parse_duration(value)
    except ValueError as e:
        errors.append(f"{path}: {value!r} is not a Prometheus duration ({e})")


def parse_promql(expr: Any, path: str, errors: list[str], *, grafana: bool = False):
    """The parsed expression, or None with the parser's message under `path`. Dashboard queries may hold
    Grafana variables in label values (`namespace="$namespace"`); those parse as plain strings."""
    if not isinstance(expr, str) or not expr.strip():
        errors.append(f"{path}: must be a non-empty PromQL expression")
        return None
    try:
        return _promql().parse(expr)
    except ValueError as e:
        hint = " (Grafana variables belong inside label values)" if grafana and "$" in expr else ""
        errors.append(f"{path}: does not parse as PromQL: {e}{hint}")
        return None


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (every vector selector's name). A selector by `__name__` matcher
    only is refused upstream (validate_*), so each name here is literal."""
    p = _promql()
    out: set[str] = set()

    def visit(node):
        if isinstance(node, p.VectorSelector) and node.name:
            out.add(node.name)
        return True

    p.walk(p.parse(expr), visit)
    return out


def _selectors_named(expr_ast, path: str, errors: list[str]) -> None:
    p = _promql()

    def visit(node):
        if isinstance(node, p.VectorSelector) and not node.name:
            errors.append(f"{path}: a selector without a metric name ({node}): name the metric")
        return True

    p.walk(expr_ast, visit)


def _metadata(doc: dict, errors: list[str]) -> None:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        errors.append("metadata.name: required field missing")
        return
    check_model(meta, resolve_type("V1ObjectMeta"), "metadata", errors)


def validate_pod_monitor(doc: dict) -> list[str]:
    errors: list[str] = []
    _unknown(doc, {"apiVersion", "kind", "metadata", "spec"}, "", errors)
    errors[:] = [e.lstrip(".") for e in errors]
    _metadata(doc, errors)
    spec = _mapping(doc.get("spec"), "spec", errors)
    _unknown(spec, POD_MONITOR_SPEC, "spec", errors)
    if "selector" not in spec:
        errors.append("spec.selector: required field missing (which pods to scrape)")
    else:
        check_model(spec["selector"], resolve_type("V1LabelSelector"), "spec.selector", errors)
    endpoints = spec.get("podMetricsEndpoints")
    if not isinstance(endpoints, list) or not endpoints:
        errors.append("spec.podMetricsEndpoints: required, a non-empty list")
        return errors
    for i, ep in enumerate(endpoints):
        p = f"spec.podMetricsEndpoints[{i}]"
        ep = _mapping(ep, p, errors)
        _unknown(ep, POD_ENDPOINT, p, errors)
        for key in ("interval", "scrapeTimeout"):
            if key in ep:
                _duration(ep[key], f"{p}.{key}", errors)
        if "path" in ep and not (isinstance(ep["path"], str) and ep["path"].startswith("/")):
            errors.append(f"{p}.path: must be an absolute URL path, got {ep['path']!r}")
        if ep.get("scheme", "http") not in ("http", "https"):
            errors.append(f"{p}.scheme: must be http or https, got {ep.get('scheme')!r}")
    # the project's policy: Triton's metrics port, by number (8002 is no declared container port)
    if not any(
        isinstance(ep, dict)
        and TRITON_METRICS_PORT in (ep.get("targetPort"), ep.get("portNumber"))
        and ep.get("path", "/metrics") == "/metrics"
        for ep in endpoints
    ):
        errors.append(
            f"spec.podMetricsEndpoints: none scrapes Triton's metrics (targetPort or portNumber "
            f"{TRITON_METRICS_PORT}, path /metrics)"
        )
    return errors


def validate_prometheus_rule(doc: dict) -> list[str]:
    errors: list[str] = []
    _unknown(doc, {"apiVersion", "kind", "metadata", "spec"}, "", errors)
    errors[:] = [e.lstrip(".") for e in errors]
    _metadata(doc, errors)
    spec = _mapping(doc.get("spec"), "spec", errors)
    _unknown(spec, {"groups"}, "spec", errors)
    groups = spec.get("groups")
    if not isinstance(groups, list) or not groups:
        return errors + ["spec.groups: required, a non-empty list"]
    seen_groups = set()
    for gi, g in enumerate(groups):
        gp = f"spec.groups[{gi}]"
        g = _mapping(g, gp, errors)
        _unknown(g, RULE_GROUP, gp, errors)
        if not isinstance(g.get("name"), str) or not g.get("name"):
            errors.append(f"{gp}.name: required (a string)")
        elif g["name"] in seen_groups:
            errors.append(f"{gp}.name: {g['name']!r} used twice (Prometheus rejects the file)")
        seen_groups.add(g.get("name"))
        if "interval" in g:
            _duration(g["interval"], f"{gp}.interval", errors)
        rules = g.get("rules")
        if not isinstance(rules, list) or not rules:
            errors.append(f"{gp}.rules: required, a non-empty list")
            continue
        for ri, r in enumerate(rules):
            rp = f"{gp}.rules[{ri}]"
            r = _mapping(r, rp, errors)
            _unknown(r, RULE, rp, errors)
            if ("alert" in r) == ("record" in r):
                errors.append(f"{rp}: exactly one of alert or record")
            name = r.get("alert", r.get("record"))
            if "alert" in r and not (isinstance(name, str) and ALERT_NAME.match(name)):
                errors.append(f"{rp}.alert: {name!r} is not a valid alert name")
            where = f"{rp} ({name})" if isinstance(name, str) else rp
            ast_ = parse_promql(r.get("expr"), f"{where}.expr", errors)
            if ast_ is not None:
                _selectors_named(ast_, f"{where}.expr", errors)
            for key in ("for", "keep_firing_for"):
                if key in r:
                    _duration(r[key], f"{where}.{key}", errors)
            for key in ("labels", "annotations"):
                if key in r:
                    _str_map(r[key], f"{where}.{key}", errors)
                    for label in _mapping(r[key], f"{where}.{key}", []):
                        if key == "labels" and not LABEL_NAME.match(str(label)):
                            errors.append(f"{where}.labels.{label}: not a valid label name")
            if "record" in r and ("for" in r or "annotations" in r):
                errors.append(f"{where}: for and annotations belong to alerts, not recording rules")
    return errors


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(path, expr) of every query of a dashboard."""
    out = []
    for pi, panel in enumerate(dashboard.get("panels") or []):
        for ti, t in enumerate((panel or {}).get("targets") or []):
            if isinstance(t, dict) and "expr" in t:
                out.append((f"panels[{pi}].targets[{ti}].expr", t["expr"]))
    return out


def validate_dashboard(dashboard: Any, path: str) -> list[str]:
    """A strict check of the Grafana dashboard fields the project uses, every query parsed as PromQL, and every
    Grafana variable a query uses defined in templating."""
    errors: list[str] = []
    d = _mapping(dashboard, path, errors)
    _unknown(d, DASHBOARD, path, errors)
    for key in ("uid", "title"):
        if not isinstance(d.get(key), str) or not d.get(key):
            errors.append(f"{path}.{key}: required (a string)")
    if not isinstance(d.get("schemaVersion"), int):
        errors.append(f"{path}.schemaVersion: required (an integer)")
    variables = {"__interval", "__range"}
    for vi, v in enumerate(
        _mapping(d.get("templating", {"list": []}), f"{path}.templating", errors).get("list") or []
    ):
        vp = f"{path}.templating.list[{vi}]"
        v = _mapping(v, vp, errors)
        _unknown(v, VARIABLE, vp, errors)
        if not isinstance(v.get("name"), str):
            errors.append(f"{vp}.name: required (a string)")
        variables.add(v.get("name"))
    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        return errors + [f"{path}.panels: required, a non-empty list"]
    ids = set()
    for pi, panel in enumerate(panels):
        pp = f"{path}.panels[{pi}]"
        panel = _mapping(panel, pp, errors)
        _unknown(panel, PANEL, pp, errors)
        if panel.get("type") not in PANEL_TYPES:
            errors.append(f"{pp}.type: {panel.get('type')!r} is not one of {', '.join(sorted(PANEL_TYPES))}")
        if not isinstance(panel.get("title"), str) or not panel.get("title"):
            errors.append(f"{pp}.title: required (a string)")
        if panel.get("id") in ids:
            errors.append(f"{pp}.id: {panel.get('id')!r} used twice")
        ids.add(panel.get("id"))
        grid = _mapping(panel.get("gridPos"), f"{pp}.gridPos", errors)
        for key in ("h", "w", "x", "y"):
            if not isinstance(grid.get(key), int) or grid.get(key) < 0:
                errors.append(f"{pp}.gridPos.{key}: required (an integer >= 0)")
        if (
            grid
            and isinstance(grid.get("x"), int)
            and isinstance(grid.get("w"), int)
            and grid["x"] + grid["w"] > 24
        ):
            errors.append(f"{pp}.gridPos: x + w = {grid['x'] + grid['w']} > 24 (Grafana's grid is 24 wide)")
        ds = _mapping(panel.get("datasource", {"type": "prometheus"}), f"{pp}.datasource", errors)
        if ds.get("type") != "prometheus":
            errors.append(f"{pp}.datasource.type: must be prometheus, got {ds.get('type')!r}")
        targets = panel.get("targets")
        if not isinstance(targets, list) or not targets:
            errors.append(f"{pp}.targets: required, a non-empty list")
            continue
        refs = set()
        for ti, t in enumerate(targets):
            tp = f"{pp}.targets[{ti}]"
            t = _mapping(t, tp, errors)
            _unknown(t, TARGET, tp, errors)
            if t.get("refId") in refs or not isinstance(t.get("refId"), str):
                errors.append(f"{tp}.refId: required and unique within the panel")
            refs.add(t.get("refId"))
            expr = t.get("expr")
            for var in GRAFANA_VARIABLE.findall(expr if isinstance(expr, str) else ""):
                if var not in variables:
                    errors.append(f"{tp}.expr: Grafana variable ${var} is not defined in templating")
            ast_ = parse_promql(expr, f"{tp}.expr", errors, grafana=True)
            if ast_ is not None:
                _selectors_named(ast_, f"{tp}.expr", errors)
    return errors


def is_dashboard_config_map(doc: dict) -> bool:
    labels = (doc.get("metadata") or {}).get("labels") or {}
    return doc.get("kind") == "ConfigMap" and DASHBOARD_LABEL in labels


def validate_dashboard_config_map(doc: dict) -> list[str]:
    errors: list[str] = []
    data = _mapping(doc.get("data"), "data", errors)
    files = [k for k in data if k.endswith(".json")]
    if not files:
        errors.append(f"data: a ConfigMap labelled {DASHBOARD_LABEL} needs a <name>.json dashboard")
    for key in files:
        try:
            dashboard = json.loads(data[key])
        except (TypeError, json.JSONDecodeError) as e:
            errors.append(f"data.{key}: not valid JSON: {e}")
            continue
        errors += validate_dashboard(dashboard, f"data.{key}")
    return errors


def validate_monitoring(doc: dict) -> list[str] | None:
    """Errors of a monitoring resource, or None when `doc` is none (left to the SDK schema)."""
    api = str(doc.get("apiVersion", ""))
    if api.startswith(GROUP + "/"):
        if api != f"{GROUP}/v1":
            return [f"apiVersion: {api!r}: the Prometheus Operator serves {GROUP}/v1"]
        if doc.get("kind") == "PodMonitor":
            return validate_pod_monitor(doc)
        if doc.get("kind") == "PrometheusRule":
            return validate_prometheus_rule(doc)
        return [f"kind: {doc.get('kind')} ({api}) is not a monitoring kind this validator knows"]
    return None


def used_metric_names(docs: list[dict]) -> dict[str, set[str]]:
    """Every metric name the rules and dashboards read -> where (resource and field)."""
    out: dict[str, set[str]] = {}
    for d in docs:
        rid = f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
        exprs: list[tuple[str, str]] = []
        if d.get("kind") == "PrometheusRule":
            for gi, g in enumerate(d["spec"]["groups"]):
                for ri, r in enumerate(g["rules"]):
                    exprs.append((f"spec.groups[{gi}].rules[{ri}].expr", r["expr"]))
        elif is_dashboard_config_map(d):
            for key, text in d["data"].items():
                exprs += [(f"data.{key}.{p}", e) for p, e in dashboard_expressions(json.loads(text))]
        for where, expr in exprs:
            for name in metric_names(expr):
                out.setdefault(name, set()).add(f"{rid}: {where}")
    return out
