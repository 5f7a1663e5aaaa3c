"""The combined engine: a spec's scheduled instants, with bounds, exclusions and DST.

Recurring forms search in naive wall-clock space (a :class:`WallSource`)
and resolve each wall time with the DST rule. Resolution is monotone, so
the first wall time after :func:`~jobwarden.schedule.walltime.upper_wall`
of ``t`` is the first candidate after ``t``; wall times that collapse onto
one instant (a skipped hour) therefore yield a single run, and the second
pass through a repeated hour yields none.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final, Literal, Protocol

from jobwarden.api.spec import WEEKDAYS, Every, JobScheduleSpec, load_zone
from jobwarden.schedule.calendar import (
    DailySource,
    MonthlySource,
    MonthRule,
    WeeklySource,
    parse_ranked,
    parse_times,
)
from jobwarden.schedule.checks import check_spec
from jobwarden.schedule.cron import CronSource
from jobwarden.schedule.moves import AnyDay, Move, MovedSource, NamedDays, listed_calendars
from jobwarden.schedule.union import UnionSource
from jobwarden.schedule.walltime import (
    exists,
    local_date,
    parse_instant,
    resolve,
    upper_wall,
    wall_of,
)

__all__ = ["DEFAULT_DST", "DstPolicy", "NoClock", "Timeline", "WallSource", "build_timeline"]

_TICK: Final = timedelta(microseconds=1)
# Candidate wall times examined per lookup beyond one per excluded date. A
# lookup that exhausts it answers None: the spec does not fire in reach.
_BASE_BUDGET: Final = 4096


class WallSource(Protocol):
    """Naive wall-clock times of a recurrence, searchable in both directions."""

    def next_wall(self, after: datetime) -> datetime | None:
        """The first wall time strictly after ``after``."""
        ...

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        """The last wall time at or before ``at_or_before``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DstPolicy:
    """``spec.dst``: what a wall time that does not exist, or occurs twice, becomes.

    ``skip_missing``: a time in a gap has no run (else the first instant after
    it). ``passes``: for a repeated time, its first occurrence (False), its
    second (True), or both (False, True): the search runs once per pass and
    the earliest answer wins, a time that is not repeated giving one instant.
    """

    skip_missing: bool = False
    passes: tuple[bool, ...] = (False,)


DEFAULT_DST: Final = DstPolicy()


class NoClock:
    """The wall source of a schedule that runs only after others (``after``, no clock)."""

    def next_wall(self, after: datetime) -> datetime | None:
        return None

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        return None


