"""The start guard for Jobs that opt in by label (``jobwarden.io/start-deadline``).

A schedule's runs are guarded by their schedule's plan; any other Job in a
watched namespace opts in with the label. An informer feeds this guard one
slim candidate per unfinished opt-in Job; every sweep interval (sooner when
a deadline comes first) the leader lists the pods of each Job past its
deadline whose status shows no pod that ran, and a Job none of whose pods
has run is deleted (or, in dry run, only reported) with a Warning Event
``NeverStarted`` giving the reason its pods give. Each Job is judged once.

Each Job is its own error boundary, as in the stale sweep: a failure is
logged and the Job tried again next pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobwarden import labels
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.kube import Kube, ObjectRef
from jobwarden.runs.jobs import observe_job
from jobwarden.safety.start import (
    describe,
    needs_probe,
    parse_start_label,
    start_deadline_at,
    why_not_started,
)
from jobwarden.watching import Change, ObjectKey

log = logging.getLogger(__name__)

# Other Jobs that opted in (a schedule's own runs are its plan's).
SELECTOR = f"{labels.START_DEADLINE_LABEL},!{labels.SCHEDULE_LABEL}"


@dataclass(frozen=True, slots=True)
class StartCandidate:
    """An unfinished opt-in Job as the guard holds it; ``error``: its label is unusable."""

    namespace: str
    name: str
    uid: str
    created: datetime | None
    deadline: timedelta | None
    started: bool
    suspended: bool
    error: str | None = None


def candidate(body: Mapping[str, Any]) -> StartCandidate | None:
    """The guard's view of one opt-in Job; None once it ended or is being deleted."""
    meta = body.get("metadata") or {}
    obs = observe_job(body)
    if obs.finished or meta.get("deletionTimestamp"):
        return None
    text = str((meta.get("labels") or {}).get(labels.START_DEADLINE_LABEL) or "")
    deadline, error = None, None
    try:
        deadline = parse_start_label(text)
    except ValueError as exc:
        error = str(exc)
    return StartCandidate(
        namespace=obs.namespace,
        name=obs.name,
        uid=str(meta.get("uid") or ""),
        created=obs.created,
        deadline=deadline,
        started=obs.pods_started,
        suspended=obs.suspended,
        error=error,
    )


class StartGuard:
    """Holds the opt-in candidates and judges those past their deadline, when leading."""

    def __init__(
        self, *, kube: Kube, scheduler: Scheduler, interval: timedelta, dry_run: bool
    ) -> None:
        self._kube = kube
        self._scheduler = scheduler
        self._interval = interval
        self._dry_run = dry_run
        self._candidates: dict[ObjectKey, StartCandidate] = {}
        self._judged: set[str] = set()  # uids handled (or seen started): never again
        self.last_beat = time.monotonic()

    def track(self, change: Change[Any]) -> None:
        """A Job's candidate changed; ``None`` means it has none any more."""
        self._candidates.pop(change.key, None)
        if change.new is not None:
            self._candidates[change.key] = change.new

    async def pass_once(self, *, now: datetime) -> int:
        """Judge every candidate due; returns how many were found never started."""
        current = list(self._candidates.values())
        self._judged.intersection_update(c.uid for c in current)
        found = 0
        for c in current:
            if not self._scheduler.leading:
                break
            if c.uid in self._judged:
                continue
            try:
                found += await self._judge(c, now=now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("start guard: Job %s/%s failed; tried again next pass", *_key(c))
        return found

    async def _judge(self, c: StartCandidate, *, now: datetime) -> int:
        ref = ObjectRef("batch/v1", "Job", c.namespace, c.name, c.uid)
        if c.error is not None:
            message = f"Label {labels.START_DEADLINE_LABEL} ignored: {c.error}"
            await self._kube.post_event(
                regarding=ref, type_="Warning", reason="BadStartDeadline", message=message[:1000]
            )
            self._judged.add(c.uid)
            return 0
        if not needs_probe(created=c.created, deadline=c.deadline, started=c.started, now=now):
            return 0
        assert c.deadline is not None
        pods = await self._kube.job_pods(namespace=c.namespace, job=c.name)
        why = why_not_started(pods=pods, suspended=c.suspended)
        if why is not None:
            if not self._dry_run:
                await self._kube.delete_job(namespace=c.namespace, name=c.name, grace_seconds=None)
            message = f"{why.reason}: {describe(why, deadline=c.deadline)}"
            await self._kube.post_event(
                regarding=ref, type_="Warning", reason="NeverStarted", message=message[:1000]
            )
        self._judged.add(c.uid)  # after success: a failed call is tried again next pass
        return 1 if why is not None else 0

    def until_next(self, *, now: datetime) -> float:
        """Seconds until the next candidate's deadline (inf when none is waiting)."""
        waits = [
            at
            for c in self._candidates.values()
            if c.uid not in self._judged
            and (at := start_deadline_at(created=c.created, deadline=c.deadline, started=c.started))
        ]
        if not waits:
            return float("inf")
        return max(0.01, (min(waits) - now).total_seconds())

    async def run(self) -> None:
        """Forever: a pass every interval, or at the next deadline when sooner."""
        delay = self._interval.total_seconds()
        while True:
            self.last_beat = time.monotonic()
            await asyncio.sleep(delay)
            delay = self._interval.total_seconds()
            try:
                await self.pass_once(now=datetime.now(UTC))
                delay = min(delay, self.until_next(now=datetime.now(UTC)))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("start guard pass failed; next one in %s", self._interval)


def _key(c: StartCandidate) -> tuple[str, str]:
    return c.namespace, c.name
