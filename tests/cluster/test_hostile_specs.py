"""Hostile tenants, part 1: JobSchedule specs with values the schema may admit.

Extreme numbers, far dates with offsets, lists at their maxima: each is either
refused at apply with a message naming the field, or judged by the operator
(``Valid=False`` naming the field, or reconciled to a phase where the value
is extreme but meaningful). Meanwhile a victim schedule in another namespace,
watched by the same operator, runs on time and answers run-now within 10 s,
and no run is created twice (tests/support/hostile.py says how each is checked).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.hostile import RecordProperty, arena, hostile_schedule, spec_report
from tests.support.kube import Cluster
from tests.support.schedules import utcnow

INT64_MAX = 2**63 - 1

ALL_DAY = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]


def _next_days(count: int) -> list[str]:
    today = utcnow().date()
    return [(today + timedelta(days=i)).isoformat() for i in range(count)]


# (case id, spec fields over "every minute", the field a report must name, may it reconcile)
SPEC_CASES: list[tuple[str, dict[str, Any], str, bool]] = [
    (
        "deadline-int64-max",
        {"startingDeadlineSeconds": INT64_MAX},
        "spec.startingDeadlineSeconds",
        True,
    ),
    (
        "deadline-catch-up-all",
        {"startingDeadlineSeconds": 10**15, "catchUp": "All", "startAt": "1970-01-01T00:00:00Z"},
        "spec.startingDeadlineSeconds",
        True,
    ),
    ("stale-after-millions-of-days", {"staleAfter": "9999999d"}, "spec.staleAfter", True),
    ("stale-after-63-digits", {"staleAfter": "9" * 63 + "d"}, "spec.staleAfter", True),
    ("stale-after-summed-parts", {"staleAfter": "999999999d" * 6}, "spec.staleAfter", True),
    ("run-at-year-9999-minus-14h", {"runAt": "9999-12-31T23:59:59-14:00"}, "spec.runAt", False),
    ("run-at-year-1-plus-14h", {"runAt": "0001-01-01T00:00:00+14:00"}, "spec.runAt", False),
    (
        "run-at-9999-wall-clock-west",
        {"runAt": "9999-12-31T23:59:59", "timeZone": "Etc/GMT+12"},
        "spec.runAt",
        False,
    ),
    ("end-at-9999", {"endAt": "9999-12-31T23:59:59Z"}, "spec.endAt", True),
    ("end-at-9999-minus-14h", {"endAt": "9999-12-31T23:59:59-14:00"}, "spec.endAt", True),
    ("start-at-9999-minus-14h", {"startAt": "9999-12-31T23:59:00-14:00"}, "spec.startAt", True),
    (
        "start-at-year-1-plus-14h",
        {"startAt": "0001-01-01T00:00:00+14:00", "catchUp": "All"},
        "spec.startAt",
        True,
    ),
    ("jitter-int64-max", {"jitterSeconds": INT64_MAX}, "spec.jitterSeconds", True),
    (
        "interval-int64-max",
        {"every": {"period": "Month", "interval": INT64_MAX, "monthDays": [31]}},
        "spec.every.interval",
        True,
    ),
    ("max-executions-int64-max", {"maxExecutions": INT64_MAX}, "spec.maxExecutions", True),
    (
        "suspend-after-failures-int64-max",
        {"suspendAfterFailures": INT64_MAX},
        "spec.suspendAfterFailures",
        True,
    ),
    (
        "every-lists-at-their-maxima",
        {"every": {"period": "Month", "times": ALL_DAY, "monthDays": [*range(1, 32), -1]}},
        "spec.every",
        True,
    ),
    (
        "exclude-the-next-1000-days",
        {"schedule": "0 12 * * *", "exclude": _next_days(1000)},
        "spec.exclude",
        True,
    ),
]


@pytest.mark.parametrize(
    ("case", "fields", "field_path", "may_reconcile"), SPEC_CASES, ids=[c[0] for c in SPEC_CASES]
)
def test_hostile_spec(
    cluster: Cluster,
    tmp_path: Path,
    record_property: RecordProperty,
    case: str,
    fields: dict[str, Any],
    field_path: str,
    may_reconcile: bool,
) -> None:
    with arena(cluster, case, tmp_path, record_property) as a:
        applied = a.apply(hostile_schedule("hostile", **fields))
        a.prove(
            lambda: spec_report(
                cluster,
                a.hostile,
                "hostile",
                applied,
                field_path=field_path,
                may_reconcile=may_reconcile,
            )
        )
