"""Shared pieces of the stale, terminate, health, metrics and plugin tests.

The templates here keep the pod's default termination grace period (30 s),
unlike the scheduling tests' template: a graceful delete must stay graceful,
so that a force delete has something to prove. Thresholds are seconds, so a
stale run is seen within one test's few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import API_VERSION, KIND, parse_time

STALE_AFTER_LABEL = "jobwarden.io/stale-after"
STALE_DEADLINE_ANNOTATION = "jobwarden.io/stale-deadline-seconds"
TERMINATE = "jobwarden.io/terminate"
TERMINATE_GRACE = "jobwarden.io/terminate-grace-seconds"
RESUME = "jobwarden.io/resume"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
SWEEP_SECONDS = 2.0  # the operator fixture's JOBWARDEN_SWEEP_INTERVAL


def pod_template(
    *,
    run_seconds: float | None = None,
    fail: bool = False,
    hold_terminating: bool = False,
    waiting_reason: str | None = None,
) -> dict[str, Any]:
    """A pod the fake nodes run for ``run_seconds`` (None: until deleted).

    ``hold_terminating`` makes a graceful delete leave the pod Terminating, as
    a node that stopped answering would; only a force delete removes it.
    ``waiting_reason`` keeps the pod Pending for ever, its containers waiting
    with that reason (an image that never pulls: ``ImagePullBackOff``).
    """
    annotations: dict[str, str] = {}
    if run_seconds is not None:
        annotations["jobwarden.test/run-seconds"] = f"{run_seconds:g}s"
    if fail:
        annotations["jobwarden.test/fail"] = "true"
    if hold_terminating:
        annotations["jobwarden.test/hold-terminating"] = "true"
    if waiting_reason is not None:
        annotations["jobwarden.test/waiting-reason"] = waiting_reason
    return {
        "metadata": {"annotations": annotations},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "work", "image": "busybox:1.36", "command": ["sleep", "1d"]}],
        },
    }


def job_template(**pod: Any) -> dict[str, Any]:
    """A jobTemplate with no retries, so each failed pod is one failed run."""
    return {"spec": {"backoffLimit": 0, "template": pod_template(**pod)}}


def schedule(name: str, *, template: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A JobSchedule manifest; unless ``spec`` says when it runs, its one run is far
    away, so only run-now tokens start work."""
    when = (
        {}
        if {"schedule", "every", "runAt", "after"} & set(spec)
        else {"runAt": "2099-01-01T00:00:00Z"}
    )
    body = {**when, "jobTemplate": template or job_template(), **spec}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": body}


def plain_job(name: str, *, labels: dict[str, str] | None = None, **pod: Any) -> dict[str, Any]:
    """A Job not made by any schedule, running until deleted (``pod``: see ``pod_template``)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {"backoffLimit": 0, "template": pod_template(**pod)},
    }


def entry(status: dict[str, Any], job: str) -> dict[str, Any] | None:
    return next((e for e in status.get("history") or [] if e.get("job") == job), None)


def job(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return next((j for j in cluster.jobs(namespace) if j["metadata"]["name"] == name), None)


def job_start(body: dict[str, Any]) -> datetime | None:
    text = (body.get("status") or {}).get("startTime")
    return parse_time(text) if text else None


def pods_of_job(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.pods(namespace, f"{JOB_NAME_LABEL}={name}")


def running_pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    """The Job's pod once the fake node runs it."""
    return next(
        (
            p
            for p in pods_of_job(cluster, namespace, name)
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        ),
        None,
    )


def events(
    cluster: Cluster, namespace: str, name: str, *, reason: str | None = None
) -> list[dict[str, Any]]:
    """Events recorded about the object called ``name``, optionally of one reason."""
    return [
        e
        for e in cluster.events(namespace, name=name)
        if reason is None or e.get("reason") == reason
    ]


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of sample ``name`` with exactly these labels in a scrape, if present."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


@contextmanager
def operator_with(
    cluster: Cluster, namespace: str, tmp_path: Path, **env: str
) -> Iterator[OperatorProcess]:
    """An operator for ``namespace`` with extra JOBWARDEN_* settings."""
    proc = OperatorProcess(
        cluster=cluster, namespaces=[namespace], log_path=tmp_path / "operator.log", extra_env=env
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def wait_job_started(
    cluster: Cluster, namespace: str, name: str, *, timeout: float = 60, pod: bool = True
) -> dict[str, Any]:
    """The Job once the Job controller has started it (and, with ``pod``, its pod runs).

    Without ``pod`` for Jobs about to go stale: the Job keeps its startTime for
    the whole threshold, while its pod is only Running for part of it.
    """

    def probe() -> dict[str, Any] | None:
        body = job(cluster, namespace, name)
        if body is None or job_start(body) is None:
            return None
        return body if not pod or running_pod(cluster, namespace, name) else None

    return wait_for(probe, timeout=timeout, what=f"Job {name} running")
