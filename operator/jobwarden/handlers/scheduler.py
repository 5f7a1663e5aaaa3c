"""One loop that wakes schedules when they are due, and carries out their plans.

Instead of a kopf timer per object (a task and a body held per schedule), the
operator keeps one heap of (wake time, key) entries. Watch events and Job
changes push a key to "now"; a plan's ``wake_at`` pushes it to the next run
or stale deadline. When a key comes due it is reconciled: one GET of the
schedule (or the body our last status write produced, see ``seen``), the
pure plan, then the plan's API calls. Idle schedules cost no API calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobwarden import labels, metrics
from jobwarden.api.status import parse_time
from jobwarden.kube import Kube, ObjectRef
from jobwarden.reconcile import Note, Observed, Plan, Policy, plan
from jobwarden.runs.jobs import JobObservation
from jobwarden.runs.naming import schedule_label_value

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
JobsOf = Callable[[Key], Iterable[JobObservation]]
RETRY = timedelta(seconds=5)
# The longest a run's status write waits for a burst of other runs to be created.
CALM_WAIT = timedelta(seconds=10)
# How long before a wake-up its plan is made (see Scheduler._prepare).
PREPARE_AHEAD = timedelta(seconds=2)
# The loop passes at least this often, idle or standby, so its beat shows it is alive.
BEAT_SECONDS = 5.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def observed(body: dict[str, Any]) -> Observed:
    meta = body.get("metadata", {})
    return Observed(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        created=parse_time(meta.get("creationTimestamp")) or utcnow(),
        annotations=meta.get("annotations") or {},
        spec=body.get("spec") or {},
        status=body.get("status") or {},
    )


# What ``observed`` reads from metadata; the rest (managedFields above all) is not kept.
_KEPT_METADATA = (
    "namespace",
    "name",
    "uid",
    "generation",
    "creationTimestamp",
    "annotations",
    "resourceVersion",
)


def pack(body: dict[str, Any]) -> bytes:
    """A schedule body as kept between reconciles: the fields it is planned from, as JSON.

    One bytes object instead of a tree of dicts: a fresh schedule keeps about
    a kilobyte, one with a full history a few. Not compressed: zlib releases
    the interpreter lock, and getting it back from 32 busy API threads cost
    the event loop more than the compression saved.
    """
    meta = body.get("metadata") or {}
    slim = {
        "metadata": {k: meta[k] for k in _KEPT_METADATA if k in meta},
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }
    return json.dumps(slim, separators=(",", ":")).encode()


def unpack(packed: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(packed)
    return body


def _reject(status: dict[str, Any], job: str, message: str) -> None:
    """A Job the API refused is a failed run whose message users must see."""
    for entry in status.get("history") or []:
        if entry.get("job") == job and entry.get("result") == "Running":
            entry.update(result="Failed", reason="JobRejected", message=message[:1000])
    status["active"] = [a for a in status.get("active") or [] if a.get("name") != job]
    status["activeCount"] = len(status["active"])
    counts = status.setdefault("executions", {})
    counts["failed"] = int(counts.get("failed", 0)) + 1
    status["lastResult"] = "Failed"


@dataclass(frozen=True)
class _Prepared:
    """A plan made ahead for the wake-up at ``at``, from the body at ``resource_version``."""

    at: datetime
    resource_version: str
    obj: Observed
    plan: Plan


class Scheduler:
    """The wake heap, the per-schedule locks, and the plan executor."""

    def __init__(
        self, *, kube: Kube, policy: Policy, jobs_of: JobsOf, concurrency: int = 64
    ) -> None:
        self._kube = kube
        self._policy = policy
        self._jobs_of = jobs_of
        self._heap: list[tuple[datetime, Key]] = []
        # (when to prepare, the wake-up it is for, key), and the plans made ahead.
        self._prep_heap: list[tuple[datetime, datetime, Key]] = []
        self._prepared: dict[Key, _Prepared] = {}
        self._prep_due: dict[Key, datetime] = {}  # the wake-up each key's heap entry is for
        self._due: dict[Key, datetime] = {}
        self._known: set[Key] = set()
        self._busy: set[Key] = set()
        self._again: set[Key] = set()
        self._written: dict[Key, str] = {}
        # (resourceVersion, packed body) of the newest state known for sure (see seen()).
        self._bodies: dict[Key, tuple[str, bytes]] = {}
        self._pending: dict[Key, set[str]] = {}
        self._health: dict[Key, str] = {}
        self._active: dict[Key, int] = {}
        self._by_health: Counter[str] = Counter()
        self._active_total = 0
        self._changed = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        # Reconciles reading, planning or creating, or waiting for a slot to do so.
        self._acting = 0
        self._calm = asyncio.Event()
        self._calm.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._leading = asyncio.Event()
        self._leading.set()  # standalone: always the leader
        self.last_beat = time.monotonic()  # the loop's last pass (see liveness)

    # --- leadership -------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """Whether this replica may act (create, delete, write status) right now."""
        return self._leading.is_set()

    def pause(self) -> None:
        """Stop acting at once: another replica holds, or may soon hold, the lease.

        Watch events keep feeding the heap, so a standby knows every schedule;
        reconciles in flight are cancelled. Cutting one short is safe: every
        step is redone idempotently by whoever reconciles next (a created Job
        whose status write was lost is adopted, not created again).
        """
        if not self._leading.is_set():
            return
        self._leading.clear()
        self._prepared.clear()
        for task in list(self._tasks):
            task.cancel()
        self._changed.set()

    def resume(self) -> None:
        """Act again, starting with every known schedule.

        The heap of a standby may be stale (the old leader moved schedules on),
        so everything is reconciled now; each reconcile reads the schedule and
        its Jobs afresh and finds what the old leader already did.
        """
        if self._leading.is_set():
            return
        self._leading.set()
        self._bodies.clear()  # another leader may have written since: read afresh
        self._prepared.clear()
        now = utcnow()
        for key in list(self._known):
            self.touch(key, now)
        self._changed.set()

    # --- feeding the heap -------------------------------------------------------------

    def seen(
        self, key: Key, *, resource_version: str | None, body: dict[str, Any] | None = None
    ) -> None:
        """A watch event for a schedule: reconcile now, unless it is our own status write.

        The body is kept when it is sure to be the newest state: the event of
        our own last write, or any event of a schedule this process never
        wrote (events come in the order they happened). The next reconcile (a
        due run, a finished Job, the first one after a restart) plans from it
        instead of a GET, so a burst of due runs sends one call per Job before
        the bookkeeping, and a restart reads nothing it was not sent. After
        our write, anyone else's event drops it (it may predate the write: the
        reconcile it triggers reads afresh), until our write's own event comes.
        """
        self._known.add(key)
        self._prepared.pop(key, None)
        own = resource_version is not None and self._written.get(key) == resource_version
        if body is not None and resource_version is not None and (own or key not in self._written):
            self._bodies[key] = (resource_version, pack(body))
        elif not own:
            self._bodies.pop(key, None)
        if not own:
            self.touch(key)

    def touch(self, key: Key, at: datetime | None = None) -> None:
        """Reconcile ``key`` at ``at`` (default now), unless an earlier wake is already set."""
        if key not in self._known:
            return
        self._prepared.pop(key, None)  # something changed, or may have
        at = at or utcnow()
        current = self._due.get(key)
        if current is not None and current <= at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, key))
        self._changed.set()

    def forget(self, key: Key) -> None:
        self._set_gauges(key, None, 0)
        for table in (
            self._due,
            self._written,
            self._pending,
            self._bodies,
            self._prepared,
            self._prep_due,
        ):
            table.pop(key, None)
        self._known.discard(key)

    def job_seen(self, key: Key, job: str) -> None:
        self._prepared.pop(key, None)
        pending = self._pending.get(key)
        if pending is not None:
            pending.discard(job)

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            self.last_beat = time.monotonic()
            if not self._leading.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._leading.wait(), BEAT_SECONDS)
                continue
            now = utcnow()
            while self._prep_heap and self._prep_heap[0][0] <= now:
                _, at, key = heapq.heappop(self._prep_heap)
                if self._prep_due.get(key) == at:
                    del self._prep_due[key]
                    self._prepare(key, at)
            while self._heap and self._heap[0][0] <= now:
                at, key = heapq.heappop(self._heap)
                if self._due.get(key) != at:
                    continue  # superseded by an earlier or later wake
                del self._due[key]
                self._spawn(key)
            self._changed.clear()
            now = utcnow()  # preparing may have taken a while: time the sleep from now
            soonest = min([h[0][0] for h in (self._heap, self._prep_heap) if h], default=None)
            timeout = (soonest - now).total_seconds() if soonest is not None else BEAT_SECONDS
            timeout = min(timeout, BEAT_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, timeout))

    def _prepare(self, key: Key, at: datetime) -> None:
        """Plan the reconcile due at ``at`` now, as of ``at``, while the loop is idle.

        When a thousand runs are due at one minute, planning each of them at
        that instant was a quarter of the event loop's work while the Jobs
        went out. A plan is a pure function of the schedule, its Jobs and the
        clock, so it can be made ahead from the kept body. Anything that
        happens to the schedule or its Jobs meanwhile (a watch event, a
        touch) drops it, and the reconcile then plans afresh as before.
        """
        kept = self._bodies.get(key)
        if kept is None or key in self._busy or self._due.get(key) != at or not self.leading:
            return
        obj = observed(unpack(kept[1]))
        decision = self._plan(key, obj, now=at)
        if decision.starts:
            self._prepared[key] = _Prepared(at=at, resource_version=kept[0], obj=obj, plan=decision)

    def _plan(self, key: Key, obj: Observed, *, now: datetime) -> Plan:
        """The pure plan for ``obj`` with its Jobs as indexed and the creates in flight."""
        pending = frozenset(self._pending.get(key, ()))
        return plan(
            obj=obj, jobs=list(self._jobs_of(key)), pending=pending, now=now, policy=self._policy
        )

    def _prepare_later(self, key: Key, at: datetime) -> None:
        """Queue ``_prepare`` for the wake-up at ``at``, once per key and wake-up."""
        if at - utcnow() <= PREPARE_AHEAD or self._prep_due.get(key) == at:
            return
        self._prep_due[key] = at
        heapq.heappush(self._prep_heap, (at - PREPARE_AHEAD, at, key))

    def _spawn(self, key: Key) -> None:
        if key in self._busy:
            self._again.add(key)  # one more pass after the current one
            return
        self._busy.add(key)
        task = asyncio.create_task(self._guarded(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, key: Key) -> None:
        try:
            await self.reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._bodies.pop(key, None)  # what happened is unknown: read afresh
            log.exception("reconcile of %s/%s failed; retrying in %s", *key, RETRY)
            self.touch(key, utcnow() + RETRY)
        finally:
            self._busy.discard(key)
            if key in self._again:
                self._again.discard(key)
                self.touch(key)

    # --- one reconcile ----------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        """Read, plan and act; the status write and Events after the slot is freed.

        A slot bounds the reconciles that read and create at once. Holding it
        through the bookkeeping as well made a burst of due runs create its
        Jobs at the pace of whole reconciles; released after the creates, the
        next schedules' Jobs go out while earlier status writes wait their turn
        (``Kube`` sends them after urgent calls). The per-key busy mark still
        covers the whole reconcile, so one schedule's steps never interleave.

        A reconcile that started runs also waits, before its bookkeeping, until
        no other reconcile is planning or creating (at most ``CALM_WAIT``): in
        a burst the status writes, Events and the watch events they echo back
        would otherwise take the CPU the remaining Jobs' plans need.
        """
        namespace, name = key
        self._acting += 1
        self._calm.clear()
        try:
            async with self._slots:
                kept = self._bodies.get(key)
                ahead = self._prepared.pop(key, None)
                if (
                    ahead is not None
                    and kept is not None
                    and ahead.resource_version == kept[0]
                    and ahead.at <= utcnow()
                ):
                    obj, decision = ahead.obj, ahead.plan
                else:
                    body = (
                        unpack(kept[1])
                        if kept is not None
                        else await self._kube.get_schedule(namespace=namespace, name=name)
                    )
                    if body is None:
                        self.forget(key)
                        return
                    obj = observed(body)
                    decision = self._plan(key, obj, now=utcnow())
                notes = await self._act(key, obj, decision)
        finally:
            self._acting -= 1
            if not self._acting:
                self._calm.set()
        if decision.starts and not self._calm.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._calm.wait(), CALM_WAIT.total_seconds())
        await self._record(key, obj, decision, notes)

    async def _act(self, key: Key, obj: Observed, decision: Plan) -> list[Note]:
        """The plan's creates and deletes; returns the notes to record as Events."""
        notes = list(decision.notes)
        for start in decision.starts:
            job = start.body["metadata"]["name"]
            self._pending.setdefault(key, set()).add(job)
            outcome = await self._kube.create_job(start.body)
            if outcome.outcome == "created":
                metrics.SCHEDULE_LAG.observe(max(0.0, (utcnow() - start.due).total_seconds()))
            elif outcome.outcome == "rejected":
                self._pending[key].discard(job)
                if decision.status is not None:
                    _reject(decision.status, job, outcome.message)
                notes.append(Note("Warning", "JobRejected", f"Job {job}: {outcome.message}"))
        for deletion in decision.deletes:
            await self._kube.delete_job(
                namespace=obj.namespace, name=deletion.job, grace_seconds=deletion.grace_seconds
            )
        forced = frozenset(d.job for d in decision.deletes if d.force_pods)
        if forced or decision.force_stuck_pods:
            # After the Jobs are gone: no controller recreates a pod forced away.
            await self._kube.force_delete_pods_matching(
                namespace=obj.namespace,
                jobs=forced,
                selector=f"{labels.SCHEDULE_LABEL}={schedule_label_value(obj.name)}",
            )
        return notes

    async def _record(self, key: Key, obj: Observed, decision: Plan, notes: list[Note]) -> None:
        """The status write, the Events, the metrics and the next wake-up."""
        ref = ObjectRef(labels.API_VERSION, labels.KIND, obj.namespace, obj.name, obj.uid)
        if decision.status is not None:
            self._bodies.pop(key, None)  # stale from now until this write's own event
            rv = await self._kube.patch_status(
                namespace=obj.namespace, name=obj.name, status=decision.status
            )
            kept = self._bodies.get(key)
            if kept is not None and kept[0] != rv:
                self._bodies.pop(key)  # kept during the write: it may predate it
            if rv is not None:
                self._written[key] = rv
        for note in notes:
            await self._kube.post_event(
                regarding=ref, type_=note.type, reason=note.reason, message=note.message
            )
        self._record_metrics(key, obj, decision)
        if decision.wake_at is not None:
            self.touch(key, decision.wake_at)
            self._prepare_later(key, decision.wake_at)

    def _record_metrics(self, key: Key, obj: Observed, decision: Plan) -> None:
        for t in decision.finished:
            if t.result == "StaleReported":
                metrics.STALE_RUNS.labels(obj.namespace, "Report").inc()
                continue
            metrics.RUNS.labels(obj.namespace, obj.name, t.result).inc()
            if t.result == "Stale":
                metrics.STALE_RUNS.labels(obj.namespace, "Terminate").inc()
            if t.duration_seconds is not None:
                metrics.RUN_DURATION.labels(t.result).observe(t.duration_seconds)
        for _ in decision.starts:
            metrics.RUNS.labels(obj.namespace, obj.name, "Started").inc()
        self._set_gauges(key, decision.health, decision.active)

    def _set_gauges(self, key: Key, health: str | None, active: int) -> None:
        """Keep the gauges as running totals: O(1) per reconcile, not O(schedules)."""
        old = self._health.pop(key, None)
        if old is not None:
            self._by_health[old] -= 1
            metrics.SCHEDULES.labels(old).set(self._by_health[old])
        if health is not None:
            self._health[key] = health
            self._by_health[health] += 1
            metrics.SCHEDULES.labels(health).set(self._by_health[health])
        self._active_total += active - self._active.pop(key, 0)
        if active:
            self._active[key] = active
        metrics.ACTIVE_RUNS.set(self._active_total)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
