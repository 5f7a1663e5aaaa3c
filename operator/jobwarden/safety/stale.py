"""Which active runs have passed their stale threshold.

The sweep keeps one slim entry per active run in memory (fed by Job watch
events) and asks this module, every interval, which entries are due. Nothing
here calls the API or sorts: one pass over the entries, so a sweep over tens
of thousands of runs stays cheap.

A run is stale once it has been active for its threshold or longer, counted
from the Job's ``status.startTime`` (the same clock ``activeDeadlineSeconds``
uses, so the operator and the Job controller agree on the moment).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from jobwarden.api.values import MAX_DURATION_LENGTH, MAX_DURATION_SECONDS, parse_duration
from jobwarden.labels import STALE_AFTER_LABEL, STALE_DEADLINE_ANNOTATION

StaleAction = Literal["Terminate", "Report"]


@dataclass(frozen=True, slots=True)
class StaleCandidate:
    """One active run as the sweep holds it.

    ``key`` is whatever the caller finds the Job by again, e.g. (namespace,
    name). ``start_time`` is ``None`` until the Job controller starts the Job;
    such a run is never stale.
    """

    key: Hashable
    start_time: datetime | None
    threshold: timedelta
    action: StaleAction = "Terminate"


def stale_deadline(*, start_time: datetime, threshold: timedelta) -> datetime:
    """The instant a run started at ``start_time`` becomes stale.

    A start time near the end of the calendar (a Job status written by
    anyone) would overflow; such a run's deadline is the end of time.
    """
    try:
        return start_time + threshold
    except OverflowError:
        return datetime.max.replace(tzinfo=start_time.tzinfo)


def is_stale(*, start_time: datetime, now: datetime, threshold: timedelta) -> bool:
    """Whether a run started at ``start_time`` is stale at ``now``."""
    # A difference of two datetimes cannot overflow; a sum can.
    return now - start_time >= threshold


def parse_stale_label(value: str) -> timedelta:
    """The threshold in a ``jobwarden.io/stale-after`` label, e.g. ``90m``.

    Same duration grammar and bound (at most 3650d) as ``spec.staleAfter``.
    Raises ``ValueError`` naming the label for a malformed, non-positive or
    too long value: a zero threshold would terminate a Job the moment it
    starts, which no one opting in means.
    """
    return parse_duration_label(value, label=STALE_AFTER_LABEL)


def parse_duration_label(value: str, *, label: str) -> timedelta:
    """A duration in the opt-in label ``label``; ``ValueError`` naming the label."""
    if len(value) > MAX_DURATION_LENGTH:
        raise ValueError(f"{label}: value longer than {MAX_DURATION_LENGTH} characters")
    try:
        return parse_duration(value.strip())
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from exc


def parse_deadline_seconds(value: str) -> timedelta:
    """The threshold in the operator's ``jobwarden.io/stale-deadline-seconds`` annotation.

    Whole seconds, positive, at most ten years (the spec's bound); anything
    else, written by hand on a Job, raises ``ValueError`` naming the annotation.
    """
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise ValueError(f"{STALE_DEADLINE_ANNOTATION}: {value!r} is not a number of seconds")
    seconds = int(text)
    if not 0 < seconds <= MAX_DURATION_SECONDS:
        raise ValueError(
            f"{STALE_DEADLINE_ANNOTATION}: {seconds} is not in 1..{MAX_DURATION_SECONDS}"
        )
    return timedelta(seconds=seconds)


def due_for_stale(runs: Iterable[StaleCandidate], *, now: datetime) -> list[StaleCandidate]:
    """The runs that are stale at ``now``, in the order given."""
    return [
        run
        for run in runs
        if run.start_time is not None
        and is_stale(start_time=run.start_time, now=now, threshold=run.threshold)
    ]


def next_stale_deadline(runs: Iterable[StaleCandidate]) -> datetime | None:
    """The earliest deadline among started runs: when the sweep next has work.

    Lets the sweep sleep until then (bounded by its interval) instead of
    waking for nothing.
    """
    deadlines = [
        stale_deadline(start_time=run.start_time, threshold=run.threshold)
        for run in runs
        if run.start_time is not None
    ]
    return min(deadlines, default=None)
