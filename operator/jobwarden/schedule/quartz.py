"""Quartz's ``L``, ``W`` and ``#`` in the day fields of a cron expression, with Quartz's
meanings, as a function from (year, month) to the days that match.

Day of month: ``L`` the last day, ``L-n`` the n-th day before it (``L-1`` the one
before the last), ``LW`` the last weekday (Monday to Friday), ``nW`` the weekday
nearest day n within the month. Day of week (numbered as in the rest of the
expression: 0 or 7 Sunday, 1 Monday ... 6 Saturday, or SUN..SAT): ``d#n`` the n-th
weekday d of the month (1..5), ``dL`` the last weekday d.

Each special stands alone in its field: Quartz refuses ``L`` or ``W`` in a list or a
range, and so does this (the message names the cron field). The fields combine as the
rest of cron does: when both day fields are restricted, a day matching either runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from typing import Final

from jobwarden.schedule.ordinals import (
    last_day,
    last_weekday,
    nearest_weekday,
    nth_weekday,
)

__all__ = ["QuartzDays", "QuartzError", "has_quartz", "parse_quartz"]

_DOW_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DOW = r"([0-7]|SUN|MON|TUE|WED|THU|FRI|SAT)"
_NTH = re.compile(rf"^{_DOW}#([1-9][0-9]*)$")
_LAST_OF = re.compile(rf"^{_DOW}L$")
_BEFORE_LAST = re.compile(r"^L-([0-9]{1,2})$")
_NEAREST = re.compile(r"^([0-9]{1,2})W$")
_NAMES = re.compile("|".join(_DOW_NAMES))

DayPicker = Callable[[int, int], Collection[int]]


class QuartzError(ValueError):
    """A Quartz form that makes no sense; the message names the cron field."""


def _specials(text: str, *, dow: bool) -> str:
    upper = text.upper()
    return _NAMES.sub("", upper) if dow else upper


def has_quartz(dom: str, dow: str) -> bool:
    """Whether either day field uses ``L``, ``W`` or ``#``."""
    return any(c in _specials(dom, dow=False) for c in "LW#") or any(
        c in _specials(dow, dow=True) for c in "LW#"
    )


@dataclass(frozen=True, slots=True)
class QuartzDays:
    """The days one month runs on: the special field(s) and the plain ones, cron's way.

    ``plain_dom``: days of month of a plain day-of-month field (None: ``*`` or
    special); ``plain_dow``: cron weekdays (0 Sunday) of a plain day-of-week field.
    """

    dom: DayPicker | None
    dow: DayPicker | None
    plain_dom: frozenset[int] | None
    plain_dow: frozenset[int] | None

    def days(self, year: int, month: int) -> tuple[int, ...]:
        end = last_day(year, month)
        by_dom: set[int] = set()
        by_dow: set[int] = set()
        if self.dom is not None:
            by_dom.update(self.dom(year, month))
        elif self.plain_dom is not None:
            by_dom.update(d for d in self.plain_dom if d <= end)
        if self.dow is not None:
            by_dow.update(self.dow(year, month))
        elif self.plain_dow is not None:
            first = _cron_weekday(year, month, 1)
            by_dow.update(d for d in range(1, end + 1) if (first + d - 1) % 7 in self.plain_dow)
        dom_restricted = self.dom is not None or self.plain_dom is not None
        dow_restricted = self.dow is not None or self.plain_dow is not None
        if dom_restricted and dow_restricted:
            return tuple(sorted(by_dom | by_dow))
        return tuple(sorted(by_dom if dom_restricted else by_dow))


def _cron_weekday(year: int, month: int, day: int) -> int:
    return (date(year, month, day).weekday() + 1) % 7


def _some(day: int | None) -> tuple[int, ...]:
    """A picked day as a collection: empty when the month has none."""
    return () if day is None or day < 1 else (day,)


def parse_quartz(dom: str, dow: str) -> tuple[DayPicker | None, DayPicker | None]:
    """The day pickers of the special day fields (None for a field without one)."""
    return _day_of_month(dom.upper()), _day_of_week(dow.upper())


def _alone(text: str, field: str) -> None:
    if any(c in text for c in ",-/") and not _BEFORE_LAST.match(text):
        raise QuartzError(
            f"{field} {text!r}: L, W and # stand alone in their field "
            "(not in a list, range or step), as in Quartz"
        )


def _day_of_month(text: str) -> DayPicker | None:
    field = "day-of-month"
    if not any(c in text for c in "LW#"):
        return None
    if "#" in text:
        raise QuartzError(f"{field} {text!r}: # belongs in day-of-week (e.g. 1#3, third Monday)")
    _alone(text, field)
    if text == "L":
        return lambda y, m: (last_day(y, m),)
    if text == "LW":
        return lambda y, m: (last_weekday(y, m),)
    if match := _BEFORE_LAST.match(text):
        back = int(match.group(1))
        if back > 30:
            raise QuartzError(f"{field} {text!r}: L-n takes n from 0 to 30")
        return lambda y, m: _some(last_day(y, m) - back)
    if match := _NEAREST.match(text):
        day = int(match.group(1))
        if not 1 <= day <= 31:
            raise QuartzError(f"{field} {text!r}: nW takes a day from 1 to 31")
        return lambda y, m: _some(nearest_weekday(y, m, day=day))
    raise QuartzError(f"{field} {text!r}: Quartz forms here are L, L-n (0..30), LW and nW (1..31)")


def _day_of_week(text: str) -> DayPicker | None:
    field = "day-of-week"
    rest = _NAMES.sub("", text)
    if not any(c in rest for c in "LW#"):
        return None
    if "W" in rest:
        raise QuartzError(f"{field} {text!r}: W belongs in day-of-month (e.g. 15W)")
    if text == "L":
        raise QuartzError(
            f"{field} 'L': alone it means Saturday in Quartz; write 6 or SAT, or dL for the "
            "last weekday d of the month (5L: the last Friday)"
        )
    _alone(text, field)
    if match := _NTH.match(text):
        weekday, n = _weekday(match.group(1)), int(match.group(2))
        if not 1 <= n <= 5:
            raise QuartzError(f"{field} {text!r}: d#n takes n from 1 to 5 (a month has 5 at most)")
        return lambda y, m: _some(nth_weekday(y, m, weekday=weekday, n=n))
    if match := _LAST_OF.match(text):
        weekday = _weekday(match.group(1))
        return lambda y, m: _some(nth_weekday(y, m, weekday=weekday, n=-1))
    raise QuartzError(
        f"{field} {text!r}: Quartz forms here are d#n (1#3: the third Monday) and dL "
        "(5L: the last Friday), d 0..7 or SUN..SAT"
    )


def _weekday(text: str) -> int:
    """A cron weekday (0 or 7 Sunday, or a name) as Python's (Monday 0)."""
    cron = _DOW_NAMES.index(text) if text in _DOW_NAMES else int(text) % 7
    return (cron + 6) % 7
