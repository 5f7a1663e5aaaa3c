"""``kubectl jobwarden health``: where scheduled work needs attention, at a glance.

Everything comes from the JobSchedules' status, which the operator keeps
current: the plugin needs only ``list jobschedules``, not Jobs or Pods, so a
user who may read schedules can read their health. Four sections:

* schedules by health state (and the ones not Healthy, with the reason);
* active runs;
* stale runs: runs still going past their threshold (``staleAction: Report``)
  and runs recorded ``Stale`` within the window;
* runs that failed within the window (``--since``, default 24h).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobwarden.api.status import parse_time
from jobwarden.cli.tables import (
    Table,
    age,
    by_namespace_and_name,
    human_duration,
    timestamp,
    truncate,
)

__all__ = ["HEALTH_STATES", "Summary", "summarize"]

HEALTH_STATES = ("Healthy", "Degraded", "Unhealthy", "Unknown")
MESSAGE_WIDTH = 60


@dataclass(frozen=True, kw_only=True)
class Run:
    """One run named in the summary, with the schedule it belongs to."""

    namespace: str
    schedule: str
    job: str | None
    trigger: str | None
    result: str | None
    reason: str | None
    message: str | None
    scheduled_time: datetime | None
    start_time: datetime | None
    completion_time: datetime | None

    def to_api(self) -> dict[str, Any]:
        """JSON-ready, camelCase like the rest of the API."""
        return {
            "namespace": self.namespace,
            "schedule": self.schedule,
            "job": self.job,
            "trigger": self.trigger,
            "result": self.result,
            "reason": self.reason,
            "message": self.message,
            "scheduledTime": timestamp(self.scheduled_time) if self.scheduled_time else None,
            "startTime": timestamp(self.start_time) if self.start_time else None,
            "completionTime": timestamp(self.completion_time) if self.completion_time else None,
        }


@dataclass(frozen=True, kw_only=True)
class Attention:
    """A schedule whose health is not Healthy."""

    namespace: str
    name: str
    state: str
    reason: str | None
    consecutive_failures: int
    message: str | None


@dataclass(kw_only=True)
class Summary:
    """The health summary of a set of schedules."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HEALTH_STATES, 0))
    attention: list[Attention] = field(default_factory=list)
    active: list[Run] = field(default_factory=list)
    stale: list[Run] = field(default_factory=list)
    failed: list[Run] = field(default_factory=list)
    since: timedelta = timedelta(hours=24)

    def to_api(self) -> dict[str, Any]:
        """The summary as one JSON-ready document (``-o json|yaml``)."""
        return {
            "schedulesByHealth": dict(self.counts),
            "needsAttention": [
                {
                    "namespace": a.namespace,
                    "name": a.name,
                    "state": a.state,
                    "reason": a.reason,
                    "consecutiveFailures": a.consecutive_failures,
                    "message": a.message,
                }
                for a in self.attention
            ],
            "activeRuns": [r.to_api() for r in self.active],
            "staleRuns": [r.to_api() for r in self.stale],
            "recentlyFailedRuns": [r.to_api() for r in self.failed],
            "sinceSeconds": int(self.since.total_seconds()),
        }


def _run(namespace: str, schedule: str, entry: Mapping[str, Any]) -> Run:
    return Run(
        namespace=namespace,
        schedule=schedule,
        job=entry.get("job") or entry.get("name"),
        trigger=entry.get("trigger"),
        result=entry.get("result"),
        reason=entry.get("reason"),
        message=entry.get("message"),
        scheduled_time=parse_time(entry.get("scheduledTime")),
        start_time=parse_time(entry.get("startTime")),
        completion_time=parse_time(entry.get("completionTime")),
    )


def _finished_at(entry: Mapping[str, Any]) -> datetime | None:
    return (
        parse_time(entry.get("completionTime"))
        or parse_time(entry.get("startTime"))
        or parse_time(entry.get("scheduledTime"))
    )


