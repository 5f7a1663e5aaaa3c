"""Step 5 of a plan: the status as users read it (the fields derived from history, the
conditions), the merge patch that writes it, and the plan handed to the executor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from jobwarden.api.status import (
    DESCRIPTION_LIMIT,
    UPCOMING_LIMIT,
    Condition,
    ScheduleStatus,
    Upcoming,
    clip,
    format_time,
)
from jobwarden.notify.events import Delivery, ScheduleRef, events, route
from jobwarden.reconcile.model import Effects, Inputs, Note, Plan
from jobwarden.reconcile.phase import Decision
from jobwarden.runs import history as hist
from jobwarden.schedule.describe import describe
from jobwarden.schedule.upcoming import upcoming_runs


def condition(
    prev: ScheduleStatus, inp: Inputs, *, type_: str, status: str, reason: str, message: str
) -> Condition:
    """A condition whose transition time moves only when its status changes."""
    old = next((c for c in prev.conditions or [] if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else inp.now
    return Condition(
        type=type_,
        status=status,  # type: ignore[arg-type]
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=inp.obj.generation,
    )


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch (RFC 7386) that turns status ``old`` into ``new``.

    A merge patch removes only the keys it sets to null, at every depth: a key
    dropped from a nested object (``suspendedByOperator.generation`` after a
    resume, say) would otherwise survive the write and differ from the plan.
    """
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    return patch


def render(
    inp: Inputs,
    *,
    prev: ScheduleStatus,
    status: ScheduleStatus,
    effects: Effects,
    decided: Decision,
) -> Plan:
    history = status.history or []
    last_ok, last_failed = status.last_successful_time, status.last_failure_time
    for entry in history:
        if entry.completion_time is None:
            continue
        if entry.result == "Succeeded":
            last_ok = (
                entry.completion_time if last_ok is None else max(last_ok, entry.completion_time)
            )
        elif entry.result in hist.FINAL_FAILURES:
            last_failed = (
                entry.completion_time
                if last_failed is None
                else max(last_failed, entry.completion_time)
            )
    phase, error = decided.phase, inp.error
    conditions = [
        condition(
            prev,
            inp,
            type_="Valid",
            status="False" if error else "True",
            reason="InvalidSpec" if error else "SpecValid",
            message=str(error) if error else "The spec is valid.",
        ),
        _ready(prev, inp, phase, finishing=decided.finishing),
    ]
    s = status.suspended_by_operator
    if s is not None:
        conditions.append(
            condition(
                prev,
                inp,
                type_="Suspended",
                status="True" if s.suspended else "False",
                reason=s.reason or "Unknown",
                message=s.message or "",
            )
        )
    active = hist.active_runs(history)
    final = status.model_copy(
        update={
            "observed_generation": inp.obj.generation,
            "phase": phase,
            "schedule_description": _description(inp),
            "next_run_time": decided.next_run,
            "health": decided.health,
            "active": active,
            "active_count": len(active),
            "last_result": hist.last_result(history),
            "last_successful_time": last_ok,
            "last_failure_time": last_failed,
            "conditions": conditions,
            "upcoming": _upcoming(inp, prev, status, decided),
        }
    )
    notes = list(effects.notes)
    prev_ready = next((c for c in prev.conditions or [] if c.type == "Ready"), None)
    if inp.obj.deleting is not None and (prev_ready is None or prev_ready.reason != DELETING):
        notes.append(Note("Normal", DELETING, conditions[1].message))
    prev_valid = next((c for c in prev.conditions or [] if c.type == "Valid"), None)
    if error and (prev_valid is None or prev_valid.message != conditions[0].message):
        notes.append(Note("Warning", "InvalidSpec", conditions[0].message))
    rendered = final.to_api()
    return Plan(
        starts=list(effects.starts),
        deletes=list(effects.deletes),
        status=merge_patch(inp.obj.status, rendered) if rendered != prev.to_api() else None,
        notes=notes,
        finished=list(effects.finished),
        wake_at=effects.wake_at,
        health=decided.health.state,
        active=len(active),
        force_stuck_pods=effects.force_stuck_pods,
        foreign=frozenset(o.name for o in inp.foreign),
        notifications=_notifications(inp, prev, final) if rendered != prev.to_api() else [],
    )


def _notifications(inp: Inputs, prev: ScheduleStatus, final: ScheduleStatus) -> list[Delivery]:
    """The events this status write makes, for the sinks the spec subscribes to."""
    if inp.spec is None or not inp.spec.notify:
        return []
    obj = inp.obj
    ref = ScheduleRef(namespace=obj.namespace, name=obj.name, uid=obj.uid)
    found = events(before=prev, after=final, ref=ref, now=inp.now)
    return route(found, subscriptions=inp.spec.notify)


DELETING = "Deleting"
LAST_RUN_ACTIVE = "LastRunActive"


def _ready(prev: ScheduleStatus, inp: Inputs, phase: str, *, finishing: bool) -> Condition:
    """Ready: True while Active; a schedule being deleted is not, whatever its phase."""
    deleting = inp.obj.deleting
    if deleting is not None:
        return condition(
            prev,
            inp,
            type_="Ready",
            status="False",
            reason=DELETING,
            message=f"Deleted at {format_time(deleting)} and held by a finalizer: "
            "no run starts any more; runs going still end.",
        )
    if finishing:
        return condition(
            prev,
            inp,
            type_="Ready",
            status="True",
            reason=LAST_RUN_ACTIVE,
            message="No run is left to start; the last run is still going, "
            "and the phase becomes Completed when it ends.",
        )
    return condition(
        prev,
        inp,
        type_="Ready",
        status="True" if phase == "Active" else "False",
        reason={"Active": "Scheduling"}.get(phase, phase),
        message=f"Phase {phase}.",
    )


def _description(inp: Inputs) -> str | None:
    return clip(describe(inp.spec), DESCRIPTION_LIMIT) if inp.spec else None


def _upcoming(
    inp: Inputs, prev: ScheduleStatus, status: ScheduleStatus, decided: Decision
) -> list[Upcoming] | None:
    """The next runs from the next one on, capped by the executions left.

    The list is a function of the spec and the next run: while both are what
    the last status was written from, it is kept rather than searched again
    (a plan with nothing due would otherwise pay five lookups for nothing).
    """
    spec, timeline, first = inp.spec, inp.timeline, decided.next_run
    if spec is None or timeline is None or first is None:
        return None
    old = prev.upcoming
    if old and old[0].time == first and prev.observed_generation == inp.obj.generation:
        return old
    count = UPCOMING_LIMIT
    if spec.max_executions is not None:
        done = status.executions.scheduled if status.executions else 0
        count = max(1, min(count, spec.max_executions - done))
    runs = upcoming_runs(timeline, after=first - _TICK, count=count)
    return [Upcoming(time=r.time, local=r.local, note=r.note) for r in runs]


_TICK = timedelta(microseconds=1)