class Timeline:
    """The scheduled instants of one spec. Aware datetimes in, aware UTC out.

    ``maxExecutions`` is not applied here: the count of runs lives in status,
    and the reconciler compares it.
    """

    def __init__(
        self,
        *,
        tz: tzinfo,
        source: WallSource | None = None,
        once: datetime | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        exclude: frozenset[date] = frozenset(),
        skip: Sequence[NamedDays] = (),
        dst: DstPolicy = DEFAULT_DST,
    ) -> None:
        if (source is None) == (once is None):
            raise ValueError("a timeline needs exactly one of source or once")
        self.tz = tz
        self.dst = dst
        self._source = source
        self._once = once
        self.start = start
        self.end = end
        self.exclude = exclude
        # ``exclude`` and the calendars of a schedule whose policy is Skip.
        self._skipped: Container[date] = AnyDay((exclude, *skip)) if skip else exclude
        self._budget = _BASE_BUDGET + 2 * len(exclude) + 2 * 366 * len(skip)

    @property
    def clockless(self) -> bool:
        """No instant of its own: the schedule runs only after its upstreams."""
        return isinstance(self._source, NoClock)

    def moved(self, run: datetime) -> Move | None:
        """Why ``run`` is not on its nominal day: the calendar that moved it, or None."""
        if not isinstance(self._source, MovedSource):
            return None
        return self._source.origin(wall_of(run, self.tz))

    @property
    def source(self) -> WallSource | None:
        """The recurrence's wall times (None for a one-time run), for explaining a run."""
        return self._source

    def next_after(self, t: datetime) -> datetime | None:
        """The first scheduled instant strictly after ``t``; None when there are no more."""
        t = _utc(t)
        if self.start is not None and t < self.start:
            t = self.start - _TICK
        if self._once is not None:
            run = self._once
            ok = run > t and (self.end is None or run <= self.end)
            return run if ok and local_date(run, self.tz) not in self._skipped else None
        found = [r for second in self.dst.passes if (r := self._next(t, second)) is not None]
        return min(found, default=None)

    def _next(self, t: datetime, second: bool) -> datetime | None:
        assert self._source is not None
        wall: datetime | None = upper_wall(t, self.tz, second=second)
        for _ in range(self._budget):
            assert wall is not None
            candidate = self._source.next_wall(wall)
            if candidate is None:
                return None
            if self.dst.skip_missing and not exists(candidate, self.tz):
                wall = candidate
                continue
            run = resolve(candidate, self.tz, second=second)
            if self.end is not None and run > self.end:
                return None
            day = local_date(run, self.tz)
            if run <= t:
                wall = candidate
            elif day in self._skipped:
                wall = max(candidate, self._day_end(day))
            else:
                return run
        return None

    def last_at_or_before(self, t: datetime) -> datetime | None:
        """The last scheduled instant at or before ``t``; None when there is none."""
        t = _utc(t)
        if self.end is not None and t > self.end:
            t = self.end
        if self._once is not None:
            run = self._once
            ok = run <= t and (self.start is None or run >= self.start)
            return run if ok and local_date(run, self.tz) not in self._skipped else None
        found = [r for second in self.dst.passes if (r := self._last(t, second)) is not None]
        return max(found, default=None)

    def _last(self, t: datetime, second: bool) -> datetime | None:
        assert self._source is not None
        wall = upper_wall(t, self.tz, second=second)
        for _ in range(self._budget):
            candidate = self._source.prev_wall(wall)
            if candidate is None:
                return None
            if self.dst.skip_missing and not exists(candidate, self.tz):
                wall = candidate - _TICK
                continue
            run = resolve(candidate, self.tz, second=second)
            if self.start is not None and run < self.start:
                return None
            day = local_date(run, self.tz)
            if run > t:
                wall = candidate - _TICK
            elif day in self._skipped:
                wall = min(candidate - _TICK, datetime.combine(day, time.min) - _TICK)
            else:
                return run
        return None

    def _day_end(self, day: date) -> datetime:
        """The last wall time whose run surely falls on ``day``, for skipping an excluded date.

        If the day's last wall time lies in a gap that ends after midnight,
        skipping to it could hide a run of the next day, so nothing is skipped.
        """
        last = datetime.combine(day, time.max)
        if local_date(resolve(last, self.tz), self.tz) == day:
            return last
        return datetime.combine(day, time.min)

    def iter_after(self, t: datetime) -> Iterator[datetime]:
        """Scheduled instants after ``t``, oldest first, without end."""
        current = self.next_after(t)
        while current is not None:
            yield current
            current = self.next_after(current)

    def upcoming(self, t: datetime, *, count: int) -> list[datetime]:
        """The next ``count`` scheduled instants after ``t`` (for previews)."""
        runs: list[datetime] = []
        for run in self.iter_after(t):
            if len(runs) >= count:
                break
            runs.append(run)
        return runs

    def between(self, start: datetime, end: datetime, *, limit: int) -> list[datetime]:
        """Scheduled instants in ``(start, end]``, oldest first; the newest ``limit`` if more.

        The newest are kept because they are the ones a catch-up can still
        start; the search runs backwards from ``end``, so its cost is
        ``limit`` lookups however long the window.
        """
        start, end = _utc(start), _utc(end)
        runs: list[datetime] = []
        cursor = end
        while len(runs) < limit:
            run = self.last_at_or_before(cursor)
            if run is None or run <= start:
                break
            runs.append(run)
            cursor = run - _TICK
        runs.reverse()
        return runs

    def count_between(self, start: datetime, end: datetime, *, cap: int) -> int:
        """How many scheduled instants lie in ``(start, end]``, counting at most ``cap``."""
        end = _utc(end)
        count = 0
        current = self.next_after(start)
        while current is not None and current <= end and count < cap:
            count += 1
            current = self.next_after(current)
        return count


