"""The due-soon list on the real control plane.

The acting operator keeps the keys of the schedules due soon in a ConfigMap;
a restarted one reads those schedules before its listing of every schedule
(beside tens of thousands, that listing takes minutes). Proven here with a
restarted operator that cannot list JobSchedules at all: its ServiceAccount
may get them, not list or watch them. What the list names runs at its time;
a schedule it does not name, due at the same second, waits for a listing.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster._delivery import service_account_cluster
from tests.support.checks import counted, entry
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    Schedules,
    job_template,
    jobs_of,
    rfc3339,
    schedule,
    seconds_ahead,
)

LIST = "due-soon"
READER = "may-not-list"


def _listed(cluster: Cluster, namespace: str) -> list[str] | None:
    found = cluster.kubectl(
        "get", "configmap", LIST, "-n", namespace, "-o", "json", check=False
    ).stdout
    if not found:
        return None
    data = json.loads(found).get("data") or {}
    return str(data.get("schedules", "")).split()


def _may_not_list_schedules(cluster: Cluster, namespace: str) -> None:
    """A ServiceAccount with everything a run needs, except listing or watching JobSchedules."""
    rules = [
        {"apiGroups": ["jobwarden.io"], "resources": ["jobschedules"], "verbs": ["get"]},
        {"apiGroups": ["jobwarden.io"], "resources": ["jobschedules/status"], "verbs": ["patch"]},
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["list", "watch", "create", "delete"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [LIST],
            "verbs": ["get", "patch"],
        },
    ]
    meta = {"name": READER, "namespace": namespace}
    for body in (
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": READER},
            "subjects": [{"kind": "ServiceAccount", "name": READER, "namespace": namespace}],
        },
    ):
        cluster.apply(body, namespace=namespace)


def test_a_restart_runs_what_the_due_soon_list_names_before_any_listing(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    here = Schedules(cluster, namespace)
    env = {"JOBWARDEN_DUE_SOON_CONFIGMAP": LIST, "JOBWARDEN_LEASE_NAMESPACE": namespace}
    # Room for a loaded machine: the list written, a restart, and the restarted
    # operator's wait for the JobCalendars it may not list (30 s) before the run.
    due = seconds_ahead(100)
    quick = job_template(run_seconds=1)
    here.apply(schedule("soon", runAt=rfc3339(due), jobTemplate=quick))
    here.apply(schedule("idle", runAt="2099-01-01T00:00:00Z", jobTemplate=quick))
    first = OperatorProcess(
        cluster=cluster, namespaces=[namespace], log_path=tmp_path / "first.log", extra_env=env
    )
    first.start()
    try:
        # Only what is due within the horizon: "idle" runs in 2099.
        wait_for(
            lambda: _listed(cluster, namespace) == [f"{namespace}/soon"],
            timeout=60,
            what="the due-soon list naming the schedule due soon",
        )
    finally:
        first.stop()

    _may_not_list_schedules(cluster, namespace)
    # Created after the list was written, due at the same second: only a listing
    # could tell the restarted operator of it.
    here.apply(schedule("unnamed", runAt=rfc3339(due), jobTemplate=quick))
    sa = service_account_cluster(
        cluster, namespace=namespace, name=READER, path=tmp_path / "sa.kubeconfig"
    )
    second = OperatorProcess(
        cluster=sa, namespaces=[namespace], log_path=tmp_path / "second.log", extra_env=env
    )
    second.start()
    try:
        status = here.wait(
            "soon",
            counted("scheduled", 1),
            timeout=(due - seconds_ahead(0)).total_seconds() + 60,
            what="the run of the schedule the list names",
        )
        unnamed = jobs_of(cluster, namespace, "unnamed")
        log = second.log()
    finally:
        second.stop()
    jobs = jobs_of(cluster, namespace, "soon")
    assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
    run = entry(status, jobs[0]["metadata"]["name"])
    assert run is not None and run["scheduledTime"] == rfc3339(due), status.get("history")
    assert status["executions"].get("missed", 0) == 0
    assert "read ahead of the listing" in log, log
    assert "jobschedules" in log and "403" in log, "the listing was expected to be refused"
    assert unnamed == [], "a schedule no listing could show was run: the proof is void"
    # Never listed, so it knew too little to write: the list is as the first left it.
    assert _listed(cluster, namespace) == [f"{namespace}/soon"]
