"""The executor: the error boundary of one schedule, record before destroy, no run twice.

Driven through the real Scheduler with an in-memory API (``FakeKube``) and the
real plan, except where a plan that raises is needed: no control plane can
make the pure plan fail on demand, so that exception is made in process.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from jobwarden import metrics
from jobwarden.handlers import executor as executor_module
from jobwarden.handlers import failures
from jobwarden.handlers import memory as memory_module
from jobwarden.handlers import scheduler as scheduler_module
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.kube import CreateResult
from jobwarden.reconcile import Policy, Refusal
from jobwarden.runs.jobs import observe_job
from tests.unit.test_burst_order import due_body
from tests.unit.test_reconcile import merge_patch

KEY = ("ns", "s")


class FakeKube:
    """Schedules and Jobs in memory; records every call in order; refuses on demand."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.bodies = {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in bodies}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.events: list[tuple[str, str, str]] = []  # Warnings: (schedule, reason, message)
        self.patches: list[dict[str, Any]] = []
        self.refuse_status = False
        self.answers: dict[str, CreateResult] = {}
        self.version = 0

    async def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get {name}")
        body = self.bodies.get((namespace, name))
        return copy.deepcopy(body) if body is not None else None

    async def create_job(self, body: dict[str, Any]) -> CreateResult:
        name = body["metadata"]["name"]
        self.calls.append(f"create {name}")
        if name in self.answers:
            return self.answers[name]
        self.jobs[name] = copy.deepcopy(body)
        return CreateResult("created")

    async def patch_status(
        self,
        *,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> str:
        self.calls.append(f"status {name}")
        if self.refuse_status:
            raise ApiException(status=422, reason="denied by a ValidatingAdmissionPolicy")
        current = self.bodies[(namespace, name)]["metadata"].get("resourceVersion")
        if resource_version is not None and resource_version != current:
            raise ApiException(status=409, reason="the object has been modified")
        self.patches.append(copy.deepcopy(status))
        body = self.bodies[(namespace, name)]
        body["status"] = merge_patch(body.get("status") or {}, status)
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        return str(self.version)

    async def delete_job(self, *, namespace: str, name: str, grace_seconds: int | None) -> bool:
        self.calls.append(f"delete {name}")
        return self.jobs.pop(name, None) is not None

    async def force_delete_pods_matching(self, **_: Any) -> int:
        return 0

    async def post_event(self, *, regarding: Any, type_: str, reason: str, message: str) -> None:
        if type_ == "Warning":
            self.events.append((regarding.name, reason, message))

    def finish(self, job: str) -> None:
        self.jobs[job]["status"] = {
            "startTime": "2024-01-01T00:00:00Z",
            "completionTime": "2024-01-01T00:00:05Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        }

    def created(self) -> list[str]:
        return [c.split(" ", 1)[1] for c in self.calls if c.startswith("create ")]

    def reasons(self, schedule: str = KEY[1]) -> list[str]:
        return [reason for name, reason, _ in self.events if name == schedule]


def one_time(name: str = KEY[1], **spec: Any) -> dict[str, Any]:
    body = due_body(name)
    body["spec"].update(spec)
    return body


def scheduler(kube: FakeKube) -> Scheduler:
    def jobs_of(key: tuple[str, str]) -> list[Any]:
        return [
            observe_job(j)
            for j in kube.jobs.values()
            if j["metadata"]["labels"]["jobwarden.io/schedule"] == key[1]
        ]

    return Scheduler(kube=kube, policy=Policy(), jobs_of=jobs_of)  # type: ignore[arg-type]


def reconcile(sched: Scheduler, key: tuple[str, str] = KEY) -> None:
    asyncio.run(sched.reconcile(key))


def memory(sched: Scheduler, key: tuple[str, str] = KEY) -> memory_module.ScheduleMemory:
    return sched._memory[key]


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_module, "BACKOFF_FIRST", timedelta(milliseconds=40))


# --- record before destroy ----------------------------------------------------------------


def test_a_finished_run_is_deleted_only_after_its_fate_is_recorded() -> None:
    kube = FakeKube(one_time(successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0))
    sched = scheduler(kube)
    reconcile(sched)
    [job] = kube.created()
    kube.finish(job)
    kube.refuse_status = True
    for _ in range(3):  # the write refused, again and again
        reconcile(sched)
    assert f"delete {job}" not in kube.calls, "deleted before its fate was recorded"
    assert job in kube.jobs
    kube.refuse_status = False
    reconcile(sched)
    status_at = len(kube.calls) - 1 - kube.calls[::-1].index(f"status {KEY[1]}")
    assert kube.calls.index(f"delete {job}") > status_at, "the delete follows the write"
    assert kube.bodies[KEY]["status"]["history"][0]["result"] == "Succeeded"
    assert kube.created() == [job], "created exactly once"


def test_a_created_name_is_never_created_again_whatever_writes_fail() -> None:
    kube = FakeKube(one_time())
    kube.refuse_status = True
    sched = scheduler(kube)
    reconcile(sched)
    [job] = kube.created()
    reconcile(sched)  # the watch has not shown the Job yet: still planned as due
    sched.job_seen(KEY, job)
    kube.jobs.clear()  # and now it is gone behind our back, the status still unwritten
    reconcile(sched)
    assert kube.created() == [job]


def test_a_plan_from_an_old_body_never_overwrites_a_newer_one() -> None:
    """The status write carries the planned-from resourceVersion; a 409 is no fault."""
    body = one_time()
    body["metadata"]["resourceVersion"] = "7"
    kube = FakeKube(body)
    sched = scheduler(kube)
    sched.seen(KEY, resource_version="7", body=copy.deepcopy(body))
    kube.bodies[KEY]["metadata"]["resourceVersion"] = "8"  # a user's edit meanwhile
    reconcile(sched)
    assert kube.patches == [], "a write planned from version 7 landed on version 8"
    assert "InternalError" not in kube.reasons(), "a lost race is not an internal error"
    soonest = sched._queue.soonest()
    assert soonest is not None and soonest <= datetime.now(UTC), "planned again at once"
    reconcile(sched)
    assert kube.patches and f"get {KEY[1]}" in kube.calls
    assert kube.created() == [kube.created()[0]], "the run is created once"


# --- creates the API refuses --------------------------------------------------------------


def spy_plans(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Refusal]]:
    """The ``refused`` of every plan made."""
    seen: list[dict[str, Refusal]] = []
    real = executor_module.plan

    def spy(**kwargs: Any) -> Any:
        seen.append(dict(kwargs["refused"]))
        return real(**kwargs)

    monkeypatch.setattr(executor_module, "plan", spy)
    return seen


