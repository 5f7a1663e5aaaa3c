"""Wiring for JobSchedules and their Jobs: informer changes in, wake-ups out.

No decisions here beyond which change wakes a schedule (``job_wake``, a pure
function of the old and new observation of one Job). A schedule change asks
the scheduler to reconcile it; a Job change updates the schedule's Jobs as
the scheduler reads them and, when the run's outcome changed, wakes it.
Until the Jobs' first listing is complete, a schedule reconciled reads its
own Jobs instead (``Executor._read_jobs``), so a reconcile never mistakes
"not listed yet" for "deleted".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobwarden import labels
from jobwarden.handlers.calendars import calendar_names
from jobwarden.handlers.chains import after_names
from jobwarden.handlers.scheduler import Key, Scheduler
from jobwarden.runs.jobs import JobObservation, observe_job
from jobwarden.safety.stale import parse_deadline_seconds
from jobwarden.safety.start import start_deadline_at
from jobwarden.watching import Change

_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# The API path of JobSchedules and of Jobs; {ns} is "namespaces/<name>/" or nothing.
SCHEDULES_PATH = f"/apis/{labels.GROUP}/{labels.VERSION}/{{ns}}{labels.PLURAL}"
JOBS_PATH = "/apis/batch/v1/{ns}jobs"


def selector_labels(selector: str | None) -> dict[str, str | None] | None:
    """An equality selector such as ``shard=a,tier`` as {key: value or None (present)}.

    Only equality selectors: the operator's settings promise no more, and a
    set-based one ("tier notin (a)") must be refused at start, not misread.
    """
    if not selector:
        return None
    result: dict[str, str | None] = {}
    for part in selector.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.removeprefix("=").strip()
        if not _LABEL_KEY.match(key) or (sep and not _LABEL_VALUE.match(value)):
            raise ValueError(
                f"only equality selectors (key=value, key==value, key) are supported, got {part!r}"
            )
        result[key] = value if sep else None
    return result


def selector_query(selector: str | None) -> str | None:
    """The selector as the API's ``labelSelector`` (validated by ``selector_labels``)."""
    parsed = selector_labels(selector)
    if not parsed:
        return None
    return ",".join(k if v is None else f"{k}={v}" for k, v in parsed.items())


# --- Jobs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSeen:
    """What the operator keeps of one Job of a schedule, between its watch events."""

    obs: JobObservation
    # The stale threshold the operator set on the Job (its annotation), if any.
    stale_seconds: int | None
    # The sweep's view of the Job (None: no threshold applies); see handlers.sweep.
    candidate: Any = None

    @property
    def key(self) -> Key:
        return (self.obs.namespace, self.obs.schedule or "")


def see_job(body: Mapping[str, Any], *, candidate: Any = None) -> JobSeen:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    try:
        threshold = parse_deadline_seconds(
            str(annotations.get(labels.STALE_DEADLINE_ANNOTATION, ""))
        )
    except ValueError:
        threshold = None  # not one the operator wrote: the spec's threshold holds
    return JobSeen(
        obs=observe_job(body),
        stale_seconds=None if threshold is None else int(threshold.total_seconds()),
        candidate=candidate,
    )


@dataclass(frozen=True, slots=True)
class Wake:
    """Reconcile the Job's schedule at ``at`` (None: now)."""

    at: datetime | None = None


def job_wake(old: JobSeen | None, new: JobSeen | None) -> Wake | None:
    """Whether a Job's change from ``old`` to ``new`` (None: absent) wakes its schedule.

    A new running Job was written to status when it was created: nothing to
    do, but for its start deadline (when it first appears, or is listed after a
    restart), which nothing else would wake it for. An end (finished, or
    deleted) is news at once. A start sets the run's
    stale deadline: a Job the operator may terminate carries its threshold,
    so the wake-up at the deadline costs no call; otherwise (staleAction
    Report, dry run) only the spec knows it, and a reconcile now reads it.
    """
    if new is None:
        return None if old is None else Wake()
    started = new.obs.start_time is not None
    if old is None:
        if new.obs.finished:
            return Wake()
        obs = new.obs
        at = start_deadline_at(
            created=obs.created, deadline=obs.start_deadline, started=obs.pods_started
        )
        return None if at is None else Wake(at)
    if (old.obs.result, old.obs.start_time is not None) == (new.obs.result, started):
        return None
    if new.obs.finished:
        return Wake()
    if not started:
        return None
    if new.stale_seconds is None or new.obs.start_time is None:
        return Wake()
    try:
        return Wake(new.obs.start_time + timedelta(seconds=new.stale_seconds))
    except OverflowError:
        return Wake()


def ended(old: JobSeen | None, new: JobSeen | None) -> bool:
    """Whether a Job's change is its run ending (what a downstream of its schedule waits for)."""
    return new is not None and new.obs.finished and (old is None or not old.obs.finished)


class ScheduleJobs:
    """The Jobs of every schedule, by schedule, as the informer last saw them."""

    def __init__(self) -> None:
        self._by_schedule: dict[Key, dict[str, JobObservation]] = {}

    def jobs_of(self, key: Key) -> list[JobObservation]:
        return list(self._by_schedule.get(key, {}).values())

    def update(self, old: JobSeen | None, new: JobSeen | None) -> None:
        if old is not None and (new is None or new.key != old.key):
            jobs = self._by_schedule.get(old.key, {})
            jobs.pop(old.obs.name, None)
            if not jobs:
                self._by_schedule.pop(old.key, None)
        if new is not None:
            self._by_schedule.setdefault(new.key, {})[new.obs.name] = new.obs


def job_sink(
    *,
    scheduler: Scheduler,
    jobs: ScheduleJobs,
    candidates: Callable[[Change[Any]], None],
) -> Callable[[Change[JobSeen]], None]:
    """What a change of a schedule's Job does: index it, tell the sweep, maybe wake."""

    def sink(change: Change[JobSeen]) -> None:
        jobs.update(change.old, change.new)
        candidates(
            Change(
                key=change.key,
                old=change.old.candidate if change.old else None,
                new=change.new.candidate if change.new else None,
            )
        )
        seen = change.new or change.old
        if seen is None:
            return
        scheduler.job_seen(seen.key, seen.obs.name)
        scheduler.groups.job(
            change.old.obs if change.old else None, change.new.obs if change.new else None
        )
        wake = job_wake(change.old, change.new)
        if wake is not None:
            scheduler.touch(seen.key, wake.at)
        if ended(change.old, change.new):
            # A run ended: the schedules that run after this one decide on it now.
            for downstream in scheduler.chains.downstreams_of(seen.key):
                scheduler.touch(downstream)

    return sink


# --- JobSchedules ---------------------------------------------------------------------


def schedule_version(body: Mapping[str, Any]) -> str:
    """What the schedule store keeps: the resourceVersion, which tells a change."""
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


def schedule_sink(scheduler: Scheduler) -> Callable[[Change[str]], None]:
    """A schedule's change: reconcile it; its deletion (watched or found by a relist): forget."""

    def sink(change: Change[str]) -> None:
        if change.new is None:
            scheduler.forget(change.key)
            scheduler.calendars.use(change.key, None)
            moved = scheduler.chains.update(change.key, None)
            scheduler.groups.schedule(change.key, None)
        else:
            body = dict(change.body or {})
            moved = scheduler.chains.update(change.key, after_names(body))
            scheduler.calendars.use(change.key, calendar_names(body))
            scheduler.seen(change.key, resource_version=change.new, body=body)
            scheduler.groups.schedule(change.key, body)
        for downstream in moved:  # an upstream came or went: valid now, or not
            scheduler.touch(downstream)

    return sink
