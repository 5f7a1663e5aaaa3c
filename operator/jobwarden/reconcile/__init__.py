"""The decision for one JobSchedule: what to create, delete, record and when to look again.

``plan`` is a pure function of the schedule as the API last showed it, the
slim observations of its Jobs, the creates the API refused, and the clock. It
makes no API calls and knows nothing of kopf, so every rule of the product is
tested here by tables, and the wiring above only carries the plan out.

It is a pipeline of named pure steps over a typed status, read top to bottom
as one reconcile; each step takes the status the step before returned and
returns a new one with the effects it asks for (nothing is edited in place):

1. ``read``: parse the spec (a spec error is ``Valid=False``, not a failure);
2. ``fold_jobs``: adopt lost runs, merge the Jobs' outcomes, end refused creates;
3. ``act_on_running``: action annotations, the lifting of a suspension, stale runs;
   ``guard_starts``: runs whose pods did not start within the start deadline;
4. ``keep_timing``: since when the timing spec is in force (an edit never back-dates);
5. ``start_due``: start, skip or record missed the runs due since then, by now;
   ``start_after``: the runs their upstreams' runs start (``spec.after``);
   ``gate_group``: those runs and the queued ones held to the concurrency group;
6. ``decide``: phase, next run and wake-up, old Jobs, trim, health, suspendAfterFailures;
7. ``render``: the derived fields, conditions, the merge patch, the plan.

A step that fails unexpectedly raises ``PlanStepError`` naming the step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

from pydantic import ValidationError

from jobwarden.api.spec import SpecError, parse_spec
from jobwarden.api.status import ScheduleStatus
from jobwarden.notify.subscriptions import check_notify
from jobwarden.reconcile.actions import act_on_running, stale_threshold, start_deadline
from jobwarden.reconcile.chain import check_chain, start_after
from jobwarden.reconcile.due import start_due
from jobwarden.reconcile.edits import keep_timing
from jobwarden.reconcile.fold import fold_jobs
from jobwarden.reconcile.group import gate_group
from jobwarden.reconcile.model import (
    NO_CHAIN,
    NO_GROUP,
    ChainView,
    Deletion,
    GroupView,
    Inputs,
    Note,
    Observed,
    Plan,
    PlanStepError,
    Policy,
    Refusal,
    Start,
    Waiting,
)
from jobwarden.reconcile.phase import decide
from jobwarden.reconcile.render import render
from jobwarden.reconcile.starting import guard_starts
from jobwarden.runs.jobs import JobObservation
from jobwarden.runs.naming import MAX_NAME
from jobwarden.safety.start import NotStarted
from jobwarden.schedule.moves import NamedDays
from jobwarden.schedule.timeline import build_timeline

__all__ = [
    "ChainView",
    "Deletion",
    "GroupView",
    "Note",
    "Observed",
    "Plan",
    "PlanStepError",
    "Policy",
    "Refusal",
    "Start",
    "Waiting",
    "plan",
]

_NONE_REFUSED: Mapping[str, Refusal | str] = MappingProxyType({})
_NONE_PROBED: Mapping[str, NotStarted | None] = MappingProxyType({})
_NO_CALENDARS: Mapping[str, NamedDays | str] = MappingProxyType({})
P = ParamSpec("P")
R = TypeVar("R")


def load_status(raw: Mapping[str, Any]) -> ScheduleStatus:
    try:
        return ScheduleStatus.model_validate(dict(raw))
    except ValidationError:
        # A status nobody can read is started afresh rather than crashing the schedule.
        return ScheduleStatus()


def read(
    *,
    obj: Observed,
    jobs: Sequence[JobObservation],
    pending: frozenset[str],
    now: datetime,
    policy: Policy,
    refused: Mapping[str, Refusal | str],
    warned: frozenset[str] = frozenset(),
    probed: Mapping[str, NotStarted | None] = _NONE_PROBED,
    chain: ChainView = NO_CHAIN,
    group: GroupView = NO_GROUP,
    calendars: Mapping[str, NamedDays | str] = _NO_CALENDARS,
) -> Inputs:
    """What every later step reads; the spec parsed, or the error that makes it invalid.

    Only Jobs whose JobSchedule ownerReference carries this schedule's uid are
    its runs; any other Job indexed under it (a tenant's, with our labels) is
    ``foreign``: never adopted, deleted or counted.
    """
    refusals = {name: Refusal.of(value) for name, value in refused.items()}
    try:
        spec = parse_spec(obj.spec)
        timeline = build_timeline(spec, key=obj.key, created=obj.created, calendars=calendars)
        check_chain(spec, namespace=obj.namespace, name=obj.name, view=chain)
        check_notify(spec, sinks=policy.sinks)
        error = None
    except SpecError as exc:
        spec, timeline, error = None, None, exc
    threshold = stale_threshold(spec, policy)
    start = start_deadline(spec, policy)
    reporting = policy.dry_run or (spec is not None and spec.stale_action == "Report")
    return Inputs(
        obj=obj,
        spec=spec,
        timeline=timeline,
        error=error,
        # A Job holding a refused name is not this schedule's (a squatter's):
        # it is neither adopted nor deleted. Nor is one whose name this
        # schedule could never have given (longer than a run's name).
        jobs={
            j.name: j
            for j in jobs
            if j.owner_uid == obj.uid and j.name not in refusals and len(j.name) <= MAX_NAME
        },
        foreign=tuple(j for j in jobs if j.owner_uid != obj.uid),
        warned=warned,
        pending=pending,
        refused=refusals,
        now=now,
        policy=policy,
        threshold=threshold,
        # Only a run that may be terminated gets a deadline the Job controller enforces.
        stale_seconds=None if reporting else max(1, int(threshold.total_seconds())),
        start_seconds=max(1, int(start.total_seconds())),
        probed=probed,
        chain=chain,
        group=group,
        calendars=calendars,
    )


def _step(name: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise PlanStepError(name, exc) from exc


def plan(
    *,
    obj: Observed,
    jobs: Sequence[JobObservation],
    pending: frozenset[str],
    now: datetime,
    policy: Policy,
    refused: Mapping[str, Refusal | str] = _NONE_REFUSED,
    warned: frozenset[str] = frozenset(),
    probed: Mapping[str, NotStarted | None] = _NONE_PROBED,
    chain: ChainView = NO_CHAIN,
    group: GroupView = NO_GROUP,
    calendars: Mapping[str, NamedDays | str] = _NO_CALENDARS,
) -> Plan:
    """Everything one reconcile of ``obj`` should do at ``now``.

    ``refused``: Job names whose create the API refused, with a ``Refusal`` (or
    the API's message alone, meaning ``JobRejected``). Each is recorded as a
    Failed run and never created again. ``warned``: the foreign Jobs reported
    already (``Plan.foreign`` of an earlier plan), not reported again. ``probed``:
    runs past their start deadline whose pods were listed (see ``Inputs.probed``).
    ``chain``: the upstreams of a chained schedule (``spec.after``) as the namespace
    shows them. ``group``: the concurrency group the spec names, as the namespace
    shows it (``GroupView``).
    shows them. ``calendars``: the JobCalendars by name (a text: why one is not Ready).
    """
    inp = _step(
        "read",
        read,
        obj=obj,
        jobs=jobs,
        pending=pending,
        now=now,
        policy=policy,
        refused=refused,
        warned=warned,
        probed=probed,
        chain=chain,
        group=group,
        calendars=calendars,
    )
    prev = _step("read", load_status, obj.status)
    status, folded = _step("fold_jobs", fold_jobs, inp, prev)
    status, acted = _step("act_on_running", act_on_running, inp, status)
    status, guarded = _step("guard_starts", guard_starts, inp, status)
    acted += guarded
    started = frozenset(s.body["metadata"]["name"] for s in acted.starts)
    status = _step("keep_timing", keep_timing, inp, status)
    status, due = _step("start_due", start_due, inp, status, started=started)
    status, chained = _step("start_after", start_after, inp, status)
    status, gated = _step("gate_group", gate_group, inp, status, acted + due + chained)
    status, effects, decided = _step(
        "decide", decide, inp, status, acted=acted, so_far=folded + gated
    )
    result = _step(
        "render", render, inp, prev=prev, status=status, effects=effects, decided=decided
    )
    result.queue = tuple(
        Waiting.of(run.scheduled_time, run.job, obj.name) for run in status.queue or ()
    )
    return result
