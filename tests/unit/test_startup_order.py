"""After a start beside many schedules, a run due soon is not recorded behind all of them.

Driven through the real Scheduler and plan over ``FakeKube`` whose status
writes are held, as they are when thousands arrive at once.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from jobwarden.handlers.executor import WRITES
from tests.unit.test_burst_order import due_body
from tests.unit.test_executor import FakeKube, scheduler

IDLE = 150


def _body(name: str, run_at: datetime, version: int) -> dict[str, Any]:
    """A schedule never reconciled (no status), its one run at ``run_at``."""
    body = due_body(name)
    body["metadata"]["resourceVersion"] = str(version)
    body["spec"]["runAt"] = run_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    del body["status"]
    return body


class HeldWrites(FakeKube):
    """Status writes wait until released, as thousands of them do behind the API threads."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        super().__init__(*bodies)
        self.release = asyncio.Event()
        self.waiting = 0

    async def patch_status(self, **kwargs: Any) -> str:
        self.waiting += 1
        await self.release.wait()
        return await super().patch_status(**kwargs)


def test_a_schedule_due_soon_is_written_before_the_bookkeeping_of_idle_ones() -> None:
    """Never reconciled before, 150 idle schedules (due next year) and then one due in a
    few seconds arrive together; each needs its first status write. Writes are held until
    every reconcile has planned (``WRITES`` in flight, the rest queued): the one due soon
    is written right after those in flight, not last, and its run is created."""
    now = datetime.now(UTC)
    idle = [_body(f"idle-{i:03d}", now + timedelta(days=365), i) for i in range(IDLE)]
    soon = _body("soon", now + timedelta(seconds=2), IDLE)
    kube = HeldWrites(*idle, soon)
    sched = scheduler(kube)

    async def scenario() -> None:
        loop = asyncio.create_task(sched.run())
        for body in [*idle, soon]:
            name = body["metadata"]["name"]
            meta = body["metadata"]
            sched.seen(
                ("ns", name), resource_version=meta["resourceVersion"], body=copy.deepcopy(body)
            )
        async with asyncio.timeout(20):
            # Every reconcile planned: the writes gate holds WRITES, the rest wait their turn.
            while kube.waiting < WRITES or sched._executor._acting:
                await asyncio.sleep(0.01)
            kube.release.set()
            while not any(c.startswith("create soon-") for c in kube.calls):
                await asyncio.sleep(0.01)
        loop.cancel()
        await sched.close()

    asyncio.run(scenario())
    writes = [c.split(" ", 1)[1] for c in kube.calls if c.startswith("status ")]
    assert "soon" in writes
    assert writes.index("soon") == WRITES, writes.index("soon")
