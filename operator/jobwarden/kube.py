"""Every API call the operator makes, in one place, under one field manager.

The official client is synchronous; calls run on a dedicated thread pool so a
burst of due runs is sent concurrently without blocking the event loop.
Responses are read as plain JSON (no model deserialization), since the
operator works on plain dicts everywhere else.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from jobwarden import labels

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = labels.GROUP, labels.VERSION, labels.PLURAL
# Set by the Job controller on every pod it creates; see Kube._force_delete_pod.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
SCHEDULE_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}"
JOBS_PATH = "/apis/batch/v1/namespaces/{namespace}/jobs"
EVENTS_PATH = "/api/v1/namespaces/{namespace}/events"


@dataclass(frozen=True)
class CreateResult:
    outcome: Literal["created", "exists", "rejected"]
    message: str = ""
    # On "exists": the uid of the existing Job's JobSchedule owner (None: it has none).
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


def _read(response: Any) -> Any:
    """Read a raw response's body in the worker thread that made the call.

    With ``_preload_content=False`` the body stays on the socket until
    ``.data`` is touched. Left to ``_json`` on the event loop, that read (and
    its TLS decryption) blocked the loop, and the connection stayed checked
    out meanwhile, so the next calls opened new TLS connections that were
    then discarded as the pool overflowed: about one handshake per call in a
    burst of due runs.
    """
    if isinstance(response, urllib3.BaseHTTPResponse):
        response.data  # noqa: B018 - reads, caches and releases the connection
    return response


def send(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
) -> Any:
    """One request through ``api``'s auth and connection pool; the raw response, read.

    The generated methods validate every argument with pydantic and walk the
    body to "sanitize" it before json.dumps walks it again. For the calls a
    burst of due runs makes (a Job, a status write, an Event per run) that
    was a quarter of the operator's CPU, all of it holding the interpreter
    lock the event loop needs. The bodies here are plain JSON already.
    Non-2xx raises ApiException as the generated methods do.
    """
    _, url, headers, _, _ = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, body=body)
    response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    return response.response


def _path(template: str, **parts: str) -> str:
    return template.format(**{k: quote(v, safe="") for k, v in parts.items()})


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data or b"{}")
    return data


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason)
    return str(body.get("message") or exc.reason)


class _Lanes:
    """Worker threads that take urgent calls before deferrable ones.

    When a thousand runs come due at once, each reconcile makes one urgent
    call (create the Job) and two that can wait (its status write and its
    Event). In one first-come queue the Jobs were created at a third of the
    rate the API server allows; here every queued create goes before any
    queued bookkeeping, and bookkeeping still gets every thread when nothing
    is urgent. Order within a lane is first come, first served.
    """

    _STOP = 2

    def __init__(self, *, workers: int, name: str) -> None:
        self._queue: queue.PriorityQueue[
            tuple[int, int, Callable[[], Any] | None, Future[Any] | None]
        ] = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], Any], *, urgent: bool) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((0 if urgent else 1, next(self._order), fn, future))
        return future

    def _work(self) -> None:
        while True:
            _, _, fn, future = self._queue.get()
            if fn is None or future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue  # its awaiting task was cancelled before it started
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Drop what has not started and let the threads end after their current call."""
        while True:
            try:
                _, _, _, future = self._queue.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.cancel()
        for _ in self._threads:
            self._queue.put((self._STOP, next(self._order), None, None))


