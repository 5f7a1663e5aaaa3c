"""Cron expressions as a source of naive wall-clock times.

croniter does the field-wise search. It is fed naive datetimes only, so it
never applies its own DST handling: the timeline resolves each wall-clock
time with the DST rule in :mod:`jobwarden.schedule.walltime`.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Final

from croniter import CroniterBadDateError, CroniterError, croniter

from jobwarden.schedule.calendar import MonthlySource
from jobwarden.schedule.quartz import QuartzDays, QuartzError, has_quartz, parse_quartz

__all__ = ["MACROS", "CronError", "CronSource", "check_expression", "normalize"]

# CronJob's meanings. croniter's own macros turn into hashed six-field
# expressions when given a hash_id, so they are expanded here instead.
MACROS: Final[dict[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# Far enough to reach a 29 February from any year, even across 2100.
_HORIZON_YEARS: Final = 9
_CHECK_FROM: Final = datetime(2001, 1, 1)
_CHECK_HASH_ID: Final = "jobwarden/check"
_RANDOM = re.compile(r"(?<![a-z])r(?![a-z])")
_MICROSECOND: Final = timedelta(microseconds=1)
_SPANS: Final = 8  # a plan asks for the next run and status.upcoming: six questions


class CronError(ValueError):
    """A cron expression jobwarden does not accept."""


def normalize(expression: str) -> str:
    """The five-field form of an expression: macros expanded, spaces collapsed."""
    text = " ".join(expression.split())
    lowered = text.lower()
    if lowered.startswith("@"):
        if lowered.startswith("@every"):
            raise CronError("@every is not supported; use the every field for intervals")
        try:
            return MACROS[lowered]
        except KeyError:
            known = ", ".join(MACROS)
            raise CronError(f"unknown macro {text!r} (known: {known})") from None
    if "=" in text:
        raise CronError("a time zone prefix (TZ=, CRON_TZ=) is not allowed; use timeZone")
    fields = text.split(" ")
    if len(fields) != 5:
        raise CronError(
            f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}; "
            "seconds and years are not supported"
        )
    if _RANDOM.search(lowered):
        raise CronError("R (random) is not supported; use H for a stable spread")
    return text


def check_expression(expression: str) -> None:
    """Raise :class:`CronError` unless the expression parses and can fire at all.

    "Can fire" is probed from a fixed date with a bounded field-wise search,
    so the answer is deterministic and never iterates over minutes. ``H``
    is probed with a fixed seed; a seed-dependent impossibility surfaces
    later as a timeline without runs.

    The verdict depends on the text alone, and every reconcile validates
    its spec: it is remembered per expression (a croniter and a search
    each time were a fifth of a due run's planning).
    """
    message = _verdict(expression)
    if message is not None:
        raise CronError(message)


@lru_cache(maxsize=1024)
def _verdict(expression: str) -> str | None:
    try:
        _check(expression)
    except CronError as exc:
        return str(exc)
    return None


def _check(expression: str) -> None:
    text = normalize(expression)
    if _is_quartz(text):
        try:
            source = _quartz(text, _CHECK_HASH_ID)
        except (QuartzError, CroniterError, ValueError, KeyError, TypeError) as exc:
            raise CronError(f"invalid cron expression {expression!r}: {_short(exc)}") from exc
        if source.next_wall(_CHECK_FROM) is None:
            raise CronError(f"cron expression {expression!r} never fires") from None
        return
    try:
        probe = croniter(
            text,
            _CHECK_FROM,
            ret_type=datetime,
            hash_id=_CHECK_HASH_ID,
            max_years_between_matches=_HORIZON_YEARS,
        )
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise CronError(f"invalid cron expression {expression!r}: {_short(exc)}") from exc
    try:
        probe.get_next(datetime)
    except CroniterBadDateError:
        raise CronError(f"cron expression {expression!r} never fires") from None


def _short(exc: Exception) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class _Matcher:
    """One expanded expression, shared by every schedule that uses it.

    Expanding an expression costs a third of planning a schedule, and each
    search step a little more; a thousand schedules on "0 2 * * *" due at
    once ask the same questions. So the last few answers are kept as spans
    ``(lo, hi)``: ``hi`` a match, no match strictly between, ``lo`` either
    the time asked or (after a previous-match question) the match before.
    A question inside a span is answered exactly without searching. The
    lock makes the shared iterator safe for any thread.
    """

    def __init__(self, expression: str, hash_id: str | None) -> None:
        self._iter = croniter(
            expression,
            _CHECK_FROM,
            ret_type=datetime,
            hash_id=hash_id,
            max_years_between_matches=_HORIZON_YEARS,
        )
        self._lock = threading.Lock()
        self._spans: deque[tuple[datetime, datetime, bool]] = deque(maxlen=_SPANS)

    def next_wall(self, after: datetime) -> datetime | None:
        with self._lock:
            for lo, hi, _ in self._spans:
                if lo <= after < hi:
                    return hi
            result = self._search(after, forward=True)
            if result is not None:
                self._spans.append((after, result, False))
            return result

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        with self._lock:
            for lo, hi, lo_matches in self._spans:
                if lo_matches and lo <= at_or_before < hi:
                    return lo
            # croniter's previous is strict and floors to the minute; nudging
            # by a microsecond makes an exact match count.
            result = self._search(at_or_before + _MICROSECOND, forward=False)
            if result is not None:
                # The match after it lies past the time asked: later questions up to it hit.
                following = self._search(result, forward=True)
                if following is not None:
                    self._spans.append((result, following, True))
            return result

    def _search(self, start: datetime, *, forward: bool) -> datetime | None:
        try:
            if forward:
                found: datetime = self._iter.get_next(datetime, start_time=start)
            else:
                found = self._iter.get_prev(datetime, start_time=start)
        except (CroniterBadDateError, OverflowError, ValueError):
            return None
        return found


@lru_cache(maxsize=512)
def _matcher(expression: str, hash_id: str | None) -> _Matcher | MonthlySource:
    if _is_quartz(expression):
        return _quartz(expression, hash_id)
    return _Matcher(expression, hash_id)


def _is_quartz(expression: str) -> bool:
    fields = expression.split(" ")
    return has_quartz(fields[2], fields[4])


def _quartz(expression: str, hash_id: str | None) -> MonthlySource:
    """An expression with Quartz's L, W or # as a month-by-month source of its days
    (:mod:`jobwarden.schedule.quartz`); croniter expands the other fields."""
    minute, hour, dom, month, dow = expression.split(" ")
    by_dom, by_dow = parse_quartz(dom, dow)
    # Quartz writes ? in the day field it leaves open: the same as * here.
    dom, dow = ("*" if by_dom or dom == "?" else dom), ("*" if by_dow or dow == "?" else dow)
    plain = f"{minute} {hour} {dom} {month} {dow}"
    fields, _ = croniter.expand(plain, hash_id=hash_id.encode() if hash_id else None)
    minutes, hours, doms, months, dows = (_ints(f) for f in fields)
    days = QuartzDays(
        dom=by_dom,
        dow=by_dow,
        plain_dom=None if by_dom or doms is None else frozenset(doms),
        plain_dow=None if by_dow or dows is None else frozenset(d % 7 for d in dows),
    )
    in_year = frozenset(months) if months is not None else None
    times = tuple(sorted(time(h, m) for h in hours or range(24) for m in minutes or range(60)))
    return MonthlySource(
        anchor=_CHECK_FROM.date(),
        interval=1,
        days=lambda y, m: days.days(y, m) if in_year is None or m in in_year else (),
        times=times,
    )


def _ints(field: list[int | str]) -> list[int] | None:
    """An expanded croniter field as integers; None for ``*``."""
    if field == ["*"]:
        return None
    return [int(v) for v in field]


class CronSource:
    """Naive wall-clock times matched by a cron expression, searched field-wise."""

    def __init__(self, expression: str, *, hash_id: str) -> None:
        self.expression = normalize(expression)
        # hash_id only matters to H fields ("THU" counts too: a wasted entry, never a wrong one).
        self._matcher = _matcher(
            self.expression, hash_id if "H" in self.expression.upper() else None
        )

    def next_wall(self, after: datetime) -> datetime | None:
        """The first matching wall time strictly after ``after``."""
        return self._matcher.next_wall(after)

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        """The last matching wall time at or before ``at_or_before``."""
        return self._matcher.prev_wall(at_or_before)
