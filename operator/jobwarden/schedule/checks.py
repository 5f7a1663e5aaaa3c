"""The spec checks that need the schedule engine, on top of :func:`~jobwarden.api.spec.parse_spec`.

The models one floor down check shape, ranges and syntax; whether a cron
expression can fire and whether ``endAt`` falls after ``startAt`` once
wall-clock times are resolved in ``timeZone`` are questions for the engine.
Both raise the same :class:`~jobwarden.api.spec.SpecError`, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobwarden.api.spec import JobScheduleSpec, SpecError, load_zone, parse_spec
from jobwarden.schedule.cron import CronError, check_expression
from jobwarden.schedule.walltime import parse_instant

__all__ = ["check_spec", "load_spec"]


def check_spec(spec: JobScheduleSpec) -> JobScheduleSpec:
    """``spec`` (already parsed by ``parse_spec``) if the engine can run it, else SpecError."""
    expressions = [("spec.schedule", spec.schedule)] + [
        (f"spec.recurrences[{i}].schedule", entry.schedule)
        for i, entry in enumerate(spec.recurrences or ())
    ]
    for field, expression in expressions:
        if expression is not None:
            try:
                check_expression(expression)
            except CronError as exc:
                raise SpecError(field, str(exc)) from exc
    if spec.start_at is not None and spec.end_at is not None:
        zone = load_zone(spec.time_zone)
        if parse_instant(spec.end_at, zone) <= parse_instant(spec.start_at, zone):
            raise SpecError("spec.endAt", "must be after startAt")
    return spec


def load_spec(raw: Mapping[str, Any]) -> JobScheduleSpec:
    """A raw spec mapping checked completely; SpecError naming the first bad field."""
    return check_spec(parse_spec(raw))
