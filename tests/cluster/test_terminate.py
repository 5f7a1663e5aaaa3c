"""The ``jobwarden.io/terminate`` action: graceful by default, forced with grace 0.

The fake nodes stop a pod on a graceful delete unless its template says
``jobwarden.test/hold-terminating``: then the pod stays Terminating, as on a
node that stopped answering, and only a force delete removes it. Pods keep the
default 30 s grace period, so "graceful" really is graceful here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobwarden.kube import Kube
from tests.cluster._safety import (
    JOB_NAME_LABEL,
    TERMINATE,
    TERMINATE_GRACE,
    TRACKING_FINALIZER,
    events,
    job,
    job_template,
    pod_template,
    pods_of_job,
    schedule,
    wait_job_started,
)
from tests.support.checks import all_of, entry, generation_seen, run_result
from tests.support.kube import Cluster, holds, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import RUN_NOW, SCHEDULE_LABEL, Schedules, executions, history


def _run_now(here: Schedules, name: str, token: str) -> str:
    """Start a manual run and return its Job's name once it runs."""
    reconciled = here.wait(name, lambda s: "phase" in s, timeout=20, what="first reconcile")
    before = {e.get("job") for e in history(reconciled)}
    here.annotate(name, RUN_NOW, token)
    status = here.wait(
        name,
        lambda s: any(e.get("job") not in before for e in history(s)),
        timeout=20,
        what=f"the run for token {token}",
    )
    job_name: str = next(e["job"] for e in history(status) if e.get("job") not in before)
    wait_job_started(here.cluster, here.namespace, job_name)
    return job_name


