"""JobCalendars as the operator keeps them, who uses them, and their status.

The calendar informer projects each JobCalendar to a :class:`CalendarSeen`
(parsed and expanded once per change, or the reason it cannot be), and the
:class:`CalendarIndex` keeps those and, fed by the schedule informer, which
schedules name which calendar. A calendar's change wakes only the schedules
that name it (no API call for any other); a schedule's plan reads the
calendars it names from here (``view``), so one that does not exist, or is
not Ready, makes that schedule alone ``Valid=False``. The
:class:`CalendarStatusWriter` writes each calendar's status (its dates this
year and next, ``Ready``) when it is not what the calendar shows, and once a
year turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from jobwarden import labels
from jobwarden.api.calendar import CalendarError, parse_calendar
from jobwarden.api.status import Condition
from jobwarden.api.values import MAX_CALENDARS
from jobwarden.handlers.memory import Key
from jobwarden.kube import Kube
from jobwarden.schedule.calendar_status import calendar_status, status_years
from jobwarden.schedule.holidays import CalendarDays, expand
from jobwarden.schedule.moves import NamedDays
from jobwarden.watching import Change

__all__ = [
    "CALENDARS_PATH",
    "CalendarIndex",
    "CalendarSeen",
    "CalendarStatusWriter",
    "calendar_names",
    "calendar_sink",
    "see_calendar",
]

log = logging.getLogger(__name__)

CALENDARS_PATH: Final = f"/apis/{labels.GROUP}/{labels.VERSION}/{labels.CALENDAR_PLURAL}"
# The writer looks again at least this often, so a status follows the year's turn.
RECHECK_SECONDS: Final = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarSeen:
    """One JobCalendar as the informer last showed it: expanded, or why it cannot be.

    Compared by what changes the dates or the status to write (not by the
    expansion object), so a status write of our own wakes no schedule.
    """

    name: str
    generation: int | None
    uid: str
    days: CalendarDays | None = field(compare=False)
    problem: str | None
    shown_generation: int | None  # status.observedGeneration
    shown_years: tuple[int, ...]
    ready: Condition | None = field(compare=False, default=None)

    @property
    def version(self) -> tuple[str, int | None]:
        return self.uid, self.generation


def see_calendar(body: Mapping[str, Any]) -> CalendarSeen:
    """Parse and expand a JobCalendar body; a bad one is kept with its reason."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name") or "")
    generation = meta.get("generation")
    generation = generation if isinstance(generation, int) else None
    uid = str(meta.get("uid") or "")
    raw = body.get("spec")
    days: CalendarDays | None = None
    problem: str | None = None
    try:
        spec = parse_calendar(raw if isinstance(raw, Mapping) else {})
        days = expand(name=name, spec=spec, version=f"{uid}/{generation}")
    except CalendarError as exc:
        problem = str(exc)
    except Exception as exc:  # the holidays data failing: this calendar's problem alone
        problem = f"spec.holidays: cannot be computed ({type(exc).__name__}: {exc})"
    raw_status = body.get("status")
    status: Mapping[str, Any] = raw_status if isinstance(raw_status, Mapping) else {}
    shown = status.get("observedGeneration")
    years = status.get("years")
    conditions = status.get("conditions")
    ready = next(
        (
            c
            for c in (conditions if isinstance(conditions, list) else ())
            if isinstance(c, Mapping) and c.get("type") == "Ready"
        ),
        None,
    )
    return CalendarSeen(
        name=name,
        generation=generation,
        uid=uid,
        days=days,
        problem=problem,
        shown_generation=shown if isinstance(shown, int) else None,
        shown_years=tuple(y for y in years if isinstance(y, int))
        if isinstance(years, list)
        else (),
        ready=_condition(ready),
    )


def _condition(raw: Mapping[str, Any] | None) -> Condition | None:
    if raw is None:
        return None
    try:
        return Condition.model_validate(dict(raw))
    except ValueError:
        return None


