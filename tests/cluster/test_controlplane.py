"""Smoke tests of the control plane itself, driven through the API as a user would.

Every other cluster test trusts that this control plane behaves like a real
one: that CRDs with CEL rules and a status subresource are enforced, that the
Job, CronJob and garbage-collector controllers run, that RBAC denies, that
kwok moves pods as ``stages.yaml`` says, and that the audit log records
requests. These tests check each of those claims directly, so a broken
control plane fails here, by name, instead of as a puzzling operator failure.

They also pin down what happens to a pod held in Terminating (a lost kubelet),
which the stale/terminate feature depends on: see the three ``hold`` tests.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.support.kube import Cluster, condition_true, wait_for

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.invalid/smoke:1"  # never pulled: kwok runs no containers
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"

# kwok acts on a pod within about a second of a change (stages.yaml: the
# default delay is 1000 ms). A window several times that long is enough to see
# a transition that should not happen.
QUIET_WINDOW_SECONDS = 4


# --- helpers -------------------------------------------------------------------------------


def _core(cluster: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api)


def _batch(cluster: Cluster) -> client.BatchV1Api:
    return client.BatchV1Api(cluster.api)


def _raw(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


def _or_none(read: Callable[[], Any]) -> dict[str, Any] | None:
    """The object ``read`` fetches, or None once it is gone (404)."""
    try:
        return _raw(read())
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return _or_none(
        lambda: _core(cluster).read_namespaced_pod(name, namespace, _preload_content=False)
    )


def _job(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return _or_none(
        lambda: _batch(cluster).read_namespaced_job(name, namespace, _preload_content=False)
    )


def _job_manifest(
    name: str,
    *,
    pod_annotations: dict[str, str],
    spec: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A one-pod Job whose fake pod is steered by ``pod_annotations`` (see stages.yaml)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, **(metadata or {})},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": pod_annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE}],
                },
            },
            **(spec or {}),
        },
    }


def _job_pod(cluster: Cluster, namespace: str, job: str) -> dict[str, Any] | None:
    """The Job's only pod, once it exists."""
    pods = cluster.pods(namespace, f"batch.kubernetes.io/job-name={job}")
    return pods[0] if len(pods) == 1 else None


def _running_job_pod(cluster: Cluster, namespace: str, job: str) -> dict[str, Any]:
    def running() -> dict[str, Any] | None:
        pod = _job_pod(cluster, namespace, job)
        return pod if pod and pod["status"].get("phase") == "Running" else None

    return wait_for(running, timeout=30, what=f"the pod of Job {job} to be Running")


def _pod_events(
    cluster: Cluster, namespace: str, name: str, *, since: str, seconds: int
) -> Iterator[dict[str, Any]]:
    """Every change to one pod after resourceVersion ``since``, for ``seconds``.

    The API server ends the watch after ``seconds`` (timeoutSeconds), so this
    is a bounded observation that reports a change the moment it happens.
    """
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        _core(cluster).list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={name}",
        resource_version=since,
        timeout_seconds=seconds,
        _request_timeout=seconds + 10,
    )
    for event in stream:
        yield {"type": event["type"], "pod": event["raw_object"]}


