"""docs/ against the sources it describes, so that a change to either shows up.

* docs/api.md documents every field of the CRD in crds/ (and no field the CRD
  lacks) with the CRD's type, default and enum values; each spec field has an
  example, and the operator accepts it; every printer column, label and
  annotation is explained.
* docs/operations.md names every operator setting (flag and variable), every
  metric and every alert of the chart.
* docs/troubleshooting.md shows every command of the kubectl plugin.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobwarden import labels, settings
from jobwarden.cli.main import build_parser
from jobwarden.schedule.checks import load_spec

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# libyaml when present: the CRD is 400 KB of YAML, 5 s to read in pure Python.
CRD = yaml.load(
    (ROOT / "crds" / "jobschedules.jobwarden.io.yaml").read_text(),
    Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
)
(VERSION,) = CRD["spec"]["versions"]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]

# A spec the operator accepts, for trying each example on.
BASE_SPEC: dict[str, Any] = {
    "schedule": "0 * * * *",
    "jobTemplate": {
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                }
            }
        }
    },
}
WHEN = ("schedule", "runAt", "every", "recurrences")


# Below these, jobTemplate is Kubernetes' own JobTemplateSpec (hack/job-template-schema.py),
# documented by `kubectl explain` rather than here.
KUBERNETES_TYPED = ("spec.jobTemplate.metadata", "spec.jobTemplate.spec.template")


def fields(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (path, schema) below ``node``; ``[]`` marks the items of an array of objects."""
    for name, child in (node.get("properties") or {}).items():
        here = f"{path}.{name}"
        if path.startswith("spec.jobTemplate.spec") and here != "spec.jobTemplate.spec.template":
            continue
        yield here, child
        if here in KUBERNETES_TYPED:
            continue
        yield from fields(child, here)
        items = child.get("items") or {}
        if items.get("properties"):
            yield from fields(items, f"{here}[]")


CRD_FIELDS = dict(
    [
        *fields(SCHEMA["properties"]["spec"], "spec"),
        *fields(SCHEMA["properties"]["status"], "status"),
    ]
)


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows whose first cell is a code span naming a field: path -> cells."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"^\|\s*`((?:spec|status)\.[^`]+)`\s*\|(.*)\|\s*$", line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is documented twice"
            rows[match.group(1)] = [c.strip() for c in match.group(2).split("|")]
    return rows


API = (DOCS / "api.md").read_text()
ROWS = table_rows(API)


def test_every_crd_field_is_documented_and_nothing_else() -> None:
    assert sorted(set(CRD_FIELDS) - set(ROWS)) == [], "fields of the CRD missing in docs/api.md"
    assert sorted(set(ROWS) - set(CRD_FIELDS)) == [], "docs/api.md documents fields the CRD lacks"


def _type(schema: Mapping[str, Any]) -> str:
    kind = str(schema.get("type"))
    if kind == "array" and (schema.get("items") or {}).get("type") != "object":
        return f"array of {schema['items']['type']}"
    if schema.get("format") == "date-time":
        return "string (date-time)"
    return kind


def _code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@pytest.mark.parametrize("path", sorted(CRD_FIELDS))
def test_field_type_default_and_values(path: str) -> None:
    schema, cells = CRD_FIELDS[path], ROWS.get(path)
    assert cells is not None, f"{path} is not documented"
    assert cells[0] == _type(schema), f"{path}: type"
    row = " ".join(cells)
    for value in schema.get("enum") or []:
        assert f"`{value}`" in row, f"{path}: enum value {value} not explained"
    if path.startswith("spec."):
        default = cells[1]
        if "default" in schema:
            want = schema["default"]
            shown = want if isinstance(want, str) else json.dumps(want)
            assert f"`{shown}`" in _code_spans(default) or shown in _code_spans(default), (
                f"{path}: the CRD's default is {shown!r}, the docs say {default!r}"
            )
        else:
            assert default == "—" or "operator" in default, f"{path}: no default in the CRD"


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _holds(fragment: Any, path: list[str]) -> bool:
    """Whether ``fragment`` sets ``path``; ``name[]`` is a list some entry of which goes on."""
    if not path:
        return True
    key = path[0].removesuffix("[]")
    if not isinstance(fragment, Mapping) or key not in fragment:
        return False
    if key != path[0]:
        entries = fragment[key]
        return isinstance(entries, list) and any(_holds(e, path[1:]) for e in entries)
    return _holds(fragment[key], path[1:])


@pytest.mark.parametrize("path", sorted(p for p in CRD_FIELDS if p.startswith("spec.")))
def test_spec_field_has_an_example_the_operator_accepts(path: str) -> None:
    example = ROWS[path][-1]
    (snippet,) = _code_spans(example) or [""]
    assert snippet, f"{path}: no example"
    fragment = yaml.safe_load(snippet)
    assert isinstance(fragment, dict), f"{path}: the example is not a spec fragment"
    assert _holds(fragment, path.split(".")[1:]), f"{path}: the example does not set it"
    base = {k: v for k, v in BASE_SPEC.items() if not (k in WHEN and set(WHEN) & set(fragment))}
    load_spec(_deep_merge(base, fragment))


def test_printer_columns_labels_and_annotations_are_explained() -> None:
    for column in VERSION["additionalPrinterColumns"]:
        assert re.search(rf"^\| {re.escape(column['name'])} \|", API, re.M), column["name"]
    names = [
        v
        for k, v in vars(labels).items()
        if k.endswith(("_LABEL", "_ANNOTATION")) and isinstance(v, str)
    ]
    assert names
    for name in names:
        assert f"`{name}" in API, f"{name} is not explained in docs/api.md"
    assert f"`{labels.SCHEDULED_TIME_ENV}`" in API


# --- operations and troubleshooting ---------------------------------------------------


def operations() -> str:
    return (DOCS / "operations.md").read_text()


@pytest.mark.parametrize("flag", sorted(settings._ENV))
def test_every_setting_is_in_the_operations_table(flag: str) -> None:
    env = settings._ENV[flag]
    row = next(
        (
            line
            for line in operations().splitlines()
            if line.startswith("|") and f"`--{flag}`" in line
        ),
        None,
    )
    assert row is not None, f"--{flag} is not in docs/operations.md"
    assert f"`{env}`" in row, f"--{flag}: its variable {env} is not in its row"


def test_every_metric_and_alert_is_in_operations() -> None:
    source = (ROOT / "operator" / "jobwarden" / "metrics.py").read_text()
    metrics = set(re.findall(r'"(jobwarden_[a-z_]+)"', source))
    assert len(metrics) >= 6
    rule = (ROOT / "charts" / "jobwarden" / "templates" / "prometheusrule.yaml").read_text()
    alerts = set(re.findall(r"alert: (Jobwarden[A-Za-z]+)", rule))
    assert len(alerts) >= 3
    text = operations()
    for name in sorted(metrics | alerts):
        assert f"`{name}" in text, f"{name} is not in docs/operations.md"


def test_troubleshooting_shows_every_plugin_command() -> None:
    text = (DOCS / "troubleshooting.md").read_text()
    parser = build_parser()
    (commands,) = [a.choices for a in parser._actions if getattr(a, "choices", None)]
    assert commands
    for command in commands:
        assert f"kubectl jobwarden {command}" in text, command