def test_a_squatters_job_is_not_adopted_but_fed_to_the_next_plan_as_name_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = spy_plans(monkeypatch)
    kube, sched, job = create_answered(CreateResult("exists", owner_uid="uid-of-someone-else"))
    assert job not in memory(sched).pending and job not in memory(sched).created
    reconcile(sched)
    assert refused[-1][job].reason == "NameTaken", "the refusal is an input of the next plan"
    assert "not owned by this JobSchedule" in refused[-1][job].message
    assert kube.created() == [job], "never asked again"
    assert not memory(sched).refused, "dropped once a plan that saw it was written"


def test_a_409_on_our_own_job_adopts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = spy_plans(monkeypatch)
    _, sched, job = create_answered(CreateResult("exists", owner_uid="uid-s"))
    assert not memory(sched).refused and not any(refused)
    assert job in memory(sched).pending, "ours: waited for like one we created"


def test_a_rejected_create_is_fed_to_the_plans_until_recorded_and_never_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = spy_plans(monkeypatch)
    kube, sched, job = create_answered(CreateResult("rejected", "exceeded quota: pods"))
    kube.refuse_status = True
    reconcile(sched)
    reconcile(sched)
    assert refused[-1] == {job: Refusal("JobRejected", "exceeded quota: pods")}
    kube.refuse_status = False
    reconcile(sched)
    assert job in refused[-1] and not memory(sched).refused
    assert kube.created() == [job]


