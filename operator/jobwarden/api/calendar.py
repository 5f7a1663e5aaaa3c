"""The ``JobCalendar`` spec and status as pydantic models, field for field as in its CRD.

A JobCalendar is a named set of dates that schedules share (``spec.calendars``
of a JobSchedule): explicit dates, yearly dates, a country's public holidays,
and dates taken out again. It is cluster-scoped, written by cluster admins;
every list has a maximum (the same as the CRD's, compared by
tests/unit/test_calendar_crd.py), so that expanding one costs a bounded time
whatever an admin wrote. What the schema cannot judge (a country the holidays
package does not know) is the expansion's job, one floor up
(:mod:`jobwarden.schedule.holidays`), and makes the calendar ``Ready=False``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Final

from pydantic import Field, ValidationError, field_validator

from jobwarden.api.fields import ApiModel, FieldError, first_error
from jobwarden.api.status import Condition
from jobwarden.api.values import MAX_YEAR, MIN_YEAR

__all__ = [
    "CalendarError",
    "CalendarStatus",
    "Holidays",
    "JobCalendarSpec",
    "MonthDay",
    "parse_calendar",
]

# The maxima, the same as the CRD's. Two years of dates are at most 732.
MAX_CALENDAR_DATES: Final = 1000
MAX_YEARLY: Final = 366
MAX_COUNTRY_LENGTH: Final = 3
MAX_SUBDIVISION_LENGTH: Final = 10
MAX_STATUS_DATES: Final = 732
MAX_DATE_NAME_LENGTH: Final = 128

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")

_DateText = Annotated[str, Field(max_length=10)]
MonthDay = tuple[int, int]


class CalendarError(FieldError):
    """A calendar problem, with the field path as the admin wrote it (``spec.yearly[2]``)."""


_Model = ApiModel


class Holidays(_Model):
    """A country's public holidays, as the ``holidays`` package computes them."""

    country: Annotated[str, Field(min_length=2, max_length=MAX_COUNTRY_LENGTH)]
    subdivision: Annotated[str, Field(min_length=1, max_length=MAX_SUBDIVISION_LENGTH)] | None = (
        None
    )


class JobCalendarSpec(_Model):
    """The dates a calendar lists: ``dates`` + ``yearly`` + ``holidays`` - ``remove``."""

    dates: list[_DateText] = Field(default_factory=list, max_length=MAX_CALENDAR_DATES)
    yearly: list[Annotated[str, Field(max_length=5)]] = Field(
        default_factory=list, max_length=MAX_YEARLY
    )
    holidays: Holidays | None = None
    remove: list[_DateText] = Field(default_factory=list, max_length=MAX_CALENDAR_DATES)

    @field_validator("dates", "remove", mode="before")
    @classmethod
    def _texts_only(cls, value: Any) -> Any:
        # YAML turns an unquoted 2027-12-25 into a date: take it back as text.
        if isinstance(value, list):
            return [v.isoformat() if isinstance(v, date) else v for v in value]
        return value


class CalendarDate(_Model):
    """One listed date of the current or next year, with what put it there."""

    date: _DateText
    name: Annotated[str, Field(max_length=MAX_DATE_NAME_LENGTH)]


class CalendarStatus(_Model):
    """What the operator shows of a calendar: its dates this year and next, and Ready."""

    observed_generation: int | None = Field(default=None, ge=0)
    years: list[Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR)]] = Field(
        default_factory=list, max_length=2
    )
    dates: list[CalendarDate] = Field(default_factory=list, max_length=MAX_STATUS_DATES)
    conditions: list[Condition] = Field(default_factory=list, max_length=8)

    def to_patch(self) -> dict[str, Any]:
        """The status as the CRD stores it (camelCase, no unset fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def parse_calendar(raw: Mapping[str, Any]) -> JobCalendarSpec:
    """Validate a raw calendar spec; raise :class:`CalendarError` naming the first bad field.

    Checks what needs no holidays package: the date syntax, the year range and
    that a yearly date exists in some year (``02-29`` does, ``02-30`` does not).
    """
    try:
        spec = JobCalendarSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise CalendarError(*first_error(exc)) from exc
    for field, texts in (("dates", spec.dates), ("remove", spec.remove)):
        for i, text in enumerate(texts):
            _check_day_text(text, field=f"spec.{field}[{i}]", yearly=field == "remove")
    for i, text in enumerate(spec.yearly):
        month_day(text, field=f"spec.yearly[{i}]")
    return spec


def month_day(text: str, *, field: str) -> MonthDay:
    """``MM-DD`` as (month, day); CalendarError naming ``field`` unless some year has it."""
    match = _MONTH_DAY.match(text)
    if not match:
        raise CalendarError(field, f"{text!r} is not a yearly date (MM-DD, e.g. 12-25)")
    month, day = int(match.group(1)), int(match.group(2))
    try:
        date(2000, month, day)  # a leap year: 02-29 exists in some years
    except ValueError as exc:
        raise CalendarError(field, f"{text!r} is not a day of the year") from exc
    return month, day


def _check_day_text(text: str, *, field: str, yearly: bool) -> None:
    if yearly and _MONTH_DAY.match(text):
        month_day(text, field=field)
        return
    if not _DATE.match(text):
        form = "YYYY-MM-DD or MM-DD" if yearly else "YYYY-MM-DD"
        raise CalendarError(field, f"{text!r} is not a date ({form})")
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise CalendarError(field, f"{text!r} is not a date: {exc}") from exc
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise CalendarError(field, f"{text!r}: the year must be {MIN_YEAR} to {MAX_YEAR}")
