"""The stale sweep: a backstop over every active run held to a threshold.

Runs of JobSchedules are woken at their own stale deadline by the scheduler;
this sweep re-checks them from memory each interval (a missed wake-up never
leaves a run unattended) and handles Jobs that opted in with the
``jobwarden.io/stale-after`` label. The candidates are fed by the Job
informers, so a sweep makes no LIST call, only the calls its findings need.

Each Job is its own error boundary: a candidate whose arithmetic fails, or
whose delete or Event fails, is logged and retried next pass, and the rest
of the pass goes on. A bad label value is a Warning Event on that Job, once
per value, and the Job is otherwise ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobwarden import labels, metrics
from jobwarden.api.status import parse_time
from jobwarden.handlers.passes import pass_forever
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.kube import Kube, ObjectRef
from jobwarden.safety.stale import (
    StaleCandidate,
    due_for_stale,
    next_stale_deadline,
    parse_deadline_seconds,
    parse_stale_label,
)
from jobwarden.watching import Change, ObjectKey

log = logging.getLogger(__name__)

# (namespace, job name, schedule or "") identifies a candidate.
CandidateKey = tuple[str, str, str]
# The informers' selectors: a schedule's Jobs, and the other Jobs that opted in.
SCHEDULE_JOBS_SELECTOR = labels.SCHEDULE_LABEL
OPT_IN_SELECTOR = f"{labels.STALE_AFTER_LABEL},!{labels.SCHEDULE_LABEL}"


@dataclass(frozen=True, slots=True)
class JobCandidate(StaleCandidate):
    """A candidate with its Job's uid: ``kubectl describe job`` matches Events by
    uid, so an Event about an opt-in Job needs it to show there."""

    uid: str = ""


@dataclass(frozen=True, slots=True)
class BadLabel:
    """An opt-in Job whose ``jobwarden.io/stale-after`` value cannot be used."""

    key: ObjectKey
    uid: str
    value: str
    error: str


def _active(body: Mapping[str, Any]) -> bool:
    for cond in body.get("status", {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return False
    return (body.get("metadata") or {}).get("deletionTimestamp") is None


def candidate(body: Mapping[str, Any], *, dry_run: bool) -> StaleCandidate | None:
    """The sweep's view of one Job, or None when no threshold applies to it.

    Raises ValueError for an opt-in Job whose label value is bad.
    """
    meta = body.get("metadata") or {}
    schedule = (meta.get("labels") or {}).get(labels.SCHEDULE_LABEL)
    start = parse_time(body.get("status", {}).get("startTime"))
    if schedule is not None:
        seconds = (meta.get("annotations") or {}).get(labels.STALE_DEADLINE_ANNOTATION)
        try:
            threshold = parse_deadline_seconds(str(seconds or ""))
        except ValueError:
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
            threshold=threshold,
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


def opt_in(body: Mapping[str, Any], *, dry_run: bool) -> StaleCandidate | BadLabel | None:
    """What the sweep keeps of an opt-in Job: its candidate, or its bad label."""
    if not _active(body):
        return None
    try:
        return candidate(body, dry_run=dry_run)
    except (ValueError, OverflowError) as exc:
        meta = body.get("metadata") or {}
        return BadLabel(
            key=(str(meta.get("namespace") or ""), str(meta.get("name") or "")),
            uid=str(meta.get("uid") or ""),
            value=str((meta.get("labels") or {}).get(labels.STALE_AFTER_LABEL)),
            error=str(exc),
        )


def schedule_job(body: Mapping[str, Any]) -> StaleCandidate | None:
    """The candidate of a schedule's Job (only an active one with a threshold)."""
    return candidate(body, dry_run=False) if _active(body) else None


