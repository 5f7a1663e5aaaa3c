"""Building JobSchedule manifests, and watching what the operator makes of them.

Tests write manifests the way users do (camelCase keys, RFC 3339 strings),
so these helpers return plain dicts for ``kubectl apply``; times are computed
from the clock the operator and the control plane share (both run here).
The watch-based :class:`JobRecorder` stamps each Job when it first appears,
which is finer than a Job's ``creationTimestamp`` (whole seconds).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client, watch

from tests.support.kube import Cluster, Timeout, wait_for

API_VERSION = "jobwarden.io/v1alpha1"
KIND = "JobSchedule"
SCHEDULE_LABEL = "jobwarden.io/schedule"
TRIGGER_LABEL = "jobwarden.io/trigger"
SCHEDULED_TIME_ANNOTATION = "jobwarden.io/scheduled-time"
SCHEDULED_AT_LABEL = "jobwarden.io/scheduled-at"
RUN_NOW = "jobwarden.io/run-now"
# What ``kubectl get jobschedules`` shows, in order: the CRD's printer columns.
PRINTER_COLUMNS = (
    "NAME",
    "SCHEDULE",
    "SUSPEND",
    "ACTIVE",
    "LAST RUN",
    "LAST RESULT",
    "NEXT RUN",
    "HEALTH",
    "AGE",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2027-01-01T09:00:05Z``: whole seconds, UTC, as users write it."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def seconds_ahead(seconds: float) -> datetime:
    """A whole-second instant ``seconds`` (rounded up) from now."""
    moment = utcnow() + timedelta(seconds=seconds)
    return moment.replace(microsecond=0) + timedelta(seconds=1 if moment.microsecond else 0)


def next_minutes(*, count: int, margin: float = 6.0) -> list[datetime]:
    """The next ``count`` minute boundaries at least ``margin`` seconds ahead.

    Recurring schedules (cron, ``every``) have minute resolution, so a test of
    consecutive runs waits for real minute boundaries; the margin leaves time
    to apply the schedule before the first one.
    """
    now = utcnow()
    first = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if (first - now).total_seconds() < margin:
        first += timedelta(minutes=1)
    return [first + timedelta(minutes=i) for i in range(count)]


def job_template(
    *,
    run_seconds: float | None = 1,
    fail: bool = False,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A jobTemplate whose pod the fake nodes run for ``run_seconds`` (None: forever).

    ``fail`` makes the pod end Failed (exit code 1) after ``run_seconds``;
    ``namespace`` puts a namespace in the template, which the operator must ignore.
    """
    annotations: dict[str, str] = {}
    if run_seconds is not None:
        annotations["jobwarden.test/run-seconds"] = f"{run_seconds:g}s"
    if fail:
        annotations["jobwarden.test/fail"] = "true"
    metadata: dict[str, Any] = {"labels": dict(labels or {"app": "jobwarden-test"})}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {"name": "work", "image": "busybox:1.36", "command": ["true"]},
                        {"name": "sidecar", "image": "busybox:1.36", "command": ["true"]},
                    ],
                },
            },
        },
    }


# Jobs the built-in Job controller leaves alone (spec.managedBy). Load tests
# create them by the hundred; synced, each would queue the Jobs of every other
# test on this shared control plane behind it. The operator treats them as any Job.
IDLE_MANAGER = "jobwarden.test/idle"


def suspended_template() -> dict[str, Any]:
    """A Job that is created and then does nothing: no pod, no churn on the fake
    nodes, no work for the Job controller. The create is the run as far as
    exactly-once is concerned."""
    template = job_template(run_seconds=None)
    template["spec"]["suspend"] = True
    template["spec"]["managedBy"] = IDLE_MANAGER
    return template


