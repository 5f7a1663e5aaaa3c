"""Ranked days of a month (n-th weekday, business days, Quartz L/W/#), checked against a
deliberately naive oracle that walks the month day by day and tests each rule as stated.

The oracle uses nothing but ``date`` + one day at a time, never the calendar module or
the engine's arithmetic, so a shared mistake cannot make both agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden.api.spec import SpecError
from jobwarden.schedule import load_spec
from jobwarden.schedule.calendar import parse_ranked
from jobwarden.schedule.ordinals import (
    last_weekday,
    nearest_weekday,
    nth_business_day,
    nth_weekday,
)
from jobwarden.schedule.timeline import build_timeline

DAY = timedelta(days=1)
CREATED = datetime(2000, 1, 1, tzinfo=UTC)
MONTHS_400_YEARS = [(y, m) for y in range(2000, 2400) for m in range(1, 13)]
NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def month_days(year: int, month: int) -> list[date]:
    """Every date of the month, by walking from the 1st."""
    day, days = date(year, month, 1), []
    while day.month == month:
        days.append(day)
        day += DAY
    return days


def oracle_nth_weekday(year: int, month: int, weekday: int, n: int) -> int | None:
    found = [d.day for d in month_days(year, month) if d.weekday() == weekday]
    if n == -1:
        return found[-1]
    return found[n - 1] if len(found) >= n else None


def oracle_business(year: int, month: int, holidays: set[date]) -> list[int]:
    return [d.day for d in month_days(year, month) if d.weekday() < 5 and d not in holidays]


def oracle_nearest(year: int, month: int, day: int) -> int | None:
    """The Monday-to-Friday of the month at the least distance from ``day``."""
    days = month_days(year, month)
    if day > len(days):
        return None
    weekdays = [d.day for d in days if d.weekday() < 5]
    return min(weekdays, key=lambda d: abs(d - day))


# --- the pure functions, over 400 years of months ----------------------------------------


def test_nth_and_last_weekday_over_400_years() -> None:
    for year, month in MONTHS_400_YEARS:
        for weekday in range(7):
            for n in (1, 2, 3, 4, 5, -1):
                expected = oracle_nth_weekday(year, month, weekday, n)
                assert nth_weekday(year, month, weekday=weekday, n=n) == expected, (
                    year,
                    month,
                    weekday,
                    n,
                )


def test_quartz_nearest_and_last_weekday_over_400_years() -> None:
    for year, month in MONTHS_400_YEARS:
        assert last_weekday(year, month) == oracle_business(year, month, set())[-1]
        for day in range(1, 32):
            assert nearest_weekday(year, month, day=day) == oracle_nearest(year, month, day), (
                year,
                month,
                day,
            )


@settings(max_examples=300, deadline=None)
@given(
    year=st.integers(2000, 2399),
    month=st.integers(1, 12),
    holiday_days=st.sets(st.integers(1, 31), max_size=20),
    n=st.integers(-23, 23).filter(bool),
)
def test_nth_business_day_with_random_holidays(
    year: int, month: int, holiday_days: set[int], n: int
) -> None:
    holidays = {d for d in month_days(year, month) if d.day in holiday_days}
    business = oracle_business(year, month, holidays)
    expected = business[n - 1 if n > 0 else n] if abs(n) <= len(business) else None
    assert nth_business_day(year, month, n=n, holidays=frozenset(holidays)) == expected


# --- the engine: every Month with ranks, and Quartz cron, against a day walk ---------------


def walk_runs(start: date, rule: Any, *, count: int, hhmm: tuple[int, int]) -> list[datetime]:
    """The next ``count`` runs after ``start`` 00:00 (``hhmm`` is later), testing every day."""
    runs: list[datetime] = []
    day = start
    while len(runs) < count and day.year < 2500:
        if rule(day):
            runs.append(datetime(day.year, day.month, day.day, *hhmm, tzinfo=UTC))
        day += DAY
    return runs


def engine_runs(spec: dict[str, Any], start: date, *, count: int) -> list[datetime]:
    parsed = load_spec({"jobTemplate": {}, **spec})
    timeline = build_timeline(parsed, key="ns/a", created=CREATED)
    return timeline.upcoming(datetime(start.year, start.month, start.day, tzinfo=UTC), count=count)


RANKS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "last": -1}


@settings(max_examples=150, deadline=None)
@given(
    start=st.dates(date(2000, 1, 1), date(2398, 12, 31)),
    ranked=st.sets(st.tuples(st.sampled_from(list(RANKS)), st.sampled_from(NAMES)), max_size=3),
    business=st.sets(st.integers(-23, 23).filter(bool), max_size=3),
    holiday_offsets=st.sets(st.integers(0, 400), max_size=40),
)
def test_every_month_ranked_days_match_a_day_walk(
    start: date, ranked: set[tuple[str, str]], business: set[int], holiday_offsets: set[int]
) -> None:
    if not ranked and not business:
        ranked = {("1st", "Mon")}
    holidays = {start + timedelta(days=k) for k in holiday_offsets}

    def rule(day: date) -> bool:
        if day in holidays:
            return False  # exclude: no run that day
        for rank, name in ranked:
            n = RANKS[rank]
            if oracle_nth_weekday(day.year, day.month, NAMES.index(name), n) == day.day:
                return True
        days = oracle_business(day.year, day.month, holidays)
        return any(abs(n) <= len(days) and days[n - 1 if n > 0 else n] == day.day for n in business)

    every: dict[str, Any] = {"period": "Month", "times": ["09:30"]}
    if ranked:
        every["weekdaysOfMonth"] = [f"{r} {d}" for r, d in sorted(ranked)]
    if business:
        every["businessDays"] = sorted(business)
    spec = {"every": every, "exclude": [d.isoformat() for d in sorted(holidays)]}
    assert engine_runs(spec, start, count=4) == walk_runs(start, rule, count=4, hhmm=(9, 30))


def quartz_rule(form: str) -> Any:
    """The rule of one Quartz day field, stated directly over a walked month."""
    kind, value = form.split(":")
    n = int(value)
    if kind == "L-":
        return lambda d: d.day == len(month_days(d.year, d.month)) - n
    if kind == "LW":
        return lambda d: d.day == oracle_business(d.year, d.month, set())[-1]
    if kind == "W":
        return lambda d: d.day == oracle_nearest(d.year, d.month, n)
    weekday, rank = divmod(n, 10)  # "#": weekday*10 + rank; "dL": rank 0
    py = (weekday + 6) % 7
    rank = rank or -1
    return lambda d: d.day == oracle_nth_weekday(d.year, d.month, py, rank)


def quartz_text(form: str) -> tuple[str, str]:
    """The (day-of-month, day-of-week) cron fields of ``form``."""
    kind, value = form.split(":")
    n = int(value)
    if kind == "L-":
        return ("L" if n == 0 else f"L-{n}", "*")
    if kind == "LW":
        return ("LW", "*")
    if kind == "W":
        return (f"{n}W", "*")
    weekday, rank = divmod(n, 10)
    return ("*", f"{weekday}#{rank}" if rank else f"{weekday}L")


QUARTZ_FORMS = st.one_of(
    st.integers(0, 30).map(lambda n: f"L-:{n}"),
    st.just("LW:0"),
    st.integers(1, 31).map(lambda n: f"W:{n}"),
    st.tuples(st.integers(0, 6), st.integers(0, 5)).map(lambda t: f"#:{t[0] * 10 + t[1]}"),
)


@settings(max_examples=200, deadline=None)
@given(start=st.dates(date(2000, 1, 1), date(2398, 12, 31)), form=QUARTZ_FORMS)
def test_quartz_cron_matches_a_day_walk(start: date, form: str) -> None:
    dom, dow = quartz_text(form)
    spec = {"schedule": f"15 6 {dom} * {dow}"}
    expected = walk_runs(start, quartz_rule(form), count=3, hhmm=(6, 15))
    try:
        got = engine_runs(spec, start, count=3)
    except SpecError:
        # Only a form no month can hold (L-30 needs a 31-day month: it fires) may be refused.
        assert expected == [], spec
        return
    assert got == expected, spec


# --- tables: known days and refusals ------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        (
            {"every": {"period": "Month", "weekdaysOfMonth": ["3rd Mon"]}},
            "2024-01-01",
            ["2024-01-15", "2024-02-19", "2024-03-18"],
        ),
        (
            {"every": {"period": "Month", "weekdaysOfMonth": ["last Fri"]}},
            "2024-01-01",
            ["2024-01-26", "2024-02-23", "2024-03-29"],
        ),
        (
            {"every": {"period": "Month", "weekdaysOfMonth": ["5th Thu"]}},
            "2024-01-01",
            ["2024-02-29", "2024-05-30", "2024-08-29"],
        ),
        (
            {"every": {"period": "Month", "businessDays": [1]}, "exclude": ["2024-01-01"]},
            "2023-12-31",
            ["2024-01-02", "2024-02-01", "2024-03-01"],
        ),
        (
            {"every": {"period": "Month", "businessDays": [-1]}},
            "2024-03-01",
            ["2024-03-29", "2024-04-30", "2024-05-31"],
        ),
        (
            {"every": {"period": "Month", "monthDays": [15], "weekdaysOfMonth": ["3rd Mon"]}},
            "2024-01-01",
            ["2024-01-15", "2024-02-15", "2024-02-19"],
        ),
        ({"schedule": "0 0 15W * *"}, "2024-06-01", ["2024-06-14", "2024-07-15", "2024-08-15"]),
        ({"schedule": "0 0 1W * *"}, "2024-05-31", ["2024-06-03", "2024-07-01", "2024-08-01"]),
        ({"schedule": "0 0 LW * *"}, "2024-03-01", ["2024-03-29", "2024-04-30", "2024-05-31"]),
        ({"schedule": "0 0 * * 5L"}, "2024-01-01", ["2024-01-26", "2024-02-23", "2024-03-29"]),
        ({"schedule": "0 0 * * MON#2"}, "2024-01-01", ["2024-01-08", "2024-02-12", "2024-03-11"]),
        ({"schedule": "0 0 L 2 *"}, "2024-01-01", ["2024-02-29", "2025-02-28", "2026-02-28"]),
        ({"schedule": "0 0 LW * ?"}, "2024-03-01", ["2024-03-29", "2024-04-30", "2024-05-31"]),
        ({"schedule": "0 0 ? * 5L"}, "2024-01-01", ["2024-01-26", "2024-02-23", "2024-03-29"]),
        ({"schedule": "0 0 13 * 5L"}, "2024-01-01", ["2024-01-13", "2024-01-26", "2024-02-13"]),
    ],
)
def test_known_days(spec: dict[str, Any], after: str, expected: list[str]) -> None:
    runs = engine_runs(spec, date.fromisoformat(after), count=3)
    assert [r.date().isoformat() for r in runs] == expected


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {"every": {"period": "Month", "weekdaysOfMonth": ["6th Mon"]}},
            "spec.every.weekdaysOfMonth",
            "ranked weekday",
        ),
        ({"every": {"period": "Month", "businessDays": [0]}}, "spec.every.businessDays", "0"),
        ({"every": {"period": "Month", "businessDays": [24]}}, "spec.every.businessDays[0]", "23"),
        (
            {"every": {"period": "Week", "weekdays": ["Mon"], "businessDays": [1]}},
            "spec.every.businessDays",
            "only allowed when period is Month",
        ),
        ({"every": {"period": "Month"}}, "spec.every.monthDays", "required"),
        ({"schedule": "0 9 L,15 * *"}, "spec.schedule", "day-of-month"),
        ({"schedule": "0 9 * * L"}, "spec.schedule", "day-of-week"),
        ({"schedule": "0 9 * * 1#6"}, "spec.schedule", "day-of-week"),
        ({"schedule": "0 9 * * 5W"}, "spec.schedule", "W belongs in day-of-month"),
        ({"schedule": "0 9 3#1 * *"}, "spec.schedule", "# belongs in day-of-week"),
        ({"schedule": "0 9 L-31 * *"}, "spec.schedule", "0 to 30"),
        ({"schedule": "0 9 30W 2 *"}, "spec.schedule", "never fires"),
        ({"schedule": "0 9 * * L5"}, "spec.schedule", "5L"),
    ],
)
def test_nonsense_is_refused_naming_the_field(spec: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec({"jobTemplate": {}, **spec})
    assert caught.value.field == field
    assert words in caught.value.message


def test_parse_keeps_ranked_weekdays_in_order_given() -> None:
    assert parse_ranked(["last Sun", "1st Mon", "3rd Wed"]) == [(-1, 6), (1, 0), (3, 2)]
