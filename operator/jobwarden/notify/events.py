"""Which notifications a status write makes: a pure function of the status before and after.

Events are read from what the status records, never from what a step did:
a run that reached Failed, Stale, NeverStarted or Missed is a history entry
that was not so before; ``Suspended`` is the operator's suspension appearing;
``Recovered`` is health coming back to Healthy. So the same write always
makes the same events, whichever path (a plan made ahead, a plan redone after
a refused write, a restarted or newly elected operator) produced it.

Each event's id is a hash of the schedule's uid, the event and what it is
about (the run's Job, or the time), never of when it was derived: a plan
redone after a failed write, or a delivery retried, sends the same id, and a
receiver drops the copy (CloudEvents' ``source`` + ``id`` identity).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from jobwarden.api.notify import EventKind, Subscription
from jobwarden.api.status import HistoryEntry, ScheduleStatus, format_time

# A Running entry's reason when the run was reported rather than ended (staleAction: Report).
_REPORTED: dict[str, EventKind] = {"StaleReported": "Stale", "NotStartedReported": "NeverStarted"}
_FINAL: dict[str, EventKind] = {
    "Failed": "Failed",
    "Stale": "Stale",
    "NeverStarted": "NeverStarted",
    "Missed": "Missed",
}
_UNHEALTHY = frozenset({"Degraded", "Unhealthy"})


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleRef:
    """The schedule an event is about, as a receiver links to it."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Notification:
    """One event of one schedule: what a sink receives, as plain data."""

    id: str
    event: EventKind
    schedule: ScheduleRef
    time: datetime
    result: str  # the run's result; for Suspended and Recovered, the health state
    reason: str | None = None
    message: str | None = None
    job: str | None = None
    trigger: str | None = None
    scheduled_time: datetime | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    """A notification bound for one sink."""

    sink: str
    notification: Notification


def event_id(*, uid: str, event: str, about: str) -> str:
    """The deterministic CloudEvent id: the same event of the same schedule, the same id."""
    digest = hashlib.sha256(f"{uid}\x00{event}\x00{about}".encode()).hexdigest()
    return digest[:32]


def _entry_key(entry: HistoryEntry) -> str:
    """What identifies a history entry: its Job, else (Missed, Skipped) its time and trigger."""
    if entry.job:
        return entry.job
    when = format_time(entry.scheduled_time) if entry.scheduled_time else ""
    return f"{entry.trigger}@{when}"


def _run_event(entry: HistoryEntry) -> EventKind | None:
    if entry.result == "Running":
        return _REPORTED.get(entry.reason or "")
    return _FINAL.get(entry.result)


def run_events(
    *, before: ScheduleStatus, after: ScheduleStatus, ref: ScheduleRef, now: datetime
) -> list[Notification]:
    """A notification per history entry that reached an event's state in this write."""
    seen = {
        (_entry_key(e), kind) for e in before.history or () if (kind := _run_event(e)) is not None
    }
    found: list[Notification] = []
    for entry in reversed(after.history or ()):  # oldest first: the order they happened
        kind = _run_event(entry)
        if kind is None or (_entry_key(entry), kind) in seen:
            continue
        key = _entry_key(entry)
        found.append(
            Notification(
                id=event_id(uid=ref.uid, event=kind, about=key),
                event=kind,
                schedule=ref,
                time=entry.completion_time or now,
                result=entry.result,
                reason=entry.reason,
                message=entry.message,
                job=entry.job,
                trigger=entry.trigger,
                scheduled_time=entry.scheduled_time,
                start_time=entry.start_time,
                completion_time=entry.completion_time,
            )
        )
    return found


def schedule_events(
    *, before: ScheduleStatus, after: ScheduleStatus, ref: ScheduleRef, now: datetime
) -> list[Notification]:
    """``Suspended`` when the operator's suspension appears; ``Recovered`` when health heals."""
    found: list[Notification] = []
    was, now_s = before.suspended_by_operator, after.suspended_by_operator
    if now_s is not None and now_s.suspended and not (was is not None and was.suspended):
        since = now_s.since or now
        found.append(
            Notification(
                id=event_id(uid=ref.uid, event="Suspended", about=format_time(since)),
                event="Suspended",
                schedule=ref,
                time=since,
                result=after.health.state if after.health else "Unhealthy",
                reason=now_s.reason,
                message=now_s.message,
            )
        )
    old, new = before.health, after.health
    if old is not None and old.state in _UNHEALTHY and new is not None and new.state == "Healthy":
        last = _newest_final(after.history or ())
        found.append(
            Notification(
                id=event_id(
                    uid=ref.uid,
                    event="Recovered",
                    about=_entry_key(last) if last is not None else old.state,
                ),
                event="Recovered",
                schedule=ref,
                time=(last.completion_time if last is not None else None) or now,
                result=new.state,
                reason=new.reason,
                message=new.message,
                job=last.job if last is not None else None,
                trigger=last.trigger if last is not None else None,
                scheduled_time=last.scheduled_time if last is not None else None,
            )
        )
    return found


def _newest_final(history: Sequence[HistoryEntry]) -> HistoryEntry | None:
    return next((e for e in history if e.result != "Running"), None)


def events(
    *, before: ScheduleStatus, after: ScheduleStatus, ref: ScheduleRef, now: datetime
) -> list[Notification]:
    """Every event the write of ``after`` over ``before`` makes, runs first, oldest first."""
    return run_events(before=before, after=after, ref=ref, now=now) + schedule_events(
        before=before, after=after, ref=ref, now=now
    )


def route(
    found: Sequence[Notification], *, subscriptions: Sequence[Subscription]
) -> list[Delivery]:
    """Each event to each sink subscribed to it (a sink listed twice gets it once)."""
    out: list[Delivery] = []
    for notification in found:
        sinks = dict.fromkeys(s.sink for s in subscriptions if notification.event in s.events)
        out.extend(Delivery(sink=sink, notification=notification) for sink in sinks)
    return out
