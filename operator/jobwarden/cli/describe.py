"""``kubectl jobwarden describe``: one schedule, its state, history and next runs.

The layout follows ``kubectl describe``: ``Key:`` lines with aligned values,
then sections holding small tables indented by two spaces. The next runs are
computed here with the operator's own engine (``build_timeline`` keyed by
``namespace/name`` and anchored at the creation time), so that what the user
sees is what the operator will do, not an approximation of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobwarden.api.spec import SpecError, load_zone
from jobwarden.api.status import Executions, format_time, parse_time
from jobwarden.cli.group import GroupSummary
from jobwarden.cli.tables import (
    NONE,
    Table,
    age,
    human_duration,
    relative,
    schedule_text,
    timestamp,
    truncate,
)
from jobwarden.schedule.checks import load_spec
from jobwarden.schedule.timeline import build_timeline
from jobwarden.schedule.upcoming import upcoming_runs

__all__ = [
    "NextRuns",
    "describe_text",
    "downstreams_of",
    "history_newest_first",
    "next_runs",
    "upstreams_text",
]

NEXT_RUN_COUNT = 5
MESSAGE_WIDTH = 80
# Values start in one column throughout, as in kubectl describe.
LABEL_WIDTH = 24


@dataclass(frozen=True, kw_only=True)
class NextRuns:
    """The upcoming scheduled instants and, when they will not start, why not."""

    runs: list[datetime]
    zone: str | None
    note: str | None = None
    # One per run: why DST moves or repeats it (None when it does not).
    run_notes: tuple[str | None, ...] = ()


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def _planned(status: Mapping[str, Any], *, now: datetime, count: int, zone: str) -> NextRuns:
    """A schedule that names JobCalendars: its next runs as the operator planned them
    (status.upcoming), which read the calendars in the cluster."""
    planned = [u for u in status.get("upcoming") or () if isinstance(u, Mapping)]
    ahead = [(t, u.get("note")) for u in planned if (t := parse_time(u.get("time"))) and t > now]
    note = None if ahead else "none planned yet (the operator reads the JobCalendars it names)"
    return NextRuns(
        runs=[t for t, _ in ahead[:count]],
        zone=zone,
        note=note,
        run_notes=tuple(n if isinstance(n, str) else None for _, n in ahead[:count]),
    )


def next_runs(obj: Mapping[str, Any], *, now: datetime, count: int = NEXT_RUN_COUNT) -> NextRuns:
    """The next ``count`` scheduled runs of a JobSchedule object after ``now``.

    ``maxExecutions`` caps the list by the runs status says are left, as the
    operator would stop there. A suspended schedule still lists its runs (a
    user resuming wants to know when it will fire) with a note that none
    starts while it is suspended.
    """
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    try:
        spec = load_spec(obj.get("spec") or {})
    except SpecError as exc:
        return NextRuns(runs=[], zone=None, note=f"invalid spec: {exc}")
    if spec.calendars:
        return _planned(status, now=now, count=count, zone=spec.time_zone)
    created = parse_time(meta.get("creationTimestamp")) or now
    timeline = build_timeline(spec, key=_key(obj), created=created)
    wanted = count
    if spec.max_executions is not None:
        used = int(((status.get("executions") or {}).get("scheduled")) or 0)
        wanted = max(0, min(count, spec.max_executions - used))
    upcoming = upcoming_runs(timeline, after=now, count=wanted) if wanted > 0 else []
    runs = [u.time for u in upcoming]
    note: str | None = None
    operator_hold = (status.get("suspendedByOperator") or {}).get("suspended") is True
    if spec.suspend:
        note = "suspended (spec.suspend): these runs will not start until resumed"
    elif operator_hold:
        note = "suspended by the operator after failures: runs start again after resume"
    elif wanted == 0 and spec.max_executions is not None:
        note = f"maxExecutions ({spec.max_executions}) used up"
    elif timeline.clockless:
        note = "none on a clock: it runs after its upstreams' runs (see Runs After)"
    elif not runs:
        note = "no more scheduled runs"
    return NextRuns(
        runs=runs, zone=spec.time_zone, note=note, run_notes=tuple(u.note for u in upcoming)
    )


def _when(entry: Mapping[str, Any]) -> datetime | None:
    for field in ("scheduledTime", "startTime", "completionTime"):
        moment = parse_time(entry.get(field))
        if moment is not None:
            return moment
    return None


def history_newest_first(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """History entries newest first.

    Status already keeps them so; sorting again (stably, entries without any
    time last) means a status written out of order still reads right.
    """
    timed = [e for e in history if _when(e) is not None]
    untimed = [e for e in history if _when(e) is None]
    timed.sort(key=lambda e: _when(e) or datetime.min, reverse=True)
    return timed + untimed


def _duration(entry: Mapping[str, Any]) -> str:
    seconds = entry.get("durationSeconds")
    if isinstance(seconds, int | float):
        return human_duration(timedelta(seconds=float(seconds)))
    return NONE


def _failures(count: int) -> str | None:
    if not count:
        return None
    return f"{count} consecutive failure" + ("" if count == 1 else "s")


def _fields(pairs: Sequence[tuple[str, object]]) -> list[str]:
    return [f"{(label + ':').ljust(LABEL_WIDTH)}{_plain(value)}" for label, value in pairs]


def _plain(value: object) -> str:
    if value is None:
        return NONE
    text = str(value)
    return text if text.strip() else NONE


def _moment(value: object, *, now: datetime) -> str:
    if parse_time(value) is None:
        return NONE
    return f"{timestamp(value)} ({relative(value, now=now)})"


def _section(title: str, table: Table | None, *, empty: str = NONE) -> list[str]:
    if table is None or not table.rows:
        return [f"{title}:".ljust(LABEL_WIDTH) + empty]
    return [f"{title}:", *("  " + line for line in table.lines())]


def _local(moment: datetime, zone: str | None) -> str:
    if zone is None:
        return NONE
    local = moment.astimezone(load_zone(zone))
    return f"{local.strftime('%Y-%m-%d %H:%M %Z')}"


def upstreams_text(spec: Mapping[str, Any]) -> str | None:
    """``extract (Succeeded), load (Any)``: what ``spec.after`` waits for, as written."""
    listed = spec.get("after")
    if not isinstance(listed, list) or not listed:
        return None
    return ", ".join(
        f"{u.get('schedule')} ({u.get('result') or 'Succeeded'})"
        for u in listed
        if isinstance(u, Mapping)
    )


def notify_text(spec: Mapping[str, Any]) -> str | None:
    """``oncall (Failed, Stale), chat (Recovered)``: where ``spec.notify`` sends what."""
    listed = spec.get("notify")
    if not isinstance(listed, list) or not listed:
        return None
    return ", ".join(
        f"{s.get('sink')} ({', '.join(str(e) for e in s.get('events') or ())})"
        for s in listed
        if isinstance(s, Mapping)
    )


def downstreams_of(name: str, schedules: Sequence[Mapping[str, Any]]) -> list[str]:
    """The schedules (of one namespace) whose ``spec.after`` names ``name``, sorted."""
    found = []
    for obj in schedules:
        listed = (obj.get("spec") or {}).get("after")
        if isinstance(listed, list) and any(
            isinstance(u, Mapping) and u.get("schedule") == name for u in listed
        ):
            found.append(str((obj.get("metadata") or {}).get("name")))
    return sorted(found)


def describe_text(
    obj: Mapping[str, Any],
    *,
    now: datetime,
    events: Sequence[Mapping[str, Any]] | None = None,
    events_note: str | None = None,
    downstreams: Sequence[str] | str | None = None,
    group: GroupSummary | str | None = None,
) -> str:
    """The whole ``describe`` output for one JobSchedule object; ``downstreams``: the
    schedules that run after it, ``group``: the concurrency group it names (each a note
    when the namespace's schedules could not be listed)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    health = status.get("health") or {}
    held = status.get("suspendedByOperator") or {}
    executions = status.get("executions") or {}

    if health.get("state"):
        failures = health.get("consecutiveFailures") or 0
        detail = ", ".join(
            part
            for part in (
                health.get("reason"),
                _failures(failures),
            )
            if part
        )
        health_text = f"{health['state']}" + (f" ({detail})" if detail else "")
        if health.get("message"):
            health_text += f": {health['message']}"
    else:
        health_text = NONE
    if held.get("suspended") is True:
        hold_text = "yes" + (f" ({held['reason']})" if held.get("reason") else "")
        if held.get("since"):
            hold_text += f" since {timestamp(held.get('since'))}"
        if held.get("message"):
            hold_text += f": {held['message']}"
    else:
        hold_text = "no"
    counters = ", ".join(
        f"{name} {int(executions.get(name) or 0)}" for name in Executions.model_fields
    )
    lines = _fields(
        [
            ("Name", meta.get("name")),
            ("Namespace", meta.get("namespace")),
            ("Created", _moment(meta.get("creationTimestamp"), now=now)),
            ("Schedule", schedule_text(obj)),
            ("Time Zone", spec.get("timeZone") or "UTC"),
            ("Concurrency Policy", spec.get("concurrencyPolicy") or "Allow"),
            ("Catch Up", spec.get("catchUp") or "Latest"),
            ("Runs After", upstreams_text(spec)),
            (
                "Runs Before",
                downstreams if isinstance(downstreams, str) else ", ".join(downstreams or ()),
            ),
            ("Concurrency Group", group if isinstance(group, str | None) else group.text()),
            ("Notify", notify_text(spec)),
            ("Stale After", spec.get("staleAfter") or "<operator default>"),
            ("Suspend", "true" if spec.get("suspend") is True else "false"),
            ("Suspended By Operator", hold_text),
            ("Phase", status.get("phase")),
            ("Health", health_text),
            ("Last Schedule Time", _moment(status.get("lastScheduleTime"), now=now)),
            ("Last Successful Time", _moment(status.get("lastSuccessfulTime"), now=now)),
            ("Last Failure Time", _moment(status.get("lastFailureTime"), now=now)),
            ("Next Run Time", _moment(status.get("nextRunTime"), now=now)),
            ("Executions", counters),
        ]
    )

    active = [a for a in status.get("active") or [] if isinstance(a, Mapping)]
    lines += _section(
        "Active Runs",
        Table(
            headers=["JOB", "SCHEDULED", "STARTED", "RUNNING FOR"],
            rows=[
                [
                    a.get("name"),
                    timestamp(a.get("scheduledTime")),
                    timestamp(a.get("startTime")),
                    age(a.get("startTime"), now=now),
                ]
                for a in active
            ],
        ),
    )

    if isinstance(group, GroupSummary):
        lines += _section(
            "Group Queue",
            Table(
                headers=["JOB", "SCHEDULE", "SCHEDULED"],
                rows=[[w.job, w.schedule, format_time(w.scheduled)] for w in group.queue],
            ),
        )

    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    lines += _section(
        "Conditions",
        Table(
            headers=["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"],
            rows=[
                [
                    c.get("type"),
                    c.get("status"),
                    c.get("reason"),
                    age(c.get("lastTransitionTime"), now=now),
                    truncate(str(c.get("message") or ""), width=MESSAGE_WIDTH),
                ]
                for c in conditions
            ],
        ),
    )

    history = [h for h in status.get("history") or [] if isinstance(h, Mapping)]
    lines += _section(
        "History",
        Table(
            headers=["JOB", "TRIGGER", "SCHEDULED", "STARTED", "DURATION", "RESULT", "REASON"],
            rows=[
                [
                    h.get("job"),
                    h.get("trigger"),
                    timestamp(h.get("scheduledTime")),
                    age(h.get("startTime"), now=now),
                    _duration(h),
                    h.get("result"),
                    h.get("reason"),
                ]
                for h in history_newest_first(history)
            ],
        ),
    )

    upcoming = next_runs(obj, now=now)
    title = "Next Runs" + (f" ({upcoming.note})" if upcoming.note else "")
    lines += _section(
        title,
        Table(
            headers=["TIME", "LOCAL TIME", "IN", "NOTE"],
            rows=[
                [format_time(run), _local(run, upcoming.zone), relative(run, now=now), note or ""]
                for run, note in zip(upcoming.runs, upcoming.run_notes, strict=True)
            ],
        ),
    )

    if events_note is not None:
        lines.append("Events:".ljust(LABEL_WIDTH) + events_note)
    elif events is not None:
        lines += _section("Events", events_table(events, now=now))
    return "\n".join(lines)


def events_table(events: Sequence[Mapping[str, Any]], *, now: datetime) -> Table:
    """Events oldest first, as ``kubectl describe`` lists them, the last ten only."""

    def when(event: Mapping[str, Any]) -> datetime:
        for field in ("lastTimestamp", "eventTime", "firstTimestamp"):
            moment = parse_time(event.get(field))
            if moment is not None:
                return moment
        moment = parse_time((event.get("metadata") or {}).get("creationTimestamp"))
        return moment or now

    ordered = sorted(events, key=when)[-10:]
    return Table(
        headers=["TYPE", "REASON", "AGE", "MESSAGE"],
        rows=[
            [
                e.get("type"),
                e.get("reason"),
                human_duration(now - when(e)),
                truncate(str(e.get("message") or ""), width=MESSAGE_WIDTH * 2),
            ]
            for e in ordered
        ],
    )
