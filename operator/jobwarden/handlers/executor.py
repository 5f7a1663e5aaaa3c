"""Carries out one schedule's plan, and is the error boundary for that schedule.

A reconcile reads the schedule (or plans from the kept body), asks the pure
``plan``, creates the Jobs, writes status, posts Events, and only then
deletes Jobs. Whatever goes wrong on the way, for whatever reason, stays
with that schedule: it is logged once per distinct error, reported on the
object (a Warning Event and ``Ready=False``, reason ``InternalError``, naming
the step), and retried with capped, jittered exponential backoff. Nothing
raised for one schedule reaches the wake loop.

Two rules keep a run from being lost or repeated when writes fail:
- record before destroy: a plan's deletes wait until its status write has
  succeeded (the Job is the only evidence of a fate not yet recorded);
- a name created (or refused) here is never created again by this process;
  the next plan sees refusals as ``refused`` and records them (with their
  Warning Event); a 409 is adopted only when the Job's owner is this schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kubernetes.client.exceptions import ApiException

from jobwarden import labels, metrics
from jobwarden.handlers.calendars import CalendarIndex
from jobwarden.handlers.chains import ChainIndex
from jobwarden.handlers.failures import Progress, report_failure
from jobwarden.handlers.gate import PriorityGate, Rank
from jobwarden.handlers.groups import GroupIndex
from jobwarden.handlers.memory import (
    NOTHING,
    Ahead,
    Key,
    ScheduleMemory,
    observed,
    unpack,
    utcnow,
)
from jobwarden.handlers.startguard import probe_starts
from jobwarden.kube import CreateResult, Kube, NotLeading, ObjectRef
from jobwarden.notify.events import Delivery
from jobwarden.reconcile import Observed, Plan, Policy, Refusal, Start, plan
from jobwarden.reconcile.starting import REPORTED
from jobwarden.runs.jobs import JobObservation, observe_job
from jobwarden.runs.naming import schedule_label_value
from jobwarden.safety.start import NotStarted

log = logging.getLogger(__name__)

JobsOf = Callable[[Key], Iterable[JobObservation]]
# Where a written plan's notifications go (``Notifier.submit``): returns at once.
Notify = Callable[[Sequence[Delivery]], None]
# The longest a run's status write waits for a burst of other runs to be created.
CALM_WAIT = timedelta(seconds=10)
# Status writes in flight at once: no more than the API threads can send within a
# call's retry budget (a write queued behind thousands would time out unsent).
WRITES = 32
# Reads of one schedule's Jobs in flight at once, before every Job is listed: few, so
# that a first start beside thousands never-reconciled cannot take every API thread.
READS = 4
# The rank of a status write that wakes nothing (sorted after every wake-up).
NEVER = float("inf")


@dataclass(frozen=True)
class Outcome:
    """What a reconcile leaves for the wake loop: the next wake-up, and the gauges."""

    wake_at: datetime | None = None
    health: str | None = None
    active: int = 0
    gone: bool = False  # the schedule no longer exists
    failed: bool = False


class Executor:
    """Reconciles one schedule at a time per key; many keys at once, bounded by slots."""

    def __init__(
        self,
        *,
        kube: Kube,
        policy: Policy,
        jobs_of: JobsOf,
        concurrency: int,
        chains: ChainIndex | None = None,
        groups: GroupIndex | None = None,
        calendars: CalendarIndex | None = None,
        indexed: bool = True,
        notify: Notify | None = None,
    ) -> None:
        self._kube = kube
        self._notify = notify
        # Whether every Job is listed, so that ``jobs_of`` holds all of a schedule's;
        # until then a reconcile reads its own (``_read_jobs``). Read when the Jobs are
        # needed, not when the reconcile was queued: it may wait for a slot past the listing.
        self.indexed = indexed
        self._policy = policy
        self._jobs_of = jobs_of
        self._chains = chains or ChainIndex()
        self._groups = groups or GroupIndex()
        self._calendars = calendars if calendars is not None else CalendarIndex()
        self._slots = PriorityGate(concurrency)
        self._writes = PriorityGate(WRITES)
        self._reads = PriorityGate(READS)
        # Reconciles reading, planning or creating, or waiting for a slot to do so.
        self._acting = 0
        self._calm = asyncio.Event()
        self._calm.set()

    # --- planning ---------------------------------------------------------------------

    def plan(
        self,
        key: Key,
        memory: ScheduleMemory,
        obj: Observed,
        *,
        jobs: list[JobObservation],
        now: datetime,
        probed: Mapping[str, NotStarted | None] | None = None,
    ) -> Plan:
        """The pure plan for ``obj`` with its Jobs, creates in flight and refusals;
        ``probed``: why runs past their start deadline did not start (``probe_starts``)."""
        return plan(
            obj=obj,
            jobs=jobs,
            pending=memory.pending,
            now=now,
            policy=self._policy,
            refused=memory.refused,
            warned=memory.foreign,
            probed=probed or {},
            chain=self._chains.view(key, self._jobs_of),
            # A group's room is judged only once every Job is listed (one not listed
            # yet may hold it); until then its runs wait in the queue.
            group=self._groups.view(key, complete=self.indexed),
            calendars=self._calendars.view(key),
        )

    def plan_ahead(self, key: Key, memory: ScheduleMemory, at: datetime) -> Ahead | None:
        """A plan for the wake-up at ``at`` from the kept body, when it starts runs.

        May raise: the caller drops it, and the reconcile at ``at`` plans again
        inside the boundary, which reports the error.
        """
        if memory.body is None or memory.version is None:
            return None
        obj = observed(unpack(memory.body))
        decision = self.plan(key, memory, obj, jobs=list(self._jobs_of(key)), now=at)
        if not decision.starts or any(labels.GROUP_LABEL in _labels(s) for s in decision.starts):
            # A group's room is taken at the moment the run starts, never ahead of it.
            return None
        return Ahead(at=at, resource_version=memory.version, obj=obj, plan=decision)

    # --- the boundary -----------------------------------------------------------------

    async def run(
        self,
        key: Key,
        memory: ScheduleMemory,
        *,
        rank: Rank = (0.0, 0.0),
    ) -> Outcome:
        """Reconcile ``key``; never raises but for cancellation.

        ``rank`` orders the wait for a slot: lowest first (see ``ScheduleMemory.rank``).
        """
        progress = Progress()
        try:
            outcome = await self.reconcile(key, memory, progress, rank=rank)
        except asyncio.CancelledError:
            raise
        except NotLeading:
            # The lease term ended mid-reconcile: whoever leads next redoes it.
            memory.drop_body()
            return Outcome()
        except ApiException as exc:
            if exc.status != 409 or progress.step != "write status":
                return await self._failed(key, memory, progress, exc)
            # Someone wrote the schedule after the body this plan was made from
            # (the write's precondition): not a fault, plan again from a fresh read.
            memory.drop_body()
            memory.again = True
            return Outcome()
        except Exception as exc:  # the boundary: everything about one schedule stops here
            return await self._failed(key, memory, progress, exc)
        if memory.recovered():
            log.info("%s/%s: reconciled again after the error above", *key)
        return outcome

    async def _failed(
        self, key: Key, memory: ScheduleMemory, progress: Progress, exc: Exception
    ) -> Outcome:
        retry = await report_failure(
            kube=self._kube, key=key, memory=memory, progress=progress, exc=exc
        )
        return Outcome(wake_at=retry, failed=True)

    # --- one reconcile ----------------------------------------------------------------

    async def reconcile(
        self,
        key: Key,
        memory: ScheduleMemory,
        progress: Progress | None = None,
        *,
        rank: Rank = (0.0, 0.0),
    ) -> Outcome:
        """Read, plan and create; then, after the slot is freed, record, notify and delete.

        A slot bounds the reconciles that read and create at once. Holding it
        through the bookkeeping as well made a burst of due runs create its
        Jobs at the pace of whole reconciles; released after the creates, the
        next schedules' Jobs go out while earlier status writes wait their turn
        (``Kube`` sends them after urgent calls). The wake loop's per-key busy
        mark still covers the whole reconcile, so one schedule's steps never
        interleave.

        A reconcile that started runs also waits, before its bookkeeping, until
        no other reconcile is planning or creating (at most ``CALM_WAIT``): in
        a burst the status writes, Events and the watch events they echo back
        would otherwise take the CPU the remaining Jobs' plans need.

        Slots go to the lowest ``rank`` first, and status writes to the one
        whose next wake-up is soonest: after a restart beside thousands of
        schedules, a run due in seconds is neither planned nor recorded behind
        all of their bookkeeping.
        """
        progress = progress or Progress()
        self._acting += 1
        self._calm.clear()
        try:
            async with self._slots.slot(rank):
                decided = await self._decide(key, memory, progress, rank=rank)
                if decided is None:
                    return Outcome(gone=True)
                obj, decision, fed, version = decided
                # Before any await: the next plan of the group counts these runs.
                self._groups.planned(key, decision)
                await self._create(memory, obj, decision, progress)
        finally:
            self._acting -= 1
            if not self._acting:
                self._calm.set()
        if decision.starts and not self._calm.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._calm.wait(), CALM_WAIT.total_seconds())
        progress.step = "write status"
        if not await self._write(memory, obj, decision, version):
            return Outcome()  # the schedule is gone: its Jobs go with it
        # Recorded: what this plan saw as refused or created is in status now.
        memory.created = frozenset()
        if decision.notifications and self._notify is not None:
            # Only what is written is told; a plan redone after a failed write makes
            # the same events with the same ids.
            self._notify(decision.notifications)
        if fed:
            left = {k: v for k, v in memory.refused.items() if k not in fed}
            memory.refused = left or NOTHING
        # The Events and metrics of what is recorded now, before the deletes: a failed
        # delete is retried from the recorded status, which plans no Event again.
        progress.step = "record events"
        for note in decision.notes:
            await self._kube.post_event(
                regarding=_ref(obj), type_=note.type, reason=note.reason, message=note.message
            )
        memory.foreign = decision.foreign  # their Events are posted: not again
        _count_finished(obj, decision)
        await self._destroy(obj, decision, progress)
        if memory.refused:
            memory.again = True  # the next plan records the refusals
        return Outcome(wake_at=decision.wake_at, health=decision.health, active=decision.active)

    async def _decide(
        self, key: Key, memory: ScheduleMemory, progress: Progress, *, rank: Rank
    ) -> tuple[Observed, Plan, frozenset[str], str | None] | None:
        """The plan made ahead when it still holds, else one made now; None if gone.

        Also the resourceVersion the plan was made from: its status write carries
        it as a precondition, so a plan made from an old body (a replica that
        lost its lease, a user's edit meanwhile) never overwrites a newer state.
        """
        fed = frozenset(memory.refused)
        ahead, memory.ahead = memory.ahead, None
        if (
            ahead is not None
            and memory.body is not None
            and ahead.resource_version == memory.version
            and ahead.at <= utcnow()
        ):
            progress.obj = ahead.obj
            return ahead.obj, ahead.plan, fed, ahead.resource_version
        namespace, name = key
        body = (
            unpack(memory.body)
            if memory.body is not None
            else await self._kube.get_schedule(namespace=namespace, name=name)
        )
        if body is None:
            return None
        progress.step, progress.body = "parse schedule", body
        obj = observed(body)
        if self.indexed:
            jobs = list(self._jobs_of(key))
        else:
            progress.step = "list Jobs"
            jobs = await self._read_jobs(key, rank=rank)
        progress.step, progress.obj = "read pods", obj
        probed = await probe_starts(self._kube, jobs, now=utcnow())
        progress.step = "plan"
        meta = body.get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        decision = self.plan(key, memory, obj, jobs=jobs, now=utcnow(), probed=probed)
        return obj, decision, fed, version

    async def _read_jobs(self, key: Key, *, rank: Rank) -> list[JobObservation]:
        """``key``'s Jobs from the API server, as the index would hold them once listed.

        Before the Jobs' first listing is complete, a Job missing from the index
        may only be unlisted yet: a schedule due meanwhile asks for its own.
        """
        namespace, name = key
        async with self._reads.slot(rank):
            found = await self._kube.list_jobs(
                namespace=namespace,
                selector=f"{labels.SCHEDULE_LABEL}={schedule_label_value(name)}",
            )
        jobs = []
        for body in found:
            try:
                job = observe_job(body)
            except Exception:  # the index skips it too (Informer._receive)
                continue
            if (job.namespace, job.schedule) == key:
                jobs.append(job)
        return jobs

    async def _create(
        self, memory: ScheduleMemory, obj: Observed, decision: Plan, progress: Progress
    ) -> None:
        """The plan's creates; a refused one is remembered for the next plan to record."""
        for start in decision.starts:
            job = start.body["metadata"]["name"]
            if job in memory.created or job in memory.refused:
                continue  # created (or refused) before: never again, whatever writes failed
            progress.step = f"create Job {job}"
            memory.pending |= {job}
            try:
                result = await self._kube.create_job(start.body)
            except BaseException:
                # Unknown whether it was stored: not pending (which the plan takes for
                # created). The next plan starts it again; a 409 then finds it ours.
                memory.pending -= {job}
                self._groups.abandoned((obj.namespace, obj.name), job)
                raise
            if result.outcome == "created":
                memory.created |= {job}
                metrics.SCHEDULE_LAG.observe(max(0.0, (utcnow() - start.due).total_seconds()))
                metrics.RUNS.labels(obj.namespace, obj.name, "Started").inc()
            elif result.outcome == "exists" and result.owner_uid == obj.uid:
                memory.created |= {job}  # ours, from an earlier attempt: adopted
            else:
                # Not ours: the next plan records the run Failed, with its Event.
                memory.pending -= {job}
                self._groups.abandoned((obj.namespace, obj.name), job)
                memory.refused = {**memory.refused, job: _refusal(result)}

    async def _write(
        self, memory: ScheduleMemory, obj: Observed, decision: Plan, version: str | None
    ) -> bool:
        """The status write; False when the schedule is gone. Raises when it failed."""
        if decision.status is None:
            return True
        memory.drop_body()  # stale from now until this write's own event
        soonest = decision.wake_at.timestamp() if decision.wake_at is not None else NEVER
        async with self._writes.slot((soonest, 0.0)):
            rv = await self._kube.patch_status(
                namespace=obj.namespace,
                name=obj.name,
                status=decision.status,
                resource_version=version if isinstance(version, str) else None,
            )
        if memory.version is not None and memory.version != rv:
            memory.drop_body()  # kept during the write: it may predate it
        if rv is None:
            return False
        memory.written = rv
        return True

    async def _destroy(self, obj: Observed, decision: Plan, progress: Progress) -> None:
        """The plan's deletes, once its status write has recorded why."""
        for deletion in decision.deletes:
            progress.step = f"delete Job {deletion.job}"
            await self._kube.delete_job(
                namespace=obj.namespace, name=deletion.job, grace_seconds=deletion.grace_seconds
            )
        forced = frozenset(d.job for d in decision.deletes if d.force_pods)
        if forced or decision.force_stuck_pods:
            # After the Jobs are gone: no controller recreates a pod forced away.
            progress.step = "force-delete pods"
            await self._kube.force_delete_pods_matching(
                namespace=obj.namespace,
                jobs=forced,
                selector=f"{labels.SCHEDULE_LABEL}={schedule_label_value(obj.name)}",
            )


def _refusal(result: CreateResult) -> Refusal:
    """Why a create did not make this schedule's Job, for the next plan."""
    if result.outcome == "exists":
        return Refusal(
            "NameTaken",
            "a Job of this name already exists and is not owned by this JobSchedule "
            "(it is not adopted; the run does not start)",
        )
    return Refusal("JobRejected", result.message or "refused by the API server")


def _labels(start: Start) -> Mapping[str, str]:
    labelled: Mapping[str, str] = start.body["metadata"].get("labels") or {}
    return labelled


def _ref(obj: Observed) -> ObjectRef:
    return ObjectRef(labels.API_VERSION, labels.KIND, obj.namespace, obj.name, obj.uid)


def _count_finished(obj: Observed, decision: Plan) -> None:
    for t in decision.finished:
        if t.result == "StaleReported":
            metrics.STALE_RUNS.labels(obj.namespace, "Report").inc()
            continue
        if t.result == REPORTED:
            continue  # still running: its end is counted when it comes
        metrics.RUNS.labels(obj.namespace, obj.name, t.result).inc()
        if t.result == "Stale":
            metrics.STALE_RUNS.labels(obj.namespace, "Terminate").inc()
        if t.duration_seconds is not None:
            metrics.RUN_DURATION.labels(t.result).observe(t.duration_seconds)
