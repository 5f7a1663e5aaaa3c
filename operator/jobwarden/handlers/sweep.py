"""The stale sweep: a backstop over every active run held to a threshold.

Runs of JobSchedules are woken at their own stale deadline by the scheduler;
this sweep re-checks them from an in-memory index each interval (a missed
wake-up never leaves a run unattended) and handles Jobs that opted in with the
``jobwarden.io/stale-after`` label. The index is fed by the Job watch, so a
sweep makes no LIST call, only the calls that its findings need.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from jobwarden import labels, metrics
from jobwarden.api.status import parse_time
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.kube import Kube, ObjectRef
from jobwarden.safety.stale import (
    StaleCandidate,
    due_for_stale,
    next_stale_deadline,
    parse_stale_label,
)

log = logging.getLogger(__name__)

# (namespace, job name, schedule or "") identifies a candidate.
CandidateKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class JobCandidate(StaleCandidate):
    """A candidate with its Job's uid: ``kubectl describe job`` matches Events by
    uid, so an Event about an opt-in Job needs it to show there."""

    uid: str = ""


def _active(body: kopf.Body) -> bool:
    for cond in body.get("status", {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return False
    return body.metadata.get("deletionTimestamp") is None


def candidate(body: kopf.Body, *, dry_run: bool) -> StaleCandidate | None:
    """The sweep's view of one Job, or None when no threshold applies to it."""
    meta = body.metadata
    schedule = (meta.get("labels") or {}).get(labels.SCHEDULE_LABEL)
    start = parse_time(body.get("status", {}).get("startTime"))
    if schedule is not None:
        seconds = (meta.get("annotations") or {}).get(labels.STALE_DEADLINE_ANNOTATION)
        if not seconds or not seconds.isdigit():
            return None  # the scheduler's own wake-up covers it
        owner = next(
            (
                r.get("name")
                for r in meta.get("ownerReferences") or []
                if r.get("kind") == labels.KIND
            ),
            schedule,
        )
        return JobCandidate(
            key=(meta["namespace"], meta["name"], owner),
            start_time=start,
            threshold=timedelta(seconds=int(seconds)),
            action="Terminate",
            uid=meta.get("uid", ""),
        )
    text = (meta.get("labels") or {}).get(labels.STALE_AFTER_LABEL)
    if text is None:
        return None
    threshold = parse_stale_label(text)
    return JobCandidate(
        key=(meta["namespace"], meta["name"], ""),
        start_time=start,
        threshold=threshold,
        action="Report" if dry_run else "Terminate",
        uid=meta.get("uid", ""),
    )


class Sweep:
    """Acts on stale candidates: wakes their schedule, or handles an opt-in Job."""

    def __init__(self, *, kube: Kube, scheduler: Scheduler, interval: timedelta) -> None:
        self._kube = kube
        self._scheduler = scheduler
        self._interval = interval
        self._acted: set[CandidateKey] = set()

    async def sweep_once(self, candidates: Iterable[StaleCandidate], *, now: datetime) -> int:
        """One pass; returns how many stale runs it found.

        A standby replica finds but does not act: terminating is the leader's
        job, and an opt-in Job it skipped stays a candidate for when it leads.
        """
        found = due_for_stale(candidates, now=now)
        # Only Jobs still due are remembered: a deleted one leaves the index and
        # this set with it, so the set stays as small as the stale Jobs now.
        self._acted.intersection_update(run.key for run in found)
        actions: list[Awaitable[None]] = []
        for run in found:
            if not self._scheduler.leading:
                break  # checked per run: leadership can end during a pass
            key: CandidateKey = run.key  # type: ignore[assignment]
            namespace, _, schedule = key
            if schedule:
                self._scheduler.touch((namespace, schedule))
                continue
            if key in self._acted:
                continue  # reported already, or deleted and not yet out of the index
            actions.append(self._opt_in(key, getattr(run, "uid", ""), run))
        # Concurrently (the Kube pool bounds it): one by one, a hundred stale Jobs
        # took longer than the sweep interval to handle.
        outcomes = await asyncio.gather(*actions, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise failed[0]
        return len(found)

    async def _opt_in(self, key: CandidateKey, uid: str, run: StaleCandidate) -> None:
        namespace, job, _ = key
        ref = ObjectRef("batch/v1", "Job", namespace, job, uid)
        message = f"Active for more than {run.threshold} (label {labels.STALE_AFTER_LABEL})."
        if run.action == "Terminate":
            await self._kube.delete_job(namespace=namespace, name=job, grace_seconds=None)
            await self._kube.post_event(
                regarding=ref, type_="Warning", reason="StaleTerminated", message=message
            )
        else:
            await self._kube.post_event(
                regarding=ref, type_="Warning", reason="StaleReported", message=message
            )
        # After success: a failed delete is tried (and counted) again next pass.
        self._acted.add(key)
        metrics.STALE_RUNS.labels(namespace, run.action).inc()

    async def run(self, index: Any) -> None:
        delay = self._interval.total_seconds()
        while True:
            await asyncio.sleep(delay)
            delay = self._interval.total_seconds()
            try:
                now = datetime.now(UTC)
                candidates = [c for store in index.values() for c in store]
                await self.sweep_once(candidates, now=now)
                delay = min(delay, self.until_next_opt_in(candidates, now=datetime.now(UTC)))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stale sweep failed; next one in %s", self._interval)

    @staticmethod
    def until_next_opt_in(candidates: Iterable[StaleCandidate], *, now: datetime) -> float:
        """Seconds until the next opt-in Job goes stale (inf if none is due to).

        Only the sweep acts on opt-in Jobs, so it wakes at their deadline rather
        than up to an interval later; a schedule's runs wake their schedule
        themselves, and waking for those too would only duplicate reconciles.
        """
        upcoming = next_stale_deadline(
            c
            for c in candidates
            if not c.key[2]  # type: ignore[index]
            and c.start_time is not None
            and c.start_time + c.threshold > now
        )
        if upcoming is None:
            return float("inf")
        return max(0.01, (upcoming - now).total_seconds())


def register(*, dry_run: bool) -> None:
    """The index the sweep reads: active Jobs with a threshold."""

    def _ready(body: kopf.Body, **_: Any) -> bool:
        return _active(body)

    # async: kopf would run a plain function in its thread pool, one hop per Job event.
    @kopf.index("batch", "v1", "jobs", id="stale_candidates", when=_ready)
    async def stale_candidates(
        body: kopf.Body, **_: Any
    ) -> dict[CandidateKey, StaleCandidate] | None:
        try:
            found = candidate(body, dry_run=dry_run)
        except ValueError as exc:
            log.warning(
                "Job %s/%s: bad %s label: %s",
                body.metadata.get("namespace"),
                body.metadata.get("name"),
                labels.STALE_AFTER_LABEL,
                exc,
            )
            return None
        return None if found is None else {found.key: found}  # type: ignore[dict-item]
