"""The ``every`` recurrences as sources of naive wall-clock times.

Each source computes the qualifying day directly from the anchor (modular
arithmetic on days, ISO weeks or months) instead of stepping through time,
so a lookup costs the same whether the next run is tomorrow or in a year.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from datetime import date, datetime, time, timedelta
from typing import Final

from jobwarden.schedule.ordinals import last_day, nth_business_day, nth_weekday

__all__ = [
    "DailySource",
    "MonthRule",
    "MonthlySource",
    "WeeklySource",
    "parse_ranked",
    "parse_times",
]

# How many qualifying months to look through for one that has a listed day.
# Month lengths repeat within 12 qualifying months and leap Februaries within
# a few more, so a source still empty after this many never fires.
_MONTH_SCAN: Final = 120


_RANKS: Final = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "last": -1}
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def parse_ranked(texts: Sequence[str]) -> list[tuple[int, int]]:
    """``weekdaysOfMonth`` ("3rd Mon", "last Fri", checked by the spec) as (n, weekday)
    pairs: n 1..5 or -1 for the last, Monday 0."""
    return [
        (_RANKS[rank], _WEEKDAYS.index(day)) for rank, day in (text.split(" ") for text in texts)
    ]


def parse_times(texts: Sequence[str]) -> tuple[time, ...]:
    """``HH:MM`` strings as sorted, distinct times of day."""
    return tuple(sorted({time(int(t[:2]), int(t[3:5])) for t in texts}))


class DailySource:
    """Every ``interval``-th calendar day from the anchor date, at ``times``."""

    def __init__(self, *, anchor: date, interval: int, times: tuple[time, ...]) -> None:
        self._anchor = anchor
        self._interval = interval
        self._times = times

    def next_wall(self, after: datetime) -> datetime | None:
        day, clock = after.date(), after.time()
        offset = (day - self._anchor).days % self._interval
        if offset == 0:
            for at in self._times:
                if at > clock:
                    return datetime.combine(day, at)
            offset = self._interval
        else:
            offset = self._interval - offset
        return _at(day, offset, self._times[0])

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        day, clock = at_or_before.date(), at_or_before.time()
        offset = (day - self._anchor).days % self._interval
        if offset == 0:
            for at in reversed(self._times):
                if at <= clock:
                    return datetime.combine(day, at)
            offset = self._interval
        return _at(day, -offset, self._times[-1])


class WeeklySource:
    """Listed weekdays of every ``interval``-th ISO week from the anchor's week."""

    def __init__(
        self, *, anchor: date, interval: int, weekdays: Sequence[int], times: tuple[time, ...]
    ) -> None:
        self._monday = anchor - timedelta(days=anchor.weekday())
        self._interval = interval
        self._weekdays = tuple(sorted(set(weekdays)))
        self._times = times

    def _week_offset(self, monday: date) -> int:
        return ((monday - self._monday).days // 7) % self._interval

    def next_wall(self, after: datetime) -> datetime | None:
        day, clock = after.date(), after.time()
        monday = day - timedelta(days=day.weekday())
        offset = self._week_offset(monday)
        if offset == 0:
            for weekday in self._weekdays:
                if weekday == day.weekday():
                    later = [at for at in self._times if at > clock]
                    if later:
                        return datetime.combine(day, later[0])
                elif weekday > day.weekday():
                    return _at(monday, weekday, self._times[0])
            offset = self._interval
        else:
            offset = self._interval - offset
        return _at(monday, 7 * offset + self._weekdays[0], self._times[0])

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        day, clock = at_or_before.date(), at_or_before.time()
        monday = day - timedelta(days=day.weekday())
        offset = self._week_offset(monday)
        if offset == 0:
            for weekday in reversed(self._weekdays):
                if weekday == day.weekday():
                    earlier = [at for at in self._times if at <= clock]
                    if earlier:
                        return datetime.combine(day, earlier[-1])
                elif weekday < day.weekday():
                    return _at(monday, weekday, self._times[-1])
            offset = self._interval
        return _at(monday, -7 * offset + self._weekdays[-1], self._times[-1])


class MonthRule:
    """The days of one month an ``every`` Month recurrence runs on: listed days
    (``-1`` the last), ranked weekdays ("3rd Mon", "last Fri") and ranked
    business days (1 the first, -1 the last), where a business day is a Monday
    to Friday not in ``holidays``. A day a month lacks is skipped, not moved.
    """

    def __init__(
        self,
        *,
        month_days: Sequence[int] = (),
        weekdays: Sequence[tuple[int, int]] = (),
        business_days: Sequence[int] = (),
        holidays: Container[date] = frozenset(),
    ) -> None:
        self._month_days = frozenset(month_days)
        self._weekdays = tuple(weekdays)  # (n, Python weekday); n -1 is the last
        self._business_days = tuple(business_days)
        self._holidays = holidays

    def __call__(self, year: int, month: int) -> tuple[int, ...]:
        last = last_day(year, month)
        days = {d for d in self._month_days if 1 <= d <= last}
        if -1 in self._month_days:
            days.add(last)
        for n, weekday in self._weekdays:
            day = nth_weekday(year, month, weekday=weekday, n=n)
            if day is not None:
                days.add(day)
        for n in self._business_days:
            day = nth_business_day(year, month, n=n, holidays=self._holidays)
            if day is not None:
                days.add(day)
        return tuple(sorted(days))


class MonthlySource:
    """The days ``days(year, month)`` picks, of every ``interval``-th month from the
    anchor's month, at ``times``."""

    def __init__(
        self,
        *,
        anchor: date,
        interval: int,
        days: Callable[[int, int], Sequence[int]],
        times: tuple[time, ...],
    ) -> None:
        self._anchor = anchor.year * 12 + anchor.month - 1
        self._interval = interval
        self._pick = days
        self._times = times

    def _days(self, index: int) -> Sequence[int]:
        year, month = divmod(index, 12)
        return self._pick(year, month + 1)

    def next_wall(self, after: datetime) -> datetime | None:
        day, clock = after.date(), after.time()
        index = day.year * 12 + day.month - 1
        offset = (index - self._anchor) % self._interval
        if offset == 0:
            for candidate in self._days(index):
                if candidate == day.day:
                    later = [at for at in self._times if at > clock]
                    if later:
                        return datetime.combine(day, later[0])
                elif candidate > day.day:
                    return datetime.combine(day.replace(day=candidate), self._times[0])
            index += self._interval
        else:
            index += self._interval - offset
        for _ in range(_MONTH_SCAN):
            if not 1 <= index // 12 <= 9999:
                return None
            days = self._days(index)
            if days:
                year, month = divmod(index, 12)
                return datetime.combine(date(year, month + 1, days[0]), self._times[0])
            index += self._interval
        return None

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        day, clock = at_or_before.date(), at_or_before.time()
        index = day.year * 12 + day.month - 1
        offset = (index - self._anchor) % self._interval
        if offset == 0:
            for candidate in reversed(self._days(index)):
                if candidate == day.day:
                    earlier = [at for at in self._times if at <= clock]
                    if earlier:
                        return datetime.combine(day, earlier[-1])
                elif candidate < day.day:
                    return datetime.combine(day.replace(day=candidate), self._times[-1])
            offset = self._interval
        index -= offset
        for _ in range(_MONTH_SCAN):
            if not 1 <= index // 12 <= 9999:
                return None
            days = self._days(index)
            if days:
                year, month = divmod(index, 12)
                return datetime.combine(date(year, month + 1, days[-1]), self._times[-1])
            index -= self._interval
        return None


def _at(day: date, days: int, at: time) -> datetime | None:
    """``day + days`` at ``at``, or None past the ends of the calendar."""
    try:
        return datetime.combine(day + timedelta(days=days), at)
    except OverflowError:
        return None
