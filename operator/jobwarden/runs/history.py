"""A schedule's run history, kept in status and brought up to date from its Jobs.

History outlives Jobs (finished Jobs are deleted past their limits), so it is
updated incrementally: an entry is written when a run starts, is skipped or
missed, and a ``Running`` entry takes its final result from the Job's
conditions once. Final entries never change again, which is what makes the
counters safe to increment from a transition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from jobwarden.api.status import ActiveRun, Executions, HistoryEntry, ScheduleStatus
from jobwarden.labels import TRIGGER_CATCH_UP, TRIGGER_SCHEDULE
from jobwarden.runs.jobs import JobObservation

FINAL_FAILURES = frozenset({"Failed", "Stale", "Terminated"})
STALE_TERMINATED = "StaleTerminated"


@dataclass(frozen=True, slots=True)
class Transition:
    """A run that reached its final result in this reconcile."""

    job: str
    result: str
    duration_seconds: float | None
    reason: str | None
    message: str | None


def counters(status: ScheduleStatus) -> Executions:
    if status.executions is None:
        status.executions = Executions()
    return status.executions


def history(status: ScheduleStatus) -> list[HistoryEntry]:
    if status.history is None:
        status.history = []
    return status.history


def record(status: ScheduleStatus, entry: HistoryEntry) -> None:
    """Add an entry at the top (history is newest first)."""
    history(status).insert(0, entry)


def find(status: ScheduleStatus, job: str) -> HistoryEntry | None:
    return next((e for e in history(status) if e.job == job), None)


def _finish(entry: HistoryEntry, obs: JobObservation) -> Transition:
    stale = obs.result == "Failed" and obs.stale_deadline
    result = "Stale" if stale else obs.result
    entry.result = result
    entry.start_time = obs.start_time or entry.start_time
    entry.completion_time = obs.finish_time
    entry.duration_seconds = obs.duration_seconds
    if stale:
        # Read the same as a run the operator stopped itself: which of the two
        # reached the threshold first is a race, not something users should see.
        entry.reason = STALE_TERMINATED
        entry.message = (
            "Active for longer than the stale threshold; the Job controller "
            "stopped it (activeDeadlineSeconds)."
        )
    else:
        entry.reason = obs.reason or ("Completed" if result == "Succeeded" else entry.reason)
        entry.message = obs.message
    return Transition(entry.job or "", result, entry.duration_seconds, entry.reason, entry.message)


def merge_observations(
    status: ScheduleStatus,
    *,
    jobs: Mapping[str, JobObservation],
    pending: frozenset[str],
) -> list[Transition]:
    """Bring ``Running`` entries up to date from their Jobs; count what finished.

    A Running entry whose Job is gone, and not just created by this process
    (``pending``: the watch has not shown it yet), was deleted behind the
    operator's back; it ends ``Terminated``.
    """
    done: list[Transition] = []
    for entry in history(status):
        if entry.result != "Running" or entry.job is None:
            continue
        obs = jobs.get(entry.job)
        if obs is None:
            if entry.job in pending:
                continue
            entry.result = "Terminated"
            entry.reason = "JobDeleted"
            entry.message = "The Job was deleted before it finished."
            done.append(Transition(entry.job, "Terminated", None, entry.reason, entry.message))
        elif obs.finished:
            done.append(_finish(entry, obs))
        elif obs.start_time is not None and entry.start_time is None:
            entry.start_time = obs.start_time
    tally(status, (t.result for t in done))
    return done


def tally(status: ScheduleStatus, results: Iterable[str]) -> None:
    c = counters(status)
    for result in results:
        if result == "Succeeded":
            c.succeeded += 1
        elif result == "Failed":
            c.failed += 1
        elif result == "Stale":
            c.stale += 1
        elif result == "Terminated":
            c.terminated += 1


def adopt_orphans(
    status: ScheduleStatus, *, jobs: Iterable[JobObservation], cursor: datetime | None
) -> datetime | None:
    """Record scheduled runs whose Job exists but whose status write was lost.

    That happens when the operator stops between creating a Job and writing
    status. Only runs after the cursor are adopted, so Jobs kept longer than
    history is never re-counted. Returns the advanced cursor.
    """
    known = {e.job for e in history(status)}
    orphans = sorted(
        (
            o
            for o in jobs
            if o.trigger in (TRIGGER_SCHEDULE, TRIGGER_CATCH_UP)
            and o.scheduled_time is not None
            and (cursor is None or o.scheduled_time > cursor)
            and o.name not in known
        ),
        key=lambda o: o.scheduled_time or datetime.min,
    )
    for obs in orphans:
        entry = HistoryEntry(
            job=obs.name,
            trigger=obs.trigger,  # type: ignore[arg-type]
            scheduled_time=obs.scheduled_time,
            start_time=obs.start_time,
            result="Running",
        )
        record(status, entry)
        counters(status).scheduled += 1
        cursor = obs.scheduled_time
    return cursor


def running(status: ScheduleStatus) -> list[HistoryEntry]:
    return [e for e in history(status) if e.result == "Running" and e.job]


def active_runs(status: ScheduleStatus) -> list[ActiveRun]:
    return [
        ActiveRun(name=e.job or "", scheduled_time=e.scheduled_time, start_time=e.start_time)
        for e in running(status)
    ]


def last_result(status: ScheduleStatus) -> str | None:
    for entry in history(status):
        if entry.result not in ("Running",):
            return entry.result
    return None


def trim(status: ScheduleStatus, *, limit: int) -> None:
    """Keep the newest ``limit`` entries, but never drop a run still Running."""
    entries = history(status)
    if len(entries) <= limit:
        return
    kept = entries[:limit]
    kept += [e for e in entries[limit:] if e.result == "Running"]
    status.history = kept
