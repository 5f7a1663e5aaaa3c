"""Every API call the operator makes, in one place, under one field manager.

How a call travels (worker threads, timeouts, retries, the lease gate) is
:mod:`jobwarden.transport`; this module says which calls there are and what
their answers mean. Responses are read as plain JSON (no model
deserialization), since the operator works on plain dicts everywhere else.

Every call here is safe to repeat, so all of them are retried (429, 5xx,
resets, timeouts) within the budget of :mod:`jobwarden.retrying`: reads,
deletes (a repeat finds the object gone), the status merge patch, Events (a
repeat may record one twice), and Job creates, because a run's Job name is
deterministic: a create repeated after a lost answer meets the Job the first
one stored (409) and reports it as existing, with its owner. The Lease calls
are tried once; the elector retries them on its own clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from jobwarden import labels
from jobwarden.retrying import DEFAULT_RETRY, DEFAULT_TIMEOUTS, RetryPolicy, Timeouts
from jobwarden.transport import ApiUnavailable as ApiUnavailable
from jobwarden.transport import Gate, Transport
from jobwarden.transport import NotLeading as NotLeading
from jobwarden.transport import send as send

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = labels.GROUP, labels.VERSION, labels.PLURAL
# Set by the Job controller on every pod it creates; see Kube._force_delete_pod.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
SCHEDULE_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}"
JOBS_PATH = "/apis/batch/v1/namespaces/{namespace}/jobs"
EVENTS_PATH = "/api/v1/namespaces/{namespace}/events"
PODS_PATH = "/api/v1/namespaces/{namespace}/pods"
LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
CONFIG_MAPS_PATH = "/api/v1/namespaces/{namespace}/configmaps"


@dataclass(frozen=True)
class CreateResult:
    """What became of a Job create.

    ``exists``: a Job of that name was there (409); ``owner_uid`` is the uid of
    its JobSchedule ownerReference, None when it has none (someone else's Job,
    or one deleted before it could be read), so the caller adopts only its own.
    ``rejected``: the API server refused the Job (400/403/422), ``message`` says why.
    """

    outcome: Literal["created", "exists", "rejected"]
    message: str = ""
    owner_uid: str | None = None


class LeaseConflict(Exception):
    """The Lease changed (or appeared) since it was read: another replica wrote it."""


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str


def load_client(*, pool_size: int = 32) -> client.ApiClient:
    """In a pod, the ServiceAccount; elsewhere, KUBECONFIG as kubectl reads it."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


def _path(template: str, **parts: str) -> str:
    return template.format(**{k: quote(v, safe="") for k, v in parts.items()})


def schedule_owner(job: Mapping[str, Any]) -> str | None:
    """The uid of the JobSchedule a Job's ownerReferences name, if any."""
    for ref in (job.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == labels.KIND and str(ref.get("apiVersion", "")).startswith(
            f"{GROUP}/"
        ):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data or b"{}")
    return data


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason)
    return str(body.get("message") or exc.reason)


