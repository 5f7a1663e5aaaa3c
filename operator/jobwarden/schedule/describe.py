"""The schedule in words, for the ``kubectl get`` column and the plugin."""

from __future__ import annotations

from datetime import UTC

from jobwarden.api.spec import WEEKDAYS, Every, JobScheduleSpec, load_zone
from jobwarden.schedule.calendar import parse_times
from jobwarden.schedule.walltime import parse_instant

__all__ = ["describe"]


def describe(spec: JobScheduleSpec) -> str:
    """``every 2 days at 09:00,17:00``, ``once at 2027-01-01T09:00:00Z``, or the cron itself.

    Wall-clock forms name their zone when it is not UTC; a one-time run is
    shown as its UTC instant, which needs no zone.
    """
    suffix = "" if spec.time_zone == "UTC" else f" ({spec.time_zone})"
    if spec.run_at is not None:
        instant = parse_instant(spec.run_at, load_zone(spec.time_zone)).astimezone(UTC)
        return f"once at {instant.isoformat().replace('+00:00', 'Z')}"
    if spec.schedule is not None:
        return " ".join(spec.schedule.split()) + suffix
    if spec.every is not None:
        return _every(spec.every) + suffix
    if spec.recurrences:
        parts = [_entry(e.schedule, e.every) for e in spec.recurrences]
        return "; ".join(parts) + suffix
    return "unscheduled"


def _entry(schedule: str | None, every: Every | None) -> str:
    if schedule is not None:
        return " ".join(schedule.split())
    return _every(every) if every is not None else "unscheduled"


def _every(every: Every) -> str:
    times = ",".join(t.strftime("%H:%M") for t in parse_times(every.times))
    n = every.interval
    if every.period == "Day":
        lead = "daily" if n == 1 else f"every {n} days"
        return f"{lead} at {times}"
    if every.period == "Week":
        days = ",".join(d for d in WEEKDAYS if d in set(every.weekdays or ()))
        lead = "weekly" if n == 1 else f"every {n} weeks"
        return f"{lead} {days} at {times}"
    listed = set(every.month_days or ())
    ordered = sorted(d for d in listed if d > 0) + ([-1] if -1 in listed else [])
    parts = [",".join(map(str, ordered))] if ordered else []
    parts += list(every.weekdays_of_month or ())
    parts += [_business_day(d) for d in sorted(set(every.business_days or ()), key=_rank)]
    lead = "monthly" if n == 1 else f"every {n} months"
    return f"{lead} on {', '.join(parts)} at {times}"


def _rank(n: int) -> tuple[int, int]:
    return (n < 0, n if n > 0 else -n)


def _business_day(n: int) -> str:
    """``1st business day``, ``last business day``, ``2nd last business day``."""
    if n == -1:
        return "last business day"
    k = abs(n)
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix} {'last ' if n < 0 else ''}business day"
