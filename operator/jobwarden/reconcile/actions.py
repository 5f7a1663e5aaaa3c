"""Action annotations, stale runs and the operator's own suspension: the parts of a plan
that act on runs already going."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from jobwarden import labels
from jobwarden.api.spec import JobScheduleSpec, parse_duration
from jobwarden.api.status import HistoryEntry, ScheduleStatus, SuspendedByOperator
from jobwarden.reconcile.model import Deletion, Note, Observed, Plan, Policy, Start
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation, build_job
from jobwarden.runs.naming import job_name


def stale_threshold(spec: JobScheduleSpec | None, policy: Policy) -> timedelta:
    if spec is not None and spec.stale_after:
        return parse_duration(spec.stale_after)
    return policy.default_stale_after


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _new_token(obj: Observed, status: ScheduleStatus, annotation: str) -> str | None:
    """A token value in an action annotation that has not fired yet."""
    token = (obj.annotations.get(annotation) or "").strip()
    if not token:
        return None
    handled = status.handled_actions or {}
    return None if handled.get(annotation) == _token_hash(token) else token


def _mark_handled(status: ScheduleStatus, annotation: str, token: str) -> None:
    status.handled_actions = {**(status.handled_actions or {}), annotation: _token_hash(token)}


def stop_run(
    plan: Plan,
    status: ScheduleStatus,
    entry: HistoryEntry,
    *,
    result: str,
    reason: str,
    message: str,
    now: datetime,
    grace: int | None = None,
    force: bool = False,
) -> None:
    """End a Running entry by deleting its Job (and so its pods)."""
    plan.deletes.append(Deletion(entry.job or "", grace, force, reason))
    entry.result = result  # type: ignore[assignment]
    entry.reason, entry.message, entry.completion_time = reason, message, now
    if entry.start_time is not None:
        entry.duration_seconds = max(0.0, (now - entry.start_time).total_seconds())
    hist.tally(status, [result])
    plan.finished.append(
        hist.Transition(entry.job or "", result, entry.duration_seconds, reason, message)
    )


def handle_actions(
    plan: Plan,
    obj: Observed,
    status: ScheduleStatus,
    spec: JobScheduleSpec | None,
    jobs: Mapping[str, JobObservation],
    now: datetime,
    stale_seconds: int | None,
) -> None:
    token = _new_token(obj, status, labels.TERMINATE_ANNOTATION)
    if token is not None:
        grace_text = obj.annotations.get(labels.TERMINATE_GRACE_ANNOTATION, "").strip()
        grace = int(grace_text) if grace_text.isdigit() else None
        stopped = hist.running(status)
        for entry in stopped:
            stop_run(
                plan,
                status,
                entry,
                result="Terminated",
                reason="TerminateRequested",
                message=f"Terminated on request (token {token[:40]}).",
                now=now,
                grace=grace,
                force=grace == 0,
            )
        plan.notes.append(
            Note(
                "Normal",
                "Terminated",
                f"Terminate requested: {len(stopped)} active run(s) stopped"
                + (" (pods force-deleted)" if grace == 0 else ""),
            )
        )
        plan.force_stuck_pods = plan.force_stuck_pods or grace == 0
        _mark_handled(status, labels.TERMINATE_ANNOTATION, token)

    token = _new_token(obj, status, labels.RESUME_ANNOTATION)
    if token is not None:
        suspension = status.suspended_by_operator
        if suspension is not None and suspension.suspended:
            status.suspended_by_operator = SuspendedByOperator(
                suspended=False, since=now, reason="ResumeRequested"
            )
            plan.notes.append(Note("Normal", "Resumed", "Suspension lifted on request."))
        _mark_handled(status, labels.RESUME_ANNOTATION, token)

    token = _new_token(obj, status, labels.RUN_NOW_ANNOTATION)
    if token is not None and spec is not None:
        name = job_name(
            schedule=obj.name, scheduled=now, trigger=labels.TRIGGER_MANUAL, token=token
        )
        if name not in jobs and hist.find(status, name) is None:
            plan.starts.append(
                Start(render_job(obj, spec, name, now, labels.TRIGGER_MANUAL, stale_seconds), now)
            )
            hist.record(
                status,
                HistoryEntry(
                    job=name,
                    trigger="Manual",
                    scheduled_time=now,
                    result="Running",
                    reason="RunNow",
                ),
            )
            hist.counters(status).manual += 1
            plan.notes.append(Note("Normal", "ManualRun", f"Run requested: started Job {name}"))
        _mark_handled(status, labels.RUN_NOW_ANNOTATION, token)


def adopt_manual(obj: Observed, status: ScheduleStatus, jobs: Mapping[str, JobObservation]) -> None:
    """Record run-now Jobs whose status write was lost.

    Such a Job exists but neither its token nor its run reached status;
    without this the run would never be counted or shown. Adopted: the Job of
    the token not handled yet, and any unrecorded manual Job still running
    (history never drops a Running entry, so that one was never recorded). A
    finished one of an older token cannot be told from one trimmed from
    history, and is left alone. Done before merging Job outcomes, so a Job
    that finished meanwhile is settled in the same plan.
    """
    token = _new_token(obj, status, labels.RUN_NOW_ANNOTATION)
    current = (
        None
        if token is None
        else job_name(
            schedule=obj.name, scheduled=obj.created, trigger=labels.TRIGGER_MANUAL, token=token
        )
    )
    known = {e.job for e in hist.history(status)}
    lost = [
        o
        for o in jobs.values()
        if o.trigger == labels.TRIGGER_MANUAL
        and o.name not in known
        and (o.name == current or not o.finished)
    ]
    for seen in sorted(lost, key=lambda o: (o.scheduled_time or obj.created, o.name)):
        hist.record(
            status,
            HistoryEntry(
                job=seen.name,
                trigger="Manual",
                scheduled_time=seen.scheduled_time,
                start_time=seen.start_time,
                result="Running",
                reason="RunNow",
            ),
        )
        hist.counters(status).manual += 1


def render_job(
    obj: Observed,
    spec: JobScheduleSpec,
    name: str,
    scheduled: datetime,
    trigger: str,
    stale_seconds: int | None,
) -> dict[str, Any]:
    return build_job(
        schedule_name=obj.name,
        schedule_uid=obj.uid,
        namespace=obj.namespace,
        job_template=spec.job_template,
        scheduled=scheduled,
        trigger=trigger,
        name=name,
        stale_after_seconds=stale_seconds,
    )


def handle_stale(
    plan: Plan,
    status: ScheduleStatus,
    spec: JobScheduleSpec | None,
    jobs: Mapping[str, JobObservation],
    now: datetime,
    policy: Policy,
    threshold: timedelta,
) -> None:
    action = "Report" if policy.dry_run or (spec and spec.stale_action == "Report") else "Terminate"
    for entry in hist.running(status):
        obs = jobs.get(entry.job or "")
        start = (obs.start_time if obs else None) or entry.start_time
        if start is None:
            continue
        deadline = start + threshold
        if now < deadline:
            plan.wake(deadline)
            continue
        message = f"Active for more than {threshold} (the stale threshold)."
        if action == "Terminate":
            stop_run(
                plan,
                status,
                entry,
                result="Stale",
                reason="StaleTerminated",
                message=message,
                now=now,
            )
            plan.notes.append(Note("Warning", "StaleTerminated", f"Job {entry.job}: {message}"))
        elif entry.reason != "StaleReported":
            entry.reason, entry.message = "StaleReported", message
            hist.counters(status).stale += 1
            plan.finished.append(
                hist.Transition(entry.job or "", "StaleReported", None, entry.reason, message)
            )
            plan.notes.append(Note("Warning", "StaleReported", f"Job {entry.job}: {message}"))


def suspension_holds(status: ScheduleStatus, obj: Observed) -> bool:
    """Whether the operator's own suspension holds; a spec change lifts it."""
    s = status.suspended_by_operator
    if s is None or not s.suspended:
        return False
    if s.generation is not None and s.generation != obj.generation:
        status.suspended_by_operator = SuspendedByOperator(
            suspended=False, since=s.since, reason="SpecChanged"
        )
        return False
    return True
