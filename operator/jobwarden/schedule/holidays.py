"""A JobCalendar's dates, year by year: the pure expansion of its spec.

Explicit dates, yearly dates and a country's public holidays (computed by the
``holidays`` package for a year when a schedule first asks about it), minus the
removed dates. A year is expanded once and kept, up to ``KEPT_YEARS`` years per
calendar (the oldest asked is dropped first), so a schedule that looks far ahead
costs that calendar a bounded memory and no other calendar anything.

A country or subdivision the package does not know is found when the calendar
is read (:func:`expand`), not when a schedule first asks: the calendar is then
not Ready, naming the field, and the schedules that use it are not Valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import holidays as holiday_tables

from jobwarden.api.calendar import CalendarError, JobCalendarSpec, MonthDay, month_day
from jobwarden.api.values import MAX_YEAR, MIN_YEAR

__all__ = ["KEPT_YEARS", "CalendarDays", "expand"]

# Years of dates one calendar keeps expanded (a few schedules looking a few years ahead).
KEPT_YEARS: Final = 16
YEARLY: Final = "yearly"
LISTED: Final = "listed"
_LEAP_DAY: Final = (2, 29)
_COMMON_YEAR_DAYS: Final = 365


@dataclass(slots=True, kw_only=True, eq=False)
class CalendarDays:
    """The dates one calendar lists, answered year by year (``day in calendar``).

    ``names`` of a year: each listed date with what put it there (a holiday's
    name, ``listed`` or ``yearly``), the form the calendar's status shows.
    """

    name: str
    spec: JobCalendarSpec
    version: str = ""
    _explicit: dict[int, frozenset[date]] = field(default_factory=dict)
    _removed: frozenset[date] = frozenset()
    _removed_yearly: frozenset[tuple[int, int]] = frozenset()
    _yearly: tuple[tuple[int, int], ...] = ()
    _years: dict[int, dict[date, str]] = field(default_factory=dict)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and day in self.year(day.year)

    def year(self, year: int) -> dict[date, str]:
        """The year's dates, each with its name (empty outside the years a spec may name)."""
        kept = self._years.get(year)
        if kept is not None:
            return kept
        named = self._expand(year) if MIN_YEAR <= year <= MAX_YEAR else {}
        if len(self._years) >= KEPT_YEARS:
            del self._years[next(iter(self._years))]
        self._years[year] = named
        return named

    def _expand(self, year: int) -> dict[date, str]:
        named: dict[date, str] = {}
        if self.spec.holidays is not None:
            table = _table(self.spec, years=(year,))
            named.update((d, str(n)) for d, n in sorted(table.items()) if d.year == year)
        for month, day in self._yearly:
            if _exists(year, month, day):
                named.setdefault(date(year, month, day), YEARLY)
        for listed in self._explicit.get(year, frozenset()):
            named.setdefault(listed, LISTED)
        return {
            d: n
            for d, n in sorted(named.items())
            if d not in self._removed and (d.month, d.day) not in self._removed_yearly
        }

    def dates_in(self, years: Iterable[int]) -> list[tuple[date, str]]:
        """The dates of ``years``, in order, with their names (for the status)."""
        return [item for y in years for item in self.year(y).items()]


def expand(*, name: str, spec: JobCalendarSpec, version: str = "") -> CalendarDays:
    """The calendar ``name`` of a parsed spec; CalendarError naming the field it cannot use."""
    if spec.holidays is not None:
        _table(spec, years=(MIN_YEAR,))  # an unknown country or subdivision fails here
    explicit: dict[int, set[date]] = {}
    for text in spec.dates:
        day = date.fromisoformat(text)
        explicit.setdefault(day.year, set()).add(day)
    removed = frozenset(date.fromisoformat(t) for t in spec.remove if len(t) == 10)
    removed_yearly = frozenset(
        month_day(t, field=f"spec.remove[{i}]") for i, t in enumerate(spec.remove) if len(t) == 5
    )
    yearly = tuple(
        dict.fromkeys(month_day(t, field=f"spec.yearly[{i}]") for i, t in enumerate(spec.yearly))
    )
    _check_some_day_free(yearly, removed_yearly)
    return CalendarDays(
        name=name,
        spec=spec,
        version=version,
        _explicit={y: frozenset(days) for y, days in explicit.items()},
        _removed=removed,
        _removed_yearly=removed_yearly,
        _yearly=yearly,
    )


def _check_some_day_free(yearly: tuple[MonthDay, ...], removed_yearly: frozenset[MonthDay]) -> None:
    """CalendarError unless some day of a common year is left free every year.

    Yearly dates that cover every day list every day of every year: a schedule
    that skips them never runs, and each of its searches would walk its whole
    budget through listed days. Such a calendar is an admin's mistake (a
    suspended schedule says "never" plainly), so it is not Ready, naming the field.
    """
    if len(set(yearly) - removed_yearly - {_LEAP_DAY}) >= _COMMON_YEAR_DAYS:
        raise CalendarError(
            "spec.yearly",
            "lists every day of the year, so a schedule using this calendar could never run;"
            " leave some day out (or suspend the schedules instead)",
        )


def _table(spec: JobCalendarSpec, *, years: tuple[int, ...]) -> dict[date, str]:
    assert spec.holidays is not None
    country, subdivision = spec.holidays.country, spec.holidays.subdivision
    try:
        return dict(holiday_tables.country_holidays(country, subdiv=subdivision, years=years))
    except NotImplementedError as exc:
        if subdivision is not None and _known_country(country):
            raise CalendarError(
                "spec.holidays.subdivision",
                f"{subdivision!r} is not a subdivision of {country} the holidays data knows",
            ) from exc
        raise CalendarError(
            "spec.holidays.country",
            f"{country!r} is not a country the holidays data knows (an ISO 3166 code: DE, US)",
        ) from exc
    except (KeyError, ValueError) as exc:
        raise CalendarError("spec.holidays", f"{country}/{subdivision}: {exc}") from exc


def _known_country(country: str) -> bool:
    return country in holiday_tables.list_supported_countries()


def _exists(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True
