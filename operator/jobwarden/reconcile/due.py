"""Runs that came due: started, skipped under the concurrency policy, or recorded missed;
and finished Jobs past their history limits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from jobwarden import labels
from jobwarden.api.spec import JobScheduleSpec
from jobwarden.api.status import HistoryEntry, ScheduleStatus
from jobwarden.reconcile.actions import render_job, stop_run
from jobwarden.reconcile.model import Deletion, Note, Observed, Plan, Start
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation
from jobwarden.runs.naming import job_name
from jobwarden.schedule.planning import ON_TIME_TOLERANCE, jitter_delay, plan_catch_up
from jobwarden.schedule.timeline import Timeline

MISSED_RECORD_LIMIT = 10  # history entries written for one batch of missed runs


def schedule_runs(
    plan: Plan,
    obj: Observed,
    status: ScheduleStatus,
    spec: JobScheduleSpec,
    timeline: Timeline,
    jobs: Mapping[str, JobObservation],
    now: datetime,
    stale_seconds: int | None,
) -> datetime | None:
    """Start, skip or record as missed every run due by now; returns the new cursor."""
    cursor = status.last_schedule_time  # orphans were adopted by ``plan`` already
    if spec.max_executions is not None and hist.counters(status).scheduled >= spec.max_executions:
        return cursor  # used up: the runs after it are not missed, they do not exist
    # A jittered run wakes late on purpose: that lateness is not missing the run.
    jitter = spec.jitter_seconds or 0
    deadline = spec.starting_deadline_seconds
    due = plan_catch_up(
        timeline,
        policy=spec.catch_up,
        last_scheduled=cursor,
        anchor=obj.created,
        now=now,
        starting_deadline_seconds=None if deadline is None else deadline + jitter,
        tolerance=ON_TIME_TOLERANCE + timedelta(seconds=jitter),
    )
    starts = list(due.start)
    # The next run only bounds a jitter; without one it is not looked up (a cron search each).
    if starts:
        newest = starts[-1]
        delay = jitter_delay(
            key=obj.key,
            scheduled=newest,
            next_run=timeline.next_after(newest) if spec.jitter_seconds else None,
            jitter_seconds=spec.jitter_seconds,
        )
        if now < newest + timedelta(seconds=delay):
            plan.wake(newest + timedelta(seconds=delay))
            starts.pop()
    missed = due.missed
    if due.missed_count:
        for run in missed[-MISSED_RECORD_LIMIT:]:
            hist.record(
                status,
                HistoryEntry(
                    trigger="Schedule",
                    scheduled_time=run,
                    result="Missed",
                    reason="NotStarted",
                    message=missed_reason(spec),
                ),
            )
        hist.counters(status).missed += due.missed_count
        plan.finished.extend(
            hist.Transition("", "Missed", None, None, None) for _ in range(due.missed_count)
        )
        plan.notes.append(
            Note(
                "Warning",
                "MissedRuns",
                f"{due.missed_count} run(s) not started ({missed_reason(spec)})",
            )
        )
        cursor = max([cursor, missed[-1]] if cursor else [missed[-1]]) if missed else cursor
    if spec.concurrency_policy == "Replace" and len(starts) > 1:
        # Each would replace the one before it at once: only the newest gets a Job
        # (a Job created and deleted in one reconcile would run for nothing).
        for run in starts[:-1]:
            late = now - run > ON_TIME_TOLERANCE + timedelta(seconds=jitter)
            hist.record(
                status,
                HistoryEntry(
                    trigger="CatchUp" if late else "Schedule",
                    scheduled_time=run,
                    result="Skipped",
                    reason="ConcurrencyReplace",
                    message="A newer due run replaces it.",
                ),
            )
            hist.counters(status).skipped += 1
            plan.finished.append(hist.Transition("", "Skipped", None, None, None))
        plan.notes.append(
            Note(
                "Normal",
                "Skipped",
                f"{len(starts) - 1} due run(s) skipped: the newest replaces them "
                "(concurrencyPolicy Replace)",
            )
        )
        cursor = starts[-2] if cursor is None else max(cursor, starts[-2])
        starts = starts[-1:]
    for run in starts:
        counts = hist.counters(status)
        if spec.max_executions is not None and counts.scheduled >= spec.max_executions:
            break
        cursor = run if cursor is None else max(cursor, run)
        on_time = now - run <= ON_TIME_TOLERANCE + timedelta(seconds=jitter)
        trigger = labels.TRIGGER_SCHEDULE if on_time else labels.TRIGGER_CATCH_UP
        active = hist.running(status)
        if active and spec.concurrency_policy == "Forbid":
            hist.record(
                status,
                HistoryEntry(
                    trigger=trigger,  # type: ignore[arg-type]
                    scheduled_time=run,
                    result="Skipped",
                    reason="ConcurrencyForbid",
                    message=f"{len(active)} run(s) still active",
                ),
            )
            counts.skipped += 1
            plan.finished.append(hist.Transition("", "Skipped", None, None, None))
            plan.notes.append(
                Note(
                    "Normal", "Skipped", f"Run at {run:%Y-%m-%dT%H:%M:%SZ} skipped: a run is active"
                )
            )
            continue
        if active and spec.concurrency_policy == "Replace":
            # A run this plan has just started (a run-now) is not a previous run:
            # replacing it would create and delete its Job in one plan.
            started = {s.body["metadata"]["name"] for s in plan.starts}
            for entry in active:
                if entry.job in started:
                    continue
                stop_run(
                    plan,
                    status,
                    entry,
                    result="Terminated",
                    reason="Replaced",
                    message="Replaced by a newer run (concurrencyPolicy Replace).",
                    now=now,
                )
                plan.notes.append(
                    Note(
                        "Normal",
                        "Replaced",
                        f"Job {entry.job} terminated: replaced by the run at "
                        f"{run:%Y-%m-%dT%H:%M:%SZ}",
                    )
                )
        name = job_name(schedule=obj.name, scheduled=run, trigger=trigger)
        delay = jitter_delay(
            key=obj.key,
            scheduled=run,
            next_run=timeline.next_after(run) if spec.jitter_seconds else None,
            jitter_seconds=spec.jitter_seconds,
        )
        if name not in jobs:
            plan.starts.append(
                Start(
                    render_job(obj, spec, name, run, trigger, stale_seconds),
                    run + timedelta(seconds=delay),
                )
            )
        hist.record(
            status,
            HistoryEntry(
                job=name,
                trigger=trigger,  # type: ignore[arg-type]
                scheduled_time=run,
                result="Running",
            ),
        )
        counts.scheduled += 1
        plan.notes.append(Note("Normal", "Started", f"Started Job {name} ({trigger})"))
    return cursor


def missed_reason(spec: JobScheduleSpec) -> str:
    if spec.catch_up == "None":
        return "catchUp is None"
    if spec.starting_deadline_seconds is not None:
        return f"past startingDeadlineSeconds ({spec.starting_deadline_seconds}s)"
    return "catchUp Latest starts only the most recent"


def delete_old_jobs(plan: Plan, spec: JobScheduleSpec, jobs: Mapping[str, JobObservation]) -> None:
    """Finished Jobs beyond the CronJob-style limits go, newest kept."""
    deleting = {d.job for d in plan.deletes}
    finished = sorted(
        (o for o in jobs.values() if o.finished and o.name not in deleting),
        key=lambda o: (
            o.finish_time
            or o.scheduled_time
            or datetime.min.replace(tzinfo=o.scheduled_time.tzinfo if o.scheduled_time else None)
        ),
        reverse=True,
    )
    for result, limit in (
        ("Succeeded", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ):
        for obs in [o for o in finished if o.result == result][limit:]:
            plan.deletes.append(Deletion(obs.name, None, False, "HistoryLimit"))
