"""Decisions over a timeline: which due runs to start, the jitter delay, completion."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from jobwarden.api.spec import JobScheduleSpec
from jobwarden.schedule.timeline import Timeline

__all__ = [
    "COUNT_CAP",
    "ON_TIME_TOLERANCE",
    "CatchUpPlan",
    "is_complete",
    "jitter_delay",
    "plan_catch_up",
]

# A run this close behind ``now`` is the on-time run the reconciler woke up
# for (timer lag, a busy event loop), not one missed while it was away.
ON_TIME_TOLERANCE: Final = timedelta(seconds=60)
# Due runs counted exactly (a forward scan, ~0.3 s at the cap); a longer
# outage reports this many missed.
COUNT_CAP: Final = 10_000


@dataclass(frozen=True)
class CatchUpPlan:
    """What to do with the runs due since the last scheduled one.

    ``start`` and ``missed`` are oldest first; ``missed`` holds at most the
    newest ``limit`` missed runs, ``missed_count`` how many there were.
    """

    start: list[datetime] = field(default_factory=list)
    missed: list[datetime] = field(default_factory=list)
    missed_count: int = 0


def plan_catch_up(
    timeline: Timeline,
    *,
    policy: str,
    last_scheduled: datetime | None,
    anchor: datetime,
    now: datetime,
    starting_deadline_seconds: int | None,
    limit: int = 100,
    tolerance: timedelta = ON_TIME_TOLERANCE,
) -> CatchUpPlan:
    """Split the runs in ``(last_scheduled or anchor, now]`` into runs to start and missed runs.

    A run is startable when ``startingDeadlineSeconds`` is unset or it is
    at most that old. ``Latest`` starts the newest due run if startable;
    ``All`` starts every startable run (the newest ``limit`` of them, oldest
    first); ``None`` starts only the on-time run: the newest due run, if
    within ``tolerance`` of ``now`` and startable. Everything else is missed.
    """
    if policy not in ("Latest", "All", "None"):
        raise ValueError(f"unknown catch-up policy {policy!r}")
    since = last_scheduled if last_scheduled is not None else anchor
    due = timeline.between(since, now, limit=2 * limit)
    if not due:
        return CatchUpPlan()
    total = len(due)
    if total == 2 * limit:
        total = max(total, timeline.count_between(since, now, cap=COUNT_CAP))
    now = now.astimezone(UTC)
    deadline = (
        None if starting_deadline_seconds is None else timedelta(seconds=starting_deadline_seconds)
    )

    def startable(run: datetime) -> bool:
        return deadline is None or now - run <= deadline

    newest = due[-1]
    start: list[datetime]
    if policy == "All":
        start = [run for run in due[-limit:] if startable(run)]
    elif policy == "Latest":
        start = [newest] if startable(newest) else []
    else:
        start = [newest] if now - newest <= tolerance and startable(newest) else []
    chosen = set(start)
    missed = [run for run in due if run not in chosen][-limit:]
    return CatchUpPlan(start=start, missed=missed, missed_count=total - len(start))


def jitter_delay(
    *, key: str, scheduled: datetime, next_run: datetime | None, jitter_seconds: int | None
) -> float:
    """Seconds to delay a run: stable per (schedule, scheduled time), never reaching the next run.

    Derived from a hash rather than a random draw, so a restart or a second
    replica computes the same delay and the same Job.
    """
    if not jitter_seconds or jitter_seconds <= 0:
        return 0.0
    window = float(jitter_seconds)
    if next_run is not None:
        window = min(window, (next_run - scheduled).total_seconds())
    if window <= 0:
        return 0.0
    seed = f"{key}\x00{scheduled.astimezone(UTC).isoformat()}".encode()
    fraction = (int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") >> 11) / float(1 << 53)
    delay = fraction * window
    if delay >= window:
        delay = math.nextafter(window, 0.0)
    return delay


def is_complete(
    timeline: Timeline,
    spec: JobScheduleSpec,
    *,
    scheduled_count: int,
    last_scheduled: datetime | None,
    now: datetime,
) -> bool:
    """Whether the schedule has nothing left to run.

    True when ``maxExecutions`` is used up or no run remains after
    ``max(now, last_scheduled)`` (end reached, one-time run done). Ask after
    acting on :func:`plan_catch_up`: a due run not yet started or recorded
    missed is behind ``now`` and no longer counts as remaining.
    """
    if spec.max_executions is not None and scheduled_count >= spec.max_executions:
        return True
    if timeline.clockless:
        return False  # it runs whenever its upstreams do: never done by the clock
    after = now if last_scheduled is None else max(now, last_scheduled)
    return timeline.next_after(after) is None
