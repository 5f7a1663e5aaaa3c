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

from jobwarden.api.spec import parse_duration

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
    """The instant a run started at ``start_time`` becomes stale."""
    return start_time + threshold


def is_stale(*, start_time: datetime, now: datetime, threshold: timedelta) -> bool:
    """Whether a run started at ``start_time`` is stale at ``now``."""
    return now >= stale_deadline(start_time=start_time, threshold=threshold)


def parse_stale_label(value: str) -> timedelta:
    """The threshold in a ``jobwarden.io/stale-after`` label, e.g. ``90m``.

    Same duration grammar as ``spec.staleAfter``. Raises ``ValueError`` for a
    malformed or non-positive value: a zero threshold would terminate a Job
    the moment it starts, which no one opting in means.
    """
    threshold = parse_duration(value.strip())
    if threshold <= timedelta(0):
        raise ValueError(f"stale-after must be positive, got {value!r}")
    return threshold


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
