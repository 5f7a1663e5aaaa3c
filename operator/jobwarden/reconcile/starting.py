"""A step of a plan: the start guard over the schedule's running runs.

A run whose pods have not run by its start deadline (written on its Job at
creation) ends ``NeverStarted`` with the reason its pods give, its Job
deleted, like a stale run; under ``staleAction: Report`` (or the operator's
dry run) it is marked once and a Warning emitted, and it goes on waiting.
``NeverStarted`` counts as a failure for health and ``suspendAfterFailures``.

Whether a pod ran is read from the Job's status; only a run that the status
cannot clear past its deadline needs its pods read, which the caller does
(``Inputs.probed``). A run not yet probed is looked at again shortly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from jobwarden.api.status import MESSAGE_LIMIT, ScheduleStatus, clip
from jobwarden.reconcile.model import Deletion, Effects, Inputs, Note, evolve
from jobwarden.runs import history as hist
from jobwarden.safety.start import describe, start_deadline_at

NEVER_STARTED: Final = "NeverStarted"
REPORTED: Final = "NotStartedReported"
_MARKED: Final = frozenset({REPORTED, "StaleReported"})
# How soon a plan that lacked a run's pod listing asks to be made again.
PROBE_RETRY: Final = timedelta(seconds=5)


def guard_starts(inp: Inputs, status: ScheduleStatus) -> tuple[ScheduleStatus, Effects]:
    """End (or report) the runs whose pods did not start in time; wake at the next deadline."""
    now = inp.now
    history = list(status.history or [])
    counts = status.executions
    deletes: list[Deletion] = []
    notes: list[Note] = []
    finished: list[hist.Transition] = []
    ended: list[str] = []
    wake: list[datetime] = []
    reporting = inp.policy.dry_run or (inp.spec is not None and inp.spec.stale_action == "Report")
    for i, entry in enumerate(history):
        obs = inp.jobs.get(entry.job or "") if entry.result == "Running" else None
        if obs is None or obs.start_deadline is None or entry.reason in _MARKED:
            continue  # marked once (not started, or stale) is enough
        at = start_deadline_at(
            created=obs.created, deadline=obs.start_deadline, started=obs.pods_started
        )
        if at is None:
            continue
        if now < at:
            wake.append(at)
            continue
        if obs.name not in inp.probed:
            wake.append(now + PROBE_RETRY)
            continue
        why = inp.probed[obs.name]
        if why is None:
            continue  # a pod runs, though not ready: the stale threshold holds it
        message = describe(why, deadline=obs.start_deadline)
        if reporting:
            marked = clip(f"{why.reason}: {message}", MESSAGE_LIMIT)
            history[i] = entry.model_copy(update={"reason": REPORTED, "message": marked})
            counts = hist.tally(counts, (), never_started=1)
            finished.append(hist.Transition(obs.name, REPORTED, None, REPORTED, message))
        else:
            deletes.append(Deletion(obs.name, None, False, NEVER_STARTED))
            history[i], transition = hist.end(
                entry, result=NEVER_STARTED, reason=why.reason, message=message, now=now
            )
            finished.append(transition)
            ended.append(NEVER_STARTED)
        notes.append(Note("Warning", NEVER_STARTED, f"Job {obs.name}: {why.reason}: {message}"))
    guarded = evolve(status, history=history, executions=hist.tally(counts, ended))
    return guarded, Effects(
        deletes=tuple(deletes),
        notes=tuple(notes),
        finished=tuple(finished),
        wake_at=min(wake) if wake else None,
    )
