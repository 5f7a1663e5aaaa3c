"""Hostile tenants, part 3: load and faults. 500 schedules applied at once, a namespace
full of schedules being deleted, the API server paused with SIGSTOP, etcd restarted,
and a relist after a 410 from an API server restarted while the operator was frozen.

The control-plane faults each break a control plane of their own (named after
this session's cluster and the test, ``<name>-chaos-<hash>``), so no other test
sees the outage and none sees another's aftermath.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster._faults import SeparateControlPlane, list_schedules
from tests.support.hostile import (
    Arena,
    RecordProperty,
    arena,
    hostile_schedule,
    suspended_job,
    suspended_template,
)
from tests.support.kube import Cluster, Timeout, wait_for
from tests.support.schedules import (
    SCHEDULE_LABEL,
    jobs_of,
    rfc3339,
    schedule,
    seconds_ahead,
    status_of,
    utcnow,
)


def _create_many(cluster: Cluster, namespace: str, items: list[dict[str, Any]]) -> None:
    """Create JobSchedules and Jobs from a few threads, as a GitOps sync of a directory
    does (one ``kubectl apply`` of 600 objects takes minutes on a busy machine)."""
    custom, batch = client.CustomObjectsApi(cluster.api), client.BatchV1Api(cluster.api)

    def create(item: dict[str, Any]) -> None:
        if item["kind"] == "Job":
            batch.create_namespaced_job(namespace, item, _preload_content=False).read()
        else:
            custom.create_namespaced_custom_object(
                "jobwarden.io", "v1alpha1", namespace, "jobschedules", item, _preload_content=False
            ).read()

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, items))


def _all_phased(cluster: Cluster, namespace: str, count: int, *, timeout: float) -> float:
    """Seconds until ``count`` schedules in ``namespace`` all have a phase."""
    start = time.monotonic()

    def done() -> bool:
        found = list_schedules(cluster, namespace)
        return sum(1 for s in found.values() if (s.get("status") or {}).get("phase")) >= count

    wait_for(done, timeout=timeout, interval=1.0, what=f"{count} schedules reconciled")
    return time.monotonic() - start


def test_500_schedules_applied_at_once(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """500 schedules due every minute, applied in one go beside the victim, whose run is
    due 8 s after the minute the 500 first fire on."""
    with arena(cluster, "flood-500", tmp_path, record_property) as a:
        now = utcnow()
        boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if (boundary - now).total_seconds() < 20:
            boundary += timedelta(minutes=1)
        _create_many(cluster, a.hostile, [hostile_schedule(f"flood-{i:03d}") for i in range(500)])

        def report() -> str:
            took = _all_phased(cluster, a.hostile, 500, timeout=120)
            return f"all 500 reconciled within {took:.0f}s"

        a.prove(report, victim_due=boundary + timedelta(seconds=8))


def test_namespace_of_many_schedules_deleted(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """A namespace of 300 schedules and 300 of their Jobs is deleted while the victim's
    run comes due: the victim runs on time and the dying namespace starts no run."""
    count = 300
    with arena(cluster, "ns-deleted", tmp_path, record_property) as a:
        schedules = [
            hostile_schedule(f"s{i:03d}", runAt="2099-01-01T00:00:00Z") for i in range(count)
        ]
        jobs = [
            suspended_job(f"s{i:03d}-old", labels={SCHEDULE_LABEL: f"s{i:03d}"})
            for i in range(count)
        ]
        _create_many(cluster, a.hostile, schedules + jobs)
        _all_phased(cluster, a.hostile, count, timeout=120)
        # The test's own Jobs, and whatever the operator made before the delete. The
        # recorder's watch may still be catching up with the 300 created above.
        before = {j["metadata"]["name"] for j in jobs} | set(a.recorders[a.hostile].names())
        cluster.kubectl("delete", "namespace", a.hostile, "--wait=false")
        deleting = time.monotonic()

        def report() -> str:
            wait_for(
                lambda: cluster.kubectl("get", "namespace", a.hostile, check=False).returncode != 0,
                timeout=120,
                interval=1.0,
                what="the namespace gone",
            )
            started = set(a.recorders[a.hostile].names()) - before
            assert not started, f"runs started in the dying namespace: {sorted(started)[:5]}"
            return f"namespace gone after {time.monotonic() - deleting:.0f}s, no run started"

        a.prove(report)


# --- the control plane itself ----------------------------------------------------------------

STALL = timedelta(seconds=15)
RECOVER_WITHIN = timedelta(seconds=30)


@pytest.fixture
def chaos_plane(request: pytest.FixtureRequest) -> Iterator[SeparateControlPlane]:
    """A control plane of this test's own: its name is the session's cluster's, plus the
    test's, so no other test (or another run beside this one) ever shares it."""
    if os.environ.get("JOBWARDEN_TEST_KUBECONFIG") == "1":
        pytest.skip("needs a local control plane of its own to pause and restart")
    test = hashlib.sha1(request.node.name.encode()).hexdigest()[:6]
    plane = SeparateControlPlane.beside(f"chaos-{test}")
    plane.up()
    try:
        plane.install_crds()
        yield plane
    finally:
        plane.down()


def _last(span: timedelta) -> None:
    """Let a fault last ``span`` (the clock is the condition)."""
    until = utcnow() + span
    wait_for(lambda: utcnow() >= until, timeout=span.total_seconds() + 5, what="the fault to last")


def _due_during_fault(a: Arena, at: datetime) -> None:
    """A one-time run in each namespace, due while the control plane is out."""
    for ns in (a.hostile, a.victim):
        a.cluster.apply(
            schedule("during", runAt=rfc3339(at), jobTemplate=suspended_template()),
            namespace=ns,
        )
        wait_for(
            lambda ns=ns: status_of(a.cluster, ns, "during").get("nextRunTime"),
            timeout=30,
            what=f"{ns}: the operator saw 'during'",
        )


