"""The ``JobSchedule`` spec as pydantic models, and the checks only the operator can make.

The API server's schema catches what a schema can say; :func:`parse_spec`
catches the rest (time zones, cron expressions, date-times, cross-field
rules) and names the first offending field the way users wrote it, so a
``Valid=False`` condition can point straight at the line to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "Every",
    "JobScheduleSpec",
    "SpecError",
    "Weekday",
    "load_zone",
    "parse_duration",
    "parse_instant",
    "parse_spec",
]

Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Integers are strict: lax mode would turn ``true`` into 1 and "3" into 3,
# hiding mistakes the user should see.
_Positive = Annotated[int, Field(strict=True, ge=1)]
_NonNegative = Annotated[int, Field(strict=True, ge=0)]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
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
    interval: _Positive = 1
    times: list[str] = Field(default_factory=lambda: ["00:00"], min_length=1)
    weekdays: list[Weekday] | None = Field(default=None, min_length=1)
    month_days: list[Annotated[int, Field(strict=True, ge=-1, le=31)]] | None = Field(
        default=None, min_length=1
    )

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


class JobScheduleSpec(_Model):
    """The whole spec. Build it with :func:`parse_spec`, which also runs the cross-field checks."""

    schedule: str | None = None
    run_at: str | None = None
    every: Every | None = None
    time_zone: str = "UTC"
    start_at: str | None = None
    end_at: str | None = None
    max_executions: _Positive | None = None
    exclude: list[date] = Field(default_factory=list)
    jitter_seconds: _NonNegative | None = None
    catch_up: Literal["Latest", "All", "None"] = "Latest"
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    starting_deadline_seconds: _NonNegative | None = None
    suspend: Annotated[bool, Field(strict=True)] = False
    successful_jobs_history_limit: _NonNegative = 3
    failed_jobs_history_limit: _NonNegative = 1
    job_template: dict[str, Any]
    suspend_after_failures: _Positive | None = None
    stale_after: str | None = None
    stale_action: Literal["Terminate", "Report"] = "Terminate"
    history_limit: _NonNegative = 20

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

    @property
    def zone(self) -> ZoneInfo:
        """The spec's time zone (validated by :func:`parse_spec`)."""
        return load_zone(self.time_zone)


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
    """A positive Go-style duration: ``90m``, ``6h``, ``1h30m``, ``45s``, ``2d``, ``1.5h``."""
    stripped = text.strip()
    parts = _DURATION_PART.findall(stripped)
    if not stripped or "".join(n + u for n, u in parts) != stripped:
        raise ValueError(
            f"invalid duration {text!r}: use numbers with units d, h, m, s (e.g. 90m, 1h30m)"
        )
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return timedelta(seconds=seconds)


def parse_instant(text: str, tz: tzinfo) -> datetime:
    """An RFC 3339 date-time as an aware UTC instant.

    Without an offset it is wall-clock time in ``tz`` and follows the DST
    rule (a skipped time runs when the gap ends, a repeated one at its first
    occurrence). Seconds may be omitted.
    """
    match = _INSTANT.match(text.strip())
    if not match:
        raise ValueError(
            f"invalid date-time {text!r}: use RFC 3339, e.g. 2027-01-01T09:00:00Z "
            "or 2027-01-01T09:00:00 for wall-clock time in timeZone"
        )
    normalized = text.strip().replace("z", "Z").replace("t", "T").replace(" ", "T")
    try:
        parsed = datetime.fromisoformat(normalized)
    except ValueError as exc:
        raise ValueError(f"invalid date-time {text!r}: {exc}") from exc
    if match.group("offset") is None:
        # Imported here so that importing the models never pulls in the engine
        # (the engine imports the models).
        from jobwarden.schedule.walltime import resolve

        return resolve(parsed, tz)
    return parsed.astimezone(UTC)


def parse_spec(raw: Mapping[str, Any]) -> JobScheduleSpec:
    """Validate a raw spec mapping; raise :class:`SpecError` naming the first bad field."""
    try:
        spec = JobScheduleSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise _translate(exc) from exc
    _check_when(spec)
    try:
        zone = load_zone(spec.time_zone)
    except ValueError as exc:
        raise SpecError("spec.timeZone", str(exc)) from exc
    if spec.schedule is not None:
        _check_cron(spec.schedule)
    if spec.every is not None:
        _check_every(spec.every)
    instants: dict[str, datetime] = {}
    for name, value in (("runAt", spec.run_at), ("startAt", spec.start_at), ("endAt", spec.end_at)):
        if value is not None:
            try:
                instants[name] = parse_instant(value, zone)
            except ValueError as exc:
                raise SpecError(f"spec.{name}", str(exc)) from exc
    if "startAt" in instants and "endAt" in instants and instants["endAt"] <= instants["startAt"]:
        raise SpecError("spec.endAt", "must be after startAt")
    if spec.stale_after is not None:
        try:
            parse_duration(spec.stale_after)
        except ValueError as exc:
            raise SpecError("spec.staleAfter", str(exc)) from exc
    return spec


def _check_when(spec: JobScheduleSpec) -> None:
    given = [
        name
        for name, value in (
            ("schedule", spec.schedule),
            ("runAt", spec.run_at),
            ("every", spec.every),
        )
        if value is not None
    ]
    if not given:
        raise SpecError("spec.schedule", "one of schedule, runAt or every is required")
    if len(given) > 1:
        raise SpecError(
            f"spec.{given[1]}",
            f"only one of schedule, runAt or every may be set (found {', '.join(given)})",
        )


def _check_every(every: Every) -> None:
    for field, value, period in (
        ("weekdays", every.weekdays, "Week"),
        ("monthDays", every.month_days, "Month"),
    ):
        if every.period == period and value is None:
            raise SpecError(f"spec.every.{field}", f"required when period is {period}")
        if every.period != period and value is not None:
            raise SpecError(f"spec.every.{field}", f"only allowed when period is {period}")


def _check_cron(expression: str) -> None:
    # Imported here: the cron rules live with the engine that runs them.
    from jobwarden.schedule.cron import CronError, check_expression

    try:
        check_expression(expression)
    except CronError as exc:
        raise SpecError("spec.schedule", str(exc)) from exc


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