class Kube:
    """Typed async facade over the calls jobwarden needs; nothing else."""

    def __init__(self, api: client.ApiClient, *, workers: int = 32) -> None:
        self._api = api
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._coordination = client.CoordinationV1Api(api)
        self._pool = _Lanes(workers=workers, name="kube")

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.wrap_future(
            self._pool.submit(lambda: _read(fn(*args, **kwargs)), urgent=True)
        )

    async def _send(self, method: str, path: str, *, urgent: bool = True, **kwargs: Any) -> Any:
        return await asyncio.wrap_future(
            self._pool.submit(lambda: send(self._api, method, path, **kwargs), urgent=urgent)
        )

    def close(self) -> None:
        self._pool.shutdown()

    async def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            response = await self._send("GET", _path(SCHEDULE_PATH, namespace=namespace, name=name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _json(response)

    async def create_job(self, body: Mapping[str, Any]) -> CreateResult:
        """Create a Job; an existing Job of that name means the run already happened."""
        namespace = body["metadata"]["namespace"]
        try:
            await self._send(
                "POST",
                _path(JOBS_PATH, namespace=namespace),
                query=[("fieldManager", labels.FIELD_MANAGER)],
                body=body,
            )
        except ApiException as exc:
            if exc.status == 409:
                return CreateResult("exists")
            if exc.status in (400, 403, 422):
                return CreateResult("rejected", _message(exc))
            raise
        return CreateResult("created")

    async def delete_job(self, *, namespace: str, name: str, grace_seconds: int | None) -> bool:
        """Delete a Job and, through background propagation, its pods."""
        options = client.V1DeleteOptions(
            propagation_policy="Background", grace_period_seconds=grace_seconds
        )
        try:
            await self._run(
                self._batch.delete_namespaced_job,
                name,
                namespace,
                body=options,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404:
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

    async def force_delete_pods_matching(
        self, *, namespace: str, selector: str, jobs: frozenset[str]
    ) -> int:
        """Force-delete the selected pods of ``jobs``, and any selected pod already Terminating.

        One LIST for a whole terminate action. Pods of other Jobs that are not
        being deleted are left alone (a finished Job's pods stay for its logs);
        a Terminating one is a pod an earlier graceful delete could not finish,
        which is exactly what a force terminate is asked to clear.
        """
        response = await self._run(
            self._core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            _preload_content=False,
        )
        count = 0
        for pod in _json(response).get("items", []):
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
        try:
            await self._run(
                self._core.delete_namespaced_pod,
                name,
                namespace,
                body=client.V1DeleteOptions(grace_period_seconds=0),
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return 0
        return 1

    async def _drop_finalizer(self, *, namespace: str, name: str, index: int) -> None:
        """Remove the tracking finalizer at ``index``, if it is still there.

        The JSON patch tests the entry first, so a list the Job controller
        changed meanwhile is never cut at the wrong place. Without RBAC to
        patch pods this is skipped: the delete still goes ahead and the pod
        goes once the Job controller drops the finalizer itself.
        """
        path = f"/metadata/finalizers/{index}"
        patch = [
            {"op": "test", "path": path, "value": JOB_TRACKING_FINALIZER},
            {"op": "remove", "path": path},
        ]
        try:
            await self._run(
                self._core.patch_namespaced_pod,
                name,
                namespace,
                patch,
                _content_type="application/json-patch+json",
                _preload_content=False,
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
        self, *, namespace: str, name: str, status: Mapping[str, Any]
    ) -> str | None:
        """Merge-patch the status subresource; returns the new resourceVersion."""
        try:
            response = await self._send(
                "PATCH",
                _path(SCHEDULE_PATH, namespace=namespace, name=name) + "/status",
                urgent=False,
                query=[("fieldManager", labels.FIELD_MANAGER)],
                body={"status": dict(status)},
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        rv: str | None = _json(response).get("metadata", {}).get("resourceVersion")
        return rv

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
            await self._send(
                "POST",
                _path(EVENTS_PATH, namespace=regarding.namespace),
                urgent=False,
                body=body,
            )
        except ApiException as exc:
            log.warning(
                "could not record event %s on %s/%s: %s",
                reason,
                regarding.namespace,
                regarding.name,
                _message(exc),
            )

    # --- the leader-election Lease ------------------------------------------------------
    # Bounded by a request timeout: a leader whose API server stopped answering
    # must notice in time to stand down, not wait on a socket.

    async def get_lease(
        self, *, namespace: str, name: str, timeout: float
    ) -> dict[str, Any] | None:
        try:
            response = await self._run(
                self._coordination.read_namespaced_lease,
                name,
                namespace,
                _preload_content=False,
                _request_timeout=timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _json(response)

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
        try:
            if resource_version is None:
                response = await self._run(
                    self._coordination.create_namespaced_lease,
                    namespace,
                    body,
                    field_manager=labels.FIELD_MANAGER,
                    _preload_content=False,
                    _request_timeout=timeout,
                )
            else:
                body["metadata"]["resourceVersion"] = resource_version
                response = await self._run(
                    self._coordination.replace_namespaced_lease,
                    name,
                    namespace,
                    body,
                    field_manager=labels.FIELD_MANAGER,
                    _preload_content=False,
                    _request_timeout=timeout,
                )
        except ApiException as exc:
            if exc.status == 409:
                raise LeaseConflict(_message(exc)) from None
            raise
        return _json(response)