def create_answered(answer: CreateResult) -> tuple[FakeKube, Scheduler, str]:
    """A first reconcile whose create of the due run the API answers with ``answer``."""
    kube = FakeKube(one_time())
    sched = scheduler(kube)
    sched.seen(KEY, resource_version=None)
    obj = memory_module.observed(copy.deepcopy(kube.bodies[KEY]))
    plan = sched._executor.plan(KEY, memory(sched), obj, jobs=[], now=memory_module.utcnow())
    job: str = plan.starts[0].body["metadata"]["name"]
    kube.answers[job] = answer
    reconcile(sched)
    return kube, sched, job


# --- the error boundary -------------------------------------------------------------------


class StepFailed(Exception):
    """As ``reconcile.PlanStepError``: the step of the plan that raised, and why."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {cause}")
        self.step, self.cause = step, cause


def failing_for(name: str, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make the plan of schedule ``name`` raise; returns the loop time of each attempt."""
    attempts: list[float] = []
    real = executor_module.plan

    def plan(**kwargs: Any) -> Any:
        if kwargs["obj"].name == name:
            attempts.append(asyncio.get_running_loop().time())
            raise StepFailed("start due runs", OverflowError("date value out of range"))
        return real(**kwargs)

    monkeypatch.setattr(executor_module, "plan", plan)
    return attempts


