"""The JobCalendar CRD in crds/ and the models in jobwarden.api.calendar describe one API.

The same comparison as the JobSchedule's (tests/unit/test_crd.py): fields, types,
enums, required fields, descriptions for ``kubectl explain``, and a maximum on
every list, string and number that matches the model's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobwarden import labels
from jobwarden.api.calendar import CalendarError, CalendarStatus, JobCalendarSpec, parse_calendar
from tests.unit.test_crd import LOADER, _model_bounds, compare, model_fields, schema_nodes

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "jobcalendars.jobwarden.io.yaml"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded = yaml.load(CRD_PATH.read_text(), Loader=LOADER)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def root(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def test_names_scope_and_subresource(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert crd["metadata"]["name"] == labels.CALENDAR_CRD_NAME
    assert spec["group"] == labels.GROUP and spec["scope"] == "Cluster"
    names = spec["names"]
    assert (names["kind"], names["plural"], names["singular"], names["shortNames"]) == (
        labels.CALENDAR_KIND,
        labels.CALENDAR_PLURAL,
        labels.CALENDAR_SINGULAR,
        [labels.CALENDAR_SHORT_NAME],
    )
    (version,) = spec["versions"]
    assert version["name"] == labels.VERSION and version["subresources"] == {"status": {}}


def test_spec_matches_model(root: dict[str, Any]) -> None:
    compare(root["properties"]["spec"], JobCalendarSpec)


def test_status_matches_model(root: dict[str, Any]) -> None:
    compare(root["properties"]["status"], CalendarStatus)


def test_every_property_is_described(root: dict[str, Any]) -> None:
    for part in ("spec", "status"):
        top = root["properties"][part]
        assert top.get("description", "").strip(), part
        for path, node in schema_nodes(top).items():
            assert node.get("description", "").strip(), f"{part}.{path} has no description"


def test_every_spec_field_is_bounded_as_the_model_is(root: dict[str, Any]) -> None:
    fields = model_fields(JobCalendarSpec)
    nodes = schema_nodes(root["properties"]["spec"])
    for path, node in nodes.items():
        if node["type"] == "object":
            continue
        info = fields[path][1]
        if node["type"] == "array":
            assert "maxLength" in node["items"], path
            own = [m.max_length for m in info.metadata if hasattr(m, "max_length")]
            assert own == [node["maxItems"]], path
        else:
            assert _model_bounds(info).get("max") == node["maxLength"], path


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"dates": ["2027-02-30"]}, "spec.dates[0]"),
        ({"dates": ["1999-12-31"]}, "spec.dates[0]"),
        ({"yearly": ["12-25", "13-01"]}, "spec.yearly[1]"),
        ({"yearly": ["02-30"]}, "spec.yearly[0]"),
        ({"remove": ["2027-1-1"]}, "spec.remove[0]"),
        ({"holidays": {}}, "spec.holidays.country"),
        ({"dates": ["2027-01-01"] * 1001}, "spec.dates"),
    ],
)
def test_bad_calendars_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(CalendarError) as caught:
        parse_calendar(spec)
    assert caught.value.field == field


def test_yaml_dates_are_taken_as_written() -> None:
    """An unquoted 2027-12-25 in YAML is a date object: read back as the same text."""
    spec = parse_calendar(yaml.safe_load("dates: [2027-12-25]\nremove: [2027-01-06]\n"))
    assert (spec.dates, spec.remove) == (["2027-12-25"], ["2027-01-06"])


def test_docs_api_documents_every_calendar_field(root: dict[str, Any]) -> None:
    """docs/api.md has a row for each field of the JobCalendar CRD, and none it lacks."""
    api = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    rows = set(re.findall(r"^\| `jobcalendar\.([^`]+)` \|", api, re.M))
    crd = {
        f"{part}.{path.replace('[]', '')}"
        for part in ("spec", "status")
        for path in schema_nodes(root["properties"][part])
        if not path.startswith("conditions[].") and not path.startswith("dates[].")
    }
    assert rows == crd
