"""kopf wiring for JobSchedules and their Jobs: watch events in, wake-ups out.

No decisions here. A schedule event asks the scheduler to reconcile it; a
Job event updates the slim index of the schedule's Jobs and, when the run's
outcome changed, asks for a reconcile too. kopf holds back these handlers
until the index is filled, so a reconcile never mistakes "not listed yet"
for "deleted".
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import kopf

from jobwarden import labels
from jobwarden.handlers.scheduler import Key, Scheduler
from jobwarden.runs.jobs import JobObservation, observe_job

_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

# Last outcome seen per Job (uid), so only changes that matter wake a schedule.
_last_state: dict[str, tuple[str, bool]] = {}


def selector_labels(selector: str | None) -> dict[str, Any] | None:
    """kopf's label filter from an equality selector such as ``shard=a,tier``."""
    if not selector:
        return None
    result: dict[str, Any] = {}
    for part in selector.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.removeprefix("=").strip()
        # Anything but a label key (and value) is refused, not read as a key:
        # "tier notin (a)" must not become a filter that matches nothing.
        if not _LABEL_KEY.match(key) or (sep and not _LABEL_VALUE.match(value)):
            raise ValueError(
                f"only equality selectors (key=value, key==value, key) are supported, got {part!r}"
            )
        result[key] = value if sep else kopf.PRESENT
    return result


def register(*, scheduler_of: Any, selector: str | None) -> None:
    """Register the handlers; ``scheduler_of(memo)`` finds the running Scheduler.

    Every handler is ``async`` although none awaits anything: kopf runs a
    plain function in a thread pool, and these update the scheduler's heap
    and wake its loop, which only the event loop's own thread may do safely
    (and a thread hop per watch event costs more than the handler itself).
    """
    schedule_filter = selector_labels(selector)

    @kopf.index(
        "batch", "v1", "jobs", id="schedule_jobs", labels={labels.SCHEDULE_LABEL: kopf.PRESENT}
    )
    async def schedule_jobs(
        *, body: kopf.Body, namespace: str | None, **_: Any
    ) -> dict[Key, JobObservation]:
        # Jobs are namespaced: kopf gives None only for cluster-scoped objects.
        obs = observe_job(body)
        return {(namespace or "", obs.schedule or ""): obs}

    @kopf.on.event(
        labels.GROUP, labels.VERSION, labels.PLURAL, id="schedule_event", labels=schedule_filter
    )
    async def schedule_event(
        *,
        event: kopf.RawEvent,
        body: kopf.Body,
        namespace: str | None,
        name: str,
        memo: kopf.Memo,
        **_: Any,
    ) -> None:
        scheduler: Scheduler = scheduler_of(memo)
        key = (namespace or "", name)
        if event.get("type") == "DELETED":
            scheduler.forget(key)
            return
        scheduler.seen(key, resource_version=body.metadata.get("resourceVersion"), body=dict(body))

    @kopf.on.event(
        "batch", "v1", "jobs", id="job_event", labels={labels.SCHEDULE_LABEL: kopf.PRESENT}
    )
    async def job_event(
        *,
        event: kopf.RawEvent,
        body: kopf.Body,
        namespace: str | None,
        uid: str,
        memo: kopf.Memo,
        **_: Any,
    ) -> None:
        scheduler: Scheduler = scheduler_of(memo)
        obs = observe_job(body)
        key = (namespace or "", obs.schedule or "")
        scheduler.job_seen(key, obs.name)
        if event.get("type") == "DELETED":
            _last_state.pop(uid, None)
            scheduler.touch(key)
            return
        state = (obs.result, obs.start_time is not None)
        previous = _last_state.get(uid)
        _last_state[uid] = state
        # A new Job was written to status when it was created; only its end matters.
        if previous is None and not obs.finished:
            return
        if previous != state and (obs.finished or previous is None):
            scheduler.touch(key)
        elif previous != state and obs.start_time is not None:
            # Started: its stale deadline counts from now. A Job the operator may
            # terminate carries the threshold, so a wake-up at the deadline costs
            # no call; otherwise (staleAction Report, dry run) only the spec knows
            # it, and a reconcile now reads it and sets the wake-up.
            seconds = (body.metadata.get("annotations") or {}).get(
                labels.STALE_DEADLINE_ANNOTATION, ""
            )
            deadline = (
                obs.start_time + timedelta(seconds=int(seconds)) if seconds.isdigit() else None
            )
            scheduler.touch(key, deadline)
