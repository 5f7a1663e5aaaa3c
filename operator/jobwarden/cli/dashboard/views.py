"""What the dashboard's pages show, as plain JSON-ready data: pure functions of objects.

The browser only lays these out; every judgement (health, elapsed against the
stale threshold, the timeline's geometry, the next runs) is made here, with
the same code the plugin prints from (``summarize`` for ``health``,
``next_runs`` and ``schedule_text`` for ``describe``), so the dashboard and
the command line never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import yaml

from jobwarden.api.spec import load_zone, parse_duration
from jobwarden.api.status import format_time, parse_time
from jobwarden.cli.describe import events_table, history_newest_first, next_runs
from jobwarden.cli.output import stripped
from jobwarden.cli.summary import summarize
from jobwarden.cli.tables import by_namespace_and_name, schedule_text

__all__ = ["overview", "run_rows", "schedule_page", "timeline"]

# The operator's default stale threshold (``--stale-after``), when a spec sets none.
DEFAULT_STALE_AFTER: Final = timedelta(hours=6)
HEALTH_ORDER: Final = {"Unhealthy": 0, "Degraded": 1, "Unknown": 2, "Healthy": 3}
# Results drawn as gaps in the timeline: runs that never ran.
GAP_RESULTS: Final = frozenset({"Missed", "Skipped"})
NEXT_RUNS: Final = 10
# Runs listed per overview section, most urgent first; the section says how many there are.
# A thousand failing schedules must not make a page of thousands of rows.
MAX_RUNS_LISTED: Final = 100


def stale_after(spec: Mapping[str, Any]) -> timedelta:
    """The schedule's stale threshold: ``spec.staleAfter``, else the operator's default."""
    text = spec.get("staleAfter")
    if isinstance(text, str) and text:
        try:
            return parse_duration(text)
        except ValueError:
            pass  # invalid: the operator reports it; the default still holds the run
    return DEFAULT_STALE_AFTER


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _last(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """The newest history entry: the operator keeps history newest first, so the first one.

    (``describe`` sorts again, for a status written out of order; the overview
    reads a thousand schedules on every change and takes the operator's word.)
    """
    for entry in status.get("history") or []:
        if isinstance(entry, Mapping):
            return entry
    return {}


def schedule_row(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One schedule in the overview's table."""
    namespace, name = _key(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    health = status.get("health") or {}
    state = health.get("state") if health.get("state") in HEALTH_ORDER else "Unknown"
    held = (status.get("suspendedByOperator") or {}).get("suspended") is True
    last = _last(status)
    return {
        "namespace": namespace,
        "name": name,
        "schedule": schedule_text(obj),
        "phase": status.get("phase"),
        "health": state,
        "healthReason": health.get("reason"),
        "suspended": spec.get("suspend") is True or held,
        "active": len([a for a in status.get("active") or [] if isinstance(a, Mapping)]),
        "lastResult": last.get("result"),
        "lastRun": last.get("startTime") or last.get("scheduledTime"),
        "nextRun": status.get("nextRunTime"),
        "version": str((obj.get("metadata") or {}).get("resourceVersion") or ""),
    }


def overview(
    items: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    namespace: str | None = None,
    since: timedelta = timedelta(hours=24),
) -> dict[str, Any]:
    """The overview page: schedules by health, active, stale and failed runs, attention.

    ``namespace`` narrows everything but the list of namespaces (which feeds
    the page's filter).
    """
    namespaces = sorted({_key(o)[0] for o in items})
    shown = [o for o in items if namespace in (None, "", _key(o)[0])]
    summary = summarize(shown, now=now, since=since)
    api = summary.to_api()  # the same lists ``kubectl jobwarden health -o json`` prints
    thresholds = {_key(o): stale_after(o.get("spec") or {}) for o in shown}
    active = []
    for run, entry in zip(summary.active, api["activeRuns"], strict=True):
        limit = thresholds.get((run.namespace, run.schedule), DEFAULT_STALE_AFTER)
        elapsed = (now - run.start_time).total_seconds() if run.start_time else None
        active.append(
            {
                **entry,
                "elapsedSeconds": elapsed,
                "staleAfterSeconds": limit.total_seconds(),
                "stale": elapsed is not None and elapsed > limit.total_seconds(),
            }
        )
    # Nearest to (or past) its threshold first; then the newest stale and failed runs.
    active.sort(key=lambda r: -(r["elapsedSeconds"] or 0) / r["staleAfterSeconds"])
    stale = sorted(api["staleRuns"], key=_newest, reverse=True)
    failed = sorted(api["recentlyFailedRuns"], key=_newest, reverse=True)
    rows = [schedule_row(o) for o in by_namespace_and_name(shown)]
    rows.sort(key=lambda r: HEALTH_ORDER[r["health"]])  # stable: by health, then ns/name
    return {
        "now": format_time(now),
        "namespace": namespace or None,
        "namespaces": namespaces,
        "counts": api["schedulesByHealth"],
        "schedules": rows,
        "attention": api["needsAttention"],
        "active": active[:MAX_RUNS_LISTED],
        "stale": stale[:MAX_RUNS_LISTED],
        "failed": failed[:MAX_RUNS_LISTED],
        "totals": {"active": len(active), "stale": len(stale), "failed": len(failed)},
        "sinceSeconds": api["sinceSeconds"],
    }


def _newest(run: Mapping[str, Any]) -> str:
    """A run's latest time as RFC 3339 UTC text, which sorts as the instants do."""
    return str(run.get("completionTime") or run.get("startTime") or run.get("scheduledTime") or "")


def _span(entry: Mapping[str, Any], *, now: datetime) -> tuple[datetime, datetime] | None:
    """When a history entry's run began and ended (``now`` while it runs)."""
    start = parse_time(entry.get("startTime")) or parse_time(entry.get("scheduledTime"))
    if start is None:
        return None
    end = parse_time(entry.get("completionTime"))
    if end is None:
        seconds = entry.get("durationSeconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            end = start + timedelta(seconds=float(seconds))
        elif entry.get("result") in (None, "Running"):
            end = now
        else:
            end = start
    return start, max(start, end)


def timeline(history: Sequence[Mapping[str, Any]], *, now: datetime) -> dict[str, Any]:
    """Past runs as bars over one time axis, oldest to now: left edge and width as fractions.

    A bar's length is the run's duration; missed and skipped runs are gaps
    (``gap: true``, no width) at their scheduled time. A run too short to see
    at the axis' scale keeps a visible sliver (``minWidth`` tells the browser).
    """
    spans = []
    for entry in history:
        span = _span(entry, now=now)
        if span is not None:
            spans.append((entry, *span))
    if not spans:
        return {"start": None, "end": format_time(now), "bars": []}
    first = min(s for _, s, _ in spans)
    last = max(now, *(e for _, _, e in spans))
    total = max((last - first).total_seconds(), 1.0)
    bars = []
    for entry, start, end in sorted(spans, key=lambda s: s[1]):
        gap = entry.get("result") in GAP_RESULTS
        bars.append(
            {
                "job": entry.get("job"),
                "result": entry.get("result") or "Running",
                "trigger": entry.get("trigger"),
                "start": format_time(start),
                "end": format_time(end),
                "durationSeconds": (end - start).total_seconds(),
                "gap": gap,
                "x": (start - first).total_seconds() / total,
                "width": 0.0 if gap else (end - start).total_seconds() / total,
            }
        )
    return {"start": format_time(first), "end": format_time(last), "bars": bars}


def _words(obj: Mapping[str, Any]) -> list[list[str]]:
    """The spec in words: one ``[label, value]`` per setting that shapes when it runs."""
    spec = obj.get("spec") or {}
    pairs: list[list[str]] = [
        ["Schedule", schedule_text(obj)],
        ["Time zone", str(spec.get("timeZone") or "UTC")],
    ]
    optional = (
        ("Not before", "startAt"),
        ("Not after", "endAt"),
        ("Max executions", "maxExecutions"),
        ("Concurrency", "concurrencyPolicy"),
        ("Catch up", "catchUp"),
    )
    for label, field in optional:
        if spec.get(field) not in (None, ""):
            pairs.append([label, str(spec[field])])
    dst = spec.get("dst") or {}
    if dst:
        pairs.append(
            [
                "Clock changes",
                f"a skipped time: {dst.get('missingTime') or 'RunAfter'}; "
                f"a repeated time: {dst.get('repeatedTime') or 'First'}",
            ]
        )
    if spec.get("exclude"):
        pairs.append(["Excluded dates", ", ".join(str(d) for d in spec["exclude"])])
    stale = spec.get("staleAfter") or f"operator default ({DEFAULT_STALE_AFTER.seconds // 3600}h)"
    pairs.append(["Stale after", f"{stale}, then {spec.get('staleAction') or 'Terminate'}"])
    if spec.get("suspend") is True:
        pairs.append(["Suspended", "yes (spec.suspend)"])
    return pairs


def run_rows(runs: Sequence[datetime], *, zone: str, now: datetime) -> list[dict[str, Any]]:
    """Next runs as the pages list them: UTC, the schedule's wall clock, and a DST note.

    A run whose UTC offset differs from the one before it (the first: from
    ``now``) comes after a clock change in the schedule's zone; the note says
    which, so that a 02:30 run an hour "off" in UTC is not a surprise.
    """
    tz = load_zone(zone)
    rows = []
    before = now.astimezone(tz)
    for run in runs:
        local = run.astimezone(tz)
        note = None
        if local.utcoffset() != before.utcoffset():
            note = f"after a clock change ({before.tzname()} → {local.tzname()})"
        rows.append(
            {
                "utc": format_time(run),
                "local": local.strftime("%a %Y-%m-%d %H:%M %Z"),
                "note": note,
            }
        )
        before = local
    return rows


def schedule_page(
    obj: Mapping[str, Any],
    *,
    now: datetime,
    events: Sequence[Mapping[str, Any]] | None,
    events_note: str | None = None,
) -> dict[str, Any]:
    """The schedule page: spec in words, next runs, timeline, history, events, conditions, YAML."""
    namespace, name = _key(obj)
    status = obj.get("status") or {}
    upcoming = next_runs(obj, now=now, count=NEXT_RUNS)
    history = [h for h in status.get("history") or [] if isinstance(h, Mapping)]
    held = status.get("suspendedByOperator") or {}
    return {
        "row": schedule_row(obj),
        "namespace": namespace,
        "name": name,
        "words": _words(obj),
        "health": status.get("health") or {},
        "heldByOperator": held if held.get("suspended") is True else None,
        "zone": upcoming.zone,
        "nextRuns": run_rows(upcoming.runs, zone=upcoming.zone, now=now) if upcoming.zone else [],
        "nextRunsNote": upcoming.note,
        "timeline": timeline(history, now=now),
        "history": [dict(h) for h in history_newest_first(history)],
        "active": [dict(a) for a in status.get("active") or [] if isinstance(a, Mapping)],
        "conditions": [dict(c) for c in status.get("conditions") or [] if isinstance(c, Mapping)],
        "events": None if events is None else events_table(events, now=now).rows,
        "eventsNote": events_note,
        "yaml": yaml.safe_dump(stripped(obj), sort_keys=False, default_flow_style=False),
    }
