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
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

__all__ = [
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

# The maxima, the same as the CRD's (tests/unit/test_crd.py compares them).
# Date-times: a year in this range plus any offset, duration or interval
# below stays far inside datetime's year 9999 and inside Job names' year 3870.
MIN_YEAR: Final = 2000
MAX_YEAR: Final = 2999
# Durations (staleAfter, startDeadline, startingDeadlineSeconds): ten years.
MAX_DURATION_SECONDS: Final = 3650 * 86400
MAX_INTERVAL: Final = 1000
MAX_EXECUTIONS: Final = 100_000_000
MAX_JITTER_SECONDS: Final = 86400
MAX_LIMIT: Final = 1000  # history limits, suspendAfterFailures
MAX_TIMES: Final = 1440
MAX_MONTH_DAYS: Final = 32
MAX_WEEKDAYS_OF_MONTH: Final = 42  # six ranks of seven weekdays
MAX_BUSINESS_DAY: Final = 23  # a month has at most 23 weekdays
MAX_EXCLUDE: Final = 1000
MAX_RECURRENCES: Final = 16
MAX_SCHEDULE_LENGTH: Final = 256
MAX_ZONE_LENGTH: Final = 64
MAX_DATE_TIME_LENGTH: Final = 64
MAX_DURATION_LENGTH: Final = 64
MAX_UPSTREAMS: Final = 10  # entries in spec.after
MAX_NAME_LENGTH: Final = 253  # a JobSchedule's name (a DNS subdomain)
MAX_NAMESPACE_LENGTH: Final = 63
DEFAULT_AFTER_DEADLINE: Final = "1h"
# The CRD types jobTemplate down to its last field, about 20 levels; an object
# stored before that schema (or by a client that bypassed it) may nest deeper,
# and deep copies and JSON encoders recurse.
MAX_TEMPLATE_DEPTH: Final = 64

# Integers are strict: lax mode would turn ``true`` into 1 and "3" into 3,
# hiding mistakes the user should see.
_Limit = Annotated[int, Field(strict=True, ge=0, le=MAX_LIMIT)]
_DateTimeText = Annotated[str, Field(max_length=MAX_DATE_TIME_LENGTH)]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_RANKED_WEEKDAY = re.compile(r"^(1st|2nd|3rd|4th|5th|last) (Mon|Tue|Wed|Thu|Fri|Sat|Sun)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
# Files in the tz database that are not zones a schedule could mean.
_NOT_ZONES = frozenset({"local", "localtime", "posixrules", "factory"})
_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


class SpecError(ValueError):
    """A spec problem, with the field path as the user wrote it (``spec.every.times[1]``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Model(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True, alias_generator=to_camel, extra="ignore", frozen=True
    )


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
    history_limit: _Limit = 20

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


def nesting_depth(value: object) -> int:
    """How deeply lists and mappings nest in ``value`` (a scalar is 0), without recursion.

    Stops counting past ``MAX_TEMPLATE_DEPTH``, so its cost is bounded by the
    size of the value however deep it goes.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children: Any = item.values() if isinstance(item, Mapping) else item
        if isinstance(item, (Mapping, list)):
            depth += 1
            deepest = max(deepest, depth)
            if depth <= MAX_TEMPLATE_DEPTH:
                stack.extend((child, depth) for child in children)
    return deepest


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=512)
def load_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name; ``ValueError`` when the tz database lacks it.

    Names are checked against the installed database so that file paths or
    ``localtime`` never pass for a zone.
    """
    known = _known_zones()
    if name.lower() in _NOT_ZONES or (known and name not in known):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)"
        ) from exc


def parse_duration(text: str) -> timedelta:
    """A positive Go-style duration: ``90m``, ``6h``, ``1h30m``, ``45s``, ``2d``, ``1.5h``.

    At most ten years: a longer threshold means "never" and would overflow
    the date arithmetic it feeds (a start time plus the threshold).
    """
    stripped = text.strip()
    parts = _DURATION_PART.findall(stripped)
    if not stripped or "".join(n + u for n, u in parts) != stripped:
        raise ValueError(
            f"invalid duration {text!r}: use numbers with units d, h, m, s (e.g. 90m, 1h30m)"
        )
    # A float sum: digits beyond a float's range give inf, which the bound refuses.
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"invalid duration {text!r}: must be at most 3650d (ten years)")
    return timedelta(seconds=seconds)


def parse_date_time(text: str) -> datetime:
    """An RFC 3339 date-time as written: aware UTC with an offset, naive (wall-clock) without.

    Seconds may be omitted. The year must lie in ``MIN_YEAR..MAX_YEAR``;
    resolving a naive one in a zone (the DST rule) is the schedule engine's
    job (:func:`jobwarden.schedule.walltime.parse_instant`).
    """
    match = _INSTANT.match(text.strip())
    if not match:
        raise ValueError(
            f"invalid date-time {text!r}: use RFC 3339, e.g. 2027-01-01T09:00:00Z "
            "or 2027-01-01T09:00:00 for wall-clock time in timeZone"
        )
    normalized = text.strip().replace("z", "Z").replace("t", "T").replace(" ", "T")
    _check_year(int(normalized[:4]), text)
    try:
        parsed = datetime.fromisoformat(normalized)
    except ValueError as exc:
        raise ValueError(f"invalid date-time {text!r}: {exc}") from exc
    return parsed if match.group("offset") is None else parsed.astimezone(UTC)


def _check_year(year: int, text: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(
            f"{text!r} is out of range: the year must be {MIN_YEAR} to {MAX_YEAR}"
            " (leave the field unset for no bound)"
        )


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
    return spec


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
    first = exc.errors()[0]
    path = "spec"
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{to_camel(str(part))}"
    message = str(first["msg"])
    if first["type"] == "missing":
        message = "is required"
    message = message.removeprefix("Value error, ")
    return SpecError(path, message)
