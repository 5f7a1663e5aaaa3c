"""The plugin's calls to the API server: the user's own kubeconfig identity, nothing more.

It acts only with the user's credentials (found by :mod:`jobwarden.cli.kubeconfig`,
with ``--as``/``--as-group`` impersonation on top): what their RBAC forbids,
the API server refuses, and the refusal is reported in one line naming the
verb and resource. Every failure becomes a :class:`CliError` carrying that line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from jobwarden import labels
from jobwarden.cli.errors import CliError, Forbidden
from jobwarden.cli.kubeconfig import ConnectOptions, load_configuration, resolve_namespace

__all__ = ["RESOURCE", "Client", "Gone", "connect"]

RESOURCE: Final = f"{labels.PLURAL}.{labels.GROUP}"
CONNECT_TIMEOUT: Final = 10.0
# How long past a watch's timeoutSeconds the client waits before ending it itself.
WATCH_GRACE: Final = 5.0
MERGE_PATCH: Final = "application/merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"
FIELD_MANAGER: Final = "kubectl-jobwarden-dashboard"


class Gone(Exception):
    """A watch's resourceVersion expired (410): the caller lists again and resumes."""


def _server_message(body: object) -> tuple[str, Mapping[str, Any]]:
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str) or not body:
        return "", {}
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.split()), {}
    if not isinstance(data, Mapping):
        return "", {}
    return str(data.get("message") or ""), data.get("details") or {}


@dataclass(frozen=True, kw_only=True)
class _Target:
    """What a call was about, so an error can say so."""

    verb: str
    resource: str
    namespace: str | None
    name: str | None = None

    def where(self) -> str:
        return f'in namespace "{self.namespace}"' if self.namespace else "in any namespace"


