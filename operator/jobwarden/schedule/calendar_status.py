"""What a JobCalendar's status says: its dates this year and next, and ``Ready``.

Pure: the handler that writes it (:mod:`jobwarden.handlers.calendars`) passes
the expanded calendar or the reason it could not be expanded, and the clock.
"""

from __future__ import annotations

from datetime import datetime

from jobwarden.api.calendar import CalendarDate, CalendarStatus
from jobwarden.api.status import Condition, ConditionStatus
from jobwarden.schedule.holidays import CalendarDays

__all__ = ["calendar_status", "status_years"]


def status_years(now: datetime) -> list[int]:
    """The years a calendar's status shows at ``now``: the current one and the next."""
    return [now.year, now.year + 1]


def calendar_status(
    *,
    days: CalendarDays | None,
    problem: str | None,
    generation: int | None,
    now: datetime,
    previous: Condition | None = None,
) -> CalendarStatus:
    """The status of a calendar expanded as ``days``, or not Ready for ``problem``.

    ``previous``: the Ready condition written before; its transition time is
    kept while its status holds, as for every Kubernetes condition.
    """
    ready = days is not None and problem is None
    state: ConditionStatus = "True" if ready else "False"
    since = now
    if previous is not None and previous.status == state:
        since = previous.last_transition_time
    condition = Condition(
        type="Ready",
        status=state,
        reason="Expanded" if ready else "InvalidCalendar",
        message="" if ready else (problem or "not expanded"),
        last_transition_time=since,
        observed_generation=generation,
    )
    years = status_years(now)
    dates = [] if days is None or not ready else days.dates_in(years)
    return CalendarStatus(
        observed_generation=generation,
        years=years,
        dates=[CalendarDate(date=d.isoformat(), name=name[:128]) for d, name in dates],
        conditions=[condition],
    )
