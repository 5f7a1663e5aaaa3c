"""The edit rule: since when a schedule's timing is in force.

A run is due under the timing spec that was in force at its time. The
operator cannot know which spec was in force before it first saw it, so a
changed timing comes into force at the instant the operator first sees it:
runs that only the new spec would have had before that instant are not due,
never started and never recorded missed. Runs missed while the operator was
down or the schedule suspended are those due since, under the spec in force
then (``catchUp`` decides about them).

Which fields are "timing" is :data:`TIMING_FIELDS`; every other field (the
Job template, the concurrency policy, ``catchUp``, ``suspend``...) can be
edited without moving the instant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from jobwarden.api.spec import JobScheduleSpec

__all__ = ["TIMING_FIELDS", "InForce", "in_force", "timing_fingerprint"]

# Attribute names of the spec fields that decide when runs fall. maxExecutions is
# one: raising it after it was used up must not bring back the runs it had ended.
TIMING_FIELDS: Final = frozenset(
    {
        "schedule",
        "run_at",
        "every",
        "recurrences",
        "time_zone",
        "dst",
        "start_at",
        "end_at",
        "exclude",
        "calendars",
        "calendar_policy",
        "max_executions",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InForce:
    """The timing spec's fingerprint and the instant from which runs are due under it."""

    fingerprint: str
    since: datetime


def timing_fingerprint(spec: JobScheduleSpec, *, calendars: str = "") -> str:
    """A SHA-256 (hex) of the timing fields as written, defaults left out, and of the
    versions of the calendars they name (``calendars``: an edit of one is an edit).

    Leaving defaults out keeps the fingerprint of an unchanged spec the same
    when a later version adds a timing field with a default: an upgrade is
    not an edit.
    """
    fields = spec.model_dump(
        include=set(TIMING_FIELDS), exclude_defaults=True, by_alias=True, mode="json"
    )
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    if calendars:
        canonical += f"|{calendars}"
    return hashlib.sha256(canonical.encode()).hexdigest()


def in_force(
    *, fingerprint: str, previous: InForce | None, now: datetime, created: datetime
) -> InForce:
    """Since when the timing with ``fingerprint`` is in force.

    Unchanged: the instant already recorded. Changed: ``now``, the first time
    the operator sees it. Nothing recorded yet (a new schedule, or one
    written by a version without the record): since creation, so that runs
    missed during an upgrade are still handed to ``catchUp``.
    """
    if previous is None:
        return InForce(fingerprint=fingerprint, since=created)
    if previous.fingerprint == fingerprint:
        return previous
    return InForce(fingerprint=fingerprint, since=now)
