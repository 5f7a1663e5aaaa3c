"""The next few runs as users read them: UTC, wall clock, and why a run is where it is.

``status.upcoming`` and ``kubectl jobwarden preview`` both show these, so a DST move
is explained before it happens rather than discovered in the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jobwarden.schedule.timeline import Timeline
from jobwarden.schedule.walltime import exists, resolve, wall_of

__all__ = ["MovedRun", "UpcomingRun", "moved_run", "note_for", "upcoming_runs"]

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpcomingRun:
    """One run to come: its instant, its wall-clock time in the zone, and a note or None."""

    time: datetime
    local: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MovedRun:
    """A run a calendar moved: the instant it was due before, and the calendar."""

    nominal: datetime
    calendar: str

    @property
    def note(self) -> str:
        return f"moved from {self.nominal:%Y-%m-%d}: {self.calendar}"


def moved_run(timeline: Timeline, run: datetime) -> MovedRun | None:
    """Whether ``run`` was moved off a calendar's day (``calendarPolicy``), and from where."""
    move = timeline.moved(run)
    if move is None:
        return None
    return MovedRun(nominal=resolve(move.nominal, timeline.tz), calendar=move.calendar)


def upcoming_runs(timeline: Timeline, *, after: datetime, count: int) -> list[UpcomingRun]:
    """The next ``count`` runs after ``after``, each with its wall clock and note."""
    return [
        UpcomingRun(
            time=run,
            local=run.astimezone(timeline.tz).isoformat(timespec="seconds"),
            note=note_for(timeline, run),
        )
        for run in timeline.upcoming(after, count=count)
    ]


def note_for(timeline: Timeline, run: datetime) -> str | None:
    """Why ``run`` is not simply its wall time: a calendar moved it, DST skipped its time,
    or DST repeats it."""
    moved = moved_run(timeline, run)
    if moved is not None:
        return moved.note
    tz, local = timeline.tz, run.astimezone(timeline.tz)
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() != local.utcoffset():
        which = "second" if local.fold else "first"
        offset = local.isoformat()[-6:]
        return f"{local:%H:%M} occurs twice on {local:%Y-%m-%d} (DST): the {which}, at {offset}"
    source = timeline.source
    before = (run - _TICK).astimezone(tz).utcoffset()
    if source is None or timeline.dst.skip_missing or before == local.utcoffset():
        return None  # only a run at the very instant of a change can be a moved one
    nominal = source.prev_wall(wall_of(run, tz) - _TICK)
    if nominal is not None and not exists(nominal, tz) and resolve(nominal, tz) == run:
        return f"{nominal:%H:%M} does not exist on {nominal:%Y-%m-%d} (DST): runs at {local:%H:%M}"
    return None
