"""The decision for one JobSchedule: what to create, delete, record and when to look again.

``plan`` is a pure function of the schedule as the API last showed it, the
slim observations of its Jobs, and the clock. It makes no API calls and knows
nothing of kopf, so every rule of the product is tested here by tables, and
the wiring above only carries the plan out. Reading the steps top to bottom
follows one reconcile: parse the spec, fold in what the Jobs did, handle
actions, stale runs and suspension, start what is due, then render status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from jobwarden.api.spec import JobScheduleSpec, SpecError, parse_spec
from jobwarden.api.status import Condition, ScheduleStatus, SuspendedByOperator
from jobwarden.reconcile.actions import (
    adopt_manual,
    handle_actions,
    handle_stale,
    stale_threshold,
    suspension_holds,
)
from jobwarden.reconcile.due import delete_old_jobs, schedule_runs
from jobwarden.reconcile.model import Deletion, Note, Observed, Plan, Policy, Refusal, Start
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation
from jobwarden.safety.health import Outcome, verdict
from jobwarden.schedule.describe import describe
from jobwarden.schedule.planning import is_complete, jitter_delay
from jobwarden.schedule.timeline import Timeline, build_timeline

__all__ = ["Deletion", "Note", "Observed", "Plan", "Policy", "Refusal", "Start", "plan"]


def _load_status(raw: Mapping[str, Any]) -> ScheduleStatus:
    try:
        return ScheduleStatus.model_validate(dict(raw))
    except ValidationError:
        # A status nobody can read is started afresh rather than crashing the schedule.
        return ScheduleStatus()


def _condition(
    prev: ScheduleStatus,
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> Condition:
    old = next((c for c in prev.conditions or [] if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else now
    return Condition(
        type=type_,
        status=status,  # type: ignore[arg-type]
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )


def _outcomes(status: ScheduleStatus, since: datetime | None) -> list[Outcome]:
    return [
        Outcome(e.result, e.completion_time or e.scheduled_time)
        for e in hist.history(status)
        if since is None or (e.completion_time or e.scheduled_time or since) > since
    ]


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


def plan(
    *,
    obj: Observed,
    jobs: Sequence[JobObservation],
    pending: frozenset[str],
    now: datetime,
    policy: Policy,
    refused: Mapping[str, Refusal | str] = MappingProxyType({}),
) -> Plan:
    """Everything one reconcile of ``obj`` should do at ``now``.

    ``refused``: Job names whose create the API refused, with a ``Refusal`` (or
    the API's message alone, meaning ``JobRejected``).
    """
    result = Plan()
    prev = _load_status(obj.status)
    # A second parse is as independent a copy as model_copy(deep=True) (every field is a
    # model, a list of models, a scalar or a dict of strings) at a tenth of the cost.
    status = _load_status(obj.status)
    by_name = {j.name: j for j in jobs}

    spec: JobScheduleSpec | None = None
    error: SpecError | None = None
    timeline: Timeline | None = None
    try:
        spec = parse_spec(obj.spec)
        timeline = build_timeline(spec, key=obj.key, created=obj.created)
    except SpecError as exc:
        error, spec = exc, None
    threshold = stale_threshold(spec, policy) if spec else policy.default_stale_after
    reporting = policy.dry_run or (spec is not None and spec.stale_action == "Report")
    # Only a run that may be terminated gets a deadline the Job controller enforces.
    stale_seconds = None if reporting else max(1, int(threshold.total_seconds()))

    # Adopt Jobs whose status write was lost before merging, so that one which
    # finished meanwhile gets its result now rather than at the next wake-up.
    status.last_schedule_time = hist.adopt_orphans(
        status, jobs=by_name.values(), cursor=status.last_schedule_time
    )
    adopt_manual(obj, status, by_name)
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
            result.notes.append(
                Note(
                    kind,
                    t.result,
                    f"Job {t.job} {t.result.lower()}"
                    + (f": {t.reason}" if t.reason and t.result != "Succeeded" else ""),
                )
            )
    handle_actions(result, obj, status, spec, by_name, now, stale_seconds)
    handle_stale(result, status, spec, by_name, now, policy, threshold)
    stale_wake = result.wake_at  # what a suspension must still wake for

    phase = "Active"
    cursor = status.last_schedule_time
    next_run: datetime | None = None
    if spec is None or timeline is None:
        phase = "Invalid"
    else:
        suspended = spec.suspend or suspension_holds(status, obj)
        if not suspended:
            cursor = schedule_runs(result, obj, status, spec, timeline, by_name, now, stale_seconds)
        # While suspended, runs due since the cursor are neither started nor recorded
        # missed: resuming hands them to catchUp, so they still count as remaining.
        complete = is_complete(
            timeline,
            spec,
            scheduled_count=hist.counters(status).scheduled,
            last_scheduled=cursor,
            now=(cursor or obj.created) if suspended else now,
        )
        if complete:
            phase = "Completed"
        elif suspended:
            phase = "Suspended"
        else:
            next_run = timeline.next_after(max(now, cursor) if cursor else now)
            if next_run is not None:
                delay = jitter_delay(
                    key=obj.key,
                    scheduled=next_run,
                    next_run=timeline.next_after(next_run) if spec.jitter_seconds else None,
                    jitter_seconds=spec.jitter_seconds,
                )
                result.wake(next_run + timedelta(seconds=delay))
        delete_old_jobs(result, spec, by_name)
        hist.trim(status, limit=spec.history_limit)

    # Health, and the operator's own suspension after repeated failures.
    lifted = status.suspended_by_operator
    since = lifted.since if lifted is not None and not lifted.suspended else None
    health = verdict(
        results_newest_first=_outcomes(status, None),
        unhealthy_after=policy.unhealthy_after,
        invalid=spec is None,
        now=now,
    )
    if spec is not None and spec.suspend_after_failures and phase == "Active":
        recent = verdict(
            results_newest_first=_outcomes(status, since),
            unhealthy_after=policy.unhealthy_after,
            now=now,
        )
        if recent.consecutive_failures >= spec.suspend_after_failures:
            status.suspended_by_operator = SuspendedByOperator(
                suspended=True,
                since=now,
                generation=obj.generation,
                reason="TooManyFailures",
                message=f"{recent.consecutive_failures} consecutive failed runs "
                f"(suspendAfterFailures is {spec.suspend_after_failures})",
            )
            result.notes.append(
                Note(
                    "Warning", "SuspendedAfterFailures", status.suspended_by_operator.message or ""
                )
            )
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
            status.last_successful_time = max(
                filter(None, [status.last_successful_time, entry.completion_time])
            )
        if entry.result in hist.FINAL_FAILURES and entry.completion_time:
            status.last_failure_time = max(
                filter(None, [status.last_failure_time, entry.completion_time])
            )
    conditions = [
        _condition(
            prev,
            type_="Valid",
            status="False" if error else "True",
            reason="InvalidSpec" if error else "SpecValid",
            message=str(error) if error else "The spec is valid.",
            now=now,
            generation=obj.generation,
        ),
        _condition(
            prev,
            type_="Ready",
            status="True" if phase == "Active" else "False",
            reason={"Active": "Scheduling"}.get(phase, phase),
            message=f"Phase {phase}.",
            now=now,
            generation=obj.generation,
        ),
    ]
    s = status.suspended_by_operator
    if s is not None:
        conditions.append(
            _condition(
                prev,
                type_="Suspended",
                status="True" if s.suspended else "False",
                reason=s.reason or "Unknown",
                message=s.message or "",
                now=now,
                generation=obj.generation,
            )
        )
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
