"""Step 3 of a plan: runs that came due are started, skipped under the concurrency
policy or the active cap, refused, or recorded missed; the cursor moves past them."""

from __future__ import annotations

from datetime import datetime, timedelta

from jobwarden import labels
from jobwarden.api.spec import JobScheduleSpec
from jobwarden.api.status import HistoryEntry, ScheduleStatus, Trigger
from jobwarden.reconcile.actions import launch
from jobwarden.reconcile.edits import due_since
from jobwarden.reconcile.model import NO_EFFECTS, Deletion, Effects, Inputs, Note, Start, evolve
from jobwarden.runs import history as hist
from jobwarden.runs.naming import job_name
from jobwarden.schedule.planning import ON_TIME_TOLERANCE, jitter_delay, plan_catch_up
from jobwarden.schedule.timeline import Timeline
from jobwarden.schedule.upcoming import moved_run

MISSED_RECORD_LIMIT = 10  # history entries written for one batch of missed runs
_SKIPPED = hist.Transition("", "Skipped", None, None, None)


def suspended(inp: Inputs, status: ScheduleStatus) -> bool:
    """Suspended by spec or by the operator (after ``act_on_running`` lifted what it lifts)."""
    s = status.suspended_by_operator
    return bool(inp.spec and inp.spec.suspend) or (s is not None and s.suspended)