def summarize(
    items: Sequence[Mapping[str, Any]], *, now: datetime, since: timedelta = timedelta(hours=24)
) -> Summary:
    """The summary of JobSchedule objects as the API lists them."""
    summary = Summary(since=since)
    for obj in by_namespace_and_name(items):
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        status = obj.get("status") or {}
        health = status.get("health") or {}
        raw_state = health.get("state")
        state = (
            raw_state if isinstance(raw_state, str) and raw_state in HEALTH_STATES else ("Unknown")
        )
        summary.counts[state] += 1
        if state in ("Degraded", "Unhealthy"):
            summary.attention.append(
                Attention(
                    namespace=namespace,
                    name=name,
                    state=state,
                    reason=health.get("reason"),
                    consecutive_failures=int(health.get("consecutiveFailures") or 0),
                    message=health.get("message"),
                )
            )
        history = [h for h in status.get("history") or [] if isinstance(h, Mapping)]
        by_job = {h.get("job"): h for h in history if h.get("job")}
        for active in status.get("active") or []:
            if not isinstance(active, Mapping):
                continue
            merged: dict[str, Any] = {
                **by_job.get(active.get("name"), {}),
                **{k: v for k, v in active.items() if v is not None},
            }
            merged.setdefault("job", active.get("name"))
            summary.active.append(_run(namespace, name, merged))
        for entry in history:
            result = entry.get("result")
            finished = _finished_at(entry)
            recent = finished is not None and now - finished <= since
            reported = result == "Running" and entry.get("reason") == "StaleReported"
            if reported or (result == "Stale" and recent):
                summary.stale.append(_run(namespace, name, entry))
            elif result in ("Failed", "NeverStarted") and recent:
                summary.failed.append(_run(namespace, name, entry))
    return summary


def _ns(with_namespace: bool, cell: str) -> list[str]:
    """The NAMESPACE column's cell (or header), present only under ``-A``."""
    return [cell] if with_namespace else []


def _runs_table(
    runs: Sequence[Run], *, with_namespace: bool, columns: Mapping[str, Callable[[Run], object]]
) -> Table:
    """A section of runs: which run (namespace under ``-A``, schedule, job), then ``columns``."""
    return Table(
        headers=[*_ns(with_namespace, "NAMESPACE"), "SCHEDULE", "JOB", *columns],
        rows=[
            [
                *_ns(with_namespace, r.namespace),
                r.schedule,
                r.job,
                *(c(r) for c in columns.values()),
            ]
            for r in runs
        ],
    )


def summary_tables(
    summary: Summary, *, now: datetime, with_namespace: bool
) -> list[tuple[str, Table, str]]:
    """The summary's sections: (title, table, what to print when the table is empty)."""
    window = human_duration(summary.since)
    by_health = Table(
        headers=["HEALTH", "SCHEDULES"],
        rows=[[state, summary.counts[state]] for state in HEALTH_STATES],
    )
    attention = Table(
        headers=[
            *_ns(with_namespace, "NAMESPACE"),
            "NAME",
            "HEALTH",
            "REASON",
            "FAILURES",
            "MESSAGE",
        ],
        rows=[
            [
                *_ns(with_namespace, a.namespace),
                a.name,
                a.state,
                a.reason,
                a.consecutive_failures,
                truncate(a.message or "", width=MESSAGE_WIDTH),
            ]
            for a in summary.attention
        ],
    )
    active = _runs_table(
        summary.active,
        with_namespace=with_namespace,
        columns={
            "TRIGGER": lambda r: r.trigger,
            "SCHEDULED": lambda r: timestamp(r.scheduled_time) if r.scheduled_time else None,
            "RUNNING FOR": lambda r: age(r.start_time, now=now) if r.start_time else "not started",
        },
    )
    stale = _runs_table(
        summary.stale,
        with_namespace=with_namespace,
        columns={
            "RESULT": lambda r: r.result,
            "STARTED": lambda r: age(r.start_time, now=now),
            "REASON": lambda r: r.reason,
        },
    )
    failed = _runs_table(
        summary.failed,
        with_namespace=with_namespace,
        columns={
            "TRIGGER": lambda r: r.trigger,
            "FINISHED": lambda r: age(r.completion_time or r.start_time, now=now),
            "REASON": lambda r: r.reason,
            "MESSAGE": lambda r: truncate(r.message or "", width=MESSAGE_WIDTH),
        },
    )
    return [
        ("Schedules by health", by_health, ""),
        ("Schedules needing attention", attention, "none"),
        ("Active runs", active, "none"),
        (
            f"Stale runs (running past their threshold, or stale in the last {window})",
            stale,
            "none",
        ),
        (f"Failed runs (last {window})", failed, "none"),
    ]


def summary_text(summary: Summary, *, now: datetime, with_namespace: bool) -> str:
    """The summary as printed: each section a title line and a table, blank lines between."""
    blocks: list[str] = []
    for title, table, empty in summary_tables(summary, now=now, with_namespace=with_namespace):
        if table.rows:
            blocks.append("\n".join([f"{title}:", *table.lines()]))
        else:
            blocks.append(f"{title}: {empty}")
    return "\n\n".join(blocks)
