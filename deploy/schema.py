"""Strict schema validation of a resource against the SDK models: serving.kserve.io kinds against the kserve
SDK's, built-in kinds (and every Kubernetes type inside the KServe ones: containers, volumes, probes) against the
kubernetes client's. Every error names the field's path: unknown or misspelled fields, types, required fields,
quantities."""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtserve.core.errors import UserError

QUANTITY_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([eE][+-]?\d+)|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")

# type names the generated SDKs use without defining them
TYPE_ALIASES = {
    "K8sIoApiAppsV1DeploymentStrategy": "V1DeploymentStrategy",
    "K8sIoApiAutoscalingV2HorizontalPodAutoscalerBehavior": "V2HorizontalPodAutoscalerBehavior",
    "V1alpha1WorkerSpec": "V1beta1WorkerSpec",
    "V1Time": "datetime",
    "KnativeURL": "str",
}
QUANTITY_TYPES = {"ResourceQuantity", "V1beta1MetricQuantity"}
# fields the kubernetes client types as plain strings that the API server reads as quantities
QUANTITY_FIELDS = {
    ("V1ResourceRequirements", "limits"),
    ("V1ResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "size_limit"),
    ("V1PodSpec", "overhead"),
    ("V1VolumeResourceRequirements", "limits"),
    ("V1VolumeResourceRequirements", "requests"),
}
_LIST_T = re.compile(r"^(?:list|List)\[(.+)\]$")
_DICT_T = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")
# what the generated setter of a required field raises (openapi-generator's python template)
_REQUIRED_MSG = re.compile(r"Invalid value for `(\w+)`, must not be `None`")


@dataclass(frozen=True)
class Model:
    """One SDK model as data: the JSON fields of an OpenAPI type and which of them are required."""

    name: str
    fields: dict[str, tuple[str, str]]  # JSON key -> (python attribute, OpenAPI type)
    required: frozenset[str]  # JSON keys


# How the kserve SDK's models are read: as data, from their source, without running the kserve package.
# Python runs kserve/__init__.py before any kserve.models submodule, and that __init__ imports kserve's model
# server, whose gRPC protos register the same `inference.*` symbols as tritonclient.grpc's: a process holding
# both (the test suite, a client that also validates manifests) fails with "duplicate symbol
# 'inference.ServerLiveRequest'". It also costs ~2 s and ~1,500 modules (fastapi, grpc, ...). The models
# themselves are generated classes whose whole schema is two literal dicts (`openapi_types`, `attribute_map`)
# plus one `must not be None` check in each required field's setter, so reading those with `ast` gives what
# importing them would (tests/test_k8s.py imports them in a fresh process and compares every model), with no
# stand-in module in sys.modules. Not the CRDs' OpenAPI schema: the kserve wheel ships none, and a vendored
# copy (tens of thousands of lines) would be one more artifact to keep in step with the SDK the project pins.
# The kubernetes client has no such __init__: its models are imported and read from the classes.
@functools.cache
def _kserve_index() -> dict[str, Path]:
    """kserve's model class names -> their source files, from the imports of kserve/models/__init__.py."""
    spec = importlib.util.find_spec("kserve")  # a top-level package: found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the kserve package is not installed (pip install kserve)")
    init = Path(next(iter(spec.submodule_search_locations))) / "models" / "__init__.py"
    index = {}
    if init.is_file():
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kserve.models."):
                for alias in node.names:
                    index[alias.asname or alias.name] = init.parent / f"{node.module.rsplit('.', 1)[1]}.py"
    if "V1beta1InferenceService" not in index:
        raise UserError(
            f"{init}: no kserve models found there (mtserve reads the SDK of kserve 0.14 or newer)"
        )
    return index


def _class_node(source: str, name: str) -> ast.ClassDef | None:
    return next((n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == name), None)


def _required_attrs(cls: ast.ClassDef) -> set[str]:
    """The attributes whose generated setter refuses None."""
    return {
        m.group(1)
        for node in ast.walk(cls)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        for m in [_REQUIRED_MSG.search(node.value)]
        if m
    }


@functools.cache
def _kserve_model(name: str) -> Model | None:
    path = _kserve_index().get(name)
    cls = _class_node(path.read_text(), name) if path is not None and path.is_file() else None
    if cls is None:
        return None
    literals = {
        t.id: node.value
        for node in cls.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name) and t.id in ("openapi_types", "attribute_map")
    }
    try:
        types, keys = (ast.literal_eval(literals[k]) for k in ("openapi_types", "attribute_map"))
    except (KeyError, ValueError):
        raise UserError(
            f"{path}: {name} has no literal openapi_types/attribute_map; not a generated model"
        ) from None
    required = {keys.get(a, a) for a in _required_attrs(cls)}
    return Model(name, {keys[a]: (a, t) for a, t in types.items()}, frozenset(required))


@functools.cache
def _kubernetes_model(name: str) -> Model | None:
    import kubernetes.client.models as cm

    cls = getattr(cm, name, None)
    if not isinstance(cls, type) or not hasattr(cls, "openapi_types"):
        return None
    fields = {cls.attribute_map[a]: (a, t) for a, t in cls.openapi_types.items()}
    pydantic_fields = getattr(cls, "model_fields", None)
    if pydantic_fields:  # kubernetes >= 35: pydantic models say what they require
        required = {
            f.serialization_alias or f.alias or n for n, f in pydantic_fields.items() if f.is_required()
        }
    else:  # older releases: the same generated setters as kserve's
        node = _class_node(inspect.getsource(cls), name)
        required = {cls.attribute_map.get(a, a) for a in _required_attrs(node)} if node else set()
    return Model(name, fields, frozenset(required))