def build_timeline(
    spec: JobScheduleSpec,
    *,
    key: str,
    created: datetime,
    calendars: Mapping[str, NamedDays | str] | None = None,
) -> Timeline:
    """The timeline of a spec parsed by ``parse_spec``; SpecError if the engine cannot run it.

    ``key`` ("namespace/name") seeds ``H``; ``created`` anchors ``every.interval``
    when ``startAt`` is unset. ``calendars``: the JobCalendars by name as the
    cluster shows them (a text: why that one cannot be used); one that
    ``spec.calendars`` names and this lacks is a SpecError naming the entry.
    """
    check_spec(spec)
    listed = listed_calendars(spec.calendars or (), calendars or {})
    tz = load_zone(spec.time_zone)
    start = parse_instant(spec.start_at, tz) if spec.start_at is not None else None
    end = parse_instant(spec.end_at, tz) if spec.end_at is not None else None
    exclude = frozenset(spec.exclude)
    if spec.run_at is not None:
        once = parse_instant(spec.run_at, tz)
        # A one-time run on a listed day is skipped whatever the policy: it has no next.
        return Timeline(tz=tz, once=once, start=start, end=end, exclude=exclude, skip=listed)
    closed = AnyDay((exclude, *listed))  # no business day: what businessDays skip
    source = _source(spec, key=key, anchor=local_date(start or _utc(created), tz), closed=closed)
    skip: Sequence[NamedDays] = listed
    if listed and spec.calendar_policy != "Skip":
        direction: Literal["Next", "Previous"] = (
            "Next" if spec.calendar_policy == "NextBusinessDay" else "Previous"
        )
        source = MovedSource(source, calendars=listed, closed=exclude, direction=direction)
        skip = ()
    return Timeline(
        tz=tz,
        source=source,
        start=start,
        end=end,
        exclude=exclude,
        skip=skip,
        dst=_dst_policy(spec),
    )


def _dst_policy(spec: JobScheduleSpec) -> DstPolicy:
    if spec.dst is None:
        return DEFAULT_DST
    passes = {"First": (False,), "Second": (True,), "Both": (False, True)}
    return DstPolicy(
        skip_missing=spec.dst.missing_time == "Skip", passes=passes[spec.dst.repeated_time]
    )


def _source(
    spec: JobScheduleSpec, *, key: str, anchor: date, closed: Container[date]
) -> WallSource:
    if spec.schedule is None and spec.every is None and not spec.recurrences and spec.after:
        return NoClock()  # it runs only after its upstreams
    holidays = closed
    if spec.recurrences:
        return UnionSource(
            [
                _one(entry.schedule, entry.every, key=key, anchor=anchor, holidays=holidays)
                for entry in spec.recurrences
            ]
        )
    return _one(spec.schedule, spec.every, key=key, anchor=anchor, holidays=holidays)


def _one(
    schedule: str | None,
    every: Every | None,
    *,
    key: str,
    anchor: date,
    holidays: Container[date],
) -> WallSource:
    """The source of one recurrence: a cron expression or an ``every``."""
    if schedule is not None:
        return CronSource(schedule, hash_id=key)
    if every is None:
        raise ValueError("a recurrence has neither schedule nor every")
    times = parse_times(every.times)
    if every.period == "Day":
        return DailySource(anchor=anchor, interval=every.interval, times=times)
    if every.period == "Week":
        weekdays = [WEEKDAYS.index(d) for d in every.weekdays or ()]
        return WeeklySource(anchor=anchor, interval=every.interval, weekdays=weekdays, times=times)
    # Business days are weekdays not in exclude nor in the schedule's calendars.
    days = MonthRule(
        month_days=every.month_days or (),
        weekdays=parse_ranked(every.weekdays_of_month or ()),
        business_days=every.business_days or (),
        holidays=holidays,
    )
    return MonthlySource(anchor=anchor, interval=every.interval, days=days, times=times)


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got naive {t.isoformat()}")
    return t.astimezone(UTC)
