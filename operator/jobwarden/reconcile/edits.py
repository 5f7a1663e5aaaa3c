"""Step 3½ of a plan: record since when the timing spec is in force (the edit rule of
:mod:`jobwarden.schedule.edits`), so that ``start_due`` plans runs only from then."""

from __future__ import annotations

from datetime import datetime

from jobwarden.api.status import ScheduleStatus, Timing
from jobwarden.reconcile.model import Inputs, evolve
from jobwarden.schedule.edits import InForce, in_force, timing_fingerprint


def keep_timing(inp: Inputs, status: ScheduleStatus) -> ScheduleStatus:
    """``status`` with ``timing`` for the spec read; an invalid spec keeps the record it had
    (the spec that becomes valid again is compared with the last valid one)."""
    if inp.spec is None:
        return status
    old = status.timing
    previous = None if old is None else InForce(fingerprint=old.fingerprint, since=old.since)
    now = in_force(
        fingerprint=timing_fingerprint(inp.spec, calendars=calendar_marks(inp)),
        previous=previous,
        now=inp.now,
        created=inp.obj.created,
    )
    if previous == now:
        return status
    return evolve(status, timing=Timing(fingerprint=now.fingerprint, since=now.since))


def due_since(status: ScheduleStatus) -> datetime | None:
    """The start of the window in which runs may be due: the cursor, or the instant the
    timing came in force if that is later."""
    cursor = status.last_schedule_time
    since = status.timing.since if status.timing is not None else None
    if cursor is None or since is None:
        return cursor or since
    return max(cursor, since)


def calendar_marks(inp: Inputs) -> str:
    """The versions of the calendars the spec names: a calendar's edit is a timing edit."""
    assert inp.spec is not None
    return ",".join(
        f"{name}={getattr(inp.calendars.get(name), 'version', '')}"
        for name in inp.spec.calendars or ()
    )
