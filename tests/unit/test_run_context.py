"""The run context a plan gives a run's pods: scheduled time, data interval, trigger.

Each case carries a schedule through real plans (``World``) and reads the
environment of the Job the plan asked to create, as the pods would see it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from jobwarden import labels
from jobwarden.reconcile import Plan
from tests.unit.test_reconcile import HOURLY, World, at


def run_env(result: Plan) -> list[dict[str, str]]:
    """The env of the one Job ``result`` starts, the same in every container."""
    (start,) = result.starts
    containers = start.body["spec"]["template"]["spec"]["containers"]
    envs = [
        {e["name"]: e["value"] for e in c["env"] if e["name"].startswith("JOBWARDEN_")}
        for c in containers
    ]
    assert all(env == envs[0] for env in envs)
    return envs


def context(result: Plan) -> tuple[str, str, str, str]:
    (env,) = run_env(result)
    return (
        env[labels.SCHEDULE_ENV],
        env[labels.SCHEDULED_TIME_ENV],
        env[labels.PREVIOUS_SCHEDULED_TIME_ENV],
        env[labels.TRIGGER_ENV],
    )


# (case, spec, plan at, expected scheduled, previous, trigger)
CASES: list[tuple[str, dict[str, Any], datetime, str, str, str]] = [
    ("on time: the hour before", {"schedule": HOURLY}, at("05:00:02"),
     "2024-01-01T05:00:00Z", "2024-01-01T04:00:00Z", "Schedule"),
    ("a catch-up: the instant before it, not before now", {"schedule": HOURLY},
     at("05:30:00"), "2024-01-01T05:00:00Z", "2024-01-01T04:00:00Z", "CatchUp"),
    ("the first instant of a startAt has none before it",
     {"schedule": HOURLY, "startAt": "2024-01-01T05:00:00Z"}, at("05:00:02"),
     "2024-01-01T05:00:00Z", "", "Schedule"),
    ("a one-time run has none", {"runAt": "2024-01-01T03:15:00Z"}, at("03:15:01"),
     "2024-01-01T03:15:00Z", "", "Schedule"),
    ("a calendar recurrence: the day before in its zone",
     {"every": {"period": "Day", "times": ["09:30"]}, "timeZone": "Europe/Berlin"},
     at("08:30:05", day=3), "2024-01-03T08:30:00Z", "2024-01-02T08:30:00Z", "Schedule"),
    ("an excluded date is skipped over",
     {"every": {"period": "Day", "times": ["02:00"]}, "exclude": ["2024-01-02"]},
     at("02:00:05", day=3), "2024-01-03T02:00:00Z", "2024-01-01T02:00:00Z", "Schedule"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "now", "scheduled", "previous", "trigger"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_scheduled_run_is_told_its_interval_and_trigger(
    spec: dict[str, Any], now: datetime, scheduled: str, previous: str, trigger: str
) -> None:
    world = World.of(**spec)
    assert context(world.step(now)) == ("nightly", scheduled, previous, trigger)


def test_a_manual_run_covers_the_time_since_the_last_scheduled_instant() -> None:
    world = World.of(schedule=HOURLY)
    world.step(at("00:00:02", day=2))
    world.annotations[labels.RUN_NOW_ANNOTATION] = "t1"
    result = world.step(at("00:40:00", day=2))
    assert context(result) == (
        "nightly",
        "2024-01-02T00:40:00Z",
        "2024-01-02T00:00:00Z",
        "Manual",
    )


def test_a_template_variable_of_the_same_name_is_replaced() -> None:
    world = World.of(schedule=HOURLY)
    world.spec["jobTemplate"] = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "env": [{"name": labels.TRIGGER_ENV, "value": "Forged"}],
                        }
                    ]
                }
            }
        }
    }
    assert context(world.step(at("01:00:02")))[3] == "Schedule"