def schedule(
    name: str, *, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A JobSchedule manifest; ``spec`` keys are the API's camelCase fields.

    ``jobTemplate`` defaults to :func:`job_template` with its defaults.
    """
    body: dict[str, Any] = {"jobTemplate": job_template(), **spec}
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": body}


# --- reading what the operator did --------------------------------------------------------


def assert_refused(
    cluster: Cluster, namespace: str, spec: dict[str, Any], fields: list[str]
) -> None:
    """Applying a schedule of ``spec`` fails, and the API server's message names ``fields``."""
    result = cluster.apply(schedule("bad", **spec), namespace=namespace, check=False)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    for name in fields:
        assert name in result.stderr, result.stderr


def status_of(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = cluster.schedule(namespace, name).get("status") or {}
    return status


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def history(status: dict[str, Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = status.get("history") or []
    return entries


def executions(status: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = status.get("executions") or {}
    return counts


def jobs_of(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.jobs(namespace, f"{SCHEDULE_LABEL}={name}")


def wait_status(
    cluster: Cluster,
    namespace: str,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    what: str,
) -> dict[str, Any]:
    """The schedule's status once ``check`` holds for it; on timeout, the last status seen."""
    last: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        nonlocal last
        last = status_of(cluster, namespace, name)
        return last if check(last) else None

    try:
        return wait_for(probe, timeout=timeout, interval=0.2, what=f"{namespace}/{name}: {what}")
    except Timeout as exc:
        raise Timeout(f"{exc}; last status: {last}") from None


@dataclass(frozen=True)
class Schedules:
    """The JobSchedules of one test's namespace: each read and wait names only the schedule.

    Tests wait on the same few schedules again and again; binding the cluster
    and namespace once keeps each wait to what it waits for.
    """

    cluster: Cluster
    namespace: str

    def apply(self, manifest: dict[str, Any]) -> None:
        self.cluster.apply(manifest, namespace=self.namespace)

    def status(self, name: str) -> dict[str, Any]:
        return status_of(self.cluster, self.namespace, name)

    def jobs(self, name: str) -> list[dict[str, Any]]:
        return jobs_of(self.cluster, self.namespace, name)

    def annotate(self, name: str, key: str, value: str) -> None:
        annotate(self.cluster, self.namespace, name, key, value)

    def wait(
        self, name: str, check: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
    ) -> dict[str, Any]:
        """The status once ``check`` holds (see :mod:`tests.support.checks`)."""
        return wait_status(self.cluster, self.namespace, name, check, timeout=timeout, what=what)


def annotate(cluster: Cluster, namespace: str, name: str, key: str, value: str) -> None:
    """``kubectl annotate --overwrite``, as a user triggers an action."""
    cluster.kubectl(
        "annotate", "-n", namespace, "--overwrite", f"jobschedule/{name}", f"{key}={value}"
    )


def events_of(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.events(namespace, name=name)


def has_event(
    cluster: Cluster, namespace: str, name: str, *, reason: str, type_: str | None = None
) -> bool:
    return any(
        e.get("reason") == reason and (type_ is None or e.get("type") == type_)
        for e in events_of(cluster, namespace, name)
    )


# --- seeing Jobs appear -------------------------------------------------------------------


@dataclass(frozen=True)
class SeenJob:
    name: str
    seen: datetime  # local clock, when the watch first showed the Job
    created: datetime  # the API server's creationTimestamp (whole seconds)
    body: dict[str, Any]


@dataclass
class JobRecorder:
    """Every Job created in a namespace, in the order the API server created them.

    Each creation is recorded, even of a name seen before, so a test can tell
    "one Job" from "a Job deleted and created again".
    """

    cluster: Cluster
    namespace: str
    added: list[SeenJob] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> list[SeenJob]:
        with self._lock:
            return list(self.added)

    def names(self) -> list[str]:
        return [j.name for j in self.snapshot()]

    def _record(self, body: dict[str, Any], known: set[str]) -> None:
        # Keyed by uid: a Job deleted and created again under the same name is
        # recorded twice, as it should be.
        meta = body.get("metadata") or {}
        uid = meta.get("uid", "")
        if uid in known:
            return
        known.add(uid)
        seen = SeenJob(meta.get("name", ""), utcnow(), parse_time(meta["creationTimestamp"]), body)
        with self._lock:
            self.added.append(seen)

    def _list(self, api: client.BatchV1Api, known: set[str]) -> str:
        """List the namespace's Jobs, record those not seen yet; the list's version."""
        resp: Any = api.list_namespaced_job(self.namespace, _preload_content=False)
        listing = json.loads(resp.data)
        for item in listing.get("items") or []:
            self._record(item, known)
        return str(listing["metadata"]["resourceVersion"])

    def _run(self) -> None:
        """Watch, and survive what the API server does: a 410 or a restart relists."""
        api = client.BatchV1Api(self.cluster.api)
        known: set[str] = set()
        resource_version = self._list(api, known)
        self._ready.set()
        while not self._stop.is_set():
            w = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in w.stream(  # type: ignore[no-untyped-call]
                    api.list_namespaced_job,
                    self.namespace,
                    resource_version=resource_version,
                    timeout_seconds=2,
                ):
                    body: dict[str, Any] = event["raw_object"]
                    meta = body.get("metadata") or {}
                    resource_version = meta.get("resourceVersion", resource_version)
                    if event["type"] == "ADDED":
                        self._record(body, known)
                    if self._stop.is_set():
                        break
            except Exception as exc:  # a test's recorder outlives API outages
                if not (isinstance(exc, client.ApiException) and exc.status == 410):
                    time.sleep(0.2)  # the API server is away: do not spin
                resource_version = self._relist(api, known, resource_version)
            finally:
                w.stop()  # type: ignore[no-untyped-call]

    def _relist(self, api: client.BatchV1Api, known: set[str], version: str) -> str:
        """A fresh list (what was created in a gap is recorded); the old version if it fails."""
        try:
            return self._list(api, known)
        except Exception:  # still down: the next round tries again
            time.sleep(0.5)
            return version

    @contextmanager
    def running(self) -> Iterator[JobRecorder]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        self._ready.wait(timeout=30)
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)


@contextmanager
def record_jobs(cluster: Cluster, namespace: str) -> Iterator[JobRecorder]:
    """Watch the namespace's Jobs for the duration of the block."""
    with JobRecorder(cluster, namespace).running() as recorder:
        yield recorder