def sdk_model(name: str) -> Model | None:
    """The model of an OpenAPI type name: kserve's first, then the kubernetes client's; None if neither has it."""
    return _kserve_model(name) or _kubernetes_model(name)


def resolve_type(name: str) -> Model | str:
    """The model for an OpenAPI type name, or a scalar type name (str) when it is one."""
    name = TYPE_ALIASES.get(name, name)
    if name in QUANTITY_TYPES or not name[:1].isupper():
        return name
    return sdk_model(name) or "object"  # a status-only type neither SDK defines


BUILTIN_GROUPS = (
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
)


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def model_for(api_version: str, kind: str) -> Model | None:
    """The SDK model for a resource: serving.kserve.io from kserve, the built-in groups from kubernetes."""
    group, version = _group_version(api_version)
    name = version[:1].upper() + version[1:] + kind
    if group == "serving.kserve.io":
        return _kserve_model(name)
    if group in BUILTIN_GROUPS:
        return _kubernetes_model(name)
    return None


def _describe(t: str) -> str:
    return {
        "str": "a string",
        "int": "an integer",
        "bool": "a boolean",
        "float": "a number",
        "quantity": 'a quantity (e.g. "1", 2, "512Mi")',
    }.get(t, t)


def _got(v: Any) -> str:
    name = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(v), type(v).__name__)
    text = repr(v)
    return (
        f"{name} ({text[:40]}{'...' if len(text) > 40 else ''})" if not isinstance(v, (dict, list)) else name
    )


def _is_quantity(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return v >= 0
    return isinstance(v, str) and bool(QUANTITY_RE.match(v))


def check_value(value: Any, typ: Any, path: str, errors: list[str]) -> None:
    if value is None:  # an explicit null is the field left out
        return
    if isinstance(typ, str):
        m = _LIST_T.match(typ)
        if m:
            if not isinstance(value, list):
                errors.append(f"{path}: expected a list, got {_got(value)}")
                return
            for i, item in enumerate(value):
                check_value(item, m.group(1), f"{path}[{i}]", errors)
            return
        m = _DICT_T.match(typ)
        if m:
            if not isinstance(value, dict):
                errors.append(f"{path}: expected a mapping, got {_got(value)}")
                return
            inner = m.group(1) or m.group(2)
            for k, v in value.items():
                if not isinstance(k, str):
                    errors.append(f"{path}: key {k!r} must be a string")
                sub = f"{path}.{k}" if re.match(r"^[\w-]+$", str(k)) else f"{path}[{k}]"
                check_value(v, inner, sub, errors)
            return
        resolved = resolve_type(typ)
        if not isinstance(resolved, str):
            return check_model(value, resolved, path, errors)
        typ = resolved
        if typ in QUANTITY_TYPES:
            typ = "quantity"
        ok = {
            "str": lambda v: isinstance(v, str),
            "bytes": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "datetime": lambda v: isinstance(v, str) or hasattr(v, "isoformat"),
            "date": lambda v: isinstance(v, str) or hasattr(v, "isoformat"),
            "object": lambda v: True,
            "quantity": _is_quantity,
        }.get(typ)
        if ok is None:
            return  # a type name neither SDK defines (status-only); nothing to check against
        if not ok(value):
            errors.append(f"{path}: expected {_describe(typ)}, got {_got(value)}")
        return
    check_model(value, typ, path, errors)


def check_model(value: Any, model: Model, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a mapping ({model.name}), got {_got(value)}")
        return
    fields = model.fields
    for key, v in value.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in fields:
            lower = {f.lower(): f for f in fields}
            hint = (
                [lower[str(key).lower()]]
                if str(key).lower() in lower
                else difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            )
            errors.append(f"{sub}: unknown field" + (f" (did you mean {hint[0]}?)" if hint else ""))
            continue
        attr, typ = fields[key]
        if (model.name, attr) in QUANTITY_FIELDS:
            typ = "dict(str, ResourceQuantity)" if _DICT_T.match(typ) else "ResourceQuantity"
        check_value(v, typ, sub, errors)
    for key in sorted(model.required):
        if value.get(key) is None:
            errors.append(f"{path + '.' if path else ''}{key}: required field missing")


def validate_schema(doc: dict) -> list[str]:
    """Strict schema errors of one resource, each naming the field's path."""
    errors: list[str] = []
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        return ["apiVersion/kind: required (strings)"]
    model = model_for(api, kind)
    if model is None:
        return [f"kind: {kind} ({api}) is not a KServe or core Kubernetes kind this validator knows"]
    check_model(doc, model, "", errors)
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict) or not meta.get("name"):
        errors.append("metadata.name: required field missing")
    elif not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", str(meta["name"])) or len(str(meta["name"])) > 253:
        errors.append(f"metadata.name: {meta['name']!r} is not a valid Kubernetes name")
    return errors
