"""A burst of due runs creates its Jobs first and does its bookkeeping after.

Three pieces make that so (bench/lag.py measures the effect on a real
cluster): ``Kube``'s worker lanes take urgent calls before deferrable ones;
the scheduler frees a reconcile's slot once its Jobs are created, before its
status write; and raw responses are read in the worker thread, not on the
event loop.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from jobwarden.handlers.scheduler import Scheduler
from jobwarden.reconcile import Policy
from jobwarden.runs.jobs import JobObservation
from jobwarden.transport import _Lanes

# --- the lanes -----------------------------------------------------------------------------


def test_queued_urgent_calls_run_before_queued_deferrable_ones() -> None:
    lanes = _Lanes(workers=1, name="t")
    gate = threading.Event()
    order: list[str] = []
    try:
        blocker = lanes.submit(gate.wait, urgent=True)  # occupies the only worker
        futures = [
            lanes.submit(lambda tag=tag: order.append(tag), urgent=urgent)  # type: ignore[misc]
            for tag, urgent in [
                ("status-a", False),
                ("create-b", True),
                ("event-a", False),
                ("create-c", True),
            ]
        ]
        gate.set()
        blocker.result(timeout=5)
        for f in futures:
            f.result(timeout=5)
    finally:
        lanes.shutdown()
    assert order == ["create-b", "create-c", "status-a", "event-a"]


def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    lanes = _Lanes(workers=1, name="t")
    gate = threading.Event()
    ran: list[str] = []
    try:
        blocker = lanes.submit(gate.wait, urgent=True)
        dropped = lanes.submit(lambda: ran.append("dropped"), urgent=True)
        kept = lanes.submit(lambda: ran.append("kept"), urgent=True)
        assert dropped.cancel()
        gate.set()
        blocker.result(timeout=5)
        kept.result(timeout=5)
    finally:
        lanes.shutdown()
    assert ran == ["kept"]


def test_an_exception_reaches_the_caller() -> None:
    lanes = _Lanes(workers=2, name="t")
    try:
        future = lanes.submit(lambda: 1 / 0, urgent=False)
        assert isinstance(future.exception(timeout=5), ZeroDivisionError)
    finally:
        lanes.shutdown()


# --- the scheduler: the slot covers the creates, not the status write ----------------------

NOW = datetime.now(UTC)


def due_body(name: str) -> dict[str, Any]:
    """A schedule whose one-time run was due a second ago, already reconciled once."""
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": {
            "runAt": (NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "x"}],
                        }
                    }
                }
            },
        },
        "status": {},
    }


class StallingStatusKube:
    """Creates Jobs at once; every status write waits until released."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.release = asyncio.Event()

    async def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any]:
        return due_body(name)

    async def create_job(self, body: dict[str, Any]) -> Any:
        from jobwarden.kube import CreateResult

        self.created.append(body["metadata"]["labels"]["jobwarden.io/schedule"])
        return CreateResult("created")

    async def patch_status(self, **_: Any) -> str:
        await self.release.wait()
        return "2"

    async def post_event(self, **_: Any) -> None:
        await self.release.wait()


def test_a_pending_status_write_does_not_hold_back_other_schedules_creates() -> None:
    async def scenario() -> None:
        kube = StallingStatusKube()
        jobs: dict[tuple[str, str], list[JobObservation]] = {}
        sched = Scheduler(
            kube=kube,
            policy=Policy(),
            jobs_of=lambda key: jobs.get(key, []),  # type: ignore[arg-type]
            concurrency=1,
        )
        loop = asyncio.create_task(sched.run())
        names = [f"s{i}" for i in range(5)]
        for name in names:
            sched.seen(("ns", name), resource_version=None)
        deadline = asyncio.get_running_loop().time() + 5
        while len(kube.created) < len(names):
            assert asyncio.get_running_loop().time() < deadline, (
                f"only {kube.created} created while status writes were pending"
            )
            await asyncio.sleep(0.01)
        assert sorted(kube.created) == names
        kube.release.set()
        loop.cancel()
        await sched.close()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())


# --- the body of our own status write replaces the GET -------------------------------------


