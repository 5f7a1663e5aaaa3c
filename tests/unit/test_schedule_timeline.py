"""Bounds, exclusions, one-time runs and windows of the combined timeline."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from jobwarden.api.spec import parse_spec
from jobwarden.schedule.timeline import Timeline, build_timeline

CREATED = datetime(2024, 1, 1, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def timeline(**fields: Any) -> Timeline:
    return build_timeline(parse_spec({"jobTemplate": {}, **fields}), key="ns/x", created=CREATED)


# (case, spec fields, after, the next runs as UTC; a final "end" means no run follows)
BOUNDED = [
    ("startAt inclusive", {"schedule": "0 * * * *", "startAt": "2024-05-01T10:00:00Z"},
     "2024-01-01T00:00", ["2024-05-01T10:00", "2024-05-01T11:00"]),
    ("startAt between runs", {"schedule": "0 * * * *", "startAt": "2024-05-01T10:00:01Z"},
     "2024-01-01T00:00", ["2024-05-01T11:00"]),
    ("startAt wall clock in zone", {"schedule": "0 * * * *", "timeZone": "Europe/Berlin",
                                    "startAt": "2024-05-01T10:00:00"},
     "2024-01-01T00:00", ["2024-05-01T08:00"]),
    ("endAt inclusive", {"schedule": "0 * * * *", "endAt": "2024-05-01T12:00:00Z"},
     "2024-05-01T10:30", ["2024-05-01T11:00", "2024-05-01T12:00", "end"]),
    ("endAt passed", {"schedule": "0 * * * *", "endAt": "2024-05-01T12:00:00Z"},
     "2024-05-01T12:00", ["end"]),
    ("both bounds", {"every": {"period": "Day", "times": ["06:00"]},
                     "startAt": "2024-05-01T07:00:00Z", "endAt": "2024-05-04T06:00:00Z"},
     "2024-04-01T00:00", ["2024-05-02T06:00", "2024-05-03T06:00", "2024-05-04T06:00", "end"]),
    ("exclude dates", {"schedule": "0 9 * * *", "exclude": ["2024-12-25", "2024-12-26"]},
     "2024-12-24T10:00", ["2024-12-27T09:00", "2024-12-28T09:00"]),
    # 22:00 in New York is 03:00 UTC the next day; exclude dates are New York dates.
    ("exclude in zone", {"schedule": "0 22 * * *", "timeZone": "America/New_York",
                         "exclude": ["2024-12-24"]},
     "2024-12-23T12:00", ["2024-12-24T03:00", "2024-12-26T03:00"]),
    ("exclude every minute of a day", {"schedule": "* * * * *", "exclude": ["2024-02-29"]},
     "2024-02-28T23:58", ["2024-02-28T23:59", "2024-03-01T00:00"]),
    ("exclude with every", {"every": {"period": "Week", "weekdays": ["Mon"]},
                            "exclude": ["2024-01-08"]},
     "2024-01-02T00:00", ["2024-01-15T00:00"]),
    ("runAt with offset", {"runAt": "2027-01-01T09:00:00+01:00"},
     "2024-01-01T00:00", ["2027-01-01T08:00", "end"]),
    ("runAt wall clock", {"runAt": "2027-07-01T09:00:00", "timeZone": "America/New_York"},
     "2024-01-01T00:00", ["2027-07-01T13:00", "end"]),
    ("runAt skipped time", {"runAt": "2024-03-10T02:30:00", "timeZone": "America/New_York"},
     "2024-01-01T00:00", ["2024-03-10T07:00", "end"]),
    ("runAt done", {"runAt": "2027-01-01T09:00:00Z"}, "2027-01-01T09:00", ["end"]),
    ("runAt before startAt", {"runAt": "2027-01-01T09:00:00Z", "startAt": "2027-02-01T00:00:00Z"},
     "2024-01-01T00:00", ["end"]),
    ("runAt after endAt", {"runAt": "2027-01-01T09:00:00Z", "endAt": "2026-12-31T00:00:00Z"},
     "2024-01-01T00:00", ["end"]),
    ("runAt excluded", {"runAt": "2027-01-01T23:30:00Z", "timeZone": "Asia/Tokyo",
                        "exclude": ["2027-01-02"]},
     "2024-01-01T00:00", ["end"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "fields", "after", "expected"), BOUNDED, ids=[c[0] for c in BOUNDED]
)
def test_bounded_runs(case: str, fields: dict[str, Any], after: str, expected: list[str]) -> None:
    line = timeline(**fields)
    wanted = [utc(e) for e in expected if e != "end"]
    ends = expected[-1] == "end"
    runs = line.upcoming(utc(after), count=len(wanted) + ends)
    assert runs == wanted
    if wanted:
        assert line.between(utc(after), wanted[-1], limit=50) == wanted


def test_many_excluded_dates_stay_fast() -> None:
    excluded = [(date(2025, 1, 1) + timedelta(days=n)).isoformat() for n in range(365)]
    line = timeline(schedule="* * * * *", exclude=excluded)
    began = time.perf_counter()
    assert line.next_after(utc("2024-12-31T23:59")) == utc("2026-01-01T00:00")
    assert line.last_at_or_before(utc("2025-12-31T23:59")) == utc("2024-12-31T23:59")
    assert time.perf_counter() - began < 1.0


def test_all_runs_excluded_gives_none() -> None:
    line = timeline(
        schedule="0 0 * * *", endAt="2024-01-04T00:00:00Z", exclude=["2024-01-02", "2024-01-03"]
    )
    assert line.upcoming(utc("2024-01-01T00:00"), count=5) == [utc("2024-01-04T00:00")]
    assert line.next_after(utc("2024-01-01T00:00")) == utc("2024-01-04T00:00")
    assert line.next_after(utc("2024-01-04T00:00")) is None


def test_between_window_is_half_open() -> None:
    line = timeline(schedule="0 * * * *")
    runs = line.between(utc("2024-01-01T01:00"), utc("2024-01-01T04:00"), limit=10)
    assert runs == [utc("2024-01-01T02:00"), utc("2024-01-01T03:00"), utc("2024-01-01T04:00")]


def test_between_keeps_the_newest_when_limited() -> None:
    line = timeline(schedule="0 * * * *")
    runs = line.between(utc("2024-01-01T00:00"), utc("2024-01-31T00:30"), limit=3)
    assert runs == [utc("2024-01-30T22:00"), utc("2024-01-30T23:00"), utc("2024-01-31T00:00")]


def test_count_between() -> None:
    line = timeline(schedule="*/10 * * * *")
    assert line.count_between(utc("2024-01-01T00:00"), utc("2024-01-02T00:00"), cap=1000) == 144
    assert line.count_between(utc("2024-01-01T00:00"), utc("2024-01-02T00:00"), cap=50) == 50


def test_aware_datetimes_in_any_zone_and_utc_out() -> None:
    line = timeline(schedule="0 12 * * *")
    # 13:00 at +02:00 is 11:00 UTC, before the 12:00 UTC run (14:00 at +02:00 is after it).
    assert line.next_after(datetime(2024, 6, 1, 13, 0, tzinfo=PLUS_TWO)) == utc("2024-06-01T12:00")
    run = line.next_after(datetime(2024, 6, 1, 14, 0, tzinfo=PLUS_TWO))
    assert run == utc("2024-06-02T12:00")
    assert run is not None and run.tzinfo is UTC
    with pytest.raises(ValueError, match="aware"):
        line.next_after(datetime(2024, 6, 1, 12, 0))


def test_timeline_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Timeline(tz=UTC)
