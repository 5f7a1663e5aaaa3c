"""The edit rule: a timing change comes in force when the operator first sees it.

Pure tests of :mod:`jobwarden.schedule.edits` and of the plan over it
(``World`` from the reconcile tests carries plans out as the scheduler does).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden.api.spec import parse_spec
from jobwarden.schedule.edits import TIMING_FIELDS, InForce, in_force, timing_fingerprint
from tests.unit.test_reconcile import TEMPLATE, World, at, scheduled_name, started

T = datetime(2024, 1, 1, 13, 0, tzinfo=UTC)


def _fp(**spec: Any) -> str:
    return timing_fingerprint(parse_spec({"jobTemplate": TEMPLATE, **spec}))


# --- the fingerprint ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"schedule": "38 13 * * *"}, {"schedule": "39 13 * * *"}),
        ({"schedule": "0 * * * *"}, {"schedule": "0 * * * *", "timeZone": "Europe/Berlin"}),
        ({"schedule": "0 * * * *"}, {"schedule": "0 * * * *", "startAt": "2024-01-02T00:00Z"}),
        ({"schedule": "0 * * * *"}, {"schedule": "0 * * * *", "endAt": "2024-01-02T00:00Z"}),
        ({"schedule": "0 * * * *"}, {"schedule": "0 * * * *", "exclude": ["2024-01-02"]}),
        ({"schedule": "0 * * * *"}, {"schedule": "0 * * * *", "maxExecutions": 3}),
        ({"schedule": "0 9 * * *"}, {"every": {"period": "Day", "times": ["09:00"]}}),
        ({"every": {"period": "Day"}}, {"every": {"period": "Day", "interval": 2}}),
        ({"runAt": "2024-01-01T13:39:00Z"}, {"runAt": "2024-01-01T13:39:30Z"}),
        ({"schedule": "0 2 * * *"}, {"schedule": "0 2 * * *", "dst": {"repeatedTime": "Both"}}),
        (
            {"recurrences": [{"schedule": "0 9 * * *"}]},
            {"recurrences": [{"schedule": "0 9 * * *"}, {"schedule": "0 12 * * 6"}]},
        ),
        (
            {"every": {"period": "Month", "businessDays": [1]}},
            {"every": {"period": "Month", "businessDays": [1, -1]}},
        ),
    ],
)
def test_each_timing_field_changes_the_fingerprint(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    assert _fp(**before) != _fp(**after)


@pytest.mark.parametrize(
    "extra",
    [
        {"timeZone": "UTC"},  # the default written out
        {"every": {"period": "Day", "interval": 1, "times": ["00:00"]}},
        {"concurrencyPolicy": "Forbid", "catchUp": "All", "suspend": True},
        {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
        {"staleAfter": "1h", "historyLimit": 3, "jitterSeconds": 10},
    ],
)
def test_defaults_and_fields_that_do_not_time_runs_keep_the_fingerprint(
    extra: dict[str, Any],
) -> None:
    base = {"every": {"period": "Day"}}
    assert _fp(**base) == _fp(**{**base, **extra})


def test_the_timing_fields_are_spec_attributes() -> None:
    spec = parse_spec({"schedule": "* * * * *", "jobTemplate": TEMPLATE})
    assert set(type(spec).model_fields) >= TIMING_FIELDS


def test_in_force_since_creation_when_nothing_was_recorded() -> None:
    got = in_force(fingerprint="a", previous=None, now=T, created=T - timedelta(days=1))
    assert got == InForce(fingerprint="a", since=T - timedelta(days=1))


def test_in_force_keeps_the_instant_while_unchanged_and_moves_on_a_change() -> None:
    first = InForce(fingerprint="a", since=T)
    later = T + timedelta(hours=5)
    assert in_force(fingerprint="a", previous=first, now=later, created=T) is first
    assert in_force(fingerprint="b", previous=first, now=later, created=T) == InForce(
        fingerprint="b", since=later
    )


# --- the plan ----------------------------------------------------------------------------


def test_an_edit_to_a_minute_that_just_passed_starts_nothing() -> None:
    """The case from the issue: ran at 13:38, edited at 13:40 to 13:39."""
    world = World.of(schedule="38 13 * * *")
    assert started(world.step(at("13:38:01"))) == [scheduled_name(at("13:38:00"))]
    world.edit(schedule="39 13 * * *")
    result = world.step(at("13:40:00"))
    assert result.starts == []
    assert world.counters.get("missed", 0) == 0
    assert world.status["nextRunTime"] == "2024-01-02T13:39:00Z"
    assert world.status["timing"]["since"] == "2024-01-01T13:40:00Z"
    # And it does run at the new time the next day.
    assert started(world.step(at("13:39:01", day=2))) == [scheduled_name(at("13:39:00", day=2))]


def test_a_run_due_after_the_edit_under_the_new_spec_runs() -> None:
    world = World.of(schedule="38 13 * * *")
    world.step(at("13:38:01"))
    world.edit(schedule="45 13 * * *")
    assert world.step(at("13:40:00")).starts == []
    assert started(world.step(at("13:45:01"))) == [scheduled_name(at("13:45:00"))]


def test_runs_missed_while_down_after_the_edit_was_seen_are_caught_up() -> None:
    """Seen at 13:40, then the operator is away until 16:00:10: the new spec's runs
    after 13:40 are missed runs (catchUp All starts each), the one before is not."""
    world = World.of(schedule="38 13 * * *", catchUp="All")
    world.step(at("13:38:01"))
    world.edit(schedule="30 * * * *", catchUp="All")
    assert world.step(at("13:40:00")).starts == []
    result = world.step(at("16:00:10"))
    assert started(result) == [scheduled_name(run) for run in (at("14:30:00"), at("15:30:00"))]


def test_an_edit_of_what_runs_keeps_catch_up_of_runs_missed_while_down() -> None:
    world = World.of(schedule="0 * * * *", catchUp="All")
    world.step(at("01:00:02"))
    world.edit(jobTemplate={**TEMPLATE, "metadata": {"labels": {"team": "b"}}})
    result = world.step(at("03:00:10"))
    assert started(result) == [scheduled_name(at("02:00:00")), scheduled_name(at("03:00:00"))]


def test_a_status_without_the_record_catches_up_as_before() -> None:
    """A schedule written by a version without ``status.timing``: not an edit."""
    world = World.of(schedule="0 * * * *", catchUp="All")
    world.step(at("01:00:02"))
    world.status.pop("timing")
    result = world.step(at("03:00:10"))
    assert len(result.starts) == 2
    assert world.status["timing"]["since"] == "2024-01-01T00:00:00Z"  # the creation


def test_an_invalid_spec_in_between_keeps_the_record() -> None:
    world = World.of(schedule="0 * * * *")
    world.step(at("01:00:02"))
    since = world.status["timing"]["since"]
    world.edit(timeZone="Nowhere/Else")
    world.step(at("01:10:00"))
    assert world.status["phase"] == "Invalid"
    world.edit(timeZone="UTC")
    world.step(at("01:20:00"))
    assert world.status["timing"]["since"] == since


def test_an_edit_while_suspended_hands_only_later_runs_to_catch_up() -> None:
    world = World.of(schedule="0 * * * *", suspend=True, catchUp="All")
    world.step(at("00:30:00"))
    world.edit(schedule="15 * * * *")  # seen at 02:20: 00:15, 01:15 and 02:15 were never due
    world.step(at("02:20:00"))
    world.edit(suspend=False)
    result = world.step(at("03:20:00"))
    assert started(result) == [scheduled_name(at("03:15:00"))]
    assert world.counters.get("missed", 0) == 0


@settings(max_examples=60, deadline=None)
@given(
    old_minute=st.integers(0, 59),
    new_minute=st.integers(0, 59),
    edit_after=st.integers(1, 3 * 3600),
    later=st.lists(st.integers(1, 4 * 3600), min_size=1, max_size=4),
)
def test_no_run_starts_for_a_time_before_the_edit_was_seen(
    old_minute: int, new_minute: int, edit_after: int, later: list[int]
) -> None:
    world = World.of(schedule=f"{old_minute} * * * *", catchUp="All")
    clock = at("00:00:30")
    world.step(clock)
    seen = clock + timedelta(seconds=edit_after)
    world.edit(schedule=f"{new_minute} * * * *", catchUp="All")
    for step in [0, *later]:
        clock = max(clock, seen) + timedelta(seconds=step)
        for start in world.step(clock).starts:
            run = datetime.fromisoformat(
                start.body["metadata"]["annotations"]["jobwarden.io/scheduled-time"]
            )
            # Same minute: not a timing edit, so its due run is owed as before.
            assert run > seen or old_minute == new_minute
            assert run.minute == new_minute