def start_due(
    inp: Inputs, status: ScheduleStatus, *, started: frozenset[str]
) -> tuple[ScheduleStatus, Effects]:
    """Start, skip or record as missed every run due by now; ``started``: Jobs this plan
    has started already (a run-now), which Replace does not replace."""
    spec, timeline, obj, now = inp.spec, inp.timeline, inp.obj, inp.now
    if spec is None or timeline is None or suspended(inp, status) or obj.deleting is not None:
        return status, NO_EFFECTS  # deleting: nothing starts, and nothing is missed either
    cursor = status.last_schedule_time  # orphans were adopted by ``fold_jobs`` already
    counts = status.executions
    scheduled = counts.scheduled if counts else 0
    if spec.max_executions is not None and scheduled >= spec.max_executions:
        return status, NO_EFFECTS  # used up: the runs after it are not missed, they do not exist
    # A jittered run wakes late on purpose: that lateness is not missing the run.
    jitter = spec.jitter_seconds or 0
    tolerance = ON_TIME_TOLERANCE + timedelta(seconds=jitter)
    deadline = spec.starting_deadline_seconds
    due = plan_catch_up(
        timeline,
        policy=spec.catch_up,
        # Not before the timing in force came in force: an edit never back-dates a run.
        last_scheduled=due_since(status),
        anchor=obj.created,
        now=now,
        starting_deadline_seconds=None if deadline is None else deadline + jitter,
        tolerance=tolerance,
    )

    def delay(run: datetime) -> timedelta:
        # The next run only bounds a jitter; without one it is not looked up (a cron search).
        return timedelta(
            seconds=jitter_delay(
                key=obj.key,
                scheduled=run,
                next_run=timeline.next_after(run) if spec.jitter_seconds else None,
                jitter_seconds=spec.jitter_seconds,
            )
        )

    history = list(status.history or [])
    starts: list[Start] = []
    deletes: list[Deletion] = []
    notes: list[Note] = []
    finished: list[hist.Transition] = []
    wake_at: datetime | None = None
    more = dict.fromkeys(("scheduled", "missed", "skipped", "failed", "terminated"), 0)

    runs = list(due.start)
    if runs:
        held = runs[-1] + delay(runs[-1])
        if now < held:
            wake_at = held
            runs.pop()
    missed = due.missed
    if due.missed_count:
        reason = missed_reason(spec)
        history[:0] = [
            HistoryEntry(
                trigger="Schedule",
                scheduled_time=run,
                result="Missed",
                reason="NotStarted",
                message=reason,
            )
            for run in reversed(missed[-MISSED_RECORD_LIMIT:])
        ]
        more["missed"] += due.missed_count
        finished += [hist.Transition("", "Missed", None, None, None)] * due.missed_count
        notes.append(
            Note("Warning", "MissedRuns", f"{due.missed_count} run(s) not started ({reason})")
        )
        cursor = max([cursor, missed[-1]] if cursor else [missed[-1]]) if missed else cursor
    if spec.concurrency_policy == "Replace" and len(runs) > 1:
        # Each would replace the one before it at once: only the newest gets a Job
        # (a Job created and deleted in one reconcile would run for nothing).
        for run in runs[:-1]:
            history.insert(
                0,
                HistoryEntry(
                    trigger="CatchUp" if now - run > tolerance else "Schedule",
                    scheduled_time=run,
                    result="Skipped",
                    reason="ConcurrencyReplace",
                    message="A newer due run replaces it.",
                ),
            )
            more["skipped"] += 1
            finished.append(_SKIPPED)
        notes.append(
            Note(
                "Normal",
                "Skipped",
                f"{len(runs) - 1} due run(s) skipped: the newest replaces them "
                "(concurrencyPolicy Replace)",
            )
        )
        cursor = runs[-2] if cursor is None else max(cursor, runs[-2])
        runs = runs[-1:]
    for run in runs:
        if spec.max_executions is not None and scheduled + more["scheduled"] >= spec.max_executions:
            break
        cursor = run if cursor is None else max(cursor, run)
        trigger = labels.TRIGGER_SCHEDULE if now - run <= tolerance else labels.TRIGGER_CATCH_UP
        active = [i for i, e in enumerate(history) if e.result == "Running" and e.job]
        if active and spec.concurrency_policy == "Forbid":
            history.insert(0, _forbidden(trigger, run, len(active)))
            more["skipped"] += 1
            finished.append(_SKIPPED)
            notes.append(
                Note(
                    "Normal", "Skipped", f"Run at {run:%Y-%m-%dT%H:%M:%SZ} skipped: a run is active"
                )
            )
            continue
        if active and spec.concurrency_policy == "Replace":
            # A run this plan has just started (a run-now) is not a previous run:
            # replacing it would create and delete its Job in one plan.
            for i in active:
                entry = history[i]
                if entry.job in started:
                    continue
                deletes.append(Deletion(entry.job or "", None, False, "Replaced"))
                history[i], transition = hist.end(
                    entry,
                    result="Terminated",
                    reason="Replaced",
                    message="Replaced by a newer run (concurrencyPolicy Replace).",
                    now=now,
                )
                finished.append(transition)
                more["terminated"] += 1
                notes.append(
                    Note(
                        "Normal",
                        "Replaced",
                        f"Job {entry.job} terminated: replaced by the run at "
                        f"{run:%Y-%m-%dT%H:%M:%SZ}",
                    )
                )
        begun = launch(
            inp,
            active=sum(1 for e in history if e.result == "Running" and e.job),
            name=job_name(schedule=obj.name, scheduled=run, trigger=trigger),
            trigger=trigger,
            scheduled=run,
            due=run + delay(run),
        )
        history.insert(0, _with_move(begun.entry, timeline, run))
        if begun.start is not None:
            starts.append(begun.start)
        if begun.finished is not None:
            finished.append(begun.finished)
        notes.append(begun.note)
        if begun.counted != "skipped":
            more["scheduled"] += 1
        if begun.counted:
            more[begun.counted] += 1

    after = evolve(
        status,
        history=history,
        last_schedule_time=cursor,
        executions=hist.tally(counts, (), **more),
    )
    return after, Effects(
        starts=tuple(starts),
        deletes=tuple(deletes),
        notes=tuple(notes),
        finished=tuple(finished),
        wake_at=wake_at,
    )


def _with_move(entry: HistoryEntry, timeline: Timeline, run: datetime) -> HistoryEntry:
    """A run a calendar moved keeps its nominal time in history, and says so."""
    moved = moved_run(timeline, run)
    if moved is None:
        return entry
    return entry.model_copy(
        update={"nominal_time": moved.nominal, "message": entry.message or moved.note}
    )


def _forbidden(trigger: str, run: datetime, active: int) -> HistoryEntry:
    wire: Trigger = trigger  # type: ignore[assignment]
    return HistoryEntry(
        trigger=wire,
        scheduled_time=run,
        result="Skipped",
        reason="ConcurrencyForbid",
        message=f"{active} run(s) still active",
    )


def missed_reason(spec: JobScheduleSpec) -> str:
    if spec.catch_up == "None":
        return "catchUp is None"
    if spec.starting_deadline_seconds is not None:
        return f"past startingDeadlineSeconds ({spec.starting_deadline_seconds}s)"
    return "catchUp Latest starts only the most recent"