def _ran_once_after(a: Arena, recovered: float) -> str:
    """Each namespace's run due during the fault is created once after recovery."""
    for ns in (a.hostile, a.victim):
        try:
            wait_for(
                lambda ns=ns: jobs_of(a.cluster, ns, "during"),
                timeout=RECOVER_WITHIN.total_seconds(),
                what=f"{ns}: the run due during the fault",
            )
        except Timeout as exc:
            status = status_of(a.cluster, ns, "during")
            raise AssertionError(f"{exc} after recovery; status {status}") from None
        jobs = jobs_of(a.cluster, ns, "during")
        assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
    took = time.monotonic() - recovered
    return f"the run due during the fault created once in each namespace, {took:.0f}s after"


@pytest.mark.xdist_group("hostile-chaos")
def test_api_server_paused_with_sigstop(
    chaos_plane: SeparateControlPlane, tmp_path: Path, record_property: RecordProperty
) -> None:
    """kube-apiserver is stopped (SIGSTOP) for 15 s, so every connection hangs rather than
    fails, then continued. The operator is still running afterwards, the runs due in the
    stall start once, and the victim runs on time and answers run-now."""
    plane = chaos_plane
    with arena(plane.cluster, "sigstop", tmp_path, record_property, cluster_name=plane.name) as a:
        # Under load a component may have exited meanwhile: every one running, and the
        # pid read below is the live API server's.
        plane.start()
        stop_at = seconds_ahead(4)
        _due_during_fault(a, stop_at + STALL / 2)
        wait_for(lambda: utcnow() >= stop_at, timeout=20, what="the moment to stop")
        pid = plane.pid("kube-apiserver")
        assert pid is not None, f"kube-apiserver of {plane.name} is not running"
        os.kill(pid, signal.SIGSTOP)
        try:
            _last(STALL)
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        plane.start()  # what exited meanwhile (controller-manager, scheduler), as a kubelet would
        a.prove(lambda: _ran_once_after(a, resumed))


@pytest.mark.xdist_group("hostile-chaos")
def test_etcd_restarted(
    chaos_plane: SeparateControlPlane, tmp_path: Path, record_property: RecordProperty
) -> None:
    """etcd is SIGKILLed and started again as kwokctl starts it. The operator goes on:
    runs due in the outage start once, the victim runs on time and answers run-now."""
    plane = chaos_plane
    with arena(plane.cluster, "etcd", tmp_path, record_property, cluster_name=plane.name) as a:
        kill_at = seconds_ahead(4)
        _due_during_fault(a, kill_at + timedelta(seconds=3))
        wait_for(lambda: utcnow() >= kill_at, timeout=20, what="the moment to kill")
        plane.kill("etcd")
        _last(timedelta(seconds=5))
        plane.start()
        recovered = time.monotonic()
        a.prove(lambda: _ran_once_after(a, recovered))


@pytest.mark.xdist_group("hostile-chaos")
def test_a_relist_after_410_finds_what_changed_in_the_gap(
    chaos_plane: SeparateControlPlane, tmp_path: Path, record_property: RecordProperty
) -> None:
    """The operator is frozen (SIGSTOP) while a run's Job is deleted and a schedule is
    created, and the API server restarts: its watch cache starts afresh, so the versions
    the operator resumes from are gone (410). Its relist finds the deleted Job (the run
    ends Terminated, reason JobDeleted: no phantom active run) and the new schedule
    (its run starts)."""
    plane = chaos_plane
    with arena(plane.cluster, "relist", tmp_path, record_property, cluster_name=plane.name) as a:
        cluster = a.cluster
        cluster.apply(
            schedule("held", runAt=rfc3339(seconds_ahead(2)), jobTemplate=suspended_template()),
            namespace=a.hostile,
        )
        wait_for(
            lambda: status_of(cluster, a.hostile, "held").get("activeCount") == 1,
            timeout=30,
            what="the held run active",
        )
        [job] = jobs_of(cluster, a.hostile, "held")
        proc = a.operator.proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            cluster.kubectl("delete", "job", job["metadata"]["name"], "-n", a.hostile)
            born_due = seconds_ahead(25)
            cluster.apply(
                schedule("born", runAt=rfc3339(born_due), jobTemplate=suspended_template()),
                namespace=a.hostile,
            )
            plane.kill("kube-apiserver")
            # Only the API server matters here (the Jobs are suspended); under load
            # kube-controller-manager may take minutes to hold its lease again.
            plane.start(need=("etcd", "kube-apiserver"))
        finally:
            os.kill(proc.pid, signal.SIGCONT)

        def report() -> str:
            wait_for(
                lambda: "expired; listing again" in a.operator.log(),
                timeout=60,
                what="a relist after 410",
            )
            wait_for(
                lambda: status_of(cluster, a.hostile, "held").get("activeCount") == 0,
                timeout=30,
                what="the deleted Job's run no longer active",
            )
            ended = status_of(cluster, a.hostile, "held").get("history") or []
            reasons = [e.get("reason") for e in ended if e.get("job") == job["metadata"]["name"]]
            assert reasons == ["JobDeleted"], ended
            wait_for(
                lambda: jobs_of(cluster, a.hostile, "born"),
                timeout=(born_due - utcnow()).total_seconds() + 30,
                what="the run of the schedule created in the gap",
            )
            return "410 relisted; deleted Job ended JobDeleted; new schedule ran"

        a.prove(report)
