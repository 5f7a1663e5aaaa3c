"""The decision for one JobSchedule: what to create, delete, record and when to look again.

``plan`` is a pure function of the schedule as the API last showed it, the
slim observations of its Jobs, and the clock. It makes no API calls and knows
nothing of kopf, so every rule of the product is tested here by tables, and
the wiring above only carries the plan out. Reading the steps top to bottom
follows one reconcile: parse the spec, fold in what the Jobs did, handle
actions, stale runs and suspension, start what is due, then render status.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from jobwarden import labels
from jobwarden.api.spec import JobScheduleSpec, SpecError, parse_duration, parse_spec
from jobwarden.api.status import Condition, HistoryEntry, ScheduleStatus, SuspendedByOperator
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation, build_job
from jobwarden.runs.naming import job_name
from jobwarden.safety.health import Outcome, verdict
from jobwarden.schedule.describe import describe
from jobwarden.schedule.planning import ON_TIME_TOLERANCE, is_complete, jitter_delay, plan_catch_up
from jobwarden.schedule.timeline import Timeline, build_timeline

MISSED_RECORD_LIMIT = 10  # history entries written for one batch of missed runs


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The operator settings a decision depends on."""

    default_stale_after: timedelta = timedelta(hours=6)
    unhealthy_after: int = 3
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class Observed:
    """The JobSchedule as the API showed it."""

    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]
    status: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Deletion:
    job: str
    grace_seconds: int | None
    force_pods: bool
    reason: str


