"""API faults: what ``Kube`` and the elector do when the API server throttles, fails,
resets, hangs or loses an answer.

The faults come from ``tests/support/faultproxy.py``, a TLS proxy in front of
the real API server: everything it does not fault is the API server's own
(storage, 409s, preconditions), and each fault hits exactly the n-th
matching request. Timeouts and budgets are shortened here (a 1 s read
timeout, a few seconds of budget) so that each test takes seconds; the
defaults are the same mechanism with larger numbers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from jobwarden import labels
from jobwarden.handlers.leader import Elector
from jobwarden.kube import ApiUnavailable, Kube, NotLeading, ObjectRef
from jobwarden.retrying import RetryPolicy, Timeouts
from tests.support.faultproxy import FaultProxy, Rule, Upstream
from tests.support.kube import Cluster
from tests.support.schedules import schedule

SHORT = Timeouts(connect=1.0, read=1.0)
BUDGET = RetryPolicy(attempts=6, budget=3.0, base=0.1, cap=0.5)
JOBS = r"/apis/batch/v1/namespaces/[^/]+/jobs$"
SCHEDULES = r"/jobschedules/"


@pytest.fixture
def proxy(cluster: Cluster, tmp_path: Path) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=Upstream.of(cluster.kubeconfig), workdir=tmp_path).running() as p:
        yield p


@pytest.fixture
def kube(proxy: FaultProxy, tmp_path: Path) -> Iterator[Kube]:
    k = Kube(proxy.api(tmp_path / "proxy.kubeconfig"), workers=4, timeouts=SHORT, retry=BUDGET)
    try:
        yield k
    finally:
        k.close()


def job_body(namespace: str, name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "suspend": True,  # nothing needs to run: the tests are about the create
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox:1.36"}],
                }
            },
        },
    }


def owned_by(sched: dict[str, Any]) -> dict[str, Any]:
    meta = sched["metadata"]
    return {
        "apiVersion": labels.API_VERSION,
        "kind": labels.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }


def a_schedule(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    cluster.apply(schedule(name, schedule="0 0 1 1 *", suspend=True), namespace=namespace)
    return cluster.schedule(namespace, name)


def test_429_with_retry_after_is_waited_out_then_succeeds(
    cluster: Cluster, namespace: str, proxy: FaultProxy, kube: Kube
) -> None:
    proxy.add(Rule("status", JOBS, method="POST", times=2, status=429, retry_after="1"))
    result = asyncio.run(kube.create_job(job_body(namespace, "throttled")))
    assert result.outcome == "created"
    tries = proxy.requests("POST", JOBS)
    assert [t.fault for t in tries] == ["status", "status", None]
    gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
    assert all(gap >= 1.0 for gap in gaps), f"Retry-After: 1 not honoured: {gaps}"
    assert [j["metadata"]["name"] for j in cluster.jobs(namespace)] == ["throttled"]


def test_a_burst_of_5xx_is_retried_and_the_status_write_lands(
    cluster: Cluster, namespace: str, proxy: FaultProxy, kube: Kube
) -> None:
    sched = a_schedule(cluster, namespace, "flaky")
    for status in (500, 503, 503):
        proxy.add(Rule("status", SCHEDULES + r"flaky/status$", method="PATCH", status=status))
    rv = asyncio.run(
        kube.patch_status(
            namespace=namespace,
            name="flaky",
            status={"observedGeneration": 1},
            resource_version=sched["metadata"]["resourceVersion"],
        )
    )
    after = cluster.schedule(namespace, "flaky")
    assert rv == after["metadata"]["resourceVersion"] != sched["metadata"]["resourceVersion"]
    assert after["status"]["observedGeneration"] == 1
    assert [t.fault for t in proxy.requests("PATCH", "flaky/status")] == [
        "status",
        "status",
        "status",
        None,
    ]


def test_resets_are_retried_for_reads_and_deletes(
    cluster: Cluster, namespace: str, proxy: FaultProxy, kube: Kube
) -> None:
    a_schedule(cluster, namespace, "reset")
    cluster.apply(job_body(namespace, "doomed"), namespace=namespace)
    proxy.add(Rule("reset", SCHEDULES + "reset$", method="GET", times=2))
    proxy.add(Rule("reset", r"/jobs/doomed$", method="DELETE"))

    async def scenario() -> tuple[Any, bool]:
        got = await kube.get_schedule(namespace=namespace, name="reset")
        deleted = await kube.delete_job(namespace=namespace, name="doomed", grace_seconds=None)
        return got, deleted

    got, deleted = asyncio.run(scenario())
    assert got is not None and got["metadata"]["name"] == "reset"
    assert deleted is True
    assert len(proxy.requests("GET", SCHEDULES + "reset$")) == 3
    assert not [j for j in cluster.jobs(namespace) if not j["metadata"].get("deletionTimestamp")]


def test_a_hung_call_times_out_within_its_budget_and_the_loop_runs_on(
    cluster: Cluster, namespace: str, proxy: FaultProxy, kube: Kube
) -> None:
    """Every try hangs: the caller gets ApiUnavailable within the budget, the event
    loop keeps running meanwhile, and hung calls beyond the worker threads (4 here)
    are released at their budget too, not when a thread frees up."""
    a_schedule(cluster, namespace, "hung")
    proxy.add(Rule("hang", SCHEDULES + "hung$", method="GET", times=1000))

    async def scenario() -> tuple[list[Any], float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        beat = asyncio.create_task(ticker())
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(kube.get_schedule(namespace=namespace, name="hung") for _ in range(6)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
        beat.cancel()
        return outcomes, elapsed, ticks

    outcomes, elapsed, ticks = asyncio.run(scenario())
    assert all(isinstance(o, ApiUnavailable) for o in outcomes), outcomes
    assert "no answer after" in str(outcomes[0])
    assert BUDGET.budget <= elapsed < BUDGET.budget + 2.0, elapsed
    assert ticks >= elapsed / 0.05 / 2, "the event loop was held while calls hung"
    assert len(proxy.requests("GET", SCHEDULES + "hung$")) >= 4
    # The threads are free again once their try timed out: the next call answers.
    proxy.rules.clear()
    got = asyncio.run(kube.get_schedule(namespace=namespace, name="hung"))
    assert got is not None


def test_a_create_whose_answer_was_lost_leaves_exactly_one_job_and_adopts_it(
    cluster: Cluster, namespace: str, proxy: FaultProxy, kube: Kube
) -> None:
    sched = a_schedule(cluster, namespace, "lost")
    proxy.add(Rule("drop", JOBS, method="POST"))
    result = asyncio.run(kube.create_job(job_body(namespace, "lost-run", owned_by(sched))))
    assert (result.outcome, result.owner_uid) == ("exists", sched["metadata"]["uid"])
    assert [t.fault for t in proxy.requests("POST", JOBS)] == ["drop", None]
    assert [j["metadata"]["name"] for j in cluster.jobs(namespace)] == ["lost-run"]


def test_a_squatters_job_is_reported_with_no_owner(
    cluster: Cluster, namespace: str, kube: Kube
) -> None:
    sched = a_schedule(cluster, namespace, "victim")
    cluster.apply(job_body(namespace, "victim-run"), namespace=namespace)
    result = asyncio.run(kube.create_job(job_body(namespace, "victim-run", owned_by(sched))))
    assert result.outcome == "exists"
    assert result.owner_uid is None
    assert "no JobSchedule owns it" in result.message


def test_a_status_write_from_a_stale_version_gets_409_and_is_not_retried(
    cluster: Cluster, namespace: str, proxy: FaultProxy, kube: Kube
) -> None:
    sched = a_schedule(cluster, namespace, "raced")
    planned_from = sched["metadata"]["resourceVersion"]
    # Someone (a new leader, a spec edit) writes after our plan was made.
    cluster.kubectl("annotate", "jobschedule", "-n", namespace, "raced", "touched=yes")
    with pytest.raises(ApiException) as refused:
        asyncio.run(
            kube.patch_status(
                namespace=namespace,
                name="raced",
                status={"observedGeneration": 7},
                resource_version=planned_from,
            )
        )
    assert refused.value.status == 409
    assert len(proxy.requests("PATCH", "raced/status")) == 1
    assert "observedGeneration" not in (cluster.schedule(namespace, "raced").get("status") or {})


class Switch:
    def __init__(self) -> None:
        self.on = False
        self.paused_at: float | None = None
        self.resumed_at: float | None = None

    def pause(self) -> None:
        self.on, self.paused_at = False, time.monotonic()

    def resume(self) -> None:
        self.on, self.resumed_at = True, time.monotonic()


def test_a_black_holed_leader_stops_acting_before_another_may_take_over(
    cluster: Cluster, namespace: str, proxy: FaultProxy, kube: Kube, tmp_path: Path
) -> None:
    """Leader ``a`` reaches the API through the proxy, standby ``b`` directly. Once every
    request of ``a`` hangs, ``a`` stops sending acting calls at the end of its term (they
    raise NotLeading unsent), its scheduler is paused by then, and ``b`` takes the Lease
    only a margin later, after every try ``a`` sent has timed out."""
    duration, margin, every = timedelta(seconds=3), timedelta(seconds=1), timedelta(seconds=1)
    lease_kube = Kube(proxy.api(tmp_path / "lease.kubeconfig"), workers=2)
    direct = Kube(cluster.api, workers=2)
    sa, sb = Switch(), Switch()

    def elector(k: Kube, switch: Switch, me: str) -> Elector:
        return Elector(
            kube=k,
            switch=switch,
            name="faults",
            namespace=namespace,
            me=me,
            duration=duration,
            renew_every=every,
            margin=margin,
        )

    a, b = elector(lease_kube, sa, "a"), elector(direct, sb, "b")
    kube.guard(a.term)
    ref = ObjectRef("v1", "Namespace", namespace, namespace, "")

    async def scenario() -> list[tuple[float, str]]:
        tasks = [asyncio.create_task(a.run())]
        while not sa.on:
            await asyncio.sleep(0.05)
        tasks.append(asyncio.create_task(b.run()))
        await asyncio.sleep(1.5)  # b follows a for a while
        assert not sb.on
        proxy.add(Rule("hang", ".", times=10**6))  # a's API server stops answering
        outcomes: list[tuple[float, str]] = []
        while not sb.on:
            started = time.monotonic()
            try:
                await kube.post_event(regarding=ref, type_="Normal", reason="Probe", message="x")
                outcomes.append((started, "sent"))
            except NotLeading:
                outcomes.append((started, "not leading"))
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return outcomes

    try:
        outcomes = asyncio.run(scenario())
    finally:
        lease_kube.close()
        direct.close()
    assert sa.paused_at is not None and sb.resumed_at is not None
    assert sb.resumed_at - sa.paused_at >= margin.total_seconds() - 0.05
    assert any(what == "not leading" for _, what in outcomes)
    hung = proxy.requests("POST", "/events$")
    assert hung, "a kept acting until its term ended"
    last_sent = max(s.at for s in hung)
    assert last_sent <= sa.paused_at + 0.05, "an acting call was sent after the pause"
    # Each try a sent was cut to end by the term's end plus the margin: before b took over.
    assert last_sent + margin.total_seconds() <= sb.resumed_at
