"""Days of one month picked by rank: the n-th weekday, the n-th business day, Quartz's
nearest weekday. Pure functions of (year, month), each answering a day number or None
when the month has no such day; the recurrences and the Quartz cron fields use them.

Weekdays are Python's (Monday 0 .. Sunday 6). A business day is a Monday to Friday
that is not in ``holidays``.
"""

from __future__ import annotations

import calendar
from collections.abc import Container
from datetime import date

__all__ = [
    "business_days",
    "last_day",
    "last_weekday",
    "nearest_weekday",
    "nth_business_day",
    "nth_weekday",
]

_FRIDAY = 4


def last_day(year: int, month: int) -> int:
    """The number of days in the month."""
    return calendar.monthrange(year, month)[1]


def nth_weekday(year: int, month: int, *, weekday: int, n: int) -> int | None:
    """The ``n``-th ``weekday`` of the month (``n`` 1..5), or the last one (``n`` -1)."""
    first = date(year, month, 1).weekday()
    if n == -1:
        end = last_day(year, month)
        return end - (date(year, month, end).weekday() - weekday) % 7
    day = 1 + (weekday - first) % 7 + 7 * (n - 1)
    return day if n >= 1 and day <= last_day(year, month) else None


def business_days(year: int, month: int, *, holidays: Container[date]) -> list[int]:
    """The month's business days, in order."""
    return [
        day
        for day in range(1, last_day(year, month) + 1)
        if date(year, month, day).weekday() <= _FRIDAY and date(year, month, day) not in holidays
    ]


def nth_business_day(year: int, month: int, *, n: int, holidays: Container[date]) -> int | None:
    """The ``n``-th business day (``n`` > 0), or the ``-n``-th from the end (``n`` < 0)."""
    days = business_days(year, month, holidays=holidays)
    index = n - 1 if n > 0 else n
    return days[index] if -len(days) <= index < len(days) else None


def nearest_weekday(year: int, month: int, *, day: int) -> int | None:
    """Quartz's ``dayW``: the Monday to Friday nearest ``day``, never in another month.

    A Saturday moves to the Friday before, unless that is in the month before
    (the 1st), then to the Monday after; a Sunday moves to the Monday after,
    unless that is in the month after, then to the Friday before. A month
    without ``day`` has none.
    """
    end = last_day(year, month)
    if day > end:
        return None
    weekday = date(year, month, day).weekday()
    if weekday == 5:
        return day - 1 if day > 1 else day + 2
    if weekday == 6:
        return day + 1 if day < end else day - 2
    return day


def last_weekday(year: int, month: int) -> int:
    """Quartz's ``LW``: the last Monday to Friday of the month."""
    end = last_day(year, month)
    return end - max(0, date(year, month, end).weekday() - _FRIDAY)
