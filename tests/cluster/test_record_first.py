"""Record before destroy: a run's Job outlives every refused status write of its fate.

A ValidatingAdmissionPolicy, bound to this test's namespace only, refuses the
JobSchedules' status writes there. A one-time run with history limits of 0
runs meanwhile. Before, the operator deleted the finished Job (history limit)
although the write that recorded it had failed, then created it again: 25
Jobs for one run in a minute. Now the Job stays until the policy is gone and
its fate is written, and only then is it deleted; no name is created twice
(the API server's audit log says so); and a schedule in another namespace
runs and is recorded all along.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cluster._delivery import temp_namespace
from tests.cluster._faults import audit_mark, audit_requests
from tests.support import checks
from tests.support.kube import Cluster, condition_true, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    Schedules,
    has_event,
    jobs_of,
    rfc3339,
    schedule,
    seconds_ahead,
    utcnow,
)

REFUSAL = "status writes refused by the record-first test"


def refuse_status_writes(namespace: str) -> list[dict[str, Any]]:
    """A policy and its binding that deny every JobSchedule status write in ``namespace``."""
    name = f"refuse-status-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["jobwarden.io"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],  # a PATCH is admitted as an UPDATE
                        "resources": ["jobschedules/status"],
                    }
                ]
            },
            "validations": [{"expression": "false", "message": REFUSAL}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return [policy, binding]


@pytest.fixture
def refused(cluster: Cluster, namespace: str) -> Iterator[list[dict[str, Any]]]:
    """The refusing policy, in force (a probe write is refused) until the test lifts it."""
    docs = refuse_status_writes(namespace)
    for doc in docs:
        cluster.apply(doc)
    probe = schedule("probe", runAt=rfc3339(utcnow() + timedelta(days=365)), suspend=True)
    cluster.apply(probe, namespace=namespace)

    def write_refused() -> bool:
        proc = cluster.kubectl(
            *("patch", "jobschedule", "probe", "-n", namespace, "--subresource=status"),
            *("--type=merge", "-p", '{"status":{"phase":"Active"}}'),
            check=False,
        )
        return proc.returncode != 0 and REFUSAL in proc.stderr

    wait_for(write_refused, timeout=30, what="the policy to refuse status writes")
    cluster.kubectl("delete", "jobschedule", "probe", "-n", namespace)
    try:
        yield docs
    finally:
        lift(cluster, docs)


def lift(cluster: Cluster, docs: list[dict[str, Any]]) -> None:
    for doc in reversed(docs):
        cluster.kubectl(
            "delete", doc["kind"].lower(), doc["metadata"]["name"], "--ignore-not-found"
        )


def test_a_finished_run_is_deleted_only_after_its_fate_is_recorded(
    cluster: Cluster, namespace: str, refused: list[dict[str, Any]], tmp_path: Path
) -> None:
    mark = audit_mark(cluster)
    with temp_namespace(cluster, "t-neighbour") as other:
        mine, theirs = Schedules(cluster, namespace), Schedules(cluster, other)
        due = seconds_ahead(8)
        limits = {"successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0}
        mine.apply(schedule("once", runAt=rfc3339(due), **limits))
        operator = OperatorProcess(
            cluster=cluster, namespaces=[namespace, other], log_path=tmp_path / "op.log"
        )
        operator.start()
        try:
            # The run starts although its schedule's status cannot be written.
            [job] = wait_for(lambda: mine.jobs("once"), timeout=60, what="the run's Job")
            name, uid = job["metadata"]["name"], job["metadata"]["uid"]
            wait_for(
                lambda: condition_true(jobs_by_name(cluster, namespace).get(name), "Complete"),
                timeout=60,
                what=f"Job {name} to complete",
            )
            # Meanwhile a schedule in another namespace runs, and its status is written.
            theirs.apply(schedule("neighbour", runAt=rfc3339(seconds_ahead(3))))
            theirs.wait("neighbour", checks.completed(succeeded=1), timeout=60, what="its run")
            wait_for(
                lambda: has_event(cluster, namespace, "once", reason="InternalError"),
                timeout=30,
                what="the refused write reported as a Warning Event",
            )
            # Finished and over its history limit, but its fate is not recorded: it stays.
            assert mine.status("once").get("history") in (None, [])
            [still] = mine.jobs("once")
            assert still["metadata"]["uid"] == uid, "never deleted and created again"

            lift(cluster, refused)
            status = mine.wait(
                "once",
                checks.all_of(checks.run_result(name, "Succeeded"), checks.phase("Completed")),
                timeout=120,  # the retry may wait out a backoff grown while refused
                what="the run's fate recorded",
            )
            assert status["executions"]["scheduled"] == 1
            wait_for(
                lambda: not jobs_of(cluster, namespace, "once"),
                timeout=60,
                what="the recorded Job deleted (history limit 0)",
            )
        finally:
            operator.stop()
    if mark is None:
        return  # not the local control plane: no audit log to read
    requests = audit_requests(mark, namespace=namespace)
    creates = [r for r in requests if r.verb == "create" and r.resource == "jobs"]
    assert [(r.name, r.code) for r in creates] == [(name, 201)], "exactly one create, ever"
    writes = [r for r in requests if r.resource == "jobschedules/status" and r.verb == "patch"]
    deletes = [r for r in requests if r.verb == "delete" and r.resource == "jobs"]
    # A second delete may follow (planned again before the Job's own DELETE event came).
    assert {r.name for r in deletes} == {name}
    last_refusal = max(r.at for r in writes if r.code >= 400)
    recorded = min(r.at for r in writes if r.code < 300 and r.at >= last_refusal)
    assert min(r.at for r in deletes) >= recorded, "the Job was deleted before its fate was written"


def jobs_by_name(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    return {j["metadata"]["name"]: j for j in cluster.jobs(namespace)}
