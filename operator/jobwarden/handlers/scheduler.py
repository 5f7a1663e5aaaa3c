"""One loop that wakes schedules when they are due, and has their plans carried out.

Instead of a kopf timer per object (a task and a body held per schedule), the
operator keeps one wake queue of (wake time, key) entries. Watch events and
Job changes push a key to "now"; a plan's ``wake_at`` pushes it to the next
run or stale deadline. When a key comes due the executor reconciles it: the
body our last write produced or a GET (see ``seen``), the pure plan, then the
plan's API calls. Idle schedules cost no API calls.

Three parts, one job each: the ``WakeQueue`` (when), one ``ScheduleMemory``
per schedule in one map (what this process knows of it), and the
``Executor`` (doing it, and containing whatever fails). This module wires
them to the watch handlers, the elector and the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from jobwarden import metrics
from jobwarden.api.status import RUN_RESULTS
from jobwarden.handlers.backlog import Backlog
from jobwarden.handlers.calendars import CalendarIndex
from jobwarden.handlers.chains import ChainIndex
from jobwarden.handlers.executor import Executor, JobsOf, Notify, Outcome
from jobwarden.handlers.gate import Rank
from jobwarden.handlers.groups import GroupIndex
from jobwarden.handlers.memory import Gauges, Key, ScheduleMemory, change_mark, utcnow
from jobwarden.handlers.wakequeue import WakeQueue
from jobwarden.kube import Kube
from jobwarden.reconcile import Policy

__all__ = ["BEAT", "PREPARE_AHEAD", "Key", "Scheduler"]

log = logging.getLogger(__name__)

# How long before a wake-up its plan is made (see Scheduler._prepare).
PREPARE_AHEAD = timedelta(seconds=2)
# Every ``result`` label of metrics.RUNS: a run's start and each way it ends.
RUN_LABELS = ("Started", *RUN_RESULTS)
# The loop passes at least this often, idle or not, so ``last_beat`` shows it is alive.
BEAT = timedelta(seconds=5)


class Scheduler:
    """The wake loop over every known schedule, and the entry points that feed it."""

    def __init__(
        self,
        *,
        kube: Kube,
        policy: Policy,
        jobs_of: JobsOf,
        concurrency: int = 64,
        listed: bool = True,
        chains: ChainIndex | None = None,
        notify: Notify | None = None,
        calendars: CalendarIndex | None = None,
    ) -> None:
        self._queue: WakeQueue[Key] = WakeQueue(ahead=PREPARE_AHEAD)
        # Reconciles owed to every schedule after the listing or a takeover, fed to the
        # executor only while fewer than ``_feed`` reconciles are in flight (see backlog).
        self._backlog: Backlog[Key] = Backlog()
        self._feed = max(1, concurrency // 2)
        self._memory: dict[Key, ScheduleMemory] = {}
        self.chains = chains or ChainIndex()
        # A group's waiting runs are woken when room is made for them (see GroupIndex).
        self.groups = GroupIndex(wake=self.touch)
        self.calendars = calendars if calendars is not None else CalendarIndex()
        self._executor = Executor(
            kube=kube,
            policy=policy,
            jobs_of=jobs_of,
            concurrency=concurrency,
            chains=self.chains,
            groups=self.groups,
            calendars=self.calendars,
            indexed=listed,
            notify=notify,
        )
        self._gauges = Gauges()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._leading = asyncio.Event()
        self._leading.set()  # standalone: always the leader
        self._beat = time.monotonic()

    @property
    def last_beat(self) -> float:
        """``time.monotonic()`` of the loop's last pass (at least every ``BEAT``)."""
        return self._beat

    # --- leadership -------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """Whether this replica may act (create, delete, write status) right now."""
        return self._leading.is_set()

    def pause(self) -> None:
        """Stop acting at once: another replica holds, or may soon hold, the lease.

        Watch events keep feeding the queue, so a standby knows every schedule;
        reconciles in flight are cancelled. Cutting one short is safe: every
        step is redone idempotently by whoever reconciles next (a created Job
        whose status write was lost is adopted, not created again).
        """
        if not self._leading.is_set():
            return
        self._leading.clear()
        for memory in self._memory.values():
            memory.ahead = None
        for task in list(self._tasks):
            task.cancel()
        self._changed.set()

    def resume(self) -> None:
        """Act again, starting with every known schedule.

        The queue of a standby may be stale (the old leader moved schedules on),
        so everything is reconciled soon; each reconcile reads the schedule and
        its Jobs afresh and finds what the old leader already did. What may be
        due is woken now and the rest at its next run, and all of it is owed a
        reconcile through the backlog, so that a takeover beside thousands of
        schedules does not hold a due run behind all of them.
        """
        if self._leading.is_set():
            return
        self._leading.set()
        now = utcnow()
        for key, memory in self._memory.items():
            memory.drop_body()  # another leader may have written since: read afresh
            memory.ahead = None
            self.touch(key, memory.due_after(now, ahead=PREPARE_AHEAD) or now)
            self._backlog.owe(key, memory.rank(now))
        self._changed.set()

    # --- the Jobs' first listing -------------------------------------------------------

    def listed(self) -> None:
        """Every Job is listed: plan from the index, and owe every schedule a reconcile.

        Until then only what is due runs (see ``_pass``), each schedule reading
        its own Jobs: after a restart beside 50,000 Jobs their first listing
        takes longer than the wait for a run due meanwhile may. Every other
        schedule waited for this moment. Their reconciles go to the backlog,
        fed a few at a time (``_feed_backlog``): woken all at once, 50,000 of
        them held a schedule created meanwhile for 27 s.
        """
        if self._executor.indexed:
            return
        self._executor.indexed = True
        log.info("Jobs listed: every schedule is owed a reconcile, from the index")
        now = utcnow()
        for key, memory in self._memory.items():
            self._backlog.owe(key, memory.rank(now))
        self._changed.set()

    # --- feeding the queue ------------------------------------------------------------

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

        A schedule seen for the first time whose status says its next run is
        later (a listing after a restart: thousands at once, in any order
        with the Jobs' listing) is woken at that run and owed its bookkeeping
        through the backlog; one that may be due (new, or its run passed) is
        woken now.
        """
        memory = self._memory.get(key)
        known = memory is not None
        if memory is None:
            memory = self._memory[key] = ScheduleMemory()
        memory.ahead = None
        own = resource_version is not None and memory.written == resource_version
        if known and not own:
            memory.urgent_at = utcnow()  # someone changed it (run-now, an edit): act first
        if body is not None and resource_version is not None and (own or memory.written is None):
            memory.keep(resource_version, body)
        elif not own:
            memory.drop_body()
        if body is not None:
            memory.saw_next_run(body)
            with contextlib.suppress(Exception):  # a mark that cannot be taken changes nothing
                memory.changed(change_mark(body))
        if own:
            return
        now = utcnow()
        later = None if known else memory.due_after(now, ahead=PREPARE_AHEAD)
        if later is None:
            self.touch(key, now)
        else:
            # Listed, its next run later: owed its bookkeeping, and woken for that run.
            self.touch(key, later)
            self._backlog.owe(key, memory.rank(now))

    def touch(self, key: Key, at: datetime | None = None) -> None:
        """Reconcile ``key`` at ``at`` (default now), unless an earlier wake is already set.

        A schedule that is failing waits out its backoff whatever wakes it; only
        a change of its spec or annotations (``seen``) lifts that.
        """
        memory = self._memory.get(key)
        if memory is None:
            return
        memory.ahead = None  # something changed, or may have
        at = at or utcnow()
        if memory.retry_at is not None and at < memory.retry_at:
            at = memory.retry_at
        if self._queue.wake(key, at):
            self._changed.set()

    def forget(self, key: Key) -> None:
        """The schedule is gone: its memory, its wake-ups, its gauges and its metric series."""
        memory = self._memory.pop(key, None)
        self._queue.drop(key)
        self._backlog.settle(key)
        if memory is not None:
            self._gauges.count(memory, health=None, active=0)
        metrics.forget_schedule(*key, results=RUN_LABELS)

    def due_within(self, horizon: timedelta, *, limit: int) -> list[Key]:
        """The ``limit`` schedules whose next run is soonest, up to ``horizon`` from now
        (or past: due now), as their statuses say."""
        until = (utcnow() + horizon).timestamp()
        due = [
            (memory.next_run, key)
            for key, memory in self._memory.items()
            if memory.next_run is not None and memory.next_run <= until
        ]
        return [key for _, key in heapq.nsmallest(limit, due)]

    def job_seen(self, key: Key, job: str) -> None:
        memory = self._memory.get(key)
        if memory is not None:
            memory.ahead = None
            if job in memory.pending:
                memory.pending -= {job}

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Wake what is due, forever. Nothing about one schedule may end it."""
        while True:
            self._beat = time.monotonic()
            if not self._leading.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._leading.wait(), BEAT.total_seconds())
                continue
            try:
                self._pass()
            except Exception:  # a bug in the loop itself: logged, and the loop goes on
                log.exception("scheduler pass failed")
            self._changed.clear()
            now = utcnow()  # preparing may have taken a while: time the sleep from now
            soonest = self._queue.soonest()
            timeout = BEAT.total_seconds()
            if soonest is not None:
                timeout = min(timeout, (soonest - now).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, timeout))

    def _pass(self) -> None:
        now = utcnow()
        for key, at in self._queue.pop_prepare(now):
            self._prepare(key, at)
        for key in self._queue.pop_due(now):
            memory = self._memory.get(key)
            if memory is None:
                continue
            if memory.retry_at is not None and memory.retry_at > now:
                self._queue.wake(key, memory.retry_at)  # woken early: wait out the backoff
                continue
            if not self._executor.indexed:
                later = memory.due_after(now, ahead=PREPARE_AHEAD)
                if later is not None:
                    self._queue.wake(key, later)  # nothing due before: until then, or listed()
                    continue
            self._spawn(key, memory, now)
        self._feed_backlog(now)

    def _feed_backlog(self, now: datetime) -> None:
        """Reconcile owed schedules while fewer than ``_feed`` reconciles are in flight.

        Half the executor's slots at most: a due run or someone's change, woken
        from the queue, finds a slot free (or nearly) and is not queued behind
        the bookkeeping. Each reconcile's end wakes the loop to feed the next.
        """
        room = self._feed - len(self._tasks)
        if room <= 0 or not self._backlog or not self._executor.indexed:
            return  # before the listing, only what is due runs (see listed)
        for key in self._backlog.take(room):
            memory = self._memory.get(key)
            if memory is None:
                continue
            if memory.retry_at is not None and memory.retry_at > now:
                self._queue.wake(key, memory.retry_at)  # failing: after its backoff
                continue
            self._spawn(key, memory, now)

    def _prepare(self, key: Key, at: datetime) -> None:
        """Plan the reconcile due at ``at`` now, as of ``at``, while the loop is idle.

        When a thousand runs are due at one minute, planning each of them at
        that instant was a quarter of the event loop's work while the Jobs
        went out. A plan is a pure function of the schedule, its Jobs and the
        clock, so it can be made ahead from the kept body. Anything that
        happens to the schedule or its Jobs meanwhile (a watch event, a
        touch) drops it, and the reconcile then plans afresh as before.
        """
        memory = self._memory.get(key)
        if (
            memory is None
            or memory.busy
            or memory.failures
            or self._queue.due(key) != at
            or not self.leading
            or not self._executor.indexed
        ):
            return
        try:
            memory.ahead = self._executor.plan_ahead(key, memory, at)
        except Exception as exc:
            # The reconcile at ``at`` plans again inside the executor's boundary,
            # which logs and reports it; here it only must not reach the loop.
            log.debug("%s/%s: no plan ahead: %s", *key, exc)

    def _prepare_later(self, key: Key, at: datetime) -> None:
        """Queue ``_prepare`` for the wake-up at ``at``, once per key and wake-up."""
        if at - utcnow() > PREPARE_AHEAD and self._queue.prepare(key, at):
            self._changed.set()

    def _spawn(self, key: Key, memory: ScheduleMemory, now: datetime) -> None:
        if memory.busy:
            memory.again = True  # one more pass after the current one
            return
        memory.busy = True
        self._backlog.settle(key)  # reconciled now, whatever woke it
        rank, memory.urgent_at = memory.rank(now), None
        task = asyncio.create_task(self._reconcile(key, memory, rank))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._backlog:
            self._changed.set()  # a reconcile fewer in flight: feed the next

    async def _reconcile(self, key: Key, memory: ScheduleMemory, rank: Rank) -> None:
        try:
            outcome = await self._executor.run(key, memory, rank=rank)
        finally:
            memory.busy = False
            if memory.again:
                memory.again = False
                self.touch(key)
        self._apply(key, memory, outcome)

    def _apply(self, key: Key, memory: ScheduleMemory, outcome: Outcome) -> None:
        if self._memory.get(key) is not memory:
            return  # forgotten (deleted) meanwhile
        if outcome.gone:
            self.forget(key)
            return
        if not outcome.failed:
            self._gauges.count(memory, health=outcome.health, active=outcome.active)
        if outcome.wake_at is not None:
            self.touch(key, outcome.wake_at)
            if not outcome.failed:
                # An earlier urgent_at (a change that came meanwhile) is kept: it is sooner.
                memory.urgent_at = min(memory.urgent_at or outcome.wake_at, outcome.wake_at)
                self._prepare_later(key, outcome.wake_at)

    async def reconcile(self, key: Key) -> None:
        """Reconcile ``key`` now, in the calling task (tests and tools; the loop spawns)."""
        memory = self._memory.get(key)
        if memory is None:
            memory = self._memory[key] = ScheduleMemory()
        await self._reconcile(key, memory, memory.rank(utcnow()))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
