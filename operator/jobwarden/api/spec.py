"""The ``JobSchedule`` spec as pydantic models, and the checks only the operator can make.

The API server's schema catches what a schema can say; :func:`parse_spec`
catches the rest that needs no schedule engine (time zones, date-time
syntax and range, durations, cross-field rules) and names the first
offending field the way users wrote it, so a ``Valid=False`` condition can
point straight at the line to fix. What needs the engine (cron expressions,
wall-clock date-times resolved in a zone) is checked one floor up, by
:func:`jobwarden.schedule.checks.check_spec`.

Every number, list, string, duration and date has a maximum (the constants
below, the same as the CRD's) within which the engine's date arithmetic
cannot overflow: a schedule the API server admits can always be planned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator

from jobwarden.api.fields import ApiModel, FieldError, first_error
from jobwarden.api.notify import MAX_SUBSCRIPTIONS, Subscription
from jobwarden.api.values import (
    GROUP_NAME_PATTERN,
    MAX_BUSINESS_DAY,
    MAX_CALENDARS,
    MAX_DATE_TIME_LENGTH,
    MAX_DURATION_LENGTH,
    MAX_DURATION_SECONDS,
    MAX_EXCLUDE,
    MAX_EXECUTIONS,
    MAX_GROUP_LIMIT,
    MAX_GROUP_NAME_LENGTH,
    MAX_INTERVAL,
    MAX_JITTER_SECONDS,
    MAX_LIMIT,
    MAX_MONTH_DAYS,
    MAX_NAME_LENGTH,
    MAX_NAMESPACE_LENGTH,
    MAX_RECURRENCES,
    MAX_SCHEDULE_LENGTH,
    MAX_TEMPLATE_DEPTH,
    MAX_TIMES,
    MAX_UPSTREAMS,
    MAX_WEEKDAYS_OF_MONTH,
    MAX_ZONE_LENGTH,
    _check_year,
    load_zone,
    nesting_depth,
    parse_date_time,
    parse_duration,
)

__all__ = [
    "ConcurrencyGroup",
    "Dst",
    "Every",
    "JobScheduleSpec",
    "Recurrence",
    "SpecError",
    "Upstream",
    "Weekday",
    "load_zone",
    "nesting_depth",
    "parse_date_time",
    "parse_duration",
    "parse_spec",
]

Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Integers are strict: lax mode would turn ``true`` into 1 and "3" into 3,
# hiding mistakes the user should see.
_Limit = Annotated[int, Field(strict=True, ge=0, le=MAX_LIMIT)]
_DateTimeText = Annotated[str, Field(max_length=MAX_DATE_TIME_LENGTH)]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_RANKED_WEEKDAY = re.compile(r"^(1st|2nd|3rd|4th|5th|last) (Mon|Tue|Wed|Thu|Fri|Sat|Sun)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SpecError(FieldError):
    """A spec problem, with the field path as the user wrote it (``spec.every.times[1]``)."""


_Model = ApiModel


class Every(_Model):
    """A calendar recurrence: every ``interval`` days, ISO weeks or months."""

    period: Literal["Day", "Week", "Month"]
    interval: Annotated[int, Field(strict=True, ge=1, le=MAX_INTERVAL)] = 1
    times: list[str] = Field(default_factory=lambda: ["00:00"], min_length=1, max_length=MAX_TIMES)
    weekdays: list[Weekday] | None = Field(default=None, min_length=1, max_length=7)
    month_days: list[Annotated[int, Field(strict=True, ge=-1, le=31)]] | None = Field(
        default=None, min_length=1, max_length=MAX_MONTH_DAYS
    )
    weekdays_of_month: list[Annotated[str, Field(max_length=8)]] | None = Field(
        default=None, min_length=1, max_length=MAX_WEEKDAYS_OF_MONTH
    )
    business_days: (
        list[Annotated[int, Field(strict=True, ge=-MAX_BUSINESS_DAY, le=MAX_BUSINESS_DAY)]] | None
    ) = Field(default=None, min_length=1, max_length=2 * MAX_BUSINESS_DAY)

    @field_validator("weekdays_of_month")
    @classmethod
    def _ranked_weekdays(cls, value: list[str] | None) -> list[str] | None:
        for text in value or ():
            if not _RANKED_WEEKDAY.match(text):
                raise ValueError(
                    f"{text!r} is not a ranked weekday: 1st, 2nd, 3rd, 4th, 5th or last, "
                    "then Mon..Sun (e.g. '3rd Mon', 'last Fri')"
                )
        return value

    @field_validator("business_days")
    @classmethod
    def _no_zero_business_day(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and 0 in value:
            raise ValueError(
                "0 is not a business day; use 1 for the first, -1 for the last, "
                "-2 for the one before"
            )
        return value

    @field_validator("times")
    @classmethod
    def _times_are_hhmm(cls, value: list[str]) -> list[str]:
        for text in value:
            if not _HHMM.match(text):
                raise ValueError(f"time {text!r} is not HH:MM (00:00 to 23:59)")
        return value

    @field_validator("month_days")
    @classmethod
    def _no_zero_day(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and 0 in value:
            raise ValueError("0 is not a day of the month; use 1..31 or -1 for the last day")
        return value


class Dst(_Model):
    """What a wall-clock time that a DST change skips or repeats becomes."""

    missing_time: Literal["RunAfter", "Skip"] = "RunAfter"
    repeated_time: Literal["First", "Second", "Both"] = "First"


class Recurrence(_Model):
    """One entry of ``recurrences``: a cron expression or a calendar recurrence."""

    schedule: Annotated[str, Field(max_length=MAX_SCHEDULE_LENGTH)] | None = None
    every: Every | None = None


class Upstream(_Model):
    """A schedule whose runs start this one: ``after: [{schedule: extract}]``."""

    schedule: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    namespace: Annotated[str, Field(max_length=MAX_NAMESPACE_LENGTH)] | None = None
    result: Literal["Succeeded", "Failed", "Any"] = "Succeeded"


class ConcurrencyGroup(_Model):
    """A limit shared by every schedule of the namespace naming the group: at most
    ``limit`` of their runs at once; a run beyond it waits (``Queue``) or is ``Skip``ped.
    Members naming different limits share the smallest."""

    name: Annotated[
        str, Field(min_length=1, max_length=MAX_GROUP_NAME_LENGTH, pattern=GROUP_NAME_PATTERN)
    ]
    limit: Annotated[int, Field(strict=True, ge=1, le=MAX_GROUP_LIMIT)] = 1
    when_full: Literal["Queue", "Skip"] = "Queue"


class JobScheduleSpec(_Model):
    """The whole spec. Build it with :func:`parse_spec`, which also runs the cross-field checks."""

    schedule: Annotated[str, Field(max_length=MAX_SCHEDULE_LENGTH)] | None = None
    run_at: _DateTimeText | None = None
    every: Every | None = None
    recurrences: list[Recurrence] | None = Field(
        default=None, min_length=1, max_length=MAX_RECURRENCES
    )
    time_zone: Annotated[str, Field(max_length=MAX_ZONE_LENGTH)] = "UTC"
    dst: Dst | None = None
    start_at: _DateTimeText | None = None
    end_at: _DateTimeText | None = None
    max_executions: Annotated[int, Field(strict=True, ge=1, le=MAX_EXECUTIONS)] | None = None
    exclude: list[date] = Field(default_factory=list, max_length=MAX_EXCLUDE)
    calendars: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]] | None = Field(
        default=None, min_length=1, max_length=MAX_CALENDARS
    )
    calendar_policy: Literal["Skip", "NextBusinessDay", "PreviousBusinessDay"] = "Skip"
    jitter_seconds: Annotated[int, Field(strict=True, ge=0, le=MAX_JITTER_SECONDS)] | None = None
    catch_up: Literal["Latest", "All", "None"] = "Latest"
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    starting_deadline_seconds: (
        Annotated[int, Field(strict=True, ge=0, le=MAX_DURATION_SECONDS)] | None
    ) = None
    suspend: Annotated[bool, Field(strict=True)] = False
    successful_jobs_history_limit: _Limit = 3
    failed_jobs_history_limit: _Limit = 1
    job_template: dict[str, Any]
    suspend_after_failures: Annotated[int, Field(strict=True, ge=1, le=MAX_LIMIT)] | None = None
    stale_after: Annotated[str, Field(max_length=MAX_DURATION_LENGTH)] | None = None
    stale_action: Literal["Terminate", "Report"] = "Terminate"
    start_deadline: Annotated[str, Field(max_length=MAX_DURATION_LENGTH)] | None = None
    after: list[Upstream] | None = Field(default=None, min_length=1, max_length=MAX_UPSTREAMS)
    after_deadline: Annotated[str, Field(max_length=MAX_DURATION_LENGTH)] | None = None
    concurrency_group: ConcurrencyGroup | None = None
    history_limit: _Limit = 20
    notify: list[Subscription] | None = Field(
        default=None, min_length=1, max_length=MAX_SUBSCRIPTIONS
    )

    @field_validator("job_template", mode="before")
    @classmethod
    def _shallow_enough(cls, value: Any) -> Any:
        if nesting_depth(value) > MAX_TEMPLATE_DEPTH:
            raise ValueError(f"nested deeper than {MAX_TEMPLATE_DEPTH} levels")
        return value

    @field_validator("exclude", mode="before")
    @classmethod
    def _dates_only(cls, value: Any) -> Any:
        # Lax date parsing would also take integers (Unix timestamps); only
        # YYYY-MM-DD strings (or YAML dates) mean what users expect here.
        if isinstance(value, list):
            for item in value:
                if isinstance(item, datetime) or not (
                    isinstance(item, date) or (isinstance(item, str) and _DATE.match(item))
                ):
                    raise ValueError(f"{item!r} is not a date (YYYY-MM-DD)")
        return value

    @field_validator("exclude")
    @classmethod
    def _dates_in_range(cls, value: list[date]) -> list[date]:
        for day in value:
            _check_year(day.year, str(day))
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The spec's time zone (validated by :func:`parse_spec`)."""
        return load_zone(self.time_zone)


