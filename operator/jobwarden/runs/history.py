"""A schedule's run history, kept in status and brought up to date from its Jobs.

History outlives Jobs (finished Jobs are deleted past their limits), so it is
updated incrementally: an entry is written when a run starts, is skipped or
missed, and a ``Running`` entry takes its final result from the Job's
conditions once. Final entries never change again, which is what makes the
counters safe to increment from a transition.

Every function here is pure: it reads a history (newest first) and returns a
new one, never editing an entry or a list it was given, so that each step of
a plan can be tested alone and an input can be shared between steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from jobwarden.api.status import (
    MESSAGE_LIMIT,
    REASON_LIMIT,
    ActiveRun,
    Executions,
    HistoryEntry,
    clip,
)
from jobwarden.labels import TRIGGER_CATCH_UP, TRIGGER_MANUAL, TRIGGER_SCHEDULE
from jobwarden.runs.jobs import JobObservation

FINAL_FAILURES = frozenset({"Failed", "Stale", "NeverStarted", "Terminated"})
STALE_TERMINATED = "StaleTerminated"
# The most runs of one schedule that may be in progress at once. Runs whose
# Jobs never start (a suspended or queued template) would otherwise pile up in
# status.active and status.history with every due time; runs beyond this are
# recorded Skipped (reason ACTIVE_LIMIT_REASON) instead of started.
ACTIVE_LIMIT = 100
ACTIVE_LIMIT_REASON = "ActiveLimit"
# status.history's maxItems in the CRD: trim never keeps more, Running or not.
HISTORY_MAX = 1000

History = list[HistoryEntry]  # newest first; a new list from every function here


@dataclass(frozen=True, slots=True)
class Transition:
    """A run that reached its final result in this reconcile."""

    job: str
    result: str
    duration_seconds: float | None
    reason: str | None
    message: str | None


def find(history: Sequence[HistoryEntry], job: str) -> HistoryEntry | None:
    return next((e for e in history if e.job == job), None)


def _finish(entry: HistoryEntry, obs: JobObservation) -> tuple[HistoryEntry, Transition]:
    stale = obs.result == "Failed" and obs.stale_deadline
    result = "Stale" if stale else obs.result
    if stale:
        # Read the same as a run the operator stopped itself: which of the two
        # reached the threshold first is a race, not something users should see.
        reason: str | None = STALE_TERMINATED
        message: str | None = (
            "Active for longer than the stale threshold; the Job controller "
            "stopped it (activeDeadlineSeconds)."
        )
    else:
        reason = obs.reason or ("Completed" if result == "Succeeded" else entry.reason)
        message = obs.message
    done = entry.model_copy(
        update={
            "result": result,
            "start_time": obs.start_time or entry.start_time,
            "completion_time": obs.finish_time,
            "duration_seconds": obs.duration_seconds,
            "reason": clip(reason, REASON_LIMIT),
            "message": clip(message, MESSAGE_LIMIT),
        }
    )
    return done, Transition(
        done.job or "", result, done.duration_seconds, done.reason, done.message
    )


def end(
    entry: HistoryEntry, *, result: str, reason: str, message: str, now: datetime
) -> tuple[HistoryEntry, Transition]:
    """A Running entry ended at ``now`` by the operator (terminated, stale, refused)."""
    duration = None
    if entry.start_time is not None:
        duration = max(0.0, (now - entry.start_time).total_seconds())
    done = entry.model_copy(
        update={
            "result": result,
            "reason": clip(reason, REASON_LIMIT),
            "message": clip(message, MESSAGE_LIMIT),
            "completion_time": now,
            "duration_seconds": duration,
        }
    )
    return done, Transition(done.job or "", result, duration, done.reason, done.message)


def merge_observations(
    history: Sequence[HistoryEntry],
    *,
    jobs: Mapping[str, JobObservation],
    pending: frozenset[str],
) -> tuple[History, list[Transition]]:
    """Bring ``Running`` entries up to date from their Jobs; what finished.

    A Running entry whose Job is gone, and not just created by this process
    (``pending``: the watch has not shown it yet), was deleted behind the
    operator's back; it ends ``Terminated``.
    """
    done: list[Transition] = []
    merged: list[HistoryEntry] = []
    for entry in history:
        if entry.result == "Running" and entry.job is not None:
            obs = jobs.get(entry.job)
            if obs is None:
                if entry.job not in pending:
                    entry = entry.model_copy(
                        update={
                            "result": "Terminated",
                            "reason": "JobDeleted",
                            "message": "The Job was deleted before it finished.",
                        }
                    )
                    done.append(
                        Transition(entry.job or "", "Terminated", None, entry.reason, entry.message)
                    )
            elif obs.finished:
                entry, transition = _finish(entry, obs)
                done.append(transition)
            elif obs.start_time is not None and entry.start_time is None:
                entry = entry.model_copy(update={"start_time": obs.start_time})
        merged.append(entry)
    return merged, done


_COUNTED = {
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Stale": "stale",
    "NeverStarted": "never_started",
    "Terminated": "terminated",
}


def tally(counts: Executions | None, results: Iterable[str] = (), **more: int) -> Executions:
    """``counts`` with each final result counted once, plus ``more`` (e.g. ``manual=1``)."""
    base = counts or Executions()
    update = {key: getattr(base, key) + n for key, n in more.items() if n}
    for result in results:
        field = _COUNTED.get(result)
        if field is not None:
            update[field] = update.get(field, getattr(base, field)) + 1
    return base.model_copy(update=update) if update or counts is None else base


def _recorded(history: Sequence[HistoryEntry]) -> set[str | None]:
    return {e.job for e in history}


def adopt_orphans(
    history: Sequence[HistoryEntry],
    *,
    jobs: Iterable[JobObservation],
    cursor: datetime | None,
    room: int = ACTIVE_LIMIT,
) -> tuple[History, datetime | None, int]:
    """Record scheduled runs whose Job exists but whose status write was lost.

    That happens when the operator stops between creating a Job and writing
    status. Only runs after the cursor are adopted, so Jobs kept longer than
    history is never re-counted; at most ``room`` of them, oldest first (the
    rest wait for room: ``ACTIVE_LIMIT``). Returns the new history, the
    advanced cursor and how many were adopted.
    """
    known = _recorded(history)
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
    )[: max(0, room)]
    if not orphans:
        return list(history), cursor, 0
    adopted = [
        HistoryEntry(
            job=obs.name,
            trigger=obs.trigger,  # type: ignore[arg-type]
            scheduled_time=obs.scheduled_time,
            start_time=obs.start_time,
            result="Running",
        )
        for obs in reversed(orphans)
    ]
    return [*adopted, *history], orphans[-1].scheduled_time, len(adopted)


def adopt_manual(
    history: Sequence[HistoryEntry],
    *,
    jobs: Iterable[JobObservation],
    current: str | None,
    created: datetime,
    room: int = ACTIVE_LIMIT,
) -> tuple[History, int]:
    """Record run-now Jobs whose status write was lost.

    Such a Job exists but neither its token nor its run reached status;
    without this the run would never be counted or shown. Adopted: the Job of
    the token not handled yet (``current``), and any unrecorded manual Job
    still running (history never drops a Running entry, so that one was never
    recorded). A finished one of an older token cannot be told from one
    trimmed from history, and is left alone. At most ``room`` are adopted.
    """
    known = _recorded(history)
    lost = sorted(
        (
            o
            for o in jobs
            if o.trigger == TRIGGER_MANUAL
            and o.name not in known
            and (o.name == current or not o.finished)
        ),
        key=lambda o: (o.scheduled_time or created, o.name),
    )[: max(0, room)]
    adopted = [
        HistoryEntry(
            job=seen.name,
            trigger="Manual",
            scheduled_time=seen.scheduled_time,
            start_time=seen.start_time,
            result="Running",
            reason="RunNow",
        )
        for seen in reversed(lost)
    ]
    return [*adopted, *history], len(adopted)


def running(history: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    return [e for e in history if e.result == "Running" and e.job]


def active_runs(history: Iterable[HistoryEntry]) -> list[ActiveRun]:
    return [
        ActiveRun(name=e.job or "", scheduled_time=e.scheduled_time, start_time=e.start_time)
        for e in running(history)
    ]


def last_result(history: Iterable[HistoryEntry]) -> str | None:
    for entry in history:
        if entry.result != "Running":
            return entry.result
    return None


def trim(history: Sequence[HistoryEntry], *, limit: int) -> History:
    """Keep the newest ``limit`` entries and every run still Running, never over HISTORY_MAX.

    Running entries stay past the limit (their outcome is still to come);
    ``ACTIVE_LIMIT`` keeps them few, and past ``HISTORY_MAX`` the oldest final
    entries give way so that the list fits the CRD's maxItems.
    """
    if len(history) <= limit and len(history) <= HISTORY_MAX:
        return list(history)
    kept = list(history[:limit])
    kept += [e for e in history[limit:] if e.result == "Running"]
    while len(kept) > HISTORY_MAX:
        oldest_final = next(
            (i for i in range(len(kept) - 1, -1, -1) if kept[i].result != "Running"), None
        )
        if oldest_final is None:
            break
        del kept[oldest_final]
    return kept
