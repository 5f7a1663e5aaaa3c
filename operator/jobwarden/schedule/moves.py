"""Runs that fall on a calendar's day, moved to the next or previous business day.

``calendarPolicy: NextBusinessDay`` (or ``PreviousBusinessDay``) keeps a run's
wall-clock time and moves its date to the nearest business day after (before)
it: a Monday to Friday that no calendar of the schedule lists and ``exclude``
does not name. Runs that land on one time run once.

:class:`MovedSource` is a wall source like any other, so the timeline's bounds,
exclusions and DST rule apply to the moved times. The moved set is not in the
order of the nominal one (a Friday holiday's run moves past Saturday's own
run), so each search walks the nominal times from the earliest that could land
past its start, and stops once no later one can beat the best found: for
``Next`` a run never moves earlier, for ``Previous`` never later, and never
across a business day.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final, Literal, Protocol

from jobwarden.api.spec import SpecError

__all__ = ["MAX_MOVE_DAYS", "AnyDay", "Move", "MovedSource", "NamedDays", "listed_calendars"]

# A run is moved at most this far; a calendar closing more days in a row drops it.
MAX_MOVE_DAYS: Final = 31
# Nominal times examined per search; a search that exhausts it answers None.
_BUDGET: Final = 4096
_TICK: Final = timedelta(microseconds=1)
_DAY: Final = timedelta(days=1)
_FRIDAY: Final = 4


class _Walls(Protocol):
    def next_wall(self, after: datetime) -> datetime | None: ...

    def prev_wall(self, at_or_before: datetime) -> datetime | None: ...


class NamedDays(Protocol):
    """A calendar as the engine sees it: a name and ``day in calendar``."""

    name: str
    version: str  # changes with the calendar's dates: an edit of them is a timing edit

    def __contains__(self, day: object) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """Why a run is where it is: its nominal wall time and the calendar that moved it."""

    nominal: datetime
    calendar: str


class MovedSource:
    """The wall times of ``source``, those on a listed day moved to a business day."""

    def __init__(
        self,
        source: _Walls,
        *,
        calendars: Sequence[NamedDays],
        closed: Container[date],
        direction: Literal["Next", "Previous"],
    ) -> None:
        self._source = source
        self._calendars = tuple(calendars)
        self._closed = closed
        self._forward = direction == "Next"

    # --- days ---------------------------------------------------------------------------

    def listed_by(self, day: date) -> str | None:
        """The first of the schedule's calendars that lists ``day``."""
        return next((c.name for c in self._calendars if day in c), None)

    def business(self, day: date) -> bool:
        return day.weekday() <= _FRIDAY and day not in self._closed and self.listed_by(day) is None

    def target(self, day: date) -> date | None:
        """Where a run on ``day`` goes: ``day`` unless listed; None when too far."""
        if self.listed_by(day) is None:
            return day
        step = _DAY if self._forward else -_DAY
        for _ in range(MAX_MOVE_DAYS):
            try:
                day += step
            except OverflowError:
                return None
            if self.business(day):
                return day
        return None

    def _moved(self, wall: datetime) -> datetime | None:
        day = self.target(wall.date())
        return None if day is None else datetime.combine(day, wall.time())

    def _reach(self, day: date, step: timedelta) -> date:
        """The far end of the run of non-business days next to ``day`` (``day`` if none)."""
        for _ in range(MAX_MOVE_DAYS):
            try:
                beyond = day + step
            except OverflowError:
                return day
            if self.business(beyond):
                return day
            day = beyond
        return day

    # --- the wall source ----------------------------------------------------------------

    def next_wall(self, after: datetime) -> datetime | None:
        """The first moved wall time strictly after ``after``."""
        if self._forward:
            # A run nominally before ``after`` lands past it only from the days just before.
            start = datetime.combine(self._reach(after.date(), -_DAY), time.min) - _TICK
            return self._scan_up(min(start, after), lambda m: m > after, stop_when_past=True)
        return self._scan_up(after, lambda m: m > after, stop_when_past=False)

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        """The last moved wall time at or before ``at_or_before``."""
        if not self._forward:
            end = datetime.combine(self._reach(at_or_before.date(), _DAY), time.max)
            return self._scan_down(max(end, at_or_before), at_or_before, stop_when_before=True)
        return self._scan_down(at_or_before, at_or_before, stop_when_before=False)

    def _scan_up(
        self, cursor: datetime, wanted: Callable[[datetime], bool], *, stop_when_past: bool
    ) -> datetime | None:
        best: datetime | None = None
        for _ in range(_BUDGET):
            wall = self._source.next_wall(cursor)
            if wall is None:
                return best
            if best is not None and (
                wall > best if stop_when_past else self._settled(wall.date(), best.date(), up=True)
            ):
                return best
            moved = self._moved(wall)
            if moved is not None and wanted(moved) and (best is None or moved < best):
                best = moved
            cursor = wall
        return best

    def _scan_down(
        self, cursor: datetime, limit: datetime, *, stop_when_before: bool
    ) -> datetime | None:
        best: datetime | None = None
        for _ in range(_BUDGET):
            wall = self._source.prev_wall(cursor)
            if wall is None:
                return best
            if best is not None and (
                wall < best
                if stop_when_before
                else self._settled(wall.date(), best.date(), up=False)
            ):
                return best
            moved = self._moved(wall)
            if moved is not None and moved <= limit and (best is None or moved > best):
                best = moved
            cursor = wall - _TICK
        return best

    def _settled(self, day: date, best: date, *, up: bool) -> bool:
        """Whether no run from ``day`` on (up) or back (down) can beat one on ``best``:
        a business day past it stays put, and later listed days cannot move across it."""
        return self.business(day) and (day > best if up else day < best)

    # --- explaining ---------------------------------------------------------------------

    def origin(self, wall: datetime) -> Move | None:
        """Why the moved wall time ``wall`` is there: the farthest nominal time that moved
        onto it, and the calendar listing that day; None for a run at its own time."""
        if self.listed_by(wall.date()) is None and self._own(wall):
            return None
        step = -_DAY if self._forward else _DAY
        day, found = wall.date(), None
        for _ in range(MAX_MOVE_DAYS):
            try:
                day += step
            except OverflowError:
                break
            if self.business(day):
                break
            nominal = datetime.combine(day, wall.time())
            name = self.listed_by(day)
            if name is not None and self.target(day) == wall.date() and self._own(nominal):
                found = Move(nominal=nominal, calendar=name)
        return found

    def _own(self, wall: datetime) -> bool:
        """Whether ``wall`` is a nominal time of the source."""
        return self._source.prev_wall(wall) == wall


class AnyDay:
    """A day in any of several sets (``exclude`` and calendars): ``day in AnyDay(...)``."""

    def __init__(self, parts: Sequence[Container[date]]) -> None:
        self._parts = tuple(parts)

    def __contains__(self, day: object) -> bool:
        return any(day in part for part in self._parts)


def listed_calendars(
    names: Sequence[str], known: Mapping[str, NamedDays | str]
) -> tuple[NamedDays, ...]:
    """The calendars ``spec.calendars`` names, in order; SpecError naming the first entry
    that does not exist or cannot be used (its text says why)."""
    found: list[NamedDays] = []
    for i, name in enumerate(names):
        calendar = known.get(name)
        if calendar is None:
            raise SpecError(f"spec.calendars[{i}]", f"JobCalendar {name!r} does not exist")
        if isinstance(calendar, str):
            raise SpecError(
                f"spec.calendars[{i}]", f"JobCalendar {name!r} is not Ready: {calendar}"
            )
        found.append(calendar)
    return tuple(found)