def _quiet_window(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Every change to ``pod`` over QUIET_WINDOW_SECONDS after the version given.

    For what must not happen to a pod: no event ends such a wait, so the pod
    is watched over a bounded window several times longer than kwok takes to act.
    """
    return list(
        _pod_events(
            cluster,
            namespace,
            pod["metadata"]["name"],
            since=pod["metadata"]["resourceVersion"],
            seconds=QUIET_WINDOW_SECONDS,
        )
    )


def _kubectl_fails(
    cluster: Cluster, *args: str, input: str | None = None, as_user: str | None = None
) -> str:
    """Run kubectl expecting it to fail; its stderr."""
    proc = cluster.kubectl(*args, input=input, check=False, as_user=as_user)
    assert proc.returncode != 0, f"kubectl {' '.join(args)} unexpectedly succeeded: {proc.stdout}"
    return proc.stderr


# --- CRDs: schema, CEL and the status subresource ------------------------------------------


@pytest.fixture
def widget_crd(cluster: Cluster) -> Iterator[str]:
    """A throwaway CRD in a group of its own, removed afterwards; yields its group."""
    group = f"smoke-{uuid.uuid4().hex[:10]}.jobwarden.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["min", "max"],
                                    "properties": {
                                        "min": {"type": "integer"},
                                        "max": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.min <= self.max",
                                            "message": "min must not be greater than max",
                                        }
                                    ],
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"seen": {"type": "integer"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    cluster.apply(crd)
    try:
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", f"crd/widgets.{group}"
        )
        yield group
    finally:
        cluster.kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)


def test_crd_with_cel_rule_and_status_subresource_is_served_and_enforced(
    cluster: Cluster, namespace: str, widget_crd: str
) -> None:
    group = widget_crd
    resource = f"widgets.{group}"

    def widget(name: str, lo: int, hi: int) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"min": lo, "max": hi},
            }
        )

    # Established can come a moment before the new resource is served and
    # before kubectl's discovery sees it: retry the first apply until it lands.
    wait_for(
        lambda: (
            cluster.apply(widget("good", 1, 5), namespace=namespace, check=False).returncode == 0
        ),
        timeout=30,
        what=f"{resource} to be served",
    )

    err = _kubectl_fails(cluster, "apply", "-n", namespace, "-f", "-", input=widget("bad", 9, 2))
    assert "min must not be greater than max" in err
    assert "spec" in err  # the rule's message names where it failed
    assert "NotFound" in _kubectl_fails(cluster, "get", resource, "bad", "-n", namespace)

    before = cluster.get_json(resource, "good", "-n", namespace)

    def patch_args(body: dict[str, Any], *subresource: str) -> list[str]:
        """``kubectl patch`` of the good widget with a merge patch."""
        merge = ["--type=merge", "-p", json.dumps(body)]
        return ["patch", resource, "good", "-n", namespace, *subresource, *merge]

    # A write to /status takes the status and ignores the spec it carries.
    cluster.kubectl(
        *patch_args({"status": {"seen": 7}, "spec": {"min": 0, "max": 0}}, "--subresource=status")
    )
    after = cluster.get_json(resource, "good", "-n", namespace)
    assert after["status"] == {"seen": 7}
    assert after["spec"] == before["spec"] == {"min": 1, "max": 5}
    assert after["metadata"]["generation"] == before["metadata"]["generation"]

    # ...and a write to the main resource ignores status.
    cluster.kubectl(*patch_args({"spec": {"max": 6}, "status": {"seen": 99}}))
    last = cluster.get_json(resource, "good", "-n", namespace)
    assert last["spec"] == {"min": 1, "max": 6}
    assert last["status"] == {"seen": 7}
    assert last["metadata"]["generation"] == before["metadata"]["generation"] + 1

    # The CEL rule also guards updates, not only creation.
    err = _kubectl_fails(cluster, *patch_args({"spec": {"min": 10}}))
    assert "min must not be greater than max" in err


# --- the Job controller and kwok's pod stages ----------------------------------------------


def test_job_runs_its_pod_to_complete(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        _job_manifest("ok", pod_annotations={"jobwarden.test/run-seconds": "1s"}),
        namespace=namespace,
    )

    job = wait_for(
        lambda: (
            condition_true(_job(cluster, namespace, "ok"), "Complete")
            and _job(cluster, namespace, "ok")
        ),
        timeout=30,
        what="Job ok to Complete",
    )
    assert job["status"].get("succeeded") == 1
    assert not job["status"].get("failed")
    assert job["status"].get("completionTime")

    pod = _job_pod(cluster, namespace, "ok")
    assert pod is not None
    assert pod["status"]["phase"] == "Succeeded"
    [state] = [s["state"] for s in pod["status"]["containerStatuses"]]
    assert state["terminated"]["exitCode"] == 0


def test_failing_pod_makes_its_job_failed(cluster: Cluster, namespace: str) -> None:
    annotations = {
        "jobwarden.test/run-seconds": "1s",
        "jobwarden.test/fail": "true",
        "jobwarden.test/exit-code": "3",
        "jobwarden.test/reason": "Error",
    }
    cluster.apply(_job_manifest("bad", pod_annotations=annotations), namespace=namespace)

    failed = wait_for(
        lambda: condition_true(_job(cluster, namespace, "bad"), "Failed"),
        timeout=30,
        what="Job bad to be Failed",
    )
    assert failed["reason"] == "BackoffLimitExceeded"
    job = _job(cluster, namespace, "bad")
    assert job is not None
    assert job["status"].get("failed") == 1
    assert not condition_true(job, "Complete")

    pod = _job_pod(cluster, namespace, "bad")
    assert pod is not None
    assert pod["status"]["phase"] == "Failed"
    [state] = [s["state"] for s in pod["status"]["containerStatuses"]]
    assert state["terminated"]["exitCode"] == 3
    assert state["terminated"]["reason"] == "Error"


def test_pod_without_run_seconds_stays_running(cluster: Cluster, namespace: str) -> None:
    cluster.apply(_job_manifest("forever", pod_annotations={}), namespace=namespace)
    pod = _running_job_pod(cluster, namespace, "forever")

    # The Job controller's first status updates: a pod counted active, then ready.
    wait_for(
        lambda: ((_job(cluster, namespace, "forever") or {}).get("status") or {}).get("ready") == 1,
        timeout=30,
        what="Job forever to report its pod ready",
    )

    # "Stays Running" is the absence of a transition, which no wait can end
    # on: it is observed over a bounded window instead. The window is a watch
    # (it reports any change to the pod as it happens) and several times
    # longer than kwok takes to act on a pod, so a stage that wrongly
    # finished the pod would be seen here.
    name = pod["metadata"]["name"]
    changes = _quiet_window(cluster, namespace, pod)
    phases = [(c["type"], c["pod"]["status"].get("phase")) for c in changes]
    assert all(c == ("MODIFIED", "Running") for c in phases), phases

    assert (_pod(cluster, namespace, name) or {})["status"]["phase"] == "Running"
    job = _job(cluster, namespace, "forever")
    assert job is not None
    assert job["status"].get("active") == 1
    assert not job["status"].get("conditions")


# --- the CronJob and garbage-collector controllers -----------------------------------------


def test_cronjob_produces_a_job(cluster: Cluster, namespace: str) -> None:
    # The CronJob controller only fires on a minute boundary: this test costs
    # up to 60 s by design (it is the one place a `* * * * *` cron is needed).
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": _job_manifest(
                    "template", pod_annotations={"jobwarden.test/run-seconds": "1s"}
                )["spec"]
            },
        },
    }
    cluster.apply(cronjob, namespace=namespace)
    uid = cluster.get_json("cronjob", "tick", "-n", namespace)["metadata"]["uid"]

    def owned_job() -> dict[str, Any] | None:
        for job in cluster.jobs(namespace):
            owners = job["metadata"].get("ownerReferences") or []
            if any(o.get("kind") == "CronJob" and o.get("uid") == uid for o in owners):
                return job
        return None

    job = wait_for(owned_job, timeout=90, interval=1, what="the CronJob to create a Job")
    assert job["metadata"]["name"].startswith("tick-")
    wait_for(
        lambda: condition_true(_job(cluster, namespace, job["metadata"]["name"]), "Complete"),
        timeout=30,
        what="the CronJob's Job to Complete",
    )
    status = cluster.get_json("cronjob", "tick", "-n", namespace).get("status") or {}
    assert status.get("lastScheduleTime")


def test_deleting_the_owner_garbage_collects_its_jobs(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner_uid = cluster.get_json("configmap", "owner", "-n", namespace)["metadata"]["uid"]
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
    for name in ("owned-a", "owned-b"):
        cluster.apply(
            _job_manifest(name, pod_annotations={}, metadata={"ownerReferences": [ref]}),
            namespace=namespace,
        )
    cluster.apply(_job_manifest("bystander", pod_annotations={}), namespace=namespace)
    pods = [
        _running_job_pod(cluster, namespace, n)["metadata"]["name"] for n in ("owned-a", "owned-b")
    ]

    cluster.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")

    wait_for(
        lambda: (
            _job(cluster, namespace, "owned-a") is None
            and _job(cluster, namespace, "owned-b") is None
        ),
        timeout=30,
        what="the owned Jobs to be garbage-collected",
    )
    # The chain goes on: the Jobs' pods go too (kwok stops them on deletion).
    wait_for(
        lambda: all(_pod(cluster, namespace, p) is None for p in pods),
        timeout=30,
        what="the owned Jobs' pods to go",
    )
    assert _job(cluster, namespace, "bystander") is not None


# --- RBAC ----------------------------------------------------------------------------------


def test_service_account_without_a_role_is_denied(cluster: Cluster, namespace: str) -> None:
    for sa in ("nobody", "reader"):
        cluster.kubectl("create", "serviceaccount", sa, "-n", namespace)
    # A control: the same request is allowed once a role grants it, so the
    # denial below is RBAC's answer, not a request that could never work.
    cluster.kubectl(
        "create", "role", "job-reader", "-n", namespace, "--verb=get,list", "--resource=jobs.batch"
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "job-reader",
        "-n",
        namespace,
        "--role=job-reader",
        f"--serviceaccount={namespace}:reader",
    )
    nobody = f"system:serviceaccount:{namespace}:nobody"
    reader = f"system:serviceaccount:{namespace}:reader"

    def can_i(user: str) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "auth", "can-i", "list", "jobs.batch", "-n", namespace, check=False, as_user=user
        )

    wait_for(
        lambda: can_i(reader).stdout.strip() == "yes",
        timeout=30,
        what="the role binding to take effect",
    )
    cluster.kubectl("get", "jobs", "-n", namespace, as_user=reader)

    denied = can_i(nobody)
    assert denied.stdout.strip() == "no"
    assert denied.returncode != 0

    err = _kubectl_fails(cluster, "get", "jobs", "-n", namespace, as_user=nobody)
    assert "Forbidden" in err and nobody in err

    impersonating = client.ApiClient(
        cluster.api.configuration, header_name="Impersonate-User", header_value=nobody
    )
    with pytest.raises(ApiException) as exc:
        client.BatchV1Api(impersonating).list_namespaced_job(namespace, _preload_content=False)
    assert exc.value.status == 403
    assert json.loads(exc.value.body or "{}").get("reason") == "Forbidden"


# --- pods held in Terminating (a lost kubelet) ----------------------------------------------


def _hold_annotations() -> dict[str, str]:
    return {"jobwarden.test/hold-terminating": "true"}


def _assert_pod_stays(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    """The pod is not removed over a bounded window (see QUIET_WINDOW_SECONDS); its last state."""
    name = pod["metadata"]["name"]
    changes = _quiet_window(cluster, namespace, pod)
    assert not [c for c in changes if c["type"] == "DELETED"], f"pod {name} was removed"
    last = _pod(cluster, namespace, name)
    assert last is not None, f"pod {name} was removed"
    return last


def test_held_pod_stays_terminating_until_force_deleted(cluster: Cluster, namespace: str) -> None:
    pod_manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "held", "annotations": _hold_annotations()},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": IMAGE}],
        },
    }
    cluster.apply(pod_manifest, namespace=namespace)
    wait_for(
        lambda: (
            ((_pod(cluster, namespace, "held") or {}).get("status") or {}).get("phase") == "Running"
        ),
        timeout=30,
        what="pod held to be Running",
    )

    cluster.kubectl("delete", "pod", "held", "-n", namespace, "--wait=false")
    terminating = wait_for(
        lambda: (
            (p := _pod(cluster, namespace, "held")) and p["metadata"].get("deletionTimestamp") and p
        ),
        timeout=30,
        what="pod held to be Terminating",
    )
    # Its 1 s grace period runs out inside the window: nothing but a kubelet
    # would remove it, and this kubelet is "lost".
    held = _assert_pod_stays(cluster, namespace, terminating)
    assert held["metadata"]["deletionTimestamp"]
    assert held["status"]["phase"] == "Running"

    cluster.kubectl(
        "delete", "pod", "held", "-n", namespace, "--grace-period=0", "--force", "--wait=false"
    )
    wait_for(
        lambda: _pod(cluster, namespace, "held") is None,
        timeout=30,
        what="pod held to be gone after a force delete",
    )


def test_held_job_pod_keeps_its_job_unfinished_until_force_deleted(
    cluster: Cluster, namespace: str
) -> None:
    """What a stale run with a lost kubelet looks like to the operator.

    With the default podReplacementPolicy the Job controller counts a
    terminating pod as failed at once and drops its tracking finalizer, but
    the Job gets only ``FailureTarget``: ``Failed`` waits until the pod is
    really gone. So such a Job stays unfinished until its pods are
    force-deleted, and a force delete alone is then enough.
    """
    cluster.apply(_job_manifest("stuck", pod_annotations=_hold_annotations()), namespace=namespace)
    pod = _running_job_pod(cluster, namespace, "stuck")
    name = pod["metadata"]["name"]
    assert TRACKING_FINALIZER in pod["metadata"]["finalizers"]

    cluster.kubectl("delete", "pod", name, "-n", namespace, "--wait=false")

    # The controller writes FailureTarget, drops the finalizer and counts the
    # pod in separate steps: wait for all three.
    def counted_failed() -> tuple[dict[str, Any], dict[str, Any]] | None:
        job, pod = _job(cluster, namespace, "stuck"), _pod(cluster, namespace, name)
        if not (job and pod and condition_true(job, "FailureTarget")):
            return None
        released = TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or [])
        return (job, pod) if released and job["status"].get("failed") == 1 else None

    job, terminating = wait_for(
        counted_failed, timeout=30, what="Job stuck to count its deleted pod as failed"
    )
    assert job["status"].get("terminating") == 1
    assert not condition_true(job, "Failed")
    assert terminating["metadata"].get("deletionTimestamp")

    _assert_pod_stays(cluster, namespace, terminating)
    later = _job(cluster, namespace, "stuck")
    assert not condition_true(later, "Failed"), "Job finished while its pod was still Terminating"

    cluster.kubectl(
        "delete", "pod", name, "-n", namespace, "--grace-period=0", "--force", "--wait=false"
    )
    wait_for(
        lambda: _pod(cluster, namespace, name) is None,
        timeout=30,
        what="the held pod to be gone after a force delete",
    )
    failed = wait_for(
        lambda: condition_true(_job(cluster, namespace, "stuck"), "Failed"),
        timeout=30,
        what="Job stuck to be Failed once its pod is gone",
    )
    assert failed["reason"] == "BackoffLimitExceeded"


def test_held_pod_of_a_failed_only_job_needs_its_job_deleted(
    cluster: Cluster, namespace: str
) -> None:
    """The case where the tracking finalizer does keep a force-deleted pod.

    With ``podReplacementPolicy: Failed`` (also implied by a
    ``podFailurePolicy``) the Job controller waits for the pod's phase to be
    Failed before it drops the finalizer; a pod that never leaves Running
    outlives even a force delete. Deleting the Job (as the operator's
    terminate does, before force-deleting pods) makes the pod an orphan, the
    Job controller drops the finalizer, and the force-deleted pod goes.
    """
    cluster.apply(
        _job_manifest(
            "strict", pod_annotations=_hold_annotations(), spec={"podReplacementPolicy": "Failed"}
        ),
        namespace=namespace,
    )
    pod = _running_job_pod(cluster, namespace, "strict")
    name = pod["metadata"]["name"]

    cluster.kubectl(
        "delete", "pod", name, "-n", namespace, "--grace-period=0", "--force", "--wait=false"
    )
    forced = wait_for(
        lambda: (
            (p := _pod(cluster, namespace, name))
            and p["metadata"].get("deletionGracePeriodSeconds") == 0
            and p
        ),
        timeout=30,
        what="the force delete to be recorded on the pod",
    )
    kept = _assert_pod_stays(cluster, namespace, forced)
    assert TRACKING_FINALIZER in kept["metadata"]["finalizers"]
    assert kept["status"]["phase"] == "Running"
    job = _job(cluster, namespace, "strict")
    assert job is not None and not condition_true(job, "Failed")

    cluster.kubectl(
        "delete", "job", "strict", "-n", namespace, "--cascade=background", "--wait=false"
    )
    wait_for(
        lambda: _pod(cluster, namespace, name) is None,
        timeout=30,
        what="the force-deleted pod to go once its Job is deleted",
    )


def test_job_deletion_grace_period_does_not_reach_its_pods(
    cluster: Cluster, namespace: str
) -> None:
    """A grace period given when deleting a Job is not passed on to its pods.

    The garbage collector deletes the pods with no grace period of its own,
    so each pod gets its ``terminationGracePeriodSeconds``: to stop pods
    sooner than that, they must be deleted themselves.
    """
    job = _job_manifest("graceful", pod_annotations=_hold_annotations())
    job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 45
    cluster.apply(job, namespace=namespace)
    name = _running_job_pod(cluster, namespace, "graceful")["metadata"]["name"]

    cluster.kubectl(
        "delete",
        "job",
        "graceful",
        "-n",
        namespace,
        "--grace-period=5",
        "--cascade=background",
        "--wait=false",
    )
    pod = wait_for(
        lambda: (
            (p := _pod(cluster, namespace, name)) and p["metadata"].get("deletionTimestamp") and p
        ),
        timeout=30,
        what="the Job's pod to be deleted by the garbage collector",
    )
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 45

    # A held pod would keep the namespace from ever being deleted.
    cluster.kubectl(
        "delete", "pod", name, "-n", namespace, "--grace-period=0", "--force", "--wait=false"
    )


# --- the audit log -------------------------------------------------------------------------


def test_audit_log_records_requests(cluster: Cluster, namespace: str) -> None:
    if not cluster.local:
        pytest.skip("the audit log is only known for the local control plane")
    workdir = subprocess.run(
        ["bash", str(ROOT / "tests" / "controlplane" / "cluster.sh"), "workdir"],
        capture_output=True,
        text=True,
        check=True,
    )
    log = Path(workdir.stdout.strip()) / "logs" / "audit.log"
    assert log.is_file(), f"no audit log at {log}"
    start = log.stat().st_size

    marker = f"audit-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "configmap", marker, "-n", namespace)

    def recorded() -> dict[str, Any] | None:
        size = log.stat().st_size
        with log.open("rb") as f:
            f.seek(start if size >= start else 0)  # from the start again if it was rotated
            for line in f:
                if marker.encode() not in line:
                    continue
                event: dict[str, Any] = json.loads(line)
                ref = event.get("objectRef") or {}
                if (
                    event.get("verb") == "create"
                    and ref.get("resource") == "configmaps"
                    and ref.get("namespace") == namespace
                ):
                    return event
        return None

    event = wait_for(recorded, timeout=30, what=f"the audit log to record creating {marker}")
    assert event["stage"] == "ResponseComplete"
    assert event["responseStatus"]["code"] == 201
    assert event["level"] == "Metadata"
    assert "requestObject" not in event  # Metadata level: no bodies
    assert event["user"]["username"]