def parse_spec(raw: Mapping[str, Any]) -> JobScheduleSpec:
    """Validate a raw spec mapping; raise :class:`SpecError` naming the first bad field."""
    try:
        spec = JobScheduleSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise _translate(exc) from exc
    _check_when(spec)
    try:
        load_zone(spec.time_zone)
    except ValueError as exc:
        raise SpecError("spec.timeZone", str(exc)) from exc
    if spec.every is not None:
        _check_every(spec.every, path="spec.every")
    for i, entry in enumerate(spec.recurrences or ()):
        if entry.every is not None:
            _check_every(entry.every, path=f"spec.recurrences[{i}].every")
    for name, value in (("runAt", spec.run_at), ("startAt", spec.start_at), ("endAt", spec.end_at)):
        if value is not None:
            try:
                parse_date_time(value)
            except ValueError as exc:
                raise SpecError(f"spec.{name}", str(exc)) from exc
    durations = (
        ("staleAfter", spec.stale_after),
        ("startDeadline", spec.start_deadline),
        ("afterDeadline", spec.after_deadline),
    )
    for name, text in durations:
        if text is not None:
            try:
                parse_duration(text)
            except ValueError as exc:
                raise SpecError(f"spec.{name}", str(exc)) from exc
    _check_after(spec)
    _check_calendars(spec)
    return spec


