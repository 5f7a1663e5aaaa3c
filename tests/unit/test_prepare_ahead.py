"""A run's plan is made shortly before it is due, and dropped when anything changes meanwhile.

The scheduler plans a wake-up ``PREPARE_AHEAD`` early, as of the wake-up's
own time, so that at the instant a burst is due only the creates are left.
These tests drive the real Scheduler on its loop with an in-memory API and
watch which ``now`` each plan was made for.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobwarden.handlers import executor as executor_module
from jobwarden.handlers.scheduler import PREPARE_AHEAD, Scheduler
from jobwarden.kube import CreateResult
from jobwarden.reconcile import Policy
from tests.unit.test_burst_order import due_body

KEY = ("ns", "s")
LEAD = PREPARE_AHEAD + timedelta(seconds=0.6)


class MemoryKube:
    """One schedule; each status write makes a new resourceVersion; Jobs are recorded."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.writes = 0
        self.created: list[tuple[str, datetime]] = []

    async def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any]:
        return self.body

    async def create_job(self, body: dict[str, Any]) -> CreateResult:
        self.created.append((body["metadata"]["name"], datetime.now(UTC)))
        return CreateResult("created")

    async def patch_status(self, *, status: dict[str, Any], **_: Any) -> str:
        self.writes += 1
        merged = {**self.body.get("status", {}), **status}
        meta = {**self.body["metadata"], "resourceVersion": f"w{self.writes}"}
        self.body = {**self.body, "status": merged, "metadata": meta}
        return meta["resourceVersion"]

    async def post_event(self, **_: Any) -> None:
        return None


def body_due_at(due: datetime) -> dict[str, Any]:
    """A one-time run due at ``due``, not reconciled yet."""
    body = due_body(KEY[1])
    body["spec"]["runAt"] = due.isoformat().replace("+00:00", "Z")
    created = due - timedelta(minutes=5)
    body["metadata"]["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    body["metadata"]["resourceVersion"] = "0"
    return body


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The ``now`` of every plan the scheduler makes, in order."""
    made: list[datetime] = []
    real = executor_module.plan

    def recording(**kwargs: Any) -> Any:
        made.append(kwargs["now"])
        return real(**kwargs)

    monkeypatch.setattr(executor_module, "plan", recording)
    return made


async def _start(due: datetime) -> tuple[Scheduler, MemoryKube, asyncio.Task[None]]:
    kube = MemoryKube(body_due_at(due))
    sched = Scheduler(kube=kube, policy=Policy(), jobs_of=lambda key: [])  # type: ignore[arg-type]
    loop = asyncio.create_task(sched.run())
    sched.seen(KEY, resource_version="0", body=kube.body)
    while kube.writes < 1:  # the first reconcile records the next run and its wake-up
        await asyncio.sleep(0.01)
    # The watch delivers our own write: its body is the newest state.
    sched.seen(KEY, resource_version="w1", body=kube.body)
    return sched, kube, loop


async def _until_created(kube: MemoryKube, *, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not kube.created:
        assert asyncio.get_running_loop().time() < deadline, "the due run was never created"
        await asyncio.sleep(0.01)


async def _stop(sched: Scheduler, loop: asyncio.Task[None]) -> None:
    loop.cancel()
    await sched.close()
    await asyncio.gather(loop, return_exceptions=True)


def test_the_plan_for_a_due_run_is_made_ahead_as_of_its_time(plans: list[datetime]) -> None:
    async def scenario() -> None:
        due = datetime.now(UTC).replace(microsecond=0) + LEAD + timedelta(seconds=1)
        sched, kube, loop = await _start(due)
        await _until_created(kube, within=10)
        await _stop(sched, loop)
        _, created_at = kube.created[0]
        assert created_at >= due, "a prepared plan never acts before its time"
        assert plans[-1] == due, "the run was started by the plan made for its wake-up"
        assert len(plans) == 2, "no second plan at the due instant"

    asyncio.run(scenario())


def test_a_change_after_the_plan_was_made_is_planned_afresh(plans: list[datetime]) -> None:
    async def scenario() -> None:
        due = datetime.now(UTC).replace(microsecond=0) + LEAD + timedelta(seconds=1)
        sched, kube, loop = await _start(due)
        while len(plans) < 2:  # the plan ahead
            await asyncio.sleep(0.01)
        assert plans[-1] == due
        # Someone edits the schedule before it is due: the event reconciles now
        # and the plan made ahead must not be used.
        edited = {**kube.body, "metadata": {**kube.body["metadata"], "resourceVersion": "x1"}}
        edited["metadata"]["annotations"] = {"team": "a"}
        kube.body = edited
        sched.seen(KEY, resource_version="x1", body=edited)
        await _until_created(kube, within=10)
        await _stop(sched, loop)
        assert plans[-1] > due, "the run was planned afresh after the change, at its time"
        assert len(kube.created) == 1

    asyncio.run(scenario())


def test_a_job_event_drops_the_plan_made_ahead(plans: list[datetime]) -> None:
    async def scenario() -> None:
        due = datetime.now(UTC).replace(microsecond=0) + LEAD + timedelta(seconds=1)
        sched, kube, loop = await _start(due)
        while len(plans) < 2:
            await asyncio.sleep(0.01)
        sched.job_seen(KEY, "some-older-job")
        await _until_created(kube, within=10)
        await _stop(sched, loop)
        assert plans[-1] > due, "planned again with the Jobs as they are at the due time"

    asyncio.run(scenario())


def test_a_slow_plan_ahead_does_not_delay_the_wake_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop times its sleep from after the preparing, not from before it."""
    real = executor_module.plan
    slow = 0.5

    def slow_ahead(**kwargs: Any) -> Any:
        if kwargs["now"] > datetime.now(UTC):  # a plan made ahead (a thousand of them, say)
            time.sleep(slow)
        return real(**kwargs)

    monkeypatch.setattr(executor_module, "plan", slow_ahead)

    async def scenario() -> None:
        due = datetime.now(UTC).replace(microsecond=0) + LEAD + timedelta(seconds=1)
        sched, kube, loop = await _start(due)
        await _until_created(kube, within=10)
        await _stop(sched, loop)
        late = (kube.created[0][1] - due).total_seconds()
        assert late < slow / 2, f"created {late:.3f}s after it was due"

    asyncio.run(scenario())
