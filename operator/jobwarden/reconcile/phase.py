"""Step 4 of a plan: the phase, the next run and the wake-up; finished Jobs past their
limits; history trimmed; the health verdict and the operator's own suspension after
``suspendAfterFailures``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobwarden.api.status import Health, HistoryEntry, Phase, ScheduleStatus, SuspendedByOperator
from jobwarden.reconcile.due import suspended
from jobwarden.reconcile.edits import due_since
from jobwarden.reconcile.model import Deletion, Effects, Inputs, Note, evolve
from jobwarden.runs import history as hist
from jobwarden.safety.health import Outcome, verdict
from jobwarden.schedule.planning import is_complete, jitter_delay


@dataclass(frozen=True, slots=True)
class Decision:
    """Where the schedule stands after this plan."""

    phase: Phase
    next_run: datetime | None
    health: Health
    # Nothing is left to start, but a run is still going: Completed when it ends.
    finishing: bool = False


def decide(
    inp: Inputs, status: ScheduleStatus, *, acted: Effects, so_far: Effects
) -> tuple[ScheduleStatus, Effects, Decision]:
    """``acted``: the effects of acting on running runs (their wake-up is what a
    suspension must still wake for); ``so_far``: every effect of the plan until now.
    Returns the status, the plan's whole effects, and the decision."""
    spec, timeline, obj, now = inp.spec, inp.timeline, inp.obj, inp.now
    phase: Phase = "Active"
    next_run: datetime | None = None
    finishing = False
    wake = so_far.wake_at
    deletes: tuple[Deletion, ...] = ()
    history = status.history or []
    if spec is None or timeline is None:
        phase = "Invalid"
    else:
        held = suspended(inp, status)
        cursor = status.last_schedule_time
        # While suspended, runs due since the cursor are neither started nor recorded
        # missed: resuming hands them to catchUp, so they still count as remaining.
        complete = is_complete(
            timeline,
            spec,
            scheduled_count=status.executions.scheduled if status.executions else 0,
            last_scheduled=cursor,
            now=(due_since(status) or obj.created) if held else now,
        )
        finishing = complete and bool(hist.active_runs(history) or status.queue)
        if complete and not finishing:
            phase = "Completed"
        elif held:
            phase = "Suspended"
        elif obj.deleting is not None or finishing:
            # No next run: none starts any more (the Ready condition says why). A last
            # run still going keeps the phase Active: Completed once it has ended.
            pass
        else:
            next_run = timeline.next_after(max(now, cursor) if cursor else now)
            if next_run is not None:
                delay = jitter_delay(
                    key=obj.key,
                    scheduled=next_run,
                    next_run=timeline.next_after(next_run) if spec.jitter_seconds else None,
                    jitter_seconds=spec.jitter_seconds,
                )
                at = next_run + timedelta(seconds=delay)
                wake = at if wake is None else min(wake, at)
        deletes = old_jobs(inp, deleting={d.job for d in so_far.deletes})
        history = hist.trim(history, limit=spec.history_limit)

    suspension = status.suspended_by_operator
    since = suspension.since if suspension is not None and not suspension.suspended else None
    health = verdict(
        results_newest_first=_outcomes(history, None),
        unhealthy_after=inp.policy.unhealthy_after,
        invalid=spec is None,
        now=now,
    )
    notes: tuple[Note, ...] = ()
    if spec is not None and spec.suspend_after_failures and phase == "Active":
        recent = verdict(
            results_newest_first=_outcomes(history, since),
            unhealthy_after=inp.policy.unhealthy_after,
            now=now,
        )
        if recent.consecutive_failures >= spec.suspend_after_failures:
            suspension = SuspendedByOperator(
                suspended=True,
                since=now,
                generation=obj.generation,
                reason="TooManyFailures",
                message=f"{recent.consecutive_failures} consecutive failed runs "
                f"(suspendAfterFailures is {spec.suspend_after_failures})",
            )
            notes = (Note("Warning", "SuspendedAfterFailures", suspension.message or ""),)
            phase, next_run, wake = "Suspended", None, acted.wake_at

    decided = evolve(status, history=history, suspended_by_operator=suspension)
    effects = Effects(
        so_far.starts,
        so_far.deletes + deletes,
        so_far.notes + notes,
        so_far.finished,
        wake,
        so_far.force_stuck_pods,
    )
    return decided, effects, Decision(phase, next_run, health, finishing and phase == "Active")


def old_jobs(inp: Inputs, *, deleting: set[str]) -> tuple[Deletion, ...]:
    """Finished Jobs beyond the CronJob-style limits go, newest kept."""
    assert inp.spec is not None
    finished = sorted(
        (o for o in inp.jobs.values() if o.finished and o.name not in deleting),
        key=lambda o: (
            o.finish_time
            or o.scheduled_time
            or datetime.min.replace(tzinfo=o.scheduled_time.tzinfo if o.scheduled_time else None)
        ),
        reverse=True,
    )
    return tuple(
        Deletion(obs.name, None, False, "HistoryLimit")
        for result, limit in (
            ("Succeeded", inp.spec.successful_jobs_history_limit),
            ("Failed", inp.spec.failed_jobs_history_limit),
        )
        for obs in [o for o in finished if o.result == result][limit:]
    )


def _outcomes(history: Sequence[HistoryEntry], since: datetime | None) -> list[Outcome]:
    return [
        Outcome(e.result, e.completion_time or e.scheduled_time)
        for e in history
        if since is None or (e.completion_time or e.scheduled_time or since) > since
    ]
