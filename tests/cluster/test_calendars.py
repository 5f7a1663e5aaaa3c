"""Business-calendar forms on a real control plane: what the API server refuses,
what the operator judges, and what a valid schedule of each form plans."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.checks import all_of, generation_seen, phase
from tests.support.kube import Cluster
from tests.support.operator import OperatorProcess
from tests.support.schedules import Schedules, assert_refused, condition, schedule

REJECTED: list[tuple[str, dict[str, Any], list[str]]] = [
    ("recurrence-empty", {"recurrences": [{}]}, ["spec.recurrences[]"]),
    (
        "recurrences-17",
        {"recurrences": [{"schedule": "0 9 * * *"}] * 17},
        ["spec.recurrences", "17"],
    ),
    (
        "recurrences-and-schedule",
        {"recurrences": [{"schedule": "0 9 * * *"}], "schedule": "0 9 * * *"},
        ["recurrences"],
    ),
    (
        "businessDays-0",
        {"every": {"period": "Month", "businessDays": [0]}},
        ["every.businessDays"],
    ),
    (
        "businessDays-on-Day",
        {"every": {"period": "Day", "businessDays": [1]}},
        ["every.monthDays"],
    ),
    (
        "weekdaysOfMonth-6th",
        {"every": {"period": "Month", "weekdaysOfMonth": ["6th Mon"]}},
        ["weekdaysOfMonth"],
    ),
    ("dst-later", {"schedule": "0 2 * * *", "dst": {"missingTime": "Later"}}, ["dst.missingTime"]),
]


@pytest.mark.parametrize(("spec", "fields"), [pytest.param(s, f, id=i) for i, s, f in REJECTED])
def test_api_server_refuses_bad_calendar_forms_naming_the_field(
    cluster: Cluster, namespace: str, spec: dict[str, Any], fields: list[str]
) -> None:
    assert_refused(cluster, namespace, spec, fields)


def test_quartz_nonsense_is_invalid_naming_the_field(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    here = Schedules(cluster, namespace)
    here.apply(schedule("saturday-l", recurrences=[{"schedule": "0 9 * * L"}]))
    status = here.wait(
        "saturday-l", all_of(phase("Invalid"), generation_seen(1)), timeout=30, what="Invalid"
    )
    valid = condition(status, "Valid")
    assert valid is not None and valid["status"] == "False"
    assert valid["message"].startswith("spec.recurrences[0].schedule:"), valid
    assert "day-of-week" in valid["message"]
    assert here.jobs("saturday-l") == []


def test_each_new_form_is_planned(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    here = Schedules(cluster, namespace)
    forms = {
        "third-monday": {"every": {"period": "Month", "weekdaysOfMonth": ["3rd Mon"]}},
        "last-business-day": {"every": {"period": "Month", "businessDays": [-1]}},
        "last-friday": {"schedule": "0 17 * * 5L"},
        "two-recurrences": {
            "recurrences": [{"schedule": "0 9 * * 1-5"}, {"schedule": "0 12 * * 6"}],
            "dst": {"missingTime": "Skip", "repeatedTime": "Both"},
            "timeZone": "Australia/Lord_Howe",
        },
    }
    for name, spec in forms.items():
        here.apply(schedule(name, **spec))
    for name in forms:
        status = here.wait(name, phase("Active"), timeout=30, what="planned")
        upcoming = status["upcoming"]
        assert upcoming[0]["time"] == status["nextRunTime"], status
        assert len(upcoming) == 5
        assert [u["time"] for u in upcoming] == sorted({u["time"] for u in upcoming})
