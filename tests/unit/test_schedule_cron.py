"""Cron schedules: macros, H, five fields only, and the DST rule in both directions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobwarden.api.spec import parse_spec
from jobwarden.schedule.cron import CronError, check_expression, normalize
from jobwarden.schedule.timeline import Timeline, build_timeline

CREATED = datetime(2020, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def timeline(expression: str, tz: str = "UTC", key: str = "ns/name", **more: Any) -> Timeline:
    raw = {"schedule": expression, "timeZone": tz, "jobTemplate": {}, **more}
    return build_timeline(parse_spec(raw), key=key, created=CREATED)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@Midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("  5  4 * *   1 ", "5 4 * * 1"),
    ],
)
def test_normalize(expression: str, expected: str) -> None:
    assert normalize(expression) == expected


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("* * * *", "5 fields"),
        ("0 * * * * *", "seconds and years"),
        ("0 0 * * * * 2030", "seconds and years"),
        ("@reboot", "unknown macro"),
        ("@every 1h", "every field"),
        ("TZ=Europe/Berlin 0 * * * *", "timeZone"),
        ("r * * * *", "random"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 11 *", "never fires"),
        ("0 0 31 2,4,6 *", "never fires"),
        ("60 * * * *", "invalid"),
        ("* * * * 8", "invalid"),
    ],
)
def test_check_expression_rejects(expression: str, words: str) -> None:
    with pytest.raises(CronError, match=words):
        check_expression(expression)


@pytest.mark.parametrize(
    "expression", ["0 0 29 2 *", "0 0 31 1,4 *", "0 0 30 2 1", "0 0 * MAR fri"]
)
def test_check_expression_accepts(expression: str) -> None:
    check_expression(expression)


# (expression, zone, after, the next runs as UTC) — worked out by hand from the zone rules:
# Berlin 2024: +1 -> +2 at 2024-03-31T01:00Z, +2 -> +1 at 2024-10-27T01:00Z;
# New York 2024: -5 -> -4 at 2024-03-10T07:00Z, -4 -> -5 at 2024-11-03T06:00Z.
NEXT_RUNS = [
    ("utc weekdays", "0 9 * * 1-5", "UTC", "2024-01-05T09:00",
     ["2024-01-08T09:00", "2024-01-09T09:00"]),
    ("utc strictly after", "0 9 * * *", "UTC", "2024-01-05T08:59:59",
     ["2024-01-05T09:00", "2024-01-06T09:00"]),
    ("utc exact is not after", "0 9 * * *", "UTC", "2024-01-05T09:00",
     ["2024-01-06T09:00"]),
    ("dom or dow", "0 0 13 * 5", "UTC", "2024-09-01T00:00",
     ["2024-09-06T00:00", "2024-09-13T00:00", "2024-09-20T00:00", "2024-09-27T00:00"]),
    ("leap day", "0 0 29 2 *", "UTC", "2024-03-01T00:00", ["2028-02-29T00:00"]),
    ("berlin winter offset", "0 9 * * *", "Europe/Berlin", "2024-01-01T00:00",
     ["2024-01-01T08:00"]),
    ("berlin spring skipped time", "30 2 * * *", "Europe/Berlin", "2024-03-30T00:00",
     ["2024-03-30T01:30", "2024-03-31T01:00", "2024-04-01T00:30"]),
    ("berlin spring hour collapses", "*/15 2 * * *", "Europe/Berlin", "2024-03-30T23:00",
     ["2024-03-31T01:00", "2024-04-01T00:00", "2024-04-01T00:15"]),
    ("berlin spring gap and end", "0 2,3 * * *", "Europe/Berlin", "2024-03-30T23:00",
     ["2024-03-31T01:00", "2024-04-01T00:00", "2024-04-01T01:00"]),
    ("berlin spring every minute", "* * * * *", "Europe/Berlin", "2024-03-31T00:58",
     ["2024-03-31T00:59", "2024-03-31T01:00", "2024-03-31T01:01"]),
    ("berlin fall repeated once", "30 2 * * *", "Europe/Berlin", "2024-10-26T00:00",
     ["2024-10-26T00:30", "2024-10-27T00:30", "2024-10-28T01:30"]),
    ("berlin fall half-hourly", "*/30 * * * *", "Europe/Berlin", "2024-10-26T23:50",
     ["2024-10-27T00:00", "2024-10-27T00:30", "2024-10-27T02:00", "2024-10-27T02:30"]),
    ("berlin fall from second pass", "*/30 2 * * *", "Europe/Berlin", "2024-10-27T01:10",
     ["2024-10-28T01:00", "2024-10-28T01:30"]),
    ("berlin fall after the repeat", "0 3 * * *", "Europe/Berlin", "2024-10-27T01:30",
     ["2024-10-27T02:00", "2024-10-28T02:00"]),
    ("ny spring skipped time", "30 2 * * *", "America/New_York", "2024-03-09T12:00",
     ["2024-03-10T07:00", "2024-03-11T06:30"]),
    ("ny spring hourly", "0 * * * *", "America/New_York", "2024-03-10T05:30",
     ["2024-03-10T06:00", "2024-03-10T07:00", "2024-03-10T08:00"]),
    ("ny fall repeated once", "30 1 * * *", "America/New_York", "2024-11-02T12:00",
     ["2024-11-03T05:30", "2024-11-04T06:30"]),
    ("ny fall every 20 min", "*/20 1 * * *", "America/New_York", "2024-11-03T04:50",
     ["2024-11-03T05:00", "2024-11-03T05:20", "2024-11-03T05:40", "2024-11-04T06:00"]),
    ("ny fall from second pass", "*/20 1 * * *", "America/New_York", "2024-11-03T06:10",
     ["2024-11-04T06:00"]),
    ("ny fall hourly", "0 * * * *", "America/New_York", "2024-11-03T04:30",
     ["2024-11-03T05:00", "2024-11-03T07:00", "2024-11-03T08:00"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "expression", "tz", "after", "expected"), NEXT_RUNS, ids=[c[0] for c in NEXT_RUNS]
)
def test_next_runs(case: str, expression: str, tz: str, after: str, expected: list[str]) -> None:
    runs = timeline(expression, tz).upcoming(utc(after), count=len(expected))
    assert runs == [utc(e) for e in expected]


@pytest.mark.parametrize(("case", "expression", "tz", "after", "expected"), NEXT_RUNS[:12])
def test_between_agrees_with_next_runs(
    case: str, expression: str, tz: str, after: str, expected: list[str]
) -> None:
    runs = timeline(expression, tz).between(utc(after), utc(expected[-1]), limit=100)
    assert runs == [utc(e) for e in expected]


def test_macros_are_not_hashed() -> None:
    for key in ("a/one", "b/two", "c/three"):
        assert timeline("@hourly", key=key).next_after(utc("2024-01-01T10:30")) == utc(
            "2024-01-01T11:00"
        )
        assert timeline("@daily", key=key).next_after(utc("2024-01-01T10:30")) == utc(
            "2024-01-02T00:00"
        )


def test_h_is_stable_per_key_and_spreads_keys() -> None:
    start = utc("2024-01-01T00:00")
    minutes: set[int] = set()
    for index in range(30):
        key = f"team-{index}/nightly"
        first = timeline("H 3 * * *", key=key).upcoming(start, count=3)
        again = timeline("H 3 * * *", key=key).upcoming(start, count=3)
        assert first == again
        assert all(run.hour == 3 for run in first)
        assert len({run.minute for run in first}) == 1
        assert [b - a for a, b in itertools.pairwise(first)] == [timedelta(days=1)] * 2
        minutes.add(first[0].minute)
    assert len(minutes) >= 10


def test_h_with_range_stays_in_range() -> None:
    for index in range(30):
        run = timeline("H(10-14) H(1-2) * * *", key=f"ns/{index}").next_after(utc("2024-01-01"))
        assert run is not None
        assert 10 <= run.minute <= 14 and 1 <= run.hour <= 2


def test_lookup_does_not_walk_minutes() -> None:
    # A yearly schedule looked up many times must stay fast (field-wise search).
    yearly = timeline("0 0 1 1 *", "Europe/Berlin")
    t = utc("2024-01-02T00:00")
    for _ in range(200):
        run = yearly.next_after(t)
        assert run is not None and run - t < timedelta(days=367)
        t = run
    assert t.astimezone(ZoneInfo("Europe/Berlin")).year == 2224
