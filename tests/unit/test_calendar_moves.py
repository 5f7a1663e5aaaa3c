"""Calendar moves and business days, checked against a deliberately naive oracle.

The oracle walks every day of a window: for each nominal run it asks "is this day
listed?", then steps one day at a time to the first Monday-to-Friday that no
calendar lists and ``exclude`` does not name. It never uses the engine's search
(the moved source's bounds and stopping rules), so a shared mistake cannot make
both agree. Random calendars come from hypothesis; the calendars are real
JobCalendars expanded by the operator's own code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden.api.calendar import parse_calendar
from jobwarden.api.spec import SpecError
from jobwarden.schedule import load_spec
from jobwarden.schedule.holidays import CalendarDays, expand
from jobwarden.schedule.moves import MAX_MOVE_DAYS
from jobwarden.schedule.timeline import Timeline, build_timeline
from jobwarden.schedule.upcoming import moved_run, upcoming_runs

DAY = timedelta(days=1)
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW_START = date(2027, 1, 1)
WINDOW_DAYS = 120
NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def calendar(name: str, **spec: Any) -> CalendarDays:
    return expand(name=name, spec=parse_calendar(spec), version="1")


def timeline(cals: dict[str, CalendarDays], **spec: Any) -> Timeline:
    parsed = load_spec({"jobTemplate": {}, **spec})
    return build_timeline(parsed, key="ns/s", created=CREATED, calendars=dict(cals))


# --- the oracle -------------------------------------------------------------------------


def oracle_runs(
    *,
    weekdays: set[int],
    times: list[time],
    listed: set[date],
    exclude: set[date],
    policy: str,
    first: date,
    days: int,
) -> list[datetime]:
    """Every run of a weekly schedule whose moved day lies in [first, first + days)."""
    step = DAY if policy == "NextBusinessDay" else -DAY
    found: set[datetime] = set()
    day = first - timedelta(days=MAX_MOVE_DAYS + 1)
    last = first + timedelta(days=days + MAX_MOVE_DAYS + 1)
    while day <= last:
        if day.weekday() in weekdays:
            target: date | None = day
            if day in listed:
                if policy == "Skip":
                    target = None
                else:
                    target = None
                    probe = day
                    for _ in range(MAX_MOVE_DAYS):
                        probe += step
                        if probe.weekday() < 5 and probe not in listed and probe not in exclude:
                            target = probe
                            break
            if (
                target is not None
                and target not in exclude
                and first <= target < first + timedelta(days=days)
            ):
                found.update(datetime.combine(target, t, tzinfo=UTC) for t in times)
        day += DAY
    return sorted(found)


def engine_runs(tl: Timeline, *, first: date, days: int) -> list[datetime]:
    start = datetime.combine(first, time.min, tzinfo=UTC) - timedelta(microseconds=1)
    end = datetime.combine(first + timedelta(days=days), time.min, tzinfo=UTC)
    runs: list[datetime] = []
    for run in tl.iter_after(start):
        if run >= end:
            break
        runs.append(run)
    return runs


dates_2027 = st.dates(min_value=date(2026, 11, 1), max_value=date(2027, 6, 30))


@settings(max_examples=80, deadline=None)
@given(
    weekdays=st.sets(st.integers(0, 6), min_size=1),
    times=st.sets(st.sampled_from([time(0, 0), time(9, 30), time(23, 59)]), min_size=1),
    first=st.sets(dates_2027, max_size=40),
    second=st.sets(dates_2027, max_size=20),
    exclude=st.sets(dates_2027, max_size=5),
    policy=st.sampled_from(["Skip", "NextBusinessDay", "PreviousBusinessDay"]),
)
def test_moves_match_the_day_walking_oracle(
    weekdays: set[int],
    times: set[time],
    first: set[date],
    second: set[date],
    exclude: set[date],
    policy: str,
) -> None:
    cals = {
        "a": calendar("a", dates=sorted(d.isoformat() for d in first)),
        "b": calendar("b", dates=sorted(d.isoformat() for d in second)),
    }
    tl = timeline(
        cals,
        every={
            "period": "Week",
            "weekdays": [NAMES[w] for w in sorted(weekdays)],
            "times": [f"{t:%H:%M}" for t in sorted(times)],
        },
        calendars=["a", "b"],
        calendarPolicy=policy,
        exclude=sorted(d.isoformat() for d in exclude),
    )
    expected = oracle_runs(
        weekdays=weekdays,
        times=sorted(times),
        listed=first | second,
        exclude=exclude,
        policy=policy,
        first=WINDOW_START,
        days=WINDOW_DAYS,
    )
    got = engine_runs(tl, first=WINDOW_START, days=WINDOW_DAYS)
    assert got == expected
    # Backwards, the same runs (the catch-up search walks this way).
    if got:
        start = datetime.combine(WINDOW_START, time.min, tzinfo=UTC) - timedelta(microseconds=1)
        assert tl.between(start, got[-1], limit=10_000) == got


@settings(max_examples=50, deadline=None)
@given(
    listed=st.sets(st.dates(min_value=date(2027, 1, 1), max_value=date(2027, 12, 31)), max_size=80),
    ranks=st.sets(st.integers(-5, 5).filter(lambda n: n != 0), min_size=1, max_size=3),
)
def test_business_days_skip_every_calendar_day(listed: set[date], ranks: set[int]) -> None:
    """every.businessDays counts Mondays to Fridays that no calendar lists (any policy)."""
    cals = {"h": calendar("h", dates=sorted(d.isoformat() for d in listed))}
    tl = timeline(
        cals,
        every={"period": "Month", "businessDays": sorted(ranks), "times": ["08:00"]},
        calendars=["h"],
        calendarPolicy="NextBusinessDay",
    )
    expected: list[datetime] = []
    for month in range(1, 13):
        day, business = date(2027, month, 1), []
        while day.month == month:
            if day.weekday() < 5 and day not in listed:
                business.append(day)
            day += DAY
        picked = {
            business[n - 1 if n > 0 else n]
            for n in ranks
            if -len(business) <= (n - 1 if n > 0 else n) < len(business)
        }
        expected += [datetime.combine(d, time(8), tzinfo=UTC) for d in sorted(picked)]
    assert engine_runs(tl, first=date(2027, 1, 1), days=365) == expected


# --- tables -------------------------------------------------------------------------------


CHRISTMAS = {"xmas": calendar("xmas", yearly=["12-24", "12-25", "12-26"], dates=["2027-12-31"])}
FRIDAYS = {"every": {"period": "Week", "weekdays": ["Fri"], "times": ["09:00"]}}


@pytest.mark.parametrize(
    ("policy", "expected", "note"),
    [
        ("Skip", ["2027-12-17", "2028-01-07"], None),
        ("NextBusinessDay", ["2027-12-17", "2027-12-27", "2028-01-03"], "2027-12-24"),
        ("PreviousBusinessDay", ["2027-12-17", "2027-12-23", "2027-12-30"], "2027-12-24"),
    ],
)
def test_a_friday_run_on_christmas_eve(policy: str, expected: list[str], note: str | None) -> None:
    tl = timeline(CHRISTMAS, **FRIDAYS, calendars=["xmas"], calendarPolicy=policy)
    runs = upcoming_runs(tl, after=datetime(2027, 12, 16, tzinfo=UTC), count=len(expected))
    assert [r.time.date().isoformat() for r in runs] == expected
    moved = runs[1]
    if note is None:
        assert moved.note is None and moved_run(tl, moved.time) is None
    else:
        assert moved.note == f"moved from {note}: xmas"
        found = moved_run(tl, moved.time)
        assert found is not None and found.nominal == datetime(2027, 12, 24, 9, tzinfo=UTC)


def test_runs_that_land_on_one_time_run_once() -> None:
    """Christmas Eve (Fri) and Christmas (Sat) both move to Monday, where a run is anyway."""
    tl = timeline(
        CHRISTMAS,
        every={"period": "Day", "times": ["09:00"]},
        calendars=["xmas"],
        calendarPolicy="NextBusinessDay",
    )
    runs = tl.upcoming(datetime(2027, 12, 23, 12, tzinfo=UTC), count=3)
    assert [r.date().isoformat() for r in runs] == ["2027-12-27", "2027-12-28", "2027-12-29"]
    assert tl.moved(runs[0]) is None  # Monday's own run: not a moved one


def test_a_missing_calendar_is_a_spec_error_naming_the_entry() -> None:
    with pytest.raises(SpecError) as caught:
        timeline(CHRISTMAS, **FRIDAYS, calendars=["xmas", "shutdown"])
    assert caught.value.field == "spec.calendars[1]"
    assert "'shutdown' does not exist" in caught.value.message


def test_a_calendar_not_ready_is_a_spec_error_saying_why() -> None:
    cals: dict[str, Any] = {"de": "spec.holidays.country: 'XX' is not a country"}
    with pytest.raises(SpecError) as caught:
        timeline(cals, **FRIDAYS, calendars=["de"])
    assert caught.value.field == "spec.calendars[0]" and "not Ready" in caught.value.message


def test_a_calendar_closing_every_day_drops_the_run_rather_than_searching_forever() -> None:
    every_day = calendar(
        "all", yearly=[f"{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    )
    tl = timeline(
        {"all": every_day}, **FRIDAYS, calendars=["all"], calendarPolicy="NextBusinessDay"
    )
    # Days 29..31 are open: runs move there or are dropped, and the search ends.
    runs = tl.upcoming(datetime(2027, 1, 1, tzinfo=UTC), count=3)
    assert all(r.day >= 29 for r in runs)


def test_a_one_time_run_on_a_listed_day_is_skipped() -> None:
    tl = timeline(
        CHRISTMAS,
        runAt="2027-12-25T10:00:00Z",
        calendars=["xmas"],
        calendarPolicy="NextBusinessDay",
    )
    assert tl.next_after(datetime(2027, 1, 1, tzinfo=UTC)) is None