@dataclass(frozen=True)
class Note:
    """An Event to record on the JobSchedule."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Start:
    """A Job to create, and the moment it was due (for the lag metric)."""

    body: dict[str, Any]
    due: datetime


@dataclass
class Plan:
    starts: list[Start] = field(default_factory=list)
    deletes: list[Deletion] = field(default_factory=list)
    status: dict[str, Any] | None = None  # the new status, when it changed
    notes: list[Note] = field(default_factory=list)
    finished: list[hist.Transition] = field(default_factory=list)
    wake_at: datetime | None = None
    health: str = "Healthy"
    active: int = 0
    # A force terminate also clears the schedule's pods an earlier graceful
    # delete left Terminating (a lost node never confirms them).
    force_stuck_pods: bool = False

    def wake(self, at: datetime | None) -> None:
        if at is not None and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at


def _load_status(raw: Mapping[str, Any]) -> ScheduleStatus:
    try:
        return ScheduleStatus.model_validate(dict(raw))
    except ValidationError:
        # A status nobody can read is started afresh rather than crashing the schedule.
        return ScheduleStatus()


def _stale_threshold(spec: JobScheduleSpec | None, policy: Policy) -> timedelta:
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


def _stop(plan: Plan, status: ScheduleStatus, entry: HistoryEntry, *, result: str,
          reason: str, message: str, now: datetime, grace: int | None = None,
          force: bool = False) -> None:
    """End a Running entry by deleting its Job (and so its pods)."""
    plan.deletes.append(Deletion(entry.job or "", grace, force, reason))
    entry.result = result  # type: ignore[assignment]
    entry.reason, entry.message, entry.completion_time = reason, message, now
    if entry.start_time is not None:
        entry.duration_seconds = max(0.0, (now - entry.start_time).total_seconds())
    hist.tally(status, [result])
    plan.finished.append(hist.Transition(entry.job or "", result, entry.duration_seconds,
                                         reason, message))


def _handle_actions(plan: Plan, obj: Observed, status: ScheduleStatus,
                    spec: JobScheduleSpec | None, jobs: Mapping[str, JobObservation],
                    now: datetime, stale_seconds: int | None) -> None:
    token = _new_token(obj, status, labels.TERMINATE_ANNOTATION)
    if token is not None:
        grace_text = obj.annotations.get(labels.TERMINATE_GRACE_ANNOTATION, "").strip()
        grace = int(grace_text) if grace_text.isdigit() else None
        stopped = hist.running(status)
        for entry in stopped:
            _stop(plan, status, entry, result="Terminated", reason="TerminateRequested",
                  message=f"Terminated on request (token {token[:40]}).", now=now,
                  grace=grace, force=grace == 0)
        plan.notes.append(Note("Normal", "Terminated",
                               f"Terminate requested: {len(stopped)} active run(s) stopped"
                               + (" (pods force-deleted)" if grace == 0 else "")))
        plan.force_stuck_pods = plan.force_stuck_pods or grace == 0
        _mark_handled(status, labels.TERMINATE_ANNOTATION, token)

    token = _new_token(obj, status, labels.RESUME_ANNOTATION)
    if token is not None:
        suspension = status.suspended_by_operator
        if suspension is not None and suspension.suspended:
            status.suspended_by_operator = SuspendedByOperator(suspended=False, since=now,
                                                               reason="ResumeRequested")
            plan.notes.append(Note("Normal", "Resumed", "Suspension lifted on request."))
        _mark_handled(status, labels.RESUME_ANNOTATION, token)

    token = _new_token(obj, status, labels.RUN_NOW_ANNOTATION)
    if token is not None and spec is not None:
        name = job_name(schedule=obj.name, scheduled=now, trigger=labels.TRIGGER_MANUAL,
                        token=token)
        if name not in jobs and hist.find(status, name) is None:
            plan.starts.append(Start(_job(obj, spec, name, now, labels.TRIGGER_MANUAL,
                                          stale_seconds), now))
            hist.record(status, HistoryEntry(job=name, trigger="Manual", scheduled_time=now,
                                             result="Running", reason="RunNow"))
            hist.counters(status).manual += 1
            plan.notes.append(Note("Normal", "ManualRun", f"Run requested: started Job {name}"))
        _mark_handled(status, labels.RUN_NOW_ANNOTATION, token)


def _adopt_manual(obj: Observed, status: ScheduleStatus,
                  jobs: Mapping[str, JobObservation]) -> None:
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
    current = None if token is None else job_name(
        schedule=obj.name, scheduled=obj.created, trigger=labels.TRIGGER_MANUAL, token=token)
    known = {e.job for e in hist.history(status)}
    lost = [o for o in jobs.values()
            if o.trigger == labels.TRIGGER_MANUAL and o.name not in known
            and (o.name == current or not o.finished)]
    for seen in sorted(lost, key=lambda o: (o.scheduled_time or obj.created, o.name)):
        hist.record(status, HistoryEntry(job=seen.name, trigger="Manual",
                                         scheduled_time=seen.scheduled_time,
                                         start_time=seen.start_time, result="Running",
                                         reason="RunNow"))
        hist.counters(status).manual += 1


def _job(obj: Observed, spec: JobScheduleSpec, name: str, scheduled: datetime, trigger: str,
         stale_seconds: int | None) -> dict[str, Any]:
    return build_job(schedule_name=obj.name, schedule_uid=obj.uid, namespace=obj.namespace,
                     job_template=spec.job_template, scheduled=scheduled, trigger=trigger,
                     name=name, stale_after_seconds=stale_seconds)


def _handle_stale(plan: Plan, status: ScheduleStatus, spec: JobScheduleSpec | None,
                  jobs: Mapping[str, JobObservation], now: datetime, policy: Policy,
                  threshold: timedelta) -> None:
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
            _stop(plan, status, entry, result="Stale", reason="StaleTerminated",
                  message=message, now=now)
            plan.notes.append(Note("Warning", "StaleTerminated", f"Job {entry.job}: {message}"))
        elif entry.reason != "StaleReported":
            entry.reason, entry.message = "StaleReported", message
            hist.counters(status).stale += 1
            plan.finished.append(hist.Transition(entry.job or "", "StaleReported", None,
                                                 entry.reason, message))
            plan.notes.append(Note("Warning", "StaleReported", f"Job {entry.job}: {message}"))


def _suspended(status: ScheduleStatus, obj: Observed) -> bool:
    """Whether the operator's own suspension holds; a spec change lifts it."""
    s = status.suspended_by_operator
    if s is None or not s.suspended:
        return False
    if s.generation is not None and s.generation != obj.generation:
        status.suspended_by_operator = SuspendedByOperator(suspended=False, since=s.since,
                                                           reason="SpecChanged")
        return False
    return True