class CountingKube:
    """Serves one schedule; counts GETs and answers each status write with a new version."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.gets = 0
        self.writes = 0

    async def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any]:
        self.gets += 1
        return self.body

    async def create_job(self, body: dict[str, Any]) -> Any:
        from jobwarden.kube import CreateResult

        return CreateResult("created")

    async def patch_status(self, *, status: dict[str, Any], **_: Any) -> str:
        self.writes += 1
        self.body = {
            **self.body,
            "status": status,
            "metadata": {**self.body["metadata"], "resourceVersion": str(self.writes)},
        }
        return str(self.writes)

    async def post_event(self, **_: Any) -> None:
        return None


def quiet_body() -> dict[str, Any]:
    body = due_body("q")
    body["spec"]["runAt"] = (NOW + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body["metadata"]["resourceVersion"] = "0"
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    return body


def quiet_scheduler() -> tuple[CountingKube, Scheduler]:
    """A Scheduler (not running its loop) over one quiet schedule, reconciled by hand."""
    kube = CountingKube(quiet_body())
    return kube, Scheduler(kube=kube, policy=Policy(), jobs_of=lambda key: [])  # type: ignore[arg-type]


def test_a_reconcile_plans_from_the_newest_known_body_without_a_get() -> None:
    async def scenario() -> None:
        kube, sched = quiet_scheduler()
        key = ("ns", "q")
        # Never written by this process: the watched body is the newest there is.
        sched.seen(key, resource_version="0", body=kube.body)
        await sched.reconcile(key)
        assert (kube.gets, kube.writes) == (0, 1)
        # The watch delivers our write; the next reconcile (a due run, a Job's end) reads it.
        sched.seen(key, resource_version="1", body=kube.body)
        kube.body = {"metadata": {}, "spec": {}, "status": {}}  # a GET would now see garbage
        await sched.reconcile(key)
        assert kube.gets == 0, "planned from the body of our own write"
        assert kube.writes == 1, "the same body again: nothing to write"

    asyncio.run(scenario())


def test_after_our_write_anyone_elses_change_is_read_afresh() -> None:
    async def scenario() -> None:
        kube, sched = quiet_scheduler()
        key = ("ns", "q")
        sched.seen(key, resource_version="0", body=kube.body)
        await sched.reconcile(key)
        sched.seen(key, resource_version="1", body=kube.body)
        edited = {**kube.body, "metadata": {**kube.body["metadata"], "resourceVersion": "7"}}
        sched.seen(key, resource_version="7", body=edited)  # e.g. kubectl apply of a new spec
        await sched.reconcile(key)
        assert kube.gets == 1, "a change by someone else (maybe older than our write) is read"

    asyncio.run(scenario())


def test_a_body_watched_while_our_write_is_in_flight_is_not_trusted() -> None:
    async def scenario() -> None:
        kube, sched = quiet_scheduler()
        key = ("ns", "q")
        before = dict(kube.body)
        write = kube.patch_status

        async def slow_write(**kwargs: Any) -> str:
            # An event from before the write, delivered while the write is on its way.
            late = {**before, "metadata": {**before["metadata"], "resourceVersion": "0b"}}
            sched.seen(key, resource_version="0b", body=late)
            return await write(**kwargs)

        kube.patch_status = slow_write  # type: ignore[method-assign]
        sched.seen(key, resource_version="0", body=kube.body)
        await sched.reconcile(key)
        assert kube.writes == 1
        await sched.reconcile(key)
        assert kube.gets == 1, "the body that arrived during the write may predate it"

    asyncio.run(scenario())


def test_packed_bodies_keep_what_a_plan_reads_and_drop_managed_fields() -> None:
    from jobwarden.handlers.memory import observed, pack, unpack

    body = quiet_body()
    body["metadata"]["annotations"] = {"jobwarden.io/run-now": "t1"}
    body["status"] = {"phase": "Active", "history": [{"job": "j", "result": "Running"}]}
    back = unpack(pack(body))
    assert "managedFields" not in back["metadata"]
    assert observed(back) == observed(body)
