"""Startup beside many objects, deletions the operator did not see, and liveness that
notices a dead watch.

* A restart beside 2,000 schedules and 2,000 Jobs labelled for them (none
  due) still starts a fresh schedule's run, due during the startup, within
  that run's own starting deadline.
* A Job deleted while the operator is down leaves no active run behind: the
  first listing does not contain it, and the scheduler acts only after that
  listing is complete.
* With its API server unreachable (stopped with SIGSTOP) long enough, the
  operator's /healthz answers 500, so that the kubelet would restart it;
  once the API server answers again, so does /healthz with 200.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.cluster._faults import SeparateControlPlane
from tests.support.checks import active_count, counted, entry
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    SCHEDULE_LABEL,
    Schedules,
    job_template,
    jobs_of,
    rfc3339,
    schedule,
    seconds_ahead,
    suspended_template,
)

MANY = 2000
# The staleness bound of a watch stream (jobwarden.watching.STALE_AFTER_SECONDS) and more.
LIVENESS_TIMEOUT = 420


def _create_many(cluster: Cluster, namespace: str, count: int) -> None:
    """``count`` schedules not due for months, and a suspended Job labelled for each."""
    custom = client.CustomObjectsApi(cluster.api)
    batch = client.BatchV1Api(cluster.api)
    quiet = suspended_template()

    def one(i: int) -> None:
        name = f"idle-{i:05d}"
        body = schedule(name, runAt="2099-01-01T00:00:00Z", jobTemplate=quiet)
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{name}-old", "labels": {SCHEDULE_LABEL: name}},
            "spec": quiet["spec"],
        }
        for create in (
            lambda: custom.create_namespaced_custom_object(
                "jobwarden.io", "v1alpha1", namespace, "jobschedules", body, _preload_content=False
            ),
            lambda: batch.create_namespaced_job(namespace, job, _preload_content=False),
        ):
            try:
                create().data  # noqa: B018 - reads the body, returning the connection
            except ApiException as exc:
                if exc.status != 409:
                    raise

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(one, range(count)))


def _reconciled(cluster: Cluster, namespace: str) -> int:
    """Schedules in ``namespace`` whose status has a phase (the operator wrote it);
    -1 when a loaded API server times the listing out (the wait asks again)."""
    api = client.CustomObjectsApi(cluster.api)
    count, token = 0, None
    while True:
        try:
            resp: Any = api.list_namespaced_custom_object(
                "jobwarden.io",
                "v1alpha1",
                namespace,
                "jobschedules",
                limit=500,
                _continue=token,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status is not None and exc.status >= 500:
                return -1
            raise
        page = json.loads(resp.data)
        count += sum(1 for s in page["items"] if (s.get("status") or {}).get("phase"))
        token = page["metadata"].get("continue")
        if not token:
            return count


def test_a_restart_beside_2000_schedules_and_jobs_runs_a_fresh_schedule_on_time(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    _create_many(cluster, namespace, MANY)
    here = Schedules(cluster, namespace)
    # A restart, not a first start: an operator has reconciled every schedule before.
    first = OperatorProcess(cluster=cluster, namespaces=[namespace], log_path=tmp_path / "0.log")
    first.start()
    try:
        wait_for(
            lambda: _reconciled(cluster, namespace) == MANY,
            timeout=900,
            interval=5.0,
            what=f"the first operator to reconcile all {MANY} schedules",
        )
    finally:
        first.stop()
    op = OperatorProcess(cluster=cluster, namespaces=[namespace], log_path=tmp_path / "op.log")
    op.start()
    try:
        # Applied as soon as /healthz answers, while the informers still list: due
        # during the startup. Its run's own deadline: a run started later is Missed.
        due = seconds_ahead(20)
        here.apply(
            schedule(
                "fresh",
                runAt=rfc3339(due),
                startingDeadlineSeconds=60,
                jobTemplate=job_template(run_seconds=1),
            )
        )
        # Started is what the operator owes: whether its pod then runs is the Job
        # controller's and the nodes' business (busy here with 2,000 other Jobs).
        status = here.wait(
            "fresh",
            counted("scheduled", 1),
            timeout=180,
            what="the fresh schedule's run started",
        )
    finally:
        op.stop()
    jobs = jobs_of(cluster, namespace, "fresh")
    assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
    run = entry(status, jobs[0]["metadata"]["name"])
    assert run is not None and run["result"] in ("Running", "Succeeded"), status.get("history")
    assert run["scheduledTime"] == rfc3339(due)
    assert status["executions"].get("missed", 0) == 0


def test_a_job_deleted_while_the_operator_is_down_leaves_no_active_run(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    here = Schedules(cluster, namespace)
    op = OperatorProcess(cluster=cluster, namespaces=[namespace], log_path=tmp_path / "op.log")
    op.start()
    try:
        here.apply(
            schedule(
                "long",
                runAt=rfc3339(seconds_ahead(10)),
                jobTemplate=job_template(run_seconds=None),
            )
        )
        here.wait("long", active_count(1), timeout=60, what="the run is active")
    finally:
        op.stop()
    (job,) = jobs_of(cluster, namespace, "long")
    job_name = job["metadata"]["name"]
    cluster.kubectl("delete", "job", job_name, "-n", namespace, "--wait=true")
    op = OperatorProcess(cluster=cluster, namespaces=[namespace], log_path=tmp_path / "op2.log")
    op.start()
    try:
        status = here.wait(
            "long", active_count(0), timeout=60, what="the deleted Job's run is no longer active"
        )
    finally:
        op.stop()
    run = entry(status, job_name)
    assert run is not None and run["result"] != "Running", status.get("history")
    assert status.get("active") in (None, [])


# --- liveness ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def liveness_plane() -> Iterator[SeparateControlPlane]:
    if os.environ.get("JOBWARDEN_TEST_KUBECONFIG") == "1":
        pytest.skip("needs a local control plane of its own to stop its API server")
    plane = SeparateControlPlane.beside("liveness")
    plane.up()
    try:
        plane.install_crds()
        yield plane
    finally:
        plane.down()


def _health(op: OperatorProcess) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{op.health_port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


@pytest.mark.xdist_group("liveness-apiserver")
def test_healthz_fails_while_the_api_server_is_unreachable_and_recovers(
    liveness_plane: SeparateControlPlane, tmp_path: Path
) -> None:
    plane = liveness_plane
    c = plane.cluster
    c.kubectl("create", "namespace", "liveness", check=False)
    op = OperatorProcess(cluster=c, namespaces=["liveness"], log_path=tmp_path / "op.log")
    op.start()
    pid = plane.pid("kube-apiserver")
    assert pid is not None
    try:
        # Ready once the scheduler runs after the first listings: waited for, not assumed.
        wait_for(
            lambda: _health(op)[1]["heartbeats"]["ready"] is True,
            timeout=90,
            what="operator ready",
        )
        code, body = _health(op)
        assert code == 200 and body["heartbeats"]["ready"] is True, body
        assert any(name.startswith("watch ") for name in body["heartbeats"]["ages"])
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(
                lambda: _health(op)[0] == 500,
                timeout=LIVENESS_TIMEOUT,
                interval=2.0,
                what="/healthz to fail while the API server is stopped",
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        assert "no beat for" in op.log(), "the probe's failure names the late stream"
        wait_for(
            lambda: _health(op)[0] == 200,
            timeout=LIVENESS_TIMEOUT,
            interval=2.0,
            what="/healthz to pass again once the API server answers",
        )
        assert op.proc is not None and op.proc.poll() is None, "liveness restarts, not the process"
    finally:
        op.stop()
