"""``recurrences``: several recurrences in one schedule; a time two give runs once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden.api.spec import SpecError
from jobwarden.schedule import describe, load_spec
from jobwarden.schedule.timeline import Timeline, build_timeline
from tests.unit.test_reconcile import World, at, started

CREATED = datetime(2024, 1, 1, tzinfo=UTC)
ENTRIES: list[dict[str, Any]] = [
    {"schedule": "0 9 * * 1-5"},
    {"schedule": "0 9 * * *"},
    {"schedule": "30 2 * * *"},
    {"schedule": "*/20 * * * 6"},
    {"schedule": "0 17 * * 5L"},
    {"every": {"period": "Week", "weekdays": ["Sat"], "times": ["12:00"]}},
    {"every": {"period": "Day", "times": ["09:00", "02:30"]}},
    {"every": {"period": "Month", "businessDays": [1, -1], "times": ["09:00"]}},
    {"every": {"period": "Day", "interval": 3, "times": ["02:00"]}},
]
ZONES = ["UTC", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham"]


def timeline(spec: dict[str, Any]) -> Timeline:
    return build_timeline(load_spec({"jobTemplate": {}, **spec}), key="ns/a", created=CREATED)


def test_weekdays_at_nine_and_saturdays_at_noon_in_one_schedule() -> None:
    runs = timeline({"recurrences": [ENTRIES[0], ENTRIES[5]]}).upcoming(CREATED, count=7)
    assert [r.strftime("%a %d %H:%M") for r in runs] == [
        "Mon 01 09:00", "Tue 02 09:00", "Wed 03 09:00", "Thu 04 09:00", "Fri 05 09:00",
        "Sat 06 12:00", "Mon 08 09:00",
    ]  # fmt: skip


def test_a_time_two_entries_give_runs_once() -> None:
    runs = timeline({"recurrences": [ENTRIES[1], ENTRIES[6]]}).upcoming(CREATED, count=4)
    assert [r.strftime("%d %H:%M") for r in runs] == [
        "01 02:30",
        "01 09:00",
        "02 02:30",
        "02 09:00",
    ]


def test_a_shared_minute_starts_one_job() -> None:
    world = World.of(recurrences=[ENTRIES[1], {"schedule": "0 9 1 * *"}])
    result = world.step(at("09:00:02"))
    assert len(started(result)) == 1
    assert world.counters["scheduled"] == 1


@settings(max_examples=80, deadline=None)
@given(
    picks=st.lists(st.sampled_from(range(len(ENTRIES))), min_size=1, max_size=4),
    zone=st.sampled_from(ZONES),
    offset_days=st.integers(0, 3650),
)
def test_the_union_is_the_entries_runs_merged(
    picks: list[int], zone: str, offset_days: int
) -> None:
    """Forward and backward, the union is exactly the sorted set of the entries' own runs."""
    start = CREATED + timedelta(days=offset_days)
    entries = [ENTRIES[i] for i in picks]
    union = timeline({"recurrences": entries, "timeZone": zone})
    alone = [timeline({**entry, "timeZone": zone}) for entry in entries]
    count = 8
    expected = sorted({run for t in alone for run in t.upcoming(start, count=count)})[:count]
    assert union.upcoming(start, count=count) == expected
    end = expected[-1]
    assert union.between(start, end, limit=count) == expected


def test_description_lists_each_entry() -> None:
    spec = load_spec({"jobTemplate": {}, "recurrences": [ENTRIES[0], ENTRIES[5]]})
    assert describe(spec) == "0 9 * * 1-5; weekly Sat at 12:00"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"recurrences": []}, "spec.recurrences"),
        ({"recurrences": [ENTRIES[0]] * 17}, "spec.recurrences"),
        ({"recurrences": [{}]}, "spec.recurrences[0]"),
        ({"recurrences": [{**ENTRIES[0], **ENTRIES[5]}]}, "spec.recurrences[0]"),
        ({"recurrences": [ENTRIES[0], {"schedule": "61 * * * *"}]}, "spec.recurrences[1].schedule"),
        ({"recurrences": [ENTRIES[0], {"schedule": "0 9 * * L"}]}, "spec.recurrences[1].schedule"),
        ({"recurrences": [{"every": {"period": "Week"}}]}, "spec.recurrences[0].every.weekdays"),
        (
            {"recurrences": [{"every": {"period": "Day", "monthDays": [1]}}]},
            "spec.recurrences[0].every.monthDays",
        ),
        ({"recurrences": [ENTRIES[0]], "schedule": "* * * * *"}, "spec.recurrences"),
    ],
)
def test_bad_recurrences_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec({"jobTemplate": {}, **spec})
    assert caught.value.field == field