def _schedule_runs(plan: Plan, obj: Observed, status: ScheduleStatus, spec: JobScheduleSpec,
                   timeline: Timeline, jobs: Mapping[str, JobObservation], now: datetime,
                   stale_seconds: int | None) -> datetime | None:
    """Start, skip or record as missed every run due by now; returns the new cursor."""
    cursor = status.last_schedule_time  # orphans were adopted by ``plan`` already
    if spec.max_executions is not None and hist.counters(status).scheduled >= spec.max_executions:
        return cursor  # used up: the runs after it are not missed, they do not exist
    # A jittered run wakes late on purpose: that lateness is not missing the run.
    jitter = spec.jitter_seconds or 0
    deadline = spec.starting_deadline_seconds
    due = plan_catch_up(timeline, policy=spec.catch_up, last_scheduled=cursor,
                        anchor=obj.created, now=now,
                        starting_deadline_seconds=None if deadline is None else deadline + jitter,
                        tolerance=ON_TIME_TOLERANCE + timedelta(seconds=jitter))
    starts = list(due.start)
    if starts:
        newest = starts[-1]
        delay = jitter_delay(key=obj.key, scheduled=newest, next_run=timeline.next_after(newest),
                             jitter_seconds=spec.jitter_seconds)
        if now < newest + timedelta(seconds=delay):
            plan.wake(newest + timedelta(seconds=delay))
            starts.pop()
    missed = due.missed
    if due.missed_count:
        for run in missed[-MISSED_RECORD_LIMIT:]:
            hist.record(status, HistoryEntry(trigger="Schedule", scheduled_time=run,
                                             result="Missed", reason="NotStarted",
                                             message=_missed_reason(spec)))
        hist.counters(status).missed += due.missed_count
        plan.finished.extend(hist.Transition("", "Missed", None, None, None)
                             for _ in range(due.missed_count))
        plan.notes.append(Note("Warning", "MissedRuns",
                               f"{due.missed_count} run(s) not started ({_missed_reason(spec)})"))
        cursor = max([cursor, missed[-1]] if cursor else [missed[-1]]) if missed else cursor
    if spec.concurrency_policy == "Replace" and len(starts) > 1:
        # Each would replace the one before it at once: only the newest gets a Job
        # (a Job created and deleted in one reconcile would run for nothing).
        for run in starts[:-1]:
            late = now - run > ON_TIME_TOLERANCE + timedelta(seconds=jitter)
            hist.record(status, HistoryEntry(
                trigger="CatchUp" if late else "Schedule", scheduled_time=run, result="Skipped",
                reason="ConcurrencyReplace", message="A newer due run replaces it."))
            hist.counters(status).skipped += 1
            plan.finished.append(hist.Transition("", "Skipped", None, None, None))
        plan.notes.append(Note("Normal", "Skipped",
                               f"{len(starts) - 1} due run(s) skipped: the newest replaces them "
                               "(concurrencyPolicy Replace)"))
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
            hist.record(status, HistoryEntry(trigger=trigger, scheduled_time=run,  # type: ignore[arg-type]
                                             result="Skipped", reason="ConcurrencyForbid",
                                             message=f"{len(active)} run(s) still active"))
            counts.skipped += 1
            plan.finished.append(hist.Transition("", "Skipped", None, None, None))
            plan.notes.append(Note("Normal", "Skipped",
                                   f"Run at {run:%Y-%m-%dT%H:%M:%SZ} skipped: a run is active"))
            continue
        if active and spec.concurrency_policy == "Replace":
            for entry in active:
                _stop(plan, status, entry, result="Terminated", reason="Replaced",
                      message="Replaced by a newer run (concurrencyPolicy Replace).", now=now)
                plan.notes.append(Note("Normal", "Replaced",
                                       f"Job {entry.job} terminated: replaced by the run at "
                                       f"{run:%Y-%m-%dT%H:%M:%SZ}"))
        name = job_name(schedule=obj.name, scheduled=run, trigger=trigger)
        delay = jitter_delay(key=obj.key, scheduled=run, next_run=timeline.next_after(run),
                             jitter_seconds=spec.jitter_seconds)
        if name not in jobs:
            plan.starts.append(Start(_job(obj, spec, name, run, trigger, stale_seconds),
                                     run + timedelta(seconds=delay)))
        hist.record(status, HistoryEntry(job=name, trigger=trigger,  # type: ignore[arg-type]
                                         scheduled_time=run, result="Running"))
        counts.scheduled += 1
        plan.notes.append(Note("Normal", "Started", f"Started Job {name} ({trigger})"))
    return cursor


