"""The CRD in crds/ and the pydantic models in jobwarden.api must describe one API.

A field present in the models but missing from the CRD is pruned by the API
server without a word; one in the CRD but not in the models is never written
or read. Both are caught here, along with missing descriptions (kubectl
explain), mismatched enums, types, required fields and defaults.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from pydantic import AwareDatetime, BaseModel

from jobwarden import labels
from jobwarden.api import spec as spec_module
from jobwarden.api.status import (
    MESSAGE_LIMIT,
    Condition,
    HistoryEntry,
    ScheduleStatus,
    format_time,
    parse_time,
)

# libyaml when present: the CRD is 400 KB of YAML, 5 s to read in pure Python.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "jobschedules.jobwarden.io.yaml"
Nodes = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded = yaml.load(CRD_PATH.read_text(), Loader=LOADER)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    assert isinstance(only, dict)
    return only


@pytest.fixture(scope="module")
def root(version: dict[str, Any]) -> dict[str, Any]:
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


# --- walking the schema and the models ------------------------------------------------------


def schema_nodes(node: dict[str, Any], prefix: str = "") -> Nodes:
    """Every declared property below ``node``, by path (``history[].job``)."""
    out: Nodes = {}
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        out[path] = child
        out.update(schema_nodes(child, f"{path}."))
        if child.get("type") == "array":
            out.update(schema_nodes(child["items"], f"{path}[]."))
    return out


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg) if t is not type(None)]
    if annotation is AwareDatetime:
        return [datetime]
    return [annotation]


def model_fields(model: type[BaseModel], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every field below ``model`` by alias path: (annotation, FieldInfo)."""
    out: dict[str, tuple[Any, Any]] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        out[path] = (info.annotation, info)
        for inner in _unwrap(info.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                out.update(model_fields(inner, f"{path}."))
            elif get_origin(inner) is list:
                for item in _unwrap(get_args(inner)[0]):
                    if isinstance(item, type) and issubclass(item, BaseModel):
                        out.update(model_fields(item, f"{path}[]."))
    return out


def _schema_type(annotation: Any) -> set[str]:
    kinds: set[str] = set()
    for inner in _unwrap(annotation):
        origin = get_origin(inner)
        if inner is bool:
            kinds.add("boolean")
        elif inner is int:
            kinds.add("integer")
        elif inner is float:
            kinds.add("number")
        elif inner in (str, datetime, date) or origin is Literal:
            kinds.add("string")
        elif origin is list:
            kinds.add("array")
        elif (
            origin is dict
            or inner is dict
            or (isinstance(inner, type) and issubclass(inner, BaseModel))
        ):
            kinds.add("object")
        else:
            kinds.add(f"unknown:{inner!r}")
    return kinds


def _literal_values(annotation: Any) -> set[str] | None:
    for inner in _unwrap(annotation):
        if get_origin(inner) is Literal:
            return set(get_args(inner))
        if get_origin(inner) is list:
            found = _literal_values(get_args(inner)[0])
            if found is not None:
                return found
    return None


def _enum(node: dict[str, Any]) -> set[str] | None:
    enum = node.get("enum") or node.get("items", {}).get("enum")
    return set(enum) if enum is not None else None


def _opaque_prefixes(fields: dict[str, tuple[Any, Any]]) -> list[str]:
    """Model fields typed as free dicts: the CRD may describe their insides."""
    return [
        path
        for path, (annotation, _) in fields.items()
        if any(get_origin(t) is dict or t is dict for t in _unwrap(annotation))
    ]


def compare(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Assert that a CRD object schema and a model agree field by field."""
    fields = model_fields(model)
    opaque = _opaque_prefixes(fields)
    nodes = {
        path: node
        for path, node in schema_nodes(schema).items()
        if not any(path.startswith(f"{o}.") for o in opaque)
    }
    assert set(nodes) == set(fields), (
        f"only in CRD: {sorted(set(nodes) - set(fields))}; "
        f"only in model: {sorted(set(fields) - set(nodes))}"
    )
    for path, (annotation, _) in fields.items():
        node = nodes[path]
        assert node["type"] in _schema_type(annotation), f"{path}: type {node['type']}"
        assert _enum(node) == _literal_values(annotation), f"{path}: enum differs"
        if datetime in _unwrap(annotation):
            assert node.get("format") == "date-time", f"{path}: wants format date-time"
    # Required: what the model cannot do without, the CRD must require.
    objects = {"": schema} | {p: n for p, n in nodes.items() if n["type"] == "object"}
    objects |= {f"{p}[]": n["items"] for p, n in nodes.items() if n["type"] == "array"}
    for obj_path, node in objects.items():
        prefix = f"{obj_path}." if obj_path else ""
        children = {p: f for p, f in fields.items() if p.startswith(prefix)}
        children = {p: f for p, f in children.items() if "." not in p[len(prefix) :]}
        needed = {p[len(prefix) :] for p, (_, info) in children.items() if info.is_required()}
        assert needed <= set(node.get("required", [])), f"{obj_path or '<root>'}: required"


# --- the CRD itself -------------------------------------------------------------------------


def test_names_and_shape(crd: dict[str, Any], version: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == labels.CRD_NAME
    assert spec["group"] == labels.GROUP and spec["scope"] == "Namespaced"
    names = spec["names"]
    assert (names["kind"], names["plural"], names["singular"]) == (
        labels.KIND,
        labels.PLURAL,
        labels.SINGULAR,
    )
    assert names["shortNames"] == [labels.SHORT_NAME]
    assert set(names["categories"]) == {"all", "jobwarden"}
    assert version["name"] == labels.VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_status_matches_models(root: dict[str, Any]) -> None:
    status = root["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    compare(status, ScheduleStatus)


def test_spec_matches_models(root: dict[str, Any]) -> None:
    compare(root["properties"]["spec"], spec_module.JobScheduleSpec)


def test_spec_defaults_match_models(root: dict[str, Any]) -> None:
    fields = model_fields(spec_module.JobScheduleSpec)
    nodes = _own_nodes(root)
    defaulted = {p: n["default"] for p, n in nodes.items() if "default" in n}
    assert set(defaulted) >= {"timeZone", "concurrencyPolicy", "suspend", "every.times"}
    for path, default in defaulted.items():
        model_default = fields[path][1].get_default(call_default_factory=True)
        assert model_default == default, f"{path}: CRD {default!r} != model {model_default!r}"


def test_every_property_is_described(root: dict[str, Any]) -> None:
    for part in ("spec", "status"):
        top = root["properties"][part]
        assert top.get("description", "").strip(), part
        for path, node in schema_nodes(top).items():
            assert node.get("description", "").strip(), f"{part}.{path} has no description"


def _own_nodes(root: dict[str, Any]) -> Nodes:
    """The spec's own fields: jobTemplate's are Kubernetes' (hack/job-template-schema.py)."""
    nodes = schema_nodes(root["properties"]["spec"])
    return {p: n for p, n in nodes.items() if not p.startswith("jobTemplate.")}


def test_every_field_is_bounded(root: dict[str, Any]) -> None:
    """Every number, list and string has a maximum (CEL cost is estimated from them too)."""
    for path, node in _own_nodes(root).items():
        if node["type"] == "array":
            assert "maxItems" in node, path
            node = node["items"]
        if node["type"] == "string" and "enum" not in node:
            assert "maxLength" in node, path
        if node["type"] == "integer":
            assert "maximum" in node and "minimum" in node, path


def _model_bounds(info: Any) -> dict[str, int]:
    """The le/max_length constraints of a model field, wherever its type annotates them."""
    metadata = list(info.metadata)
    for inner in get_args(info.annotation) or (info.annotation,):
        metadata += getattr(inner, "__metadata__", ())
    metadata += [m for item in metadata for m in getattr(item, "metadata", ())]
    found: dict[str, int] = {}
    for item in metadata:
        for attr, key in (("le", "maximum"), ("max_length", "max")):
            if getattr(item, attr, None) is not None:
                found[key] = getattr(item, attr)
    return found


def test_maxima_match_models(root: dict[str, Any]) -> None:
    """The CRD's maximum/maxLength/maxItems are the models' le/max_length, field by field."""
    fields = model_fields(spec_module.JobScheduleSpec)
    checked = 0
    for path, node in _own_nodes(root).items():
        if path not in fields or node["type"] == "object":
            continue
        model = _model_bounds(fields[path][1])
        crd = {"maximum": node.get("maximum"), "max": node.get("maxItems", node.get("maxLength"))}
        crd = {k: v for k, v in crd.items() if v is not None}
        if node["type"] == "string" and "enum" in node:
            continue
        if node["type"] == "array" and "max" in model:
            assert model["max"] == crd["max"], path
        else:
            assert model == crd, f"{path}: model {model} != CRD {crd}"
        checked += 1
    assert checked >= 15


def test_conditions_are_a_map_keyed_on_type(root: dict[str, Any]) -> None:
    conditions = root["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


def test_cel_rules_have_messages(root: dict[str, Any]) -> None:
    rules = []

    def collect(node: dict[str, Any]) -> None:
        rules.extend(node.get("x-kubernetes-validations", []))
        for child in node.get("properties", {}).values():
            collect(child)
        if "items" in node:
            collect(node["items"])

    collect(root["properties"]["spec"])
    assert len(rules) >= 5
    for rule in rules:
        assert rule["message"].strip() and "\n" not in rule["message"]
        assert rule["message"].split(":")[0].startswith(("spec", "every")), rule["message"]


def test_job_template_is_typed_to_the_last_field(root: dict[str, Any]) -> None:
    """No part of jobTemplate keeps unknown fields: garbage is pruned, nesting is bounded."""
    template = root["properties"]["spec"]["properties"]["jobTemplate"]
    assert "jobTemplate" in root["properties"]["spec"]["required"]
    assert template["required"] == ["spec"]
    nodes = schema_nodes(template)
    assert len(nodes) > 500, len(nodes)
    for path, node in nodes.items():
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert "$ref" not in node and "allOf" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string") is True, path
    containers = nodes["spec.template.spec.containers"]
    assert containers["items"]["required"] == ["name"]
    assert nodes["spec.template.spec.containers[].ports[].protocol"]["default"] == "TCP"
    limits = nodes["spec.template.spec.containers[].resources.limits"]["additionalProperties"]
    assert limits["x-kubernetes-int-or-string"] is True and "pattern" in limits
    # A CronJob's template metadata is a whole ObjectMeta; the operator reads labels and
    # annotations, and a name or namespace stays admitted (and ignored) as there.
    assert {"labels", "annotations", "name", "namespace"} <= set(nodes["metadata"]["properties"])


def _structure(node: Any) -> Any:
    """A schema without its words: descriptions and enums (which the module cache's copy of
    the OpenAPI lacks and the API server serves)."""
    if isinstance(node, dict):
        return {k: _structure(v) for k, v in node.items() if k not in ("description", "enum")}
    if isinstance(node, list):
        return [_structure(v) for v in node]
    return node


def test_job_template_schema_is_generated(root: dict[str, Any]) -> None:
    """The jobTemplate block is what hack/job-template-schema.py makes of Kubernetes' OpenAPI.

    The cluster test compares it, words and all, with the live API server's; this one, with
    the copy in the Go module cache (where the control plane's build puts the Kubernetes
    sources, as it puts helm, whose absence fails tests/unit/test_chart.py the same way).
    """
    script = CRD_PATH.parents[1] / "hack" / "job-template-schema.py"
    loaded = importlib.util.spec_from_file_location("job_template_schema", script)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    try:
        openapi = module.load_openapi(None)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(
            f"no Kubernetes OpenAPI document in the Go module cache ({exc}); "
            "build the control plane: `bash tests/controlplane/cluster.sh build`"
        )
    generated = yaml.load(module.generate(openapi, CRD_PATH.read_text()), Loader=LOADER)
    (version,) = generated["spec"]["versions"]
    made = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["jobTemplate"]
    kept = root["properties"]["spec"]["properties"]["jobTemplate"]
    assert _structure(made) == _structure(kept), "run: python hack/job-template-schema.py"


def test_printer_columns_point_at_schema(version: dict[str, Any], root: dict[str, Any]) -> None:
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "Schedule",
        "Suspend",
        "Active",
        "Last Run",
        "Last Result",
        "Next Run",
        "Health",
        "Age",
    ]
    for name, column in columns.items():
        path = column["jsonPath"]
        assert path.startswith("."), name
        if path == ".metadata.creationTimestamp":
            continue
        node: dict[str, Any] = root
        for part in path.strip(".").split("."):
            node = node["properties"][part]
        expected = {"date": "string", "integer": "integer", "boolean": "boolean"}
        assert node["type"] == expected.get(column["type"], "string"), name
        if column["type"] == "date":
            assert node.get("format") == "date-time", name


def _pattern(root: dict[str, Any], path: str) -> re.Pattern[str]:
    node: dict[str, Any] = root["properties"]["spec"]
    for part in path.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return re.compile(node["pattern"])


@pytest.mark.parametrize(
    ("path", "good", "bad"),
    [
        (
            "schedule",
            ["*/5 * * * *", "H H * * 1-5", " 0 9 1,15 * MON ", "@daily", "@annually"],
            ["", "* * * *", "0 * * * * *", "@every 1h", "@reboot"],
        ),
        (
            "runAt",
            ["2025-01-31T09:00:00Z", "2025-01-31T09:00", "2025-01-31T09:00:00.123+05:30"],
            ["2025-01-31", "2025-01-31 09:00:00", "2025-01-31T9:00", "09:00"],
        ),
        ("every.times.[]", ["00:00", "09:30", "23:59"], ["24:00", "9:00", "12:60", "12:00:00"]),
        ("exclude.[]", ["2025-12-25"], ["2025/12/25", "25-12-2025", "2025-12-25T00:00"]),
        (
            "staleAfter",
            ["90m", "6h", "1h30m", "1.5h", "2d", "45s"],
            ["90", "6 h", "1w", "-5m", "h"],
        ),
        (
            "timeZone",
            ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"],
            ["a b", "/UTC", "UTC/"],
        ),
    ],
)
def test_patterns(root: dict[str, Any], path: str, good: list[str], bad: list[str]) -> None:
    pattern = _pattern(root, path)
    assert [g for g in good if not pattern.search(g)] == []
    assert [b for b in bad if pattern.search(b)] == []


def test_stale_after_pattern_agrees_with_parser(root: dict[str, Any]) -> None:
    pattern = _pattern(root, "staleAfter")
    for text in ["90m", "6h", "1h30m", "1.5h", "2d", "45s", "0s", "10", "1w", "5 m", "1h1h"]:
        try:
            parsed = spec_module.parse_duration(text) is not None
        except ValueError:
            parsed = False
        # The schema may let a zero duration through for the operator to reject, nothing else.
        assert parsed == bool(pattern.search(text)) or text == "0s", text


def test_status_serialises_in_the_crd_form() -> None:
    at = datetime(2025, 1, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    entry = HistoryEntry(
        job="j", trigger="Manual", result="Failed", start_time=at, message="x" * 5000
    )
    wire = entry.to_api()
    assert wire["startTime"] == "2025-01-01T08:00:00Z" and "completionTime" not in wire
    assert len(wire["message"]) == MESSAGE_LIMIT  # cut (test_status_bound: within maxLength)
    assert HistoryEntry.model_validate(wire).start_time == at.replace(microsecond=0)
    cond = Condition(type="Valid", status="True", reason="SpecValid", last_transition_time=at)
    assert cond.to_api()["message"] == ""
    assert format_time(at) == "2025-01-01T08:00:00Z"
    assert parse_time("2025-01-01T08:00:00Z") == datetime(2025, 1, 1, 8, tzinfo=UTC)
    assert parse_time("garbage") is None and parse_time(None) is None
    # Offsets that carry a time past the ends of the calendar: no time, never an OverflowError.
    assert parse_time("9999-12-31T23:59:59-05:00") is None
    assert parse_time("0001-01-01T00:00:00+05:00") is None
    with pytest.raises(ValueError):
        format_time(datetime(2025, 1, 1))
