"""Step 1 of a plan: fold what the Jobs did into the status.

Adopt the runs whose status write was lost (scheduled orphans and manual
runs), give Running entries their Jobs' outcomes, and end the runs whose
create the API refused. Adoption comes first, so that a Job which finished
meanwhile gets its result in this plan rather than at the next wake-up.
"""

from __future__ import annotations

import hashlib

from jobwarden import labels
from jobwarden.api.status import ScheduleStatus
from jobwarden.reconcile.model import Deletion, Effects, Inputs, Note, Refusal, evolve
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation
from jobwarden.runs.naming import job_name


def new_token(inp: Inputs, status: ScheduleStatus, annotation: str) -> str | None:
    """A token value in an action annotation that has not fired yet."""
    token = (inp.obj.annotations.get(annotation) or "").strip()
    if not token:
        return None
    handled = status.handled_actions or {}
    return None if handled.get(annotation) == token_hash(token) else token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def refusal_note(job: str, refusal: Refusal) -> Note:
    """The Event for a run whose create was refused: it ends Failed with the API's word."""
    return Note("Warning", refusal.reason, f"Job {job} not created: {refusal.message}")


def foreign_note(job: JobObservation) -> Note:
    """The Event for a Job under this schedule's label that it does not own."""
    return Note(
        "Warning",
        "ForeignJob",
        f"Job {job.name} carries this schedule's labels but is not owned by it "
        "(no ownerReference to this JobSchedule's uid): not adopted, deleted or counted",
    )


def fold_jobs(inp: Inputs, status: ScheduleStatus) -> tuple[ScheduleStatus, Effects]:
    """The status with what the Jobs did folded in; the Events and removals that brings."""
    obj = inp.obj
    history = status.history or []
    room = hist.ACTIVE_LIMIT - len(hist.running(history))
    history, cursor, orphans = hist.adopt_orphans(
        history, jobs=inp.jobs.values(), cursor=status.last_schedule_time, room=room
    )
    token = new_token(inp, status, labels.RUN_NOW_ANNOTATION)
    current = (
        None
        if token is None
        else job_name(
            schedule=obj.name, scheduled=obj.created, trigger=labels.TRIGGER_MANUAL, token=token
        )
    )
    history, manual = hist.adopt_manual(
        history, jobs=inp.jobs.values(), current=current, created=obj.created, room=room - orphans
    )

    finished: list[hist.Transition] = []
    notes: list[Note] = [foreign_note(o) for o in inp.foreign if o.name not in inp.warned]
    if inp.refused:
        ended = []
        for entry in history:
            refusal = inp.refused.get(entry.job or "") if entry.result == "Running" else None
            if refusal is not None:
                entry, transition = hist.end(
                    entry,
                    result="Failed",
                    reason=refusal.reason,
                    message=refusal.message,
                    now=inp.now,
                )
                finished.append(transition)
                notes.append(refusal_note(entry.job or "", refusal))
            ended.append(entry)
        history = ended
    history, merged = hist.merge_observations(history, jobs=inp.jobs, pending=inp.pending)
    finished += merged

    deletes: list[Deletion] = []
    for t in merged:
        if t.result == "Stale":
            # The Job controller stopped it at the threshold: the same outcome as
            # when the operator does (one reason, one Event, the Job removed),
            # whichever of the two got there first.
            notes.append(Note("Warning", "StaleTerminated", f"Job {t.job}: {t.message}"))
            deletes.append(Deletion(t.job, None, False, "StaleTerminated"))
        elif t.result in ("Succeeded", "Failed"):
            kind = "Normal" if t.result == "Succeeded" else "Warning"
            detail = f": {t.reason}" if t.reason and t.result != "Succeeded" else ""
            notes.append(Note(kind, t.result, f"Job {t.job} {t.result.lower()}{detail}"))

    counts = hist.tally(
        status.executions, (t.result for t in finished), scheduled=orphans, manual=manual
    )
    folded = evolve(status, history=history, last_schedule_time=cursor, executions=counts)
    return folded, Effects(deletes=tuple(deletes), notes=tuple(notes), finished=tuple(finished))
