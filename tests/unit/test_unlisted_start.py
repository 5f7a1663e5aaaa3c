"""Before the Jobs' first listing is complete, what is due runs, from each one's own Jobs.

A restart beside 50,000 Jobs takes longer to list them than a run due
meanwhile may wait. Until the listing is complete the scheduler reconciles
only what may be due, each reading its own Jobs from the API server (the
index may not hold them yet); the rest waits for ``Scheduler.listed``.
Driven through the real Scheduler and plan over ``FakeKube``.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobwarden.handlers import memory as memory_module
from jobwarden.handlers.memory import ScheduleMemory
from jobwarden.handlers.scheduler import PREPARE_AHEAD, Key, Scheduler
from jobwarden.reconcile import Policy
from tests.unit.test_executor import FakeKube, one_time

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AHEAD = PREPARE_AHEAD


class ListingKube(FakeKube):
    """FakeKube that also answers a schedule's own LIST of Jobs, and records it."""

    async def list_jobs(self, *, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(f"list {selector}")
        key, _, value = selector.partition("=")
        return [
            copy.deepcopy(j) for j in self.jobs.values() if j["metadata"]["labels"][key] == value
        ]


def _unlisted(kube: FakeKube) -> Scheduler:
    """A scheduler whose Job index is still empty: nothing is listed yet."""
    return Scheduler(kube=kube, policy=Policy(), jobs_of=lambda key: [], listed=False)  # type: ignore[arg-type]


def _idle(name: str) -> dict[str, Any]:
    """A schedule reconciled before, its one run next year (``status.nextRunTime`` says so)."""
    when = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = one_time(name, runAt=when)
    body["metadata"]["resourceVersion"] = "7"
    body["status"] = {"nextRunTime": when}
    return body


def _see(sched: Scheduler, body: dict[str, Any]) -> Key:
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    sched.seen(key, resource_version=meta.get("resourceVersion"), body=copy.deepcopy(body))
    return key


async def _until(condition: Any, what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within 10 s: {what}") from None


def test_a_due_schedule_reads_its_own_jobs_and_finds_the_run_already_created() -> None:
    """Its run was created by the process before (status not yet written): the index,
    still empty, does not know it. The reconcile lists the schedule's Jobs, sees the
    run, and records it instead of creating it a second time."""
    kube = ListingKube(one_time())
    probe = Scheduler(kube=kube, policy=Policy(), jobs_of=lambda key: [])  # type: ignore[arg-type]
    obj = memory_module.observed(copy.deepcopy(kube.bodies[("ns", "s")]))
    planned = probe._executor.plan(
        ("ns", "s"), ScheduleMemory(), obj, jobs=[], now=memory_module.utcnow()
    )
    job = planned.starts[0].body
    kube.jobs[job["metadata"]["name"]] = copy.deepcopy(job)

    sched = _unlisted(kube)
    asyncio.run(sched.reconcile(("ns", "s")))

    assert "list jobwarden.io/schedule=s" in kube.calls
    assert kube.created() == [], "the run already existed: not created again"
    [status] = kube.patches
    assert [a["name"] for a in status["active"]] == [job["metadata"]["name"]]


def test_only_what_may_be_due_is_reconciled_until_every_job_is_listed() -> None:
    """An idle schedule (next run next year) waits for the listing; a new one (never
    reconciled: it may be due) runs at once, reading its own Jobs; once listed, the idle
    one is reconciled too, from the index."""
    kube = ListingKube(_idle("idle"), one_time("fresh"))
    sched = _unlisted(kube)
    reconciled: list[Key] = []
    run = sched._executor.run

    async def counting(key: Key, memory: ScheduleMemory, **kwargs: Any) -> Any:
        reconciled.append(key)
        return await run(key, memory, **kwargs)

    sched._executor.run = counting  # type: ignore[method-assign]

    async def scenario() -> None:
        loop = asyncio.create_task(sched.run())
        idle = _see(sched, _idle("idle"))
        fresh = _see(sched, one_time("fresh"))
        await _until(lambda: kube.created(), "the fresh schedule's run")
        assert reconciled == [fresh], reconciled
        assert "list jobwarden.io/schedule=fresh" in kube.calls
        assert not any("idle" in c for c in kube.calls), kube.calls
        sched.listed()
        await _until(lambda: idle in reconciled, "the idle schedule reconciled")
        loop.cancel()
        await sched.close()

    asyncio.run(scenario())
    assert "list jobwarden.io/schedule=idle" not in kube.calls, "listed: read from the index"


@pytest.mark.parametrize(
    ("next_run", "urgent", "expected"),
    [
        # No next run known (never reconciled, or nothing read): may be due now.
        (None, None, None),
        (None, NOW + timedelta(hours=1), None),
        # A next run passed, or within the preparation window: due now.
        (NOW - timedelta(minutes=1), None, None),
        (NOW + AHEAD, None, None),
        # A next run later: wait for it.
        (NOW + AHEAD + timedelta(seconds=1), None, NOW + AHEAD + timedelta(seconds=1)),
        (NOW + timedelta(days=400), None, NOW + timedelta(days=400)),
        # A wake-up a plan set (a stale deadline) before the next run comes first.
        (NOW + timedelta(days=1), NOW + timedelta(hours=1), NOW + timedelta(hours=1)),
        # A change someone made (run-now, an edit): now.
        (NOW + timedelta(days=1), NOW, None),
        (NOW + timedelta(days=1), NOW + AHEAD, None),
    ],
)
def test_when_a_schedule_may_wait_for_the_listing(
    next_run: datetime | None, urgent: datetime | None, expected: datetime | None
) -> None:
    memory = ScheduleMemory()
    memory.next_run = next_run.timestamp() if next_run is not None else None
    memory.urgent_at = urgent
    assert memory.due_after(NOW, ahead=AHEAD) == expected


class HeldListing(ListingKube):
    """The first schedule's read of its Jobs waits until released."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        super().__init__(*bodies)
        self.release = asyncio.Event()
        self.reading = asyncio.Event()

    async def list_jobs(self, *, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.reading.set()
        await self.release.wait()
        return await super().list_jobs(namespace=namespace, selector=selector)


def test_a_reconcile_queued_before_the_listing_and_run_after_it_reads_the_index() -> None:
    """Two new schedules, one slot: the second waits for it while the Jobs' listing
    completes. Once it runs, its Jobs come from the index, not from a read of its own
    (beside 50,000 schedules queued at a start, that read would be one per schedule)."""
    kube = HeldListing(one_time("first"), one_time("second"))
    sched = Scheduler(
        kube=kube,  # type: ignore[arg-type]
        policy=Policy(),
        jobs_of=lambda key: [],
        concurrency=1,
        listed=False,
    )

    async def scenario() -> None:
        loop = asyncio.create_task(sched.run())
        _see(sched, one_time("first"))
        _see(sched, one_time("second"))
        await _until(kube.reading.is_set, "the first schedule reading its Jobs")
        sched.listed()
        kube.release.set()
        await _until(lambda: len(kube.created()) == 2, "both schedules' runs")
        loop.cancel()
        await sched.close()

    asyncio.run(scenario())
    reads = [c for c in kube.calls if c.startswith("list ")]
    assert reads == ["list jobwarden.io/schedule=first"], reads