def calendar_names(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The calendar names in a schedule body's ``spec.calendars`` (malformed ones dropped:
    the plan reports them, by the field)."""
    spec = body.get("spec")
    listed = spec.get("calendars") if isinstance(spec, Mapping) else None
    if not isinstance(listed, list):
        return ()
    return tuple(dict.fromkeys(n for n in listed[:MAX_CALENDARS] if isinstance(n, str) and n))


class CalendarIndex:
    """Every JobCalendar by name, and the schedules that name each."""

    def __init__(self) -> None:
        self._calendars: dict[str, CalendarSeen] = {}
        self._uses: dict[Key, tuple[str, ...]] = {}
        self._users: dict[str, set[Key]] = {}

    def get(self, name: str) -> CalendarSeen | None:
        return self._calendars.get(name)

    def names(self) -> list[str]:
        return list(self._calendars)

    def use(self, key: Key, names: tuple[str, ...] | None) -> None:
        """Schedule ``key`` now names ``names`` (None: it is gone)."""
        for old in self._uses.pop(key, ()):
            users = self._users.get(old)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._users[old]
        if names:
            self._uses[key] = names
            for name in names:
                self._users.setdefault(name, set()).add(key)

    def users_of(self, name: str) -> list[Key]:
        return sorted(self._users.get(name, ()))

    def update(self, name: str, seen: CalendarSeen | None) -> list[Key]:
        """Calendar ``name`` is now ``seen`` (None: deleted). The schedules to re-plan:
        its users, when it came, went, or its dates changed; none for a status write."""
        old = self._calendars.get(name)
        if seen is None:
            self._calendars.pop(name, None)
        else:
            self._calendars[name] = seen
        same = (
            old is not None
            and seen is not None
            and (old.version, old.problem) == (seen.version, seen.problem)
        )
        return [] if same else self.users_of(name)

    def view(self, key: Key) -> dict[str, NamedDays | str]:
        """The calendars schedule ``key`` names, as its plan reads them (a text: not Ready)."""
        found: dict[str, NamedDays | str] = {}
        for name in self._uses.get(key, ()):
            seen = self._calendars.get(name)
            if seen is None:
                continue
            found[name] = seen.days if seen.days is not None else (seen.problem or "not expanded")
        return found


def stale_status(seen: CalendarSeen, *, now: datetime) -> bool:
    """Whether the calendar's status is not what the operator would write now."""
    shown_ready = None if seen.ready is None else seen.ready.status
    ready = "True" if seen.problem is None else "False"
    return (
        seen.shown_generation != seen.generation
        or list(seen.shown_years) != status_years(now)
        or shown_ready != ready
    )


class CalendarStatusWriter:
    """Writes the status of calendars whose status is stale, while this replica leads."""

    def __init__(self, *, kube: Kube, index: CalendarIndex, leading: Callable[[], bool]) -> None:
        self._kube = kube
        self._index = index
        self._leading = leading
        self._wanted: set[str] = set()
        self._changed = asyncio.Event()

    def want(self, name: str) -> None:
        self._wanted.add(name)
        self._changed.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=RECHECK_SECONDS)
            self._changed.clear()
            now = datetime.now(UTC)
            wanted, self._wanted = self._wanted, set()
            wanted |= {n for n in self._index.names() if _stale_named(self._index, n, now)}
            for name in sorted(wanted):
                if not self._leading():
                    self._wanted |= wanted  # the next leader's turn, or ours again
                    break
                await self._write(name, now)

    async def _write(self, name: str, now: datetime) -> None:
        seen = self._index.get(name)
        if seen is None or not stale_status(seen, now=now):
            return
        status = calendar_status(
            days=seen.days,
            problem=seen.problem,
            generation=seen.generation,
            now=now,
            previous=seen.ready,
        )
        try:
            await self._kube.patch_calendar_status(name=name, status=status.to_patch())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("JobCalendar %s: status not written; tried again later", name)
            self._wanted.add(name)


def _stale_named(index: CalendarIndex, name: str, now: datetime) -> bool:
    seen = index.get(name)
    return seen is not None and stale_status(seen, now=now)


def calendar_sink(
    *, index: CalendarIndex, touch: Callable[[Key], None], writer: CalendarStatusWriter
) -> Callable[[Change[CalendarSeen]], None]:
    """A calendar's change: re-plan the schedules that name it, and mind its status."""

    def sink(change: Change[CalendarSeen]) -> None:
        name = change.key[1]
        for key in index.update(name, change.new):
            touch(key)
        if change.new is not None and stale_status(change.new, now=datetime.now(UTC)):
            writer.want(name)

    return sink