class Client:
    """The handful of calls the plugin makes, returning plain JSON dicts."""

    def __init__(self, *, api: Any, server: str, namespace: str, request_timeout: float) -> None:
        from kubernetes import client as k8s

        self._api = api
        self._custom = k8s.CustomObjectsApi(api)
        self._core = k8s.CoreV1Api(api)
        self.server = server
        self.namespace = namespace
        self._timeout = (CONNECT_TIMEOUT, request_timeout)

    # -- error translation ------------------------------------------------------------------

    def _call(self, target: _Target, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise self._api_error(target, exc) from exc
        except (HTTPError, OSError) as exc:
            raise CliError(
                f"cannot reach the Kubernetes API server at {self.server}: {_reason(exc)}"
            ) from exc

    def _api_error(self, target: _Target, exc: Any) -> CliError:
        status = int(getattr(exc, "status", 0) or 0)
        message, details = _server_message(getattr(exc, "body", None))
        if status == 404 and target.name is not None and details.get("name") == target.name:
            kind = labels.SINGULAR if target.resource == RESOURCE else target.resource
            return CliError(f'{kind} "{target.name}" not found in namespace "{target.namespace}"')
        if status == 404:
            return CliError(
                f'the server has no resource type "{target.resource}" '
                "(is the jobwarden CRD installed?)"
            )
        if status == 403:
            what = f'{target.resource} "{target.name}"' if target.name else target.resource
            said = f" (server: {message})" if message else ""
            return Forbidden(f"forbidden: cannot {target.verb} {what} {target.where()}{said}")
        if status == 401:
            return CliError(
                f"unauthorized: the API server at {self.server} rejected the credentials"
                " (log in again or check the kubeconfig user)"
            )
        reason = message or str(getattr(exc, "reason", "") or "request failed")
        return CliError(f"{target.verb} {target.resource}: {status} {reason}".strip())

    # -- the two shapes of JobSchedule request ----------------------------------------------

    def _collection(self, target: _Target, **kwargs: Any) -> Any:
        """A list (or with ``watch=True`` a watch) of JobSchedules: one namespace, or all."""
        fn: Any = self._custom.list_cluster_custom_object
        scope: tuple[str, ...] = ()
        if target.namespace is not None:
            fn, scope = self._custom.list_namespaced_custom_object, (target.namespace,)
        return self._call(target, fn, labels.GROUP, labels.VERSION, *scope, labels.PLURAL, **kwargs)

    def _one(self, target: _Target, fn: Any, *body: Any, **kwargs: Any) -> dict[str, Any]:
        """A call about the one JobSchedule ``target`` names, its response read as JSON."""
        response = self._call(
            target,
            fn,
            labels.GROUP,
            labels.VERSION,
            target.namespace,
            labels.PLURAL,
            target.name,
            *body,
            _preload_content=False,
            _request_timeout=self._timeout,
            **kwargs,
        )
        return _json(response)

    # -- the calls --------------------------------------------------------------------------

    def list_schedules(self, *, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        """All JobSchedules in ``namespace`` (every namespace when None), and the list's RV."""
        target = _Target(verb="list", resource=RESOURCE, namespace=namespace)
        response = self._collection(target, _preload_content=False, _request_timeout=self._timeout)
        data = _json(response)
        items = [i for i in data.get("items") or [] if isinstance(i, dict)]
        return items, str((data.get("metadata") or {}).get("resourceVersion") or "")

    def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any]:
        """One JobSchedule; a missing one raises the not-found :class:`CliError`."""
        target = _Target(verb="get", resource=RESOURCE, namespace=namespace, name=name)
        return self._one(target, self._custom.get_namespaced_custom_object)

    def patch_schedule(
        self, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch of the JobSchedule (metadata and spec; never status)."""
        target = _Target(verb="patch", resource=RESOURCE, namespace=namespace, name=name)
        return self._one(
            target,
            self._custom.patch_namespaced_custom_object,
            dict(patch),
            _content_type=MERGE_PATCH,
        )

    def apply_schedule(self, *, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of a whole JobSchedule manifest (created when missing).

        The dashboard's field manager owns what it applied; a field another
        manager owns is a conflict the server reports, never overwritten.
        """
        meta = manifest.get("metadata") or {}
        target = _Target(
            verb="patch",
            resource=RESOURCE,
            namespace=str(meta.get("namespace") or self.namespace),
            name=str(meta.get("name") or ""),
        )
        return self._one(
            target,
            self._custom.patch_namespaced_custom_object,
            dict(manifest),
            field_manager=FIELD_MANAGER,
            _content_type=APPLY_PATCH,
        )

    def may(self, attributes: Mapping[str, str]) -> bool:
        """Whether the user may do what ``attributes`` say (a SelfSubjectAccessReview).

        Any authenticated user may ask about themselves; with ``--as`` the
        answer is the impersonated user's.
        """
        from kubernetes import client as k8s

        target = _Target(
            verb="create", resource="selfsubjectaccessreviews.authorization.k8s.io", namespace=None
        )
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": dict(attributes)},
        }
        response = self._call(
            target,
            k8s.AuthorizationV1Api(self._api).create_self_subject_access_review,
            review,
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        return (_json(response).get("status") or {}).get("allowed") is True

    def list_events(self, *, namespace: str, name: str, uid: str) -> list[dict[str, Any]]:
        """The Events about one JobSchedule (its actions and runs are recorded there)."""
        target = _Target(verb="list", resource="events", namespace=namespace)
        selector = f"involvedObject.name={name},involvedObject.uid={uid}"
        response = self._call(
            target,
            self._core.list_namespaced_event,
            namespace,
            field_selector=selector,
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        return [i for i in _json(response).get("items") or [] if isinstance(i, dict)]

    def watch_schedules(
        self,
        *,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        name: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Watch events ``(type, object)`` from ``resource_version`` for ``timeout_seconds``.

        The server ends the stream at the timeout; the caller watches again
        from the last resourceVersion it saw. An expired version raises
        :class:`Gone`. Bookmarks are passed on so the caller's version stays
        fresh on a quiet stream.
        """
        kwargs: dict[str, Any] = {
            "watch": True,
            "allow_watch_bookmarks": True,
            "resource_version": resource_version,
            "timeout_seconds": max(1, timeout_seconds),
            "_preload_content": False,
            # Silence past the server's own timeout means the stream is over.
            "_request_timeout": (CONNECT_TIMEOUT, timeout_seconds + WATCH_GRACE),
        }
        if name is not None:
            kwargs["field_selector"] = f"metadata.name={name}"
        target = _Target(verb="watch", resource=RESOURCE, namespace=namespace)
        response = self._collection(target, **kwargs)
        try:
            yield from _watch_events(response, server=self.server)
        finally:
            response.release_conn()


def _watch_events(response: Any, *, server: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The events of one watch response until the server ends it (or goes silent)."""
    from kubernetes.watch import watch as k8s_watch
    from urllib3.exceptions import HTTPError, ReadTimeoutError

    iter_resp_lines: Any = k8s_watch.iter_resp_lines
    lines = iter_resp_lines(response)
    while True:
        try:
            line = next(lines)
        except (StopIteration, ReadTimeoutError):
            return
        except (HTTPError, OSError) as exc:
            # A stream dropped mid-watch is the server going away, not a bug.
            raise CliError(f"lost the watch on the API server at {server}: {_reason(exc)}") from exc
        if not line.strip():
            continue
        event = json.loads(line)
        kind = str(event.get("type") or "")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if int(obj.get("code") or 0) == 410:
                raise Gone()
            raise CliError(f"watch {RESOURCE}: {obj.get('message') or obj}")
        yield kind, obj


def _json(response: Any) -> dict[str, Any]:
    data = json.loads(response.data or b"{}")
    return data if isinstance(data, dict) else {}


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    text = str(inner if isinstance(inner, BaseException) else exc)
    # urllib3 wraps the socket error: keep the part a person can act on.
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "No route to host",
        "certificate verify failed",
    ):
        if marker in text:
            return marker.lower()
    return " ".join(text.split())[:300]


def connect(options: ConnectOptions) -> Client:
    """A :class:`Client` for the user's kubeconfig identity (or in-cluster ServiceAccount)."""
    from kubernetes import client as k8s

    configuration = load_configuration(options)
    namespace = resolve_namespace(options)
    # A connection refused should fail at once, not after urllib3's silent retries.
    configuration.retries = 0
    api: Any = k8s.ApiClient(configuration)
    api.user_agent = "kubectl-jobwarden"
    if options.as_user:
        api.set_default_header("Impersonate-User", options.as_user)
    if len(options.as_groups) > 1:
        raise CliError("only one --as-group is supported")
    if options.as_groups:
        if not options.as_user:
            raise CliError("--as-group needs --as")
        api.set_default_header("Impersonate-Group", options.as_groups[0])
    return Client(
        api=api,
        server=str(configuration.host),
        namespace=namespace,
        request_timeout=options.request_timeout,
    )
