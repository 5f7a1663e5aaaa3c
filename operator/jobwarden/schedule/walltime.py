"""The DST rule: how a wall-clock time in a time zone becomes one instant.

A wall-clock time that does not exist that day (skipped by a spring-forward
transition) runs at the first valid instant after it, which is the
transition itself. A wall-clock time that occurs twice (fall-back) runs at
its first occurrence (``fold=0``). Every schedule form resolves its wall-clock
times through :func:`resolve`, so they all follow one rule.

:func:`parse_instant` applies the rule to the date-times of a spec
(``runAt``, ``startAt``, ``endAt``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

from jobwarden.api.spec import parse_date_time

__all__ = ["exists", "local_date", "parse_instant", "resolve", "upper_wall", "wall_of"]

_SECOND = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)


def wall_of(instant: datetime, tz: tzinfo) -> datetime:
    """The naive wall-clock reading of an aware instant in ``tz``."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def local_date(instant: datetime, tz: tzinfo) -> date:
    """The calendar date of an instant in ``tz`` (what ``exclude`` compares)."""
    return instant.astimezone(tz).date()


def exists(wall: datetime, tz: tzinfo) -> bool:
    """Whether a naive wall-clock time occurs at all in ``tz`` (not in a gap)."""
    utc = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return wall_of(utc, tz) == wall.replace(fold=0)


def parse_instant(text: str, tz: tzinfo) -> datetime:
    """An RFC 3339 date-time as an aware UTC instant; ``ValueError`` names what is wrong.

    Without an offset it is wall-clock time in ``tz`` and follows the DST
    rule (a skipped time runs when the gap ends, a repeated one at its first
    occurrence). Seconds may be omitted.
    """
    parsed = parse_date_time(text)
    return resolve(parsed, tz) if parsed.tzinfo is None else parsed


def resolve(wall: datetime, tz: tzinfo, *, second: bool = False) -> datetime:
    """The aware UTC instant a naive wall-clock time runs at, by the DST rule.

    A repeated wall time resolves to its first occurrence, or to its second
    with ``second`` (``dst.repeatedTime: Second``; ``Both`` searches once each
    way). Monotone non-decreasing in ``wall`` either way: later wall times
    never resolve to earlier instants, which is what lets the engine search
    wall-clock space and still emit strictly increasing instants.
    """
    naive = wall.replace(tzinfo=None, fold=0)
    utc = naive.replace(tzinfo=tz).astimezone(UTC)
    if wall_of(utc, tz) != naive:
        return _gap_end(naive, tz)
    if second:
        later = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        if wall_of(later, tz) == naive:
            return later
    return utc


def _gap_end(wall: datetime, tz: tzinfo) -> datetime:
    """The transition instant that ends the gap containing ``wall``.

    In a gap, PEP 495 reads ``fold=1`` with the offset after the transition
    (an instant before it) and ``fold=0`` with the offset before (an instant
    after it); the transition lies between and is found by bisection on
    whole seconds, since zone transitions fall on whole seconds.
    """
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if lo > hi:
        lo, hi = hi, lo
    lo = lo.replace(microsecond=0)
    # Invariant: wall_of(lo) < wall (before the gap), wall_of(hi) > wall (after it).
    while hi - lo > _SECOND:
        mid = lo + (hi - lo) // 2
        mid = mid.replace(microsecond=0)
        if wall_of(mid, tz) < wall:
            lo = mid
        else:
            hi = mid
    return hi if wall_of(lo, tz) < wall else lo


def upper_wall(instant: datetime, tz: tzinfo, *, second: bool = False) -> datetime:
    """The largest wall-clock time whose resolution (``resolve`` with the same ``second``)
    is at or before ``instant``.

    Every wall time at or before the result resolves to an instant at or
    before ``instant``; every later wall time resolves after it. Resolving to
    first occurrences, during the second pass through a repeated hour every
    repeated wall time has already run, so the result is the end of the
    repeat. Resolving to second occurrences, during the first pass none has,
    so the result is just before its start.
    """
    local = instant.astimezone(tz)
    if local.fold == 1:
        if second:
            return local.replace(tzinfo=None, fold=0)
        return _fold_end(instant.astimezone(UTC), tz) - _TICK
    if second:
        now, other = local.utcoffset(), local.replace(fold=1).utcoffset()
        assert now is not None and other is not None
        if other < now:  # in the first pass: the same wall time comes again ``delta`` later
            delta = now - other
            return _fold_end((instant + delta).astimezone(UTC), tz) - delta - _TICK
    return local.replace(tzinfo=None)


def _fold_end(instant: datetime, tz: tzinfo) -> datetime:
    """The first wall time after the repeated period that ``instant`` is in the second pass of.

    The transition is found by bisection on whole seconds over the length of
    the repeat; the wall clock at the transition plus that length is the end.
    """
    local = instant.astimezone(tz)
    first = local.replace(fold=0).utcoffset()
    second = local.utcoffset()
    assert first is not None and second is not None
    delta = first - second
    lo, hi = (instant - delta).replace(microsecond=0), instant
    # Invariant: lo reads fold=0 (before the transition), hi reads fold=1.
    while hi - lo > _SECOND:
        mid = (lo + (hi - lo) // 2).replace(microsecond=0)
        if mid.astimezone(tz).fold == 1:
            hi = mid
        else:
            lo = mid
    transition = hi if lo.astimezone(tz).fold == 0 else lo
    return wall_of(transition, tz) + delta