class Kube:
    """Typed async facade over the calls jobwarden needs; nothing else.

    ``gate``: the lease term acting calls are sent under (see
    :mod:`jobwarden.transport`); None, or until :meth:`guard` sets one, they
    are always sent (a standalone replica).
    """

    def __init__(
        self,
        api: client.ApiClient,
        *,
        workers: int = 32,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        gate: Gate | None = None,
    ) -> None:
        self._transport = Transport(api, workers=workers, timeouts=timeouts, retry=retry, gate=gate)
        self._call = self._transport.call
        # Events are best effort: a flood of them (a Warning for each of 50,000 foreign
        # Jobs after a restart) may hold a few API threads, never all of them.
        self._events = asyncio.Semaphore(max(1, workers // 4))

    def guard(self, gate: Gate) -> None:
        """Send acting calls only within ``gate``'s lease term from now on."""
        self._transport.gate = gate

    def close(self) -> None:
        self._transport.close()

    async def _get(self, path: str, **kwargs: Any) -> dict[str, Any] | None:
        """GET one object; None when it does not exist."""
        try:
            response = await self._call("GET", path, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _json(response)

    async def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(_path(SCHEDULE_PATH, namespace=namespace, name=name))

    async def list_jobs(self, *, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The Jobs of ``namespace`` that match the label ``selector``.

        One request with no ``limit``, which the API server answers from its
        watch cache (a consistent read). With a limit it may read etcd instead,
        every Job of the namespace for each page: beside 50,000 Jobs, hundreds
        of such reads at once took longer than a call's budget.
        """
        page = _json(
            await self._call(
                "GET", _path(JOBS_PATH, namespace=namespace), query=[("labelSelector", selector)]
            )
        )
        return [item for item in page.get("items") or () if isinstance(item, dict)]

    async def create_job(self, body: Mapping[str, Any]) -> CreateResult:
        """Create a Job; on 409, read the Job there and report whose it is."""
        namespace = body["metadata"]["namespace"]
        name = body["metadata"]["name"]
        try:
            await self._call(
                "POST",
                _path(JOBS_PATH, namespace=namespace),
                acting=True,
                query=[("fieldManager", labels.FIELD_MANAGER)],
                body=body,
            )
        except ApiException as exc:
            if exc.status == 409:
                return await self._existing(namespace=namespace, name=name)
            if exc.status in (400, 403, 422):
                return CreateResult("rejected", _message(exc))
            raise
        return CreateResult("created")

    async def _existing(self, *, namespace: str, name: str) -> CreateResult:
        job = await self._get(_path(JOBS_PATH, namespace=namespace) + "/" + quote(name, safe=""))
        if job is None:
            return CreateResult("exists", f"Job {name} existed, and was deleted before it was read")
        owner = schedule_owner(job)
        message = "" if owner else f"Job {name} exists and no JobSchedule owns it"
        return CreateResult("exists", message, owner_uid=owner)

    async def delete_job(
        self, *, namespace: str, name: str, grace_seconds: int | None, uid: str | None = None
    ) -> bool:
        """Delete a Job and, through background propagation, its pods.

        With ``uid``, only that Job (a precondition): a Job created again under
        the name since it was seen is left alone. False when there was nothing
        (of that uid) to delete.
        """
        options: dict[str, Any] = {"propagationPolicy": "Background"}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        return await self._delete(
            _path(JOBS_PATH, namespace=namespace) + "/" + quote(name, safe=""), options, uid=uid
        )

    async def _delete(self, path: str, options: dict[str, Any], *, uid: str | None) -> bool:
        if uid:
            options = {**options, "preconditions": {"uid": uid}}
        try:
            await self._call("DELETE", path, acting=True, body=options)
        except ApiException as exc:
            if exc.status == 404 or (uid and exc.status == 409):
                return False
            raise
        return True

    async def force_delete_pods(self, *, namespace: str, job_name: str) -> int:
        """Remove a Job's pods at once, including ones stuck in Terminating."""
        return await self.force_delete_pods_matching(
            namespace=namespace,
            selector=f"{JOB_NAME_LABEL}={job_name}",
            jobs=frozenset({job_name}),
        )

    async def job_pods(self, *, namespace: str, job: str) -> list[dict[str, Any]]:
        """The pods of the Job ``job`` (by the label the Job controller gives them).

        For the start guard, and only for runs past their start deadline whose
        Job status shows no pod that ran: one LIST each, never a watch on pods.
        """
        listed = await self._get(
            _path(PODS_PATH, namespace=namespace),
            query=[("labelSelector", f"{JOB_NAME_LABEL}={job}")],
        )
        items = (listed or {}).get("items")
        return [p for p in items if isinstance(p, dict)] if isinstance(items, list) else []

    async def force_delete_pods_matching(
        self, *, namespace: str, selector: str, jobs: frozenset[str]
    ) -> int:
        """Force-delete the selected pods of ``jobs``, and any selected pod already Terminating.

        One LIST for a whole terminate action. Pods of other Jobs that are not
        being deleted are left alone (a finished Job's pods stay for its logs);
        a Terminating one is a pod an earlier graceful delete could not finish,
        which is exactly what a force terminate is asked to clear.
        """
        listed = await self._get(
            _path(PODS_PATH, namespace=namespace), query=[("labelSelector", selector)]
        )
        count = 0
        for pod in (listed or {}).get("items", []):
            meta = pod.get("metadata") or {}
            owned = (meta.get("labels") or {}).get(JOB_NAME_LABEL) in jobs
            if owned or meta.get("deletionTimestamp"):
                count += await self._force_delete_pod(namespace=namespace, pod=pod)
        return count

    async def _force_delete_pod(self, *, namespace: str, pod: Mapping[str, Any]) -> int:
        """Delete one pod with no grace period; 1 if this call removed it.

        A zero grace period alone does not remove a pod that still carries the
        Job controller's tracking finalizer: the API server keeps it until the
        finalizer goes. The controller drops it from pods of deleted Jobs, but
        only when it gets to them (never while kube-controller-manager is
        down). The Job is already deleted when its pods are forced, so nobody
        needs the pod counted any more, and the finalizer is removed here.
        """
        meta = pod["metadata"]
        name = meta["name"]
        finalizers = list(meta.get("finalizers") or [])
        if JOB_TRACKING_FINALIZER in finalizers:
            await self._drop_finalizer(
                namespace=namespace, name=name, index=finalizers.index(JOB_TRACKING_FINALIZER)
            )
        path = _path(PODS_PATH, namespace=namespace) + "/" + quote(name, safe="")
        removed = await self._delete(path, {"gracePeriodSeconds": 0}, uid=meta.get("uid"))
        return 1 if removed else 0

    async def _drop_finalizer(self, *, namespace: str, name: str, index: int) -> None:
        """Remove the tracking finalizer at ``index``, if it is still there.

        The JSON patch tests the entry first, so a list the Job controller
        changed meanwhile is never cut at the wrong place (and a repeat after a
        lost answer changes nothing). Without RBAC to patch pods this is
        skipped: the delete still goes ahead and the pod goes once the Job
        controller drops the finalizer itself.
        """
        path = f"/metadata/finalizers/{index}"
        patch = [
            {"op": "test", "path": path, "value": JOB_TRACKING_FINALIZER},
            {"op": "remove", "path": path},
        ]
        try:
            await self._call(
                "PATCH",
                _path(PODS_PATH, namespace=namespace) + "/" + quote(name, safe=""),
                acting=True,
                body=patch,
                content_type="application/json-patch+json",
            )
        except ApiException as exc:
            if exc.status in (404, 409, 422):
                return  # gone, or the list changed: someone else removed it
            log.warning(
                "could not remove %s from pod %s/%s (%s); the pod goes once the Job "
                "controller removes it",
                JOB_TRACKING_FINALIZER,
                namespace,
                name,
                _message(exc),
            )

    async def patch_status(
        self,
        *,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> str | None:
        """Merge-patch the status subresource; returns the new resourceVersion.

        With ``resource_version`` the patch carries it as a precondition: the API
        server answers 409 if anyone wrote the schedule since that version (a
        new leader, or a spec change the status was not planned from). Any
        failure raises; None only when the schedule is gone (404). A write
        repeated after a lost answer meets its own first write and gets 409
        too: the caller reads afresh, and finds its status already there.
        """
        patch: dict[str, Any] = {"status": dict(status)}
        if resource_version is not None:
            patch["metadata"] = {"resourceVersion": resource_version}
        try:
            response = await self._call(
                "PATCH",
                _path(SCHEDULE_PATH, namespace=namespace, name=name) + "/status",
                urgent=False,
                acting=True,
                query=[("fieldManager", labels.FIELD_MANAGER)],
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        rv: str | None = _json(response).get("metadata", {}).get("resourceVersion")
        return rv

    async def patch_calendar_status(self, *, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch a JobCalendar's status subresource (cluster-scoped); a calendar
        deleted meanwhile (404) is not an error."""
        try:
            await self._call(
                "PATCH",
                f"/apis/{GROUP}/{VERSION}/{labels.CALENDAR_PLURAL}/{name}/status",
                urgent=False,
                acting=True,
                query=[("fieldManager", labels.FIELD_MANAGER)],
                body={"status": dict(status)},
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def post_event(
        self, *, regarding: ObjectRef, type_: str, reason: str, message: str
    ) -> None:
        """Record an Event; losing one is logged, never fatal to a reconcile."""
        now = datetime.now(UTC)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{regarding.name[:200]}.",
                "namespace": regarding.namespace,
            },
            "involvedObject": {
                "apiVersion": regarding.api_version,
                "kind": regarding.kind,
                "namespace": regarding.namespace,
                "name": regarding.name,
                "uid": regarding.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": labels.FIELD_MANAGER},
            "reportingComponent": labels.FIELD_MANAGER,
            "reportingInstance": labels.FIELD_MANAGER,
            "firstTimestamp": now.isoformat().replace("+00:00", "Z"),
            "lastTimestamp": now.isoformat().replace("+00:00", "Z"),
            "count": 1,
        }
        try:
            async with self._events:
                await self._call(
                    "POST",
                    _path(EVENTS_PATH, namespace=regarding.namespace),
                    urgent=False,
                    acting=True,
                    body=body,
                )
        except (ApiException, ApiUnavailable) as exc:
            log.warning(
                "could not record event %s on %s/%s: %s",
                reason,
                regarding.namespace,
                regarding.name,
                _message(exc) if isinstance(exc, ApiException) else exc,
            )

    # --- the operator's own ConfigMap (the due-soon list) --------------------------------

    async def get_config_map_data(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap's ``data``; None when it does not exist."""
        found = await self._get(
            _path(CONFIG_MAPS_PATH, namespace=namespace) + "/" + quote(name, safe="")
        )
        return None if found is None else dict(found.get("data") or {})

    async def write_config_map_data(
        self, *, namespace: str, name: str, data: Mapping[str, str]
    ) -> None:
        """Merge ``data`` into the ConfigMap, creating it when it does not exist.

        The chart creates it, so that the operator needs no create right; a
        local run with a broader identity creates its own.
        """
        path = _path(CONFIG_MAPS_PATH, namespace=namespace)
        patch = {"data": dict(data)}
        try:
            await self._call(
                "PATCH",
                path + "/" + quote(name, safe=""),
                urgent=False,
                acting=True,
                query=[("fieldManager", labels.FIELD_MANAGER)],
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **patch}
            await self._call(
                "POST",
                path,
                urgent=False,
                acting=True,
                query=[("fieldManager", labels.FIELD_MANAGER)],
                body=body,
            )

    # --- the leader-election Lease ------------------------------------------------------
    # Tried once, bounded by ``timeout`` in all: a leader whose API server stopped
    # answering must notice in time to stand down, not wait on a socket, and the
    # elector tries again on its own clock. Never gated: they are how a term begins.

    async def get_lease(
        self, *, namespace: str, name: str, timeout: float
    ) -> dict[str, Any] | None:
        return await self._get(
            _path(LEASES_PATH, namespace=namespace) + "/" + quote(name, safe=""),
            retry=_once(timeout),
        )

    async def write_lease(
        self,
        *,
        namespace: str,
        name: str,
        resource_version: str | None,
        spec: Mapping[str, Any],
        timeout: float,
    ) -> dict[str, Any]:
        """Create the Lease (no resourceVersion) or replace the version that was read.

        Raises LeaseConflict when another replica got there first (409), which
        is how optimistic concurrency elects exactly one writer.
        """
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": dict(spec),
        }
        path = _path(LEASES_PATH, namespace=namespace)
        if resource_version is None:
            method = "POST"
        else:
            method, path = "PUT", path + "/" + quote(name, safe="")
            body["metadata"]["resourceVersion"] = resource_version
        try:
            response = await self._call(
                method,
                path,
                retry=_once(timeout),
                query=[("fieldManager", labels.FIELD_MANAGER)],
                body=body,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise LeaseConflict(_message(exc)) from None
            raise
        return _json(response)


def _once(seconds: float) -> RetryPolicy:
    return RetryPolicy(attempts=1, budget=seconds)
