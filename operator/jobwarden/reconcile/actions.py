"""Step 2 of a plan: act on runs already going.

Action annotations (terminate, resume, run-now), the lifting of the
operator's own suspension by a spec change, and stale runs. Also the one way
a run begins (``launch``), shared with the runs that come due, so that the
concurrency cap and refused names hold for manual and scheduled runs alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobwarden import labels
from jobwarden.api.spec import JobScheduleSpec, parse_duration
from jobwarden.api.status import HistoryEntry, ScheduleStatus, SuspendedByOperator, Trigger
from jobwarden.reconcile.fold import new_token, refusal_note, token_hash
from jobwarden.reconcile.model import Deletion, Effects, Inputs, Note, Policy, Start, evolve
from jobwarden.runs import history as hist
from jobwarden.runs.context import RunContext
from jobwarden.runs.jobs import build_job
from jobwarden.runs.naming import job_name


def stale_threshold(spec: JobScheduleSpec | None, policy: Policy) -> timedelta:
    if spec is not None and spec.stale_after:
        return parse_duration(spec.stale_after)
    return policy.default_stale_after


def start_deadline(spec: JobScheduleSpec | None, policy: Policy) -> timedelta:
    if spec is not None and spec.start_deadline:
        return parse_duration(spec.start_deadline)
    return policy.default_start_deadline


GRACE_MAX = 999_999_999  # seconds (nine digits, some 31 years): any more is a typo


def parse_grace(value: str | None) -> tuple[int | None, str | None]:
    """The pods' deletion grace period a terminate asks for, and what is wrong with it.

    Unset or blank: None (each pod's own grace period). A whole number of seconds
    from 0 to ``GRACE_MAX`` in ASCII digits is used; anything else (negative,
    exponent, words, too many digits) is ignored: the terminate is graceful, and
    the problem comes back to be reported as a Warning naming the annotation.
    The value is read only when a terminate fires, so it is reported once per
    terminate request, not on every reconcile.
    """
    text = (value or "").strip()
    if not text:
        return None, None
    # Nine digits at most: int() of thousands of digits raises (and costs) before any compare.
    if text.isascii() and text.isdigit() and len(text) <= len(str(GRACE_MAX)):
        return int(text), None
    shown = text if len(text) <= 40 else text[:40] + "..."
    return None, (
        f"{labels.TERMINATE_GRACE_ANNOTATION}={shown!r} ignored: not a whole number of "
        f"seconds from 0 to {GRACE_MAX}; the runs are terminated gracefully "
        "(each pod's own grace period)"
    )


def previous_scheduled(inp: Inputs, scheduled: datetime) -> datetime | None:
    """The schedule's instant before ``scheduled``: where the run's data interval starts.

    For a manual run (``scheduled`` is when it was asked for) that is the last
    scheduled instant before it, so a run-now covers what came since.
    """
    if inp.timeline is None:
        return None
    return inp.timeline.last_at_or_before(scheduled - _TICK)


_TICK = timedelta(microseconds=1)


def render_job(
    inp: Inputs,
    name: str,
    scheduled: datetime,
    trigger: str,
    upstreams: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    assert inp.spec is not None  # runs start only from a valid spec
    return build_job(
        schedule_name=inp.obj.name,
        schedule_uid=inp.obj.uid,
        namespace=inp.obj.namespace,
        job_template=inp.spec.job_template,
        context=RunContext(
            schedule=inp.obj.name,
            scheduled=scheduled,
            trigger=trigger,
            previous=previous_scheduled(inp, scheduled),
            upstreams=upstreams,
        ),
        name=name,
        stale_after_seconds=inp.stale_seconds,
        start_deadline_seconds=inp.start_seconds,
    )


@dataclass(frozen=True, slots=True)
class Launch:
    """How one run began: its history entry, and the Job to create, if any."""

    entry: HistoryEntry
    start: Start | None
    finished: hist.Transition | None
    note: Note
    counted: str  # the counter it adds to besides scheduled/manual: "", "failed", "skipped"


def launch(
    inp: Inputs,
    *,
    active: int,
    name: str,
    trigger: str,
    scheduled: datetime,
    due: datetime,
    reason: str | None = None,
    upstreams: tuple[tuple[str, str], ...] = (),
) -> Launch:
    """A run that came due (or was requested): started, refused, or over the cap.

    A name the API refused is never created again: its run is Failed with the
    API's message. A run beyond ``ACTIVE_LIMIT`` runs in progress is Skipped.
    A Job that exists (or is being created) is not created twice.
    """
    wire: Trigger = trigger  # type: ignore[assignment]
    refusal = inp.refused.get(name)
    if refusal is not None:
        entry = HistoryEntry(
            job=name,
            trigger=wire,
            scheduled_time=scheduled,
            completion_time=inp.now,
            result="Failed",
            reason=refusal.reason,
            message=refusal.message,
        )
        done = hist.Transition(name, "Failed", None, entry.reason, entry.message)
        return Launch(entry, None, done, refusal_note(name, refusal), "failed")
    if active >= hist.ACTIVE_LIMIT:
        message = f"{active} runs still active (at most {hist.ACTIVE_LIMIT} per schedule)"
        entry = HistoryEntry(
            trigger=wire,
            scheduled_time=scheduled,
            result="Skipped",
            reason=hist.ACTIVE_LIMIT_REASON,
            message=message,
        )
        note = Note(
            "Warning", "Skipped", f"Run at {scheduled:%Y-%m-%dT%H:%M:%SZ} skipped: {message}"
        )
        return Launch(
            entry, None, hist.Transition("", "Skipped", None, None, None), note, "skipped"
        )
    body = None
    if name not in inp.jobs and name not in inp.pending:
        body = Start(render_job(inp, name, scheduled, trigger, upstreams), due, upstreams)
    entry = HistoryEntry(
        job=name, trigger=wire, scheduled_time=scheduled, result="Running", reason=reason
    )
    if trigger == labels.TRIGGER_MANUAL:
        note = Note("Normal", "ManualRun", f"Run requested: started Job {name}")
    elif upstreams:
        jobs = ", ".join(job for job, _ in upstreams)
        note = Note("Normal", "Started", f"Started Job {name} (After {jobs})")
    else:
        note = Note("Normal", "Started", f"Started Job {name} ({trigger})")
    return Launch(entry, body, None, note, "")


def act_on_running(inp: Inputs, status: ScheduleStatus) -> tuple[ScheduleStatus, Effects]:
    """Actions, the lifting of the operator's suspension, and stale runs; the effects'
    wake-up is the nearest stale deadline (what a suspended schedule still wakes for)."""
    obj, now = inp.obj, inp.now
    history = list(status.history or [])
    counts = status.executions
    handled = {
        k: v for k, v in (status.handled_actions or {}).items() if k in labels.ACTION_ANNOTATIONS
    }
    suspension = status.suspended_by_operator
    starts: list[Start] = []
    deletes: list[Deletion] = []
    notes: list[Note] = []
    finished: list[hist.Transition] = []
    ended: list[str] = []  # results of the runs stopped here, to count
    wake: list[datetime] = []
    force = False

    def stop(
        index: int, *, result: str, reason: str, message: str, grace: int | None = None
    ) -> None:
        """End a Running entry by deleting its Job (and so its pods)."""
        entry = history[index]
        deletes.append(Deletion(entry.job or "", grace, grace == 0, reason))
        history[index], transition = hist.end(
            entry, result=result, reason=reason, message=message, now=now
        )
        finished.append(transition)
        ended.append(result)

    token = new_token(inp, status, labels.TERMINATE_ANNOTATION)
    if token is not None:
        grace, problem = parse_grace(obj.annotations.get(labels.TERMINATE_GRACE_ANNOTATION))
        stopped = _running_indexes(history)
        for i in stopped:
            stop(
                i,
                result="Terminated",
                reason="TerminateRequested",
                message=f"Terminated on request (token {token[:40]}).",
                grace=grace,
            )
        notes.append(
            Note(
                "Normal",
                "Terminated",
                f"Terminate requested: {len(stopped)} active run(s) stopped"
                + (" (pods force-deleted)" if grace == 0 else ""),
            )
        )
        if problem is not None:
            notes.append(Note("Warning", "BadGracePeriod", problem))
        force = grace == 0
        handled[labels.TERMINATE_ANNOTATION] = token_hash(token)

    token = new_token(inp, status, labels.RESUME_ANNOTATION)
    if token is not None:
        if suspension is not None and suspension.suspended:
            suspension = SuspendedByOperator(suspended=False, since=now, reason="ResumeRequested")
            notes.append(Note("Normal", "Resumed", "Suspension lifted on request."))
        handled[labels.RESUME_ANNOTATION] = token_hash(token)

    token = new_token(inp, status, labels.RUN_NOW_ANNOTATION)
    if token is not None and inp.spec is not None:
        name = job_name(
            schedule=obj.name, scheduled=now, trigger=labels.TRIGGER_MANUAL, token=token
        )
        if obj.deleting is not None:
            notes.append(
                Note(
                    "Warning",
                    "Deleting",
                    "Run requested, not started: the schedule is being deleted",
                )
            )
        elif name not in inp.jobs and hist.find(history, name) is None:
            run = launch(
                inp,
                active=len(hist.running(history)),
                name=name,
                trigger=labels.TRIGGER_MANUAL,
                scheduled=now,
                due=now,
                reason="RunNow",
            )
            history.insert(0, run.entry)
            starts += [run.start] if run.start else []
            finished += [run.finished] if run.finished else []
            notes.append(run.note)
            counts = hist.tally(counts, (), manual=1, **({run.counted: 1} if run.counted else {}))
        handled[labels.RUN_NOW_ANNOTATION] = token_hash(token)

    if inp.spec is not None and _lifted_by_edit(suspension, obj.generation):
        # A spec change lifts the operator's own suspension.
        assert suspension is not None
        suspension = SuspendedByOperator(
            suspended=False, since=suspension.since, reason="SpecChanged"
        )

    reporting = inp.policy.dry_run or (inp.spec is not None and inp.spec.stale_action == "Report")
    for i in _running_indexes(history):
        entry = history[i]
        obs = inp.jobs.get(entry.job or "")
        start = (obs.start_time if obs else None) or entry.start_time
        if start is None:
            continue
        deadline = start + inp.threshold
        if now < deadline:
            wake.append(deadline)
            continue
        message = f"Active for more than {inp.threshold} (the stale threshold)."
        if not reporting:
            stop(i, result="Stale", reason="StaleTerminated", message=message)
            notes.append(Note("Warning", "StaleTerminated", f"Job {entry.job}: {message}"))
        elif entry.reason != "StaleReported":
            history[i] = entry.model_copy(update={"reason": "StaleReported", "message": message})
            counts = hist.tally(counts, (), stale=1)
            finished.append(
                hist.Transition(entry.job or "", "StaleReported", None, "StaleReported", message)
            )
            notes.append(Note("Warning", "StaleReported", f"Job {entry.job}: {message}"))

    counts = hist.tally(counts, ended)
    keep_handled = handled or status.handled_actions is not None
    acted = evolve(
        status,
        history=history,
        executions=counts,
        handled_actions=handled if keep_handled else None,
        suspended_by_operator=suspension,
    )
    return acted, Effects(
        starts=tuple(starts),
        deletes=tuple(deletes),
        notes=tuple(notes),
        finished=tuple(finished),
        wake_at=min(wake) if wake else None,
        force_stuck_pods=force,
    )


def _running_indexes(history: list[HistoryEntry]) -> list[int]:
    return [i for i, e in enumerate(history) if e.result == "Running" and e.job]


def _lifted_by_edit(s: SuspendedByOperator | None, generation: int) -> bool:
    return bool(s and s.suspended and s.generation is not None and s.generation != generation)