def _check_calendars(spec: JobScheduleSpec) -> None:
    """Names only: whether each calendar exists is the cluster's to say (the engine's check)."""
    seen: set[str] = set()
    for i, name in enumerate(spec.calendars or ()):
        if name in seen:
            raise SpecError(f"spec.calendars[{i}]", f"{name!r} is listed twice")
        seen.add(name)


def _check_after(spec: JobScheduleSpec) -> None:
    """What the list alone says of ``after``; the namespace's schedules are judged later."""
    if spec.after_deadline is not None and not spec.after:
        raise SpecError("spec.afterDeadline", "only allowed with after")
    seen: set[str] = set()
    for i, upstream in enumerate(spec.after or ()):
        if "/" in upstream.schedule:
            raise SpecError(
                f"spec.after[{i}].schedule",
                f"{upstream.schedule!r}: an upstream must be a JobSchedule in this namespace, "
                "named without a namespace",
            )
        if upstream.schedule in seen:
            raise SpecError(f"spec.after[{i}].schedule", f"{upstream.schedule!r} is listed twice")
        seen.add(upstream.schedule)


def _check_when(spec: JobScheduleSpec) -> None:
    given = [
        name
        for name, value in (
            ("schedule", spec.schedule),
            ("runAt", spec.run_at),
            ("every", spec.every),
            ("recurrences", spec.recurrences),
        )
        if value is not None
    ]
    if not given and not spec.after:
        raise SpecError(
            "spec.schedule", "one of schedule, runAt, every, recurrences or after is required"
        )
    if len(given) > 1:
        raise SpecError(
            f"spec.{given[1]}",
            "only one of schedule, runAt, every or recurrences may be set "
            f"(found {', '.join(given)})",
        )
    for i, entry in enumerate(spec.recurrences or ()):
        if (entry.schedule is None) == (entry.every is None):
            raise SpecError(f"spec.recurrences[{i}]", "exactly one of schedule or every")


def _check_every(every: Every, *, path: str) -> None:
    if every.period == "Week" and every.weekdays is None:
        raise SpecError(f"{path}.weekdays", "required when period is Week")
    monthly = (every.month_days, every.weekdays_of_month, every.business_days)
    if every.period == "Month" and all(value is None for value in monthly):
        raise SpecError(
            f"{path}.monthDays",
            "required when period is Month, unless weekdaysOfMonth or businessDays is set",
        )
    for field, value, period in (
        ("weekdays", every.weekdays, "Week"),
        ("monthDays", every.month_days, "Month"),
        ("weekdaysOfMonth", every.weekdays_of_month, "Month"),
        ("businessDays", every.business_days, "Month"),
    ):
        if every.period != period and value is not None:
            raise SpecError(f"{path}.{field}", f"only allowed when period is {period}")


def _translate(exc: ValidationError) -> SpecError:
    path, message = first_error(exc)
    return SpecError(path, message)