def test_terminate_stops_active_runs_gracefully(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """Every active run ends Terminated (TerminateRequested), counted, with an Event,
    and its Job and pods go; runs that already finished are left as they were."""
    here = Schedules(cluster, namespace)
    here.apply(schedule("busy"))
    first = _run_now(here, "busy", "one")
    second = _run_now(here, "busy", "two")
    here.annotate("busy", TERMINATE, "stop-1")

    status = here.wait(
        "busy",
        all_of(run_result(first, "Terminated"), run_result(second, "Terminated")),
        timeout=15,
        what="both runs recorded Terminated",
    )
    for name in (first, second):
        record = entry(status, name)
        assert record is not None and record["reason"] == "TerminateRequested"
        assert "stop-1" in record["message"]
    assert executions(status)["terminated"] == 2
    assert status.get("active") in (None, [])
    notes = wait_for(
        lambda: events(cluster, namespace, "busy", reason="Terminated"),
        timeout=10,
        what="a Terminated Event",
    )
    assert [(e["type"], "2 active run(s)" in e["message"]) for e in notes] == [("Normal", True)]
    wait_for(
        lambda: all(job(cluster, namespace, n) is None for n in (first, second)),
        timeout=15,
        what="both Jobs deleted",
    )
    wait_for(
        lambda: not any(pods_of_job(cluster, namespace, n) for n in (first, second)),
        timeout=20,
        what="their pods gone",
    )

    # A later reconcile (a spec change) does not fire the same token again.
    here.apply(schedule("busy", historyLimit=19))
    status = here.wait("busy", generation_seen(2), timeout=10, what="the spec change seen")
    assert executions(status)["terminated"] == 2
    assert len(events(cluster, namespace, "busy", reason="Terminated")) == 1


def test_force_terminate_clears_pods_a_graceful_delete_leaves_terminating(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """With terminate-grace-seconds "0", the schedule's pods are force-deleted: the
    running one, and one an earlier graceful terminate left stuck Terminating."""
    here = Schedules(cluster, namespace)
    here.apply(schedule("stuck", template=job_template(hold_terminating=True)))
    first = _run_now(here, "stuck", "one")
    here.annotate("stuck", TERMINATE, "graceful")
    here.wait("stuck", run_result(first, "Terminated"), timeout=15, what="the first run terminated")

    # Graceful: the Job is gone, its pod is marked for deletion and stays so.
    wait_for(
        lambda: job(cluster, namespace, first) is None, timeout=15, what="the first Job deleted"
    )
    left = wait_for(
        lambda: [
            p
            for p in pods_of_job(cluster, namespace, first)
            if p["metadata"].get("deletionTimestamp")
        ],
        timeout=15,
        what="the first pod Terminating",
    )
    assert left[0]["metadata"]["deletionGracePeriodSeconds"] == 30
    holds(
        lambda: len(pods_of_job(cluster, namespace, first)) == 1,
        seconds=3,
        what="the gracefully deleted pod staying Terminating",
    )

    second = _run_now(here, "stuck", "two")
    cluster.kubectl(
        "annotate",
        "-n",
        namespace,
        "--overwrite",
        "jobschedule/stuck",
        f"{TERMINATE_GRACE}=0",
        f"{TERMINATE}=force",
    )
    status = here.wait(
        "stuck", run_result(second, "Terminated"), timeout=15, what="the second run terminated"
    )
    assert executions(status)["terminated"] == 2
    wait_for(
        lambda: not pods_of_job(cluster, namespace, second),
        timeout=10,
        what="the running pod force-deleted",
    )
    wait_for(
        lambda: not pods_of_job(cluster, namespace, first),
        timeout=10,
        what="the pod left Terminating force-deleted",
    )
    forced = wait_for(
        lambda: [
            e
            for e in events(cluster, namespace, "stuck", reason="Terminated")
            if "force-deleted" in e["message"]
        ],
        timeout=10,
        what="a Terminated Event naming the force delete",
    )
    assert len(forced) == 1


def test_force_delete_removes_the_job_tracking_finalizer(cluster: Cluster, namespace: str) -> None:
    """A zero-grace delete does not remove a pod that still carries the Job
    controller's tracking finalizer; the operator's force delete removes the
    finalizer too, so the pod goes even when the Job controller never gets to it.

    The pods here are controlled by a ConfigMap, so the Job controller leaves
    their finalizer alone for good, standing in for a controller that is down
    or behind; the operator's own path (delete the Job, then force its pods)
    is the one above.
    """
    # Our own owner object: kube-root-ca.crt appears asynchronously in a new namespace.
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "pod-holder", "namespace": namespace},
        }
    )
    holder = cluster.get_json("configmap", "-n", namespace, "pod-holder")
    owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": holder["metadata"]["name"],
        "uid": holder["metadata"]["uid"],
        "controller": True,
    }

    def pod(name: str, job_name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "finalizers": [TRACKING_FINALIZER],
                "ownerReferences": [owner],
                "labels": {SCHEDULE_LABEL: "held", JOB_NAME_LABEL: job_name},
            },
            "spec": pod_template(hold_terminating=True)["spec"],
        }

    cluster.apply(pod("control", "other"), namespace=namespace)
    cluster.apply(pod("target", "held-job"), namespace=namespace)
    kube = Kube(cluster.api)
    try:
        cluster.kubectl(
            "delete",
            "pod",
            "-n",
            namespace,
            "control",
            "--grace-period=0",
            "--force",
            "--wait=false",
        )
        wait_for(
            lambda: cluster.get_json("pod", "-n", namespace, "control")["metadata"].get(
                "deletionTimestamp"
            ),
            timeout=10,
            what="the control pod marked deleted",
        )
        holds(
            lambda: bool(cluster.pods(namespace, f"{JOB_NAME_LABEL}=other")),
            seconds=2,
            what="the finalizer keeping a force-deleted pod",
        )

        removed = asyncio.run(kube.force_delete_pods(namespace=namespace, job_name="held-job"))
        assert removed == 1
        wait_for(
            lambda: not cluster.pods(namespace, f"{JOB_NAME_LABEL}=held-job"),
            timeout=10,
            what="the target pod gone",
        )
    finally:
        kube.close()
        for leftover in cluster.pods(namespace):
            cluster.kubectl(
                "patch",
                "pod",
                "-n",
                namespace,
                leftover["metadata"]["name"],
                "--type=json",
                "-p",
                '[{"op": "remove", "path": "/metadata/finalizers"}]',
                check=False,
            )
