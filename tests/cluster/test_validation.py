"""Bad specs: the API server rejects what its schema can say; the operator flags the rest.

A rejection must name the field so the user knows which line to fix; a spec
only the operator can judge must leave the schedule visibly Invalid without
creating Jobs or disturbing the other schedules in its namespace.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.checks import all_of, generation_seen, phase
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    Schedules,
    assert_refused,
    condition,
    record_jobs,
    rfc3339,
    schedule,
    seconds_ahead,
)

EVERY_MINUTE = "* * * * *"

REJECTED: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "schedule-and-runAt",
        {"schedule": EVERY_MINUTE, "runAt": "2030-01-01T00:00:00Z"},
        ["schedule", "runAt"],
    ),
    ("no-when", {}, ["schedule", "runAt", "every"]),
    ("weekdays-on-Day", {"every": {"period": "Day", "weekdays": ["Mon"]}}, ["every.weekdays"]),
    ("Month-without-monthDays", {"every": {"period": "Month"}}, ["every.monthDays"]),
    ("monthDays-0", {"every": {"period": "Month", "monthDays": [0]}}, ["every.monthDays"]),
    ("monthDays-32", {"every": {"period": "Month", "monthDays": [32]}}, ["every.monthDays"]),
    ("interval-0", {"every": {"period": "Day", "interval": 0}}, ["every.interval"]),
    ("time-25:00", {"every": {"period": "Day", "times": ["25:00"]}}, ["every.times"]),
    ("bad-staleAfter", {"schedule": EVERY_MINUTE, "staleAfter": "soon"}, ["staleAfter"]),
    (
        "endAt-before-startAt",
        {
            "schedule": EVERY_MINUTE,
            "startAt": "2030-01-01T10:00:00+02:00",
            "endAt": "2030-01-01T07:00:00Z",
        },
        ["endAt"],
    ),
    (
        "negative-successfulJobsHistoryLimit",
        {"schedule": EVERY_MINUTE, "successfulJobsHistoryLimit": -1},
        ["successfulJobsHistoryLimit"],
    ),
    ("negative-historyLimit", {"schedule": EVERY_MINUTE, "historyLimit": -1}, ["historyLimit"]),
    ("six-field-cron", {"schedule": "0 0 * * * *"}, ["spec.schedule"]),
]


@pytest.mark.parametrize(("spec", "fields"), [pytest.param(s, f, id=i) for i, s, f in REJECTED])
def test_api_server_rejects_bad_spec_naming_the_field(
    cluster: Cluster, namespace: str, spec: dict[str, Any], fields: list[str]
) -> None:
    assert_refused(cluster, namespace, spec, fields)
    listed = cluster.kubectl("get", "jobschedules", "-n", namespace, "-o", "name").stdout
    assert listed.strip() == ""


OPERATOR_ONLY = [
    pytest.param(
        {"schedule": "0 0 1 1 *", "timeZone": "Mars/Base"},
        "spec.timeZone",
        {"timeZone": "Europe/Berlin"},
        id="unknown-timeZone",
    ),
    pytest.param(
        {"schedule": "0 0 30 2 *"},
        "spec.schedule",
        {"schedule": "0 0 1 1 *"},
        id="cron-never-fires",
    ),
]


@pytest.mark.parametrize(("bad", "field", "fix"), OPERATOR_ONLY)
def test_operator_marks_spec_invalid_without_harming_neighbours(
    cluster: Cluster,
    namespace: str,
    operator: OperatorProcess,
    bad: dict[str, Any],
    field: str,
    fix: dict[str, Any],
) -> None:
    """Valid=False naming the field, phase Invalid, a Warning Event, no Jobs; a valid
    schedule next to it runs on time; fixing the spec makes it Valid again."""
    due = seconds_ahead(6)
    here = Schedules(cluster, namespace)
    with record_jobs(cluster, namespace) as recorder:
        here.apply(schedule("broken", **bad))
        here.apply(schedule("neighbour", runAt=rfc3339(due)))
        status = here.wait("broken", phase("Invalid"), timeout=20, what="phase Invalid")
        valid = condition(status, "Valid")
        assert valid is not None and valid["status"] == "False", status
        assert valid["reason"] == "InvalidSpec"
        assert field in valid["message"], valid
        ready = condition(status, "Ready")
        assert ready is not None and ready["status"] == "False"
        assert status["health"]["state"] != "Healthy"
        wait_for(
            lambda: any(
                e["type"] == "Warning"
                and e["reason"] == "InvalidSpec"
                and field in e.get("message", "")
                for e in cluster.events(namespace, name="broken")
            ),
            timeout=20,
            what="a Warning Event naming the field",
        )

        wait_for(lambda: recorder.names(), timeout=20, what="the neighbour's run")
        [run] = recorder.snapshot()
        assert run.name.startswith("neighbour-")
        assert due <= run.created and run.seen - due <= timedelta(seconds=2)

        here.apply(schedule("broken", **{**bad, **fix}))
        status = here.wait(
            "broken",
            all_of(phase("Active"), generation_seen(2)),
            timeout=20,
            what="Valid again after the fix",
        )
        valid = condition(status, "Valid")
        assert valid is not None and valid["status"] == "True", status
        assert status.get("nextRunTime"), status
        assert not here.jobs("broken")
        assert len(recorder.names()) == 1
    # Completed once its one run has ended (not while it is still going).
    here.wait("neighbour", phase("Completed"), timeout=20, what="Completed after its run ended")