def _guarded(what: str, key: object, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(...)`` for one Job, or None when it raises: one bad Job never stops a pass."""
    try:
        return fn(*args, **kwargs)
    except Exception:
        log.exception("stale sweep: %s of Job %s failed; skipped this pass", what, key)
        return None


class Sweep:
    """Acts on stale candidates: wakes their schedule, or handles an opt-in Job.

    It also holds the candidates, fed by the Job informers through ``track``.
    """

    def __init__(self, *, kube: Kube, scheduler: Scheduler, interval: timedelta) -> None:
        self._kube = kube
        self._scheduler = scheduler
        self._interval = interval
        self._acted: set[CandidateKey] = set()
        self._candidates: dict[ObjectKey, StaleCandidate] = {}
        self._bad: dict[ObjectKey, BadLabel] = {}
        self._reported: set[tuple[str, str]] = set()  # (uid, value) of bad labels reported
        self.last_beat = time.monotonic()

    # --- the candidates, as the informers see them ------------------------------------

    def track(self, change: Change[Any]) -> None:
        """A Job's candidate (or bad label) changed; ``None`` means it has none."""
        self._candidates.pop(change.key, None)
        self._bad.pop(change.key, None)
        if isinstance(change.new, BadLabel):
            self._bad[change.key] = change.new
            if (change.new.uid, change.new.value) not in self._reported:
                log.warning(
                    "Job %s/%s: bad %s label %r ignored: %s",
                    *change.key,
                    labels.STALE_AFTER_LABEL,
                    change.new.value,
                    change.new.error,
                )
        elif change.new is not None:
            self._candidates[change.key] = change.new

    def candidates(self) -> list[StaleCandidate]:
        return list(self._candidates.values())

    # --- one pass ---------------------------------------------------------------------

    async def sweep_once(self, candidates: Iterable[StaleCandidate], *, now: datetime) -> int:
        """One pass; returns how many stale runs it found.

        A standby replica finds but does not act: terminating is the leader's
        job, and an opt-in Job it skipped stays a candidate for when it leads.
        """
        found = [
            run
            for run in candidates
            if _guarded("the stale check", run.key, due_for_stale, [run], now=now)
        ]
        # Only Jobs still due are remembered: a deleted one leaves the candidates and
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
                continue  # reported already, or deleted and not yet out of the candidates
            actions.append(self._opt_in(key, getattr(run, "uid", ""), run))
        if self._scheduler.leading:
            actions.extend(self._report_bad_labels())
        # Concurrently (the Kube pool bounds it): one by one, a hundred stale Jobs
        # took longer than the sweep interval to handle.
        outcomes = await asyncio.gather(*actions, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                log.error("stale sweep: an action failed; tried again next pass: %s", outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        return len(found)

    def _report_bad_labels(self) -> list[Awaitable[None]]:
        return [
            self._report_bad(bad)
            for bad in list(self._bad.values())
            if (bad.uid, bad.value) not in self._reported
        ]

    async def _report_bad(self, bad: BadLabel) -> None:
        ref = ObjectRef("batch/v1", "Job", bad.key[0], bad.key[1], bad.uid)
        message = f"Label {labels.STALE_AFTER_LABEL}={bad.value!r} ignored: {bad.error}"
        await self._kube.post_event(
            regarding=ref, type_="Warning", reason="BadStaleAfter", message=message[:1000]
        )
        self._reported.add((bad.uid, bad.value))

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

    async def run(self) -> None:
        """Forever: a pass every interval (sooner for an opt-in deadline); beats each pass."""

        async def one_pass() -> float:
            candidates = self.candidates()
            await self.sweep_once(candidates, now=datetime.now(UTC))
            return self.until_next_opt_in(candidates, now=datetime.now(UTC))

        await pass_forever(
            interval=self._interval, one_pass=one_pass, beat=self._beat, what="stale sweep"
        )

    def _beat(self) -> None:
        self.last_beat = time.monotonic()

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
            and _guarded("the deadline", c.key, _pending, c, now=now)
        )
        if upcoming is None:
            return float("inf")
        return max(0.01, (upcoming - now).total_seconds())


def _pending(c: StaleCandidate, *, now: datetime) -> bool:
    return c.start_time is not None and c.start_time + c.threshold > now
