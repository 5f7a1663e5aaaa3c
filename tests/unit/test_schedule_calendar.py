"""``every`` recurrences: intervals from the anchor, weekdays, month days, DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobwarden.api.spec import parse_spec
from jobwarden.schedule.timeline import Timeline, build_timeline

CREATED = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def timeline(every: dict[str, Any], created: datetime = CREATED, **more: Any) -> Timeline:
    raw = {"every": every, "jobTemplate": {}, **more}
    return build_timeline(parse_spec(raw), key="ns/name", created=created)


# (case, every, extra spec fields, after, the next runs as UTC)
NEXT_RUNS = [
    ("daily default midnight", {"period": "Day"}, {}, "2024-01-01T12:00",
     ["2024-01-02T00:00", "2024-01-03T00:00"]),
    ("daily two times", {"period": "Day", "times": ["17:00", "09:00"]}, {}, "2024-01-05T10:00",
     ["2024-01-05T17:00", "2024-01-06T09:00", "2024-01-06T17:00"]),
    ("every 2 days from startAt", {"period": "Day", "interval": 2, "times": ["09:00", "17:00"]},
     {"startAt": "2024-01-01T00:00:00Z"}, "2024-01-01T10:00",
     ["2024-01-01T17:00", "2024-01-03T09:00", "2024-01-03T17:00", "2024-01-05T09:00"]),
    ("every 3 days from creation", {"period": "Day", "interval": 3, "times": ["09:00"]}, {},
     "2024-01-01T12:00", ["2024-01-04T09:00", "2024-01-07T09:00"]),
    ("every 3 days before the anchor phase", {"period": "Day", "interval": 3, "times": ["09:00"]},
     {}, "2024-01-02T12:00", ["2024-01-04T09:00"]),
    ("weekly", {"period": "Week", "weekdays": ["Fri", "Mon"], "times": ["08:30"]}, {},
     "2024-01-03T00:00", ["2024-01-05T08:30", "2024-01-08T08:30", "2024-01-12T08:30"]),
    ("weekly same day later time",
     {"period": "Week", "weekdays": ["Wed"], "times": ["08:00", "20:00"]}, {},
     "2024-01-03T12:00", ["2024-01-03T20:00", "2024-01-10T08:00"]),
    # Anchored on Wednesday 2024-01-03: its ISO week starts Monday 2024-01-01.
    ("every 2 weeks", {"period": "Week", "interval": 2, "weekdays": ["Mon", "Fri"]},
     {"startAt": "2024-01-03T00:00:00Z"}, "2024-01-03T00:00",
     ["2024-01-05T00:00", "2024-01-15T00:00", "2024-01-19T00:00", "2024-01-29T00:00"]),
    # 2024-12-30 is the Monday of ISO week 2025-W01: the interval counts ISO weeks across years.
    ("every 2 weeks across new year", {"period": "Week", "interval": 2, "weekdays": ["Sun"]},
     {"startAt": "2024-12-31T00:00:00Z"}, "2024-12-30T00:00",
     ["2025-01-05T00:00", "2025-01-19T00:00", "2025-02-02T00:00"]),
    ("monthly with last day", {"period": "Month", "monthDays": [15, 1, -1]}, {},
     "2024-02-01T00:00", ["2024-02-15T00:00", "2024-02-29T00:00", "2024-03-01T00:00"]),
    ("monthly 31 skips short months", {"period": "Month", "monthDays": [31], "times": ["06:00"]},
     {}, "2024-03-31T12:00", ["2024-05-31T06:00", "2024-07-31T06:00", "2024-08-31T06:00",
                              "2024-10-31T06:00", "2024-12-31T06:00"]),
    ("monthly 31 and last day once", {"period": "Month", "monthDays": [31, -1]}, {},
     "2024-03-01T00:00", ["2024-03-31T00:00", "2024-04-30T00:00", "2024-05-31T00:00"]),
    ("every 3 months", {"period": "Month", "interval": 3, "monthDays": [1]}, {},
     "2024-01-01T12:00", ["2024-04-01T00:00", "2024-07-01T00:00", "2024-10-01T00:00"]),
    ("every 12 months leap day", {"period": "Month", "interval": 12, "monthDays": [29]},
     {"startAt": "2024-02-01T00:00:00Z"}, "2024-02-01T00:00",
     ["2024-02-29T00:00", "2028-02-29T00:00"]),
    ("berlin local time", {"period": "Day", "times": ["09:00"]}, {"timeZone": "Europe/Berlin"},
     "2024-07-01T00:00", ["2024-07-01T07:00"]),
    ("berlin spring skipped time", {"period": "Day", "times": ["02:30"]},
     {"timeZone": "Europe/Berlin"}, "2024-03-30T12:00", ["2024-03-31T01:00", "2024-04-01T00:30"]),
    ("berlin spring gap and its end collapse", {"period": "Day", "times": ["02:30", "03:00"]},
     {"timeZone": "Europe/Berlin"}, "2024-03-30T12:00",
     ["2024-03-31T01:00", "2024-04-01T00:30", "2024-04-01T01:00"]),
    ("berlin fall repeated once", {"period": "Day", "times": ["02:30"]},
     {"timeZone": "Europe/Berlin"}, "2024-10-26T12:00", ["2024-10-27T00:30", "2024-10-28T01:30"]),
    ("ny spring weekly", {"period": "Week", "weekdays": ["Sun"], "times": ["02:00"]},
     {"timeZone": "America/New_York"}, "2024-03-09T00:00",
     ["2024-03-10T07:00", "2024-03-17T06:00"]),
    ("ny fall monthly", {"period": "Month", "monthDays": [3], "times": ["01:30"]},
     {"timeZone": "America/New_York"}, "2024-10-04T00:00",
     ["2024-11-03T05:30", "2024-12-03T06:30"]),
    # Day boundaries are local: 00:30 in New York is 04:30/05:30 UTC.
    ("ny anchor date is local", {"period": "Day", "interval": 2, "times": ["00:30"]},
     {"timeZone": "America/New_York", "startAt": "2024-01-02T03:00:00Z"}, "2024-01-01T00:00",
     ["2024-01-03T05:30", "2024-01-05T05:30"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "every", "more", "after", "expected"), NEXT_RUNS, ids=[c[0] for c in NEXT_RUNS]
)
def test_next_runs(
    case: str, every: dict[str, Any], more: dict[str, Any], after: str, expected: list[str]
) -> None:
    runs = timeline(every, **more).upcoming(utc(after), count=len(expected))
    assert runs == [utc(e) for e in expected]


@pytest.mark.parametrize(
    ("case", "every", "more", "after", "expected"), NEXT_RUNS, ids=[c[0] for c in NEXT_RUNS]
)
def test_between_walks_back_to_the_same_runs(
    case: str, every: dict[str, Any], more: dict[str, Any], after: str, expected: list[str]
) -> None:
    runs = timeline(every, **more).between(utc(after), utc(expected[-1]), limit=50)
    assert runs == [utc(e) for e in expected]


def test_month_day_that_never_occurs_gives_no_run() -> None:
    # The 30th in every 12th month from February: no February has one.
    never = timeline(
        {"period": "Month", "interval": 12, "monthDays": [30, 31]},
        startAt="2024-02-01T00:00:00Z",
    )
    assert never.next_after(utc("2024-01-01T00:00")) is None
    assert never.last_at_or_before(utc("2030-01-01T00:00")) is None
    assert never.between(utc("2024-01-01T00:00"), utc("2040-01-01T00:00"), limit=10) == []


def test_leap_day_every_24_months_from_an_odd_year_never_fires() -> None:
    never = timeline(
        {"period": "Month", "interval": 24, "monthDays": [29]}, startAt="2025-02-01T00:00:00Z"
    )
    assert never.next_after(utc("2025-01-01T00:00")) is None