async def until(predicate: Callable[[], bool], *, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.mark.usefixtures("fast_backoff")
def test_a_schedule_whose_plan_raises_is_reported_once_and_retried_with_backoff(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = failing_for("bad", monkeypatch)
    kube = FakeKube(one_time("bad"), one_time("good"))

    async def scenario() -> None:
        sched = scheduler(kube)
        loop = asyncio.create_task(sched.run())
        sched.seen(("ns", "bad"), resource_version=None)
        await until(lambda: len(attempts) >= 4)
        sched.seen(("ns", "good"), resource_version=None)
        await until(lambda: kube.created() != [])
        assert not loop.done(), "the loop lives on"
        loop.cancel()
        await sched.close()
        await asyncio.gather(loop, return_exceptions=True)

    with caplog.at_level(logging.ERROR, logger=failures.__name__):
        asyncio.run(scenario())
    assert [c.split("-")[0] for c in kube.created()] == ["good"], "the neighbour ran"
    assert kube.reasons("bad") == ["InternalError"], "one Event, not one per retry"
    logged = [r for r in caplog.records if "ns/bad" in r.getMessage()]
    assert len(logged) == 1, "logged once per distinct error"
    message = kube.events[0][2]
    assert "'plan: start due runs'" in message and "OverflowError" in message
    [patch] = [
        p
        for p in kube.patches
        if any(c.get("reason") == "InternalError" for c in p.get("conditions", []))
    ]
    assert list(patch) == ["conditions"]
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["message"]) == ("False", message)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[-1] > gaps[0], f"backing off: {gaps}"


@pytest.mark.usefixtures("fast_backoff")
def test_a_fix_by_the_user_retries_at_once_and_a_success_clears_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = failing_for("s", monkeypatch)
    kube = FakeKube(one_time())
    sched = scheduler(kube)
    reconcile(sched)
    assert memory(sched).failures == 1 and memory(sched).retry_at is not None
    monkeypatch.undo()
    edited = copy.deepcopy(kube.bodies[KEY])
    edited["metadata"]["generation"] = 2
    sched.seen(KEY, resource_version="9", body=one_time())
    sched.seen(KEY, resource_version="10", body=edited)
    assert memory(sched).retry_at is None, "the edit lifted the backoff"
    reconcile(sched)
    assert memory(sched).failures == 0 and memory(sched).error is None
    assert kube.created(), "the run started"
    ready = next(c for c in kube.bodies[KEY]["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] != "InternalError", "the next good plan replaced the report"
    assert len(attempts) == 1


def test_an_exception_in_the_plan_made_ahead_stays_out_of_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plan made ahead ran on the loop itself; its exception once ended the loop."""
    from tests.unit.test_prepare_ahead import LEAD, _start, _stop, _until_created

    real = executor_module.plan

    def broken_ahead(**kwargs: Any) -> Any:
        if kwargs["now"] > memory_module.utcnow():
            raise OverflowError("date value out of range")
        return real(**kwargs)

    monkeypatch.setattr(executor_module, "plan", broken_ahead)

    async def scenario() -> None:
        due = memory_module.utcnow().replace(microsecond=0) + LEAD + timedelta(seconds=1)
        sched, kube, loop = await _start(due)
        await _until_created(kube, within=10)
        assert not loop.done()
        await _stop(sched, loop)

    asyncio.run(scenario())


# --- the loop's heartbeat, forgetting --------------------------------------------------------


def test_the_loop_beats_while_idle_and_while_standing_by(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "BEAT", timedelta(milliseconds=30))

    async def scenario() -> None:
        sched = scheduler(FakeKube())
        loop = asyncio.create_task(sched.run())
        for _ in range(2):
            before = sched.last_beat
            await until(lambda before=before: sched.last_beat > before, within=2)  # type: ignore[misc]
            sched.pause()
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())


def test_forget_removes_the_schedules_metric_series_only() -> None:
    sched = scheduler(FakeKube())
    for name in ("gone", "kept"):
        sched.seen(("ns", name), resource_version=None)
        metrics.RUNS.labels("ns", name, "Started").inc()
        metrics.RUNS.labels("ns", name, "Succeeded").inc()
    sched.forget(("ns", "gone"))
    labels = {"namespace": "ns", "schedule": "gone", "result": "Started"}
    assert REGISTRY.get_sample_value("jobwarden_runs_total", labels) is None
    assert (
        REGISTRY.get_sample_value("jobwarden_runs_total", {**labels, "schedule": "kept"})
        is not None
    )
    assert ("ns", "gone") not in sched._memory and sched._queue.due(("ns", "gone")) is None


def test_the_loop_outlives_a_pass_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube(one_time())

    async def scenario() -> None:
        sched = scheduler(kube)
        real = sched._queue.pop_due
        broken = [True]

        def pop_due(now: Any) -> Any:
            if broken.pop() if broken else False:
                raise RuntimeError("a bug in the loop")
            return real(now)

        monkeypatch.setattr(sched._queue, "pop_due", pop_due)
        loop = asyncio.create_task(sched.run())
        sched.seen(KEY, resource_version=None)
        await until(lambda: kube.created() != [])
        assert not broken, "the broken pass happened"
        assert not loop.done()
        loop.cancel()
        await sched.close()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())


def test_a_create_that_raised_is_tried_again_not_taken_for_created() -> None:
    """The plan starts no name it is told is pending; a failed create must not be."""
    kube = FakeKube(one_time())
    sched = scheduler(kube)
    create = kube.create_job
    failures = [ApiException(status=503, reason="Service Unavailable")]

    async def flaky(body: dict[str, Any]) -> CreateResult:
        if failures:
            kube.calls.append(f"create {body['metadata']['name']}")
            raise failures.pop()
        return await create(body)

    kube.create_job = flaky  # type: ignore[method-assign]
    reconcile(sched)
    assert not memory(sched).pending and memory(sched).failures == 1
    reconcile(sched)
    [first, second] = kube.created()
    assert first == second and second in kube.jobs, "created on the second try"