def _missed_reason(spec: JobScheduleSpec) -> str:
    if spec.catch_up == "None":
        return "catchUp is None"
    if spec.starting_deadline_seconds is not None:
        return f"past startingDeadlineSeconds ({spec.starting_deadline_seconds}s)"
    return "catchUp Latest starts only the most recent"


def _condition(prev: ScheduleStatus, *, type_: str, status: str, reason: str, message: str,
               now: datetime, generation: int) -> Condition:
    old = next((c for c in prev.conditions or [] if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else now
    return Condition(type=type_, status=status, reason=reason,  # type: ignore[arg-type]
                     message=message, last_transition_time=since,
                     observed_generation=generation)


def _delete_old_jobs(plan: Plan, spec: JobScheduleSpec, jobs: Mapping[str, JobObservation]) -> None:
    """Finished Jobs beyond the CronJob-style limits go, newest kept."""
    deleting = {d.job for d in plan.deletes}
    finished = sorted((o for o in jobs.values() if o.finished and o.name not in deleting),
                      key=lambda o: (o.finish_time or o.scheduled_time or datetime.min.replace(
                          tzinfo=o.scheduled_time.tzinfo if o.scheduled_time else None)),
                      reverse=True)
    for result, limit in (("Succeeded", spec.successful_jobs_history_limit),
                          ("Failed", spec.failed_jobs_history_limit)):
        for obs in [o for o in finished if o.result == result][limit:]:
            plan.deletes.append(Deletion(obs.name, None, False, "HistoryLimit"))


def _outcomes(status: ScheduleStatus, since: datetime | None) -> list[Outcome]:
    return [Outcome(e.result, e.completion_time or e.scheduled_time)
            for e in hist.history(status)
            if since is None or (e.completion_time or e.scheduled_time or since) > since]


def _merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch (RFC 7386) that turns status ``old`` into ``new``.

    A merge patch removes only the keys it sets to null, at every depth: a key
    dropped from a nested object (``suspendedByOperator.generation`` after a
    resume, say) would otherwise survive the write and differ from the plan.
    """
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = _merge_patch(before, value)
        else:
            patch[key] = value
    return patch


def plan(*, obj: Observed, jobs: Sequence[JobObservation], pending: frozenset[str],
         now: datetime, policy: Policy) -> Plan:
    """Everything one reconcile of ``obj`` should do at ``now``."""
    result = Plan()
    prev = _load_status(obj.status)
    status = prev.model_copy(deep=True)
    by_name = {j.name: j for j in jobs}

    spec: JobScheduleSpec | None = None
    error: SpecError | None = None
    timeline: Timeline | None = None
    try:
        spec = parse_spec(obj.spec)
        timeline = build_timeline(spec, key=obj.key, created=obj.created)
    except SpecError as exc:
        error, spec = exc, None
    threshold = _stale_threshold(spec, policy) if spec else policy.default_stale_after
    reporting = policy.dry_run or (spec is not None and spec.stale_action == "Report")
    # Only a run that may be terminated gets a deadline the Job controller enforces.
    stale_seconds = None if reporting else max(1, int(threshold.total_seconds()))

    # Adopt Jobs whose status write was lost before merging, so that one which
    # finished meanwhile gets its result now rather than at the next wake-up.
    status.last_schedule_time = hist.adopt_orphans(status, jobs=by_name.values(),
                                                   cursor=status.last_schedule_time)
    _adopt_manual(obj, status, by_name)
    result.finished.extend(hist.merge_observations(status, jobs=by_name, pending=pending))
    for t in result.finished:
        if t.result == "Stale":
            # The Job controller stopped it at the threshold: the same outcome as
            # when the operator does (one reason, one Event, the Job removed),
            # whichever of the two got there first.
            result.notes.append(Note("Warning", "StaleTerminated", f"Job {t.job}: {t.message}"))
            result.deletes.append(Deletion(t.job, None, False, "StaleTerminated"))
        elif t.result in ("Succeeded", "Failed"):
            kind = "Normal" if t.result == "Succeeded" else "Warning"
            result.notes.append(Note(kind, t.result, f"Job {t.job} {t.result.lower()}"
                                     + (f": {t.reason}" if t.reason and t.result != "Succeeded"
                                        else "")))
    _handle_actions(result, obj, status, spec, by_name, now, stale_seconds)
    _handle_stale(result, status, spec, by_name, now, policy, threshold)
    stale_wake = result.wake_at  # what a suspension must still wake for

    phase = "Active"
    cursor = status.last_schedule_time
    next_run: datetime | None = None
    if spec is None or timeline is None:
        phase = "Invalid"
    else:
        suspended = spec.suspend or _suspended(status, obj)
        if not suspended:
            cursor = _schedule_runs(result, obj, status, spec, timeline, by_name, now,
                                    stale_seconds)
        # While suspended, runs due since the cursor are neither started nor recorded
        # missed: resuming hands them to catchUp, so they still count as remaining.
        complete = is_complete(timeline, spec, scheduled_count=hist.counters(status).scheduled,
                               last_scheduled=cursor,
                               now=(cursor or obj.created) if suspended else now)
        if complete:
            phase = "Completed"
        elif suspended:
            phase = "Suspended"
        else:
            next_run = timeline.next_after(max(now, cursor) if cursor else now)
            if next_run is not None:
                delay = jitter_delay(key=obj.key, scheduled=next_run,
                                     next_run=timeline.next_after(next_run),
                                     jitter_seconds=spec.jitter_seconds)
                result.wake(next_run + timedelta(seconds=delay))
        _delete_old_jobs(result, spec, by_name)
        hist.trim(status, limit=spec.history_limit)

    # Health, and the operator's own suspension after repeated failures.
    lifted = status.suspended_by_operator
    since = lifted.since if lifted is not None and not lifted.suspended else None
    health = verdict(results_newest_first=_outcomes(status, None),
                     unhealthy_after=policy.unhealthy_after, invalid=spec is None, now=now)
    if spec is not None and spec.suspend_after_failures and phase == "Active":
        recent = verdict(results_newest_first=_outcomes(status, since),
                         unhealthy_after=policy.unhealthy_after, now=now)
        if recent.consecutive_failures >= spec.suspend_after_failures:
            status.suspended_by_operator = SuspendedByOperator(
                suspended=True, since=now, generation=obj.generation, reason="TooManyFailures",
                message=f"{recent.consecutive_failures} consecutive failed runs "
                        f"(suspendAfterFailures is {spec.suspend_after_failures})")
            result.notes.append(Note("Warning", "SuspendedAfterFailures",
                                     status.suspended_by_operator.message or ""))
            phase, next_run, result.wake_at = "Suspended", None, stale_wake

    status.observed_generation = obj.generation
    status.phase = phase  # type: ignore[assignment]
    status.schedule_description = describe(spec) if spec else None
    status.next_run_time = next_run
    status.last_schedule_time = cursor
    status.health = health
    status.active = hist.active_runs(status)
    status.active_count = len(status.active)
    status.last_result = hist.last_result(status)  # type: ignore[assignment]
    for entry in hist.history(status):
        if entry.result == "Succeeded" and entry.completion_time:
            status.last_successful_time = max(filter(None, [status.last_successful_time,
                                                            entry.completion_time]))
        if entry.result in hist.FINAL_FAILURES and entry.completion_time:
            status.last_failure_time = max(filter(None, [status.last_failure_time,
                                                         entry.completion_time]))
    conditions = [
        _condition(prev, type_="Valid", status="False" if error else "True",
                   reason="InvalidSpec" if error else "SpecValid",
                   message=str(error) if error else "The spec is valid.", now=now,
                   generation=obj.generation),
        _condition(prev, type_="Ready", status="True" if phase == "Active" else "False",
                   reason={"Active": "Scheduling"}.get(phase, phase),
                   message=f"Phase {phase}.", now=now, generation=obj.generation),
    ]
    s = status.suspended_by_operator
    if s is not None:
        conditions.append(_condition(prev, type_="Suspended",
                                     status="True" if s.suspended else "False",
                                     reason=s.reason or "Unknown", message=s.message or "",
                                     now=now, generation=obj.generation))
    status.conditions = conditions
    prev_valid = next((c for c in prev.conditions or [] if c.type == "Valid"), None)
    if error and (prev_valid is None or prev_valid.message != str(error)):
        result.notes.append(Note("Warning", "InvalidSpec", str(error)))

    rendered = status.to_api()
    before = prev.to_api()
    if rendered != before:
        result.status = _merge_patch(obj.status, rendered)
    result.health = health.state
    result.active = status.active_count
    return result
