"""Chains (``spec.after``): runs started by other schedules' runs in the namespace.

A set of upstream runs is identified by the scheduled time they share: the
nightly extract and load runs of 02:00 start the report run of 02:00. For
each such time, once every upstream has a finished run for it, the
downstream decides once:

* every run ended as its ``result`` asks: one run starts (trigger ``After``),
  named from that time (``job_name``), with the upstream facts in its env;
* one ended otherwise: ``Skipped``, reason ``UpstreamResult``;
* some upstreams have no run for it ``afterDeadline`` after the first one
  finished: ``Missed``, reason ``UpstreamsIncomplete``; so is a time still
  waiting when a newer one starts a run (reason ``Superseded``).

``status.lastAfterTime`` holds the newest time decided; nothing at or before
it is decided again, so a restart, a second replica, a lost status write (the
deterministic name is then taken) or an upstream Job that outlives the
downstream's never makes a second run. Only upstream runs finished after the
downstream was created count: a new chain does not replay old runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from jobwarden import labels
from jobwarden.api.spec import JobScheduleSpec, SpecError, Upstream, parse_duration
from jobwarden.api.status import HistoryEntry, ScheduleStatus
from jobwarden.api.values import DEFAULT_AFTER_DEADLINE
from jobwarden.reconcile.actions import launch
from jobwarden.reconcile.due import suspended
from jobwarden.reconcile.model import NO_EFFECTS, ChainView, Effects, Inputs, Note, Start, evolve
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation
from jobwarden.runs.naming import job_name

GRAPH_LIMIT: Final = 1000  # schedules walked looking for a cycle
Ended = Literal["Skipped", "Missed"]


def check_chain(spec: JobScheduleSpec, *, namespace: str, name: str, view: ChainView) -> None:
    """SpecError naming the field when ``after`` cannot be followed: an upstream in
    another namespace, missing, this schedule itself, or a cycle back to it."""
    for i, upstream in enumerate(spec.after or ()):
        if upstream.namespace not in (None, namespace):
            raise SpecError(
                f"spec.after[{i}].namespace",
                f"{upstream.namespace!r}: an upstream must be in this schedule's own "
                f"namespace ({namespace})",
            )
        field_name = f"spec.after[{i}].schedule"
        if upstream.schedule == name:
            raise SpecError(field_name, "a schedule cannot run after itself")
        if upstream.schedule not in view.graph:
            raise SpecError(field_name, f"no JobSchedule {upstream.schedule!r} in {namespace}")
        loop = _path_to(view.graph, start=upstream.schedule, target=name)
        if loop is not None:
            shown = " -> ".join([name, *loop])
            raise SpecError(field_name, f"a cycle: {shown} (each runs after the next)")


def _path_to(graph: Mapping[str, tuple[str, ...]], *, start: str, target: str) -> list[str] | None:
    """The upstream path from ``start`` to ``target`` (both included), if there is one."""
    came: dict[str, str | None] = {start: None}
    queue = [start]
    while queue and len(came) <= GRAPH_LIMIT:
        node = queue.pop(0)
        for nxt in graph.get(node, ()):
            if nxt in came:
                continue
            came[nxt] = node
            if nxt == target:
                path: list[str] = [nxt]
                at: str | None = node
                while at is not None:
                    path.append(at)
                    at = came[at]
                return path[::-1]
            queue.append(nxt)
    return None


def matches(upstream: Upstream, result: str) -> bool:
    """Whether an upstream run that ended ``result`` is what ``upstream`` waits for."""
    return upstream.result == "Any" or upstream.result == result


@dataclass
class _Time:
    """The upstream runs of one scheduled time, by upstream schedule."""

    runs: dict[str, JobObservation] = field(default_factory=dict)

    def first_end(self) -> datetime:
        return min(o.finish_time for o in self.runs.values() if o.finish_time is not None)

    def last_end(self) -> datetime:
        return max(o.finish_time for o in self.runs.values() if o.finish_time is not None)


def upstream_times(
    after: Iterable[Upstream],
    jobs: Mapping[str, Iterable[JobObservation]],
    *,
    since: datetime | None,
    created: datetime,
) -> dict[datetime, _Time]:
    """The finished upstream runs after ``since``, grouped by their scheduled time."""
    times: dict[datetime, _Time] = {}
    for upstream in after:
        for obs in jobs.get(upstream.schedule, ()):
            t = obs.scheduled_time
            if (
                not obs.finished
                or obs.owner_uid is None  # not a schedule's run (a tenant's, labelled)
                or obs.finish_time is None
                or obs.finish_time < created
                or t is None
                or (since is not None and t <= since)
            ):
                continue
            times.setdefault(t, _Time()).runs[upstream.schedule] = obs
    return times


def start_after(inp: Inputs, status: ScheduleStatus) -> tuple[ScheduleStatus, Effects]:
    """Decide every set of upstream runs not decided yet (rules in the module docstring)."""
    spec, obj, now = inp.spec, inp.obj, inp.now
    if spec is None or not spec.after or suspended(inp, status) or obj.deleting is not None:
        return status, NO_EFFECTS
    counts = status.executions
    scheduled = counts.scheduled if counts else 0
    deadline = parse_duration(spec.after_deadline or DEFAULT_AFTER_DEADLINE)
    cursor = status.last_after_time
    times = upstream_times(spec.after, inp.chain.jobs, since=cursor, created=obj.created)
    history = list(status.history or [])
    starts: list[Start] = []
    notes: list[Note] = []
    finished: list[hist.Transition] = []
    more = dict.fromkeys(("scheduled", "missed", "skipped", "failed"), 0)
    waiting: list[datetime] = []
    wake: list[datetime] = []

    def record(t: datetime, result: Ended, reason: str, message: str) -> None:
        history.insert(
            0,
            HistoryEntry(
                trigger="After", scheduled_time=t, result=result, reason=reason, message=message
            ),
        )
        more[result.lower()] += 1
        finished.append(hist.Transition("", result, None, reason, message))

    def decided(t: datetime) -> datetime:
        """``t`` is decided: the older times still waiting can no longer be."""
        for w in waiting:
            record(w, "Missed", "Superseded", f"the upstream runs for {_at(t)} were decided first")
        waiting.clear()
        wake.clear()
        return t

    for t in sorted(times):
        runs = times[t].runs
        other = [(u, runs[u.schedule]) for u in spec.after if u.schedule in runs]
        wrong = [(u, o) for u, o in other if not matches(u, o.result)]
        if wrong:
            cursor = decided(t)
            u, o = wrong[0]
            message = f"{o.name} ended {o.result} (after {u.schedule} wants {u.result})"
            record(t, "Skipped", "UpstreamResult", message)
            notes.append(Note("Normal", "Skipped", f"Run for {_at(t)} skipped: {message}"))
        elif len(other) == len(spec.after):
            cursor = decided(t)
            used = spec.max_executions is not None and (
                scheduled + more["scheduled"] >= spec.max_executions
            )
            if used:
                record(
                    t, "Skipped", "MaxExecutions", f"maxExecutions ({spec.max_executions}) used up"
                )
                continue
            begun = launch(
                inp,
                active=len(hist.running(history)),
                name=job_name(schedule=obj.name, scheduled=t, trigger=labels.TRIGGER_AFTER),
                trigger=labels.TRIGGER_AFTER,
                scheduled=t,
                due=times[t].last_end(),
                upstreams=tuple((o.name, o.result) for _, o in other),
            )
            history.insert(0, begun.entry)
            starts += [begun.start] if begun.start is not None else []
            finished += [begun.finished] if begun.finished is not None else []
            notes.append(begun.note)
            more["scheduled"] += begun.counted != "skipped"
            if begun.counted:
                more[begun.counted] += 1
        elif now >= times[t].first_end() + deadline:
            absent = ", ".join(u.schedule for u in spec.after if u.schedule not in runs)
            message = f"no run of {absent} for this time within afterDeadline ({deadline})"
            cursor = decided(t)
            record(t, "Missed", "UpstreamsIncomplete", message)
            notes.append(Note("Warning", "MissedRuns", f"Run for {_at(t)} not started: {message}"))
        else:
            waiting.append(t)
            wake.append(times[t].first_end() + deadline)

    after = evolve(
        status,
        history=history,
        last_after_time=cursor,
        executions=hist.tally(counts, (), **more),
    )
    return after, Effects(
        starts=tuple(starts),
        notes=tuple(notes),
        finished=tuple(finished),
        wake_at=min(wake) if wake else None,
    )


def _at(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%SZ}"
