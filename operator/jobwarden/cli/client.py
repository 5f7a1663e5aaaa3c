"""The plugin's access to the API server: the user's own kubeconfig identity, nothing more.

The plugin is a kubectl plugin, so it finds the cluster the way kubectl
does: ``--kubeconfig``, else the ``KUBECONFIG`` list of files, else
``~/.kube/config`` (or the pod's ServiceAccount when run inside a cluster);
``--context`` picks the context, whose namespace is the default for
``--namespace``. kubectl passes a plugin its arguments untouched, so these
flags, and ``--as``/``--as-group`` impersonation, are implemented here.

It acts only with the user's credentials: what their RBAC forbids, the API
server refuses, and the refusal is reported in one line naming the verb and
resource. Every failure becomes a :class:`CliError` carrying that line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from jobwarden import labels

__all__ = [
    "CliError",
    "Client",
    "ConnectOptions",
    "Gone",
    "connect",
    "kubeconfig_paths",
    "resolve_context",
    "resolve_namespace",
]

RESOURCE: Final = f"{labels.PLURAL}.{labels.GROUP}"
CONNECT_TIMEOUT: Final = 10.0
# How long past a watch's timeoutSeconds the client waits before ending it itself.
WATCH_GRACE: Final = 5.0
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH: Final = "application/merge-patch+json"

T = TypeVar("T")


class CliError(Exception):
    """A failure to report as one ``Error: ...`` line on stderr, with an exit code."""

    def __init__(self, message: str, *, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Gone(Exception):
    """A watch's resourceVersion expired (410): the caller lists again and resumes."""


@dataclass(frozen=True, kw_only=True)
class ConnectOptions:
    """The connection flags, as kubectl spells them."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    as_user: str | None = None
    as_groups: tuple[str, ...] = ()
    request_timeout: float = 30.0
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def kubeconfig_paths(options: ConnectOptions) -> list[Path]:
    """The kubeconfig files that exist, in kubectl's order of precedence.

    ``--kubeconfig`` names exactly one file (an error if missing, as in
    kubectl); ``KUBECONFIG`` is a list whose missing entries are skipped.
    """
    if options.kubeconfig:
        path = Path(options.kubeconfig).expanduser()
        if not path.is_file():
            raise CliError(f'kubeconfig "{options.kubeconfig}" does not exist')
        return [path]
    listed = options.environ.get("KUBECONFIG")
    if listed:
        candidates = [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    else:
        home = options.environ.get("HOME") or str(Path.home())
        candidates = [Path(home) / ".kube" / "config"]
    return [p for p in candidates if p.is_file()]


def _load_yaml(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f'cannot read kubeconfig "{path}": {" ".join(str(exc).split())}') from exc
    return data if isinstance(data, Mapping) else {}


def resolve_context(options: ConnectOptions, paths: list[Path]) -> tuple[str | None, str | None]:
    """The context to use and its namespace, merging files as kubectl does.

    kubectl takes ``current-context`` from the first file that sets it, and
    for a context defined twice the first definition; the same rules here.
    """
    current: str | None = options.context
    contexts: dict[str, Mapping[str, Any]] = {}
    for path in paths:
        data = _load_yaml(path)
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
        for entry in data.get("contexts") or []:
            if isinstance(entry, Mapping) and entry.get("name") not in contexts:
                contexts[str(entry.get("name"))] = entry.get("context") or {}
    if current is None:
        return None, None
    if current not in contexts:
        if options.context is not None:
            raise CliError(f'context "{current}" does not exist in the kubeconfig')
        return current, None
    namespace = contexts[current].get("namespace")
    return current, str(namespace) if namespace else None


def _in_cluster(options: ConnectOptions) -> bool:
    return (
        bool(options.environ.get("KUBERNETES_SERVICE_HOST"))
        and (SERVICE_ACCOUNT_DIR / "token").is_file()
    )


def resolve_namespace(options: ConnectOptions, *, strict: bool = True) -> str:
    """``--namespace``, else the context's namespace, else ``default``.

    Reads only local files: ``preview`` uses it offline with ``strict=False``,
    where an unreadable kubeconfig just means ``default``.
    """
    if options.namespace:
        return options.namespace
    try:
        paths = kubeconfig_paths(options)
        if not paths and _in_cluster(options):
            text = (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip()
            return text or "default"
        _, namespace = resolve_context(options, paths)
    except (CliError, OSError):
        if strict:
            raise
        return "default"
    return namespace or "default"


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
            return CliError(f"forbidden: cannot {target.verb} {what} {target.where()}{said}")
        if status == 401:
            return CliError(
                f"unauthorized: the API server at {self.server} rejected the credentials"
                " (log in again or check the kubeconfig user)"
            )
        reason = message or str(getattr(exc, "reason", "") or "request failed")
        return CliError(f"{target.verb} {target.resource}: {status} {reason}".strip())

    # -- the calls --------------------------------------------------------------------------

    def list_schedules(self, *, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        """All JobSchedules in ``namespace`` (every namespace when None), and the list's RV."""
        target = _Target(verb="list", resource=RESOURCE, namespace=namespace)
        if namespace is None:
            response = self._call(
                target,
                self._custom.list_cluster_custom_object,
                labels.GROUP,
                labels.VERSION,
                labels.PLURAL,
                _preload_content=False,
                _request_timeout=self._timeout,
            )
        else:
            response = self._call(
                target,
                self._custom.list_namespaced_custom_object,
                labels.GROUP,
                labels.VERSION,
                namespace,
                labels.PLURAL,
                _preload_content=False,
                _request_timeout=self._timeout,
            )
        data = _json(response)
        items = [i for i in data.get("items") or [] if isinstance(i, dict)]
        return items, str((data.get("metadata") or {}).get("resourceVersion") or "")

    def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any]:
        """One JobSchedule; a missing one raises the not-found :class:`CliError`."""
        target = _Target(verb="get", resource=RESOURCE, namespace=namespace, name=name)
        response = self._call(
            target,
            self._custom.get_namespaced_custom_object,
            labels.GROUP,
            labels.VERSION,
            namespace,
            labels.PLURAL,
            name,
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        return _json(response)

    def patch_schedule(
        self, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch of the JobSchedule (metadata and spec; never status)."""
        target = _Target(verb="patch", resource=RESOURCE, namespace=namespace, name=name)
        response = self._call(
            target,
            self._custom.patch_namespaced_custom_object,
            labels.GROUP,
            labels.VERSION,
            namespace,
            labels.PLURAL,
            name,
            dict(patch),
            _content_type=MERGE_PATCH,
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        return _json(response)

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
        from kubernetes.watch import watch as k8s_watch

        iter_resp_lines: Any = k8s_watch.iter_resp_lines

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
        if namespace is None:
            response = self._call(
                target,
                self._custom.list_cluster_custom_object,
                labels.GROUP,
                labels.VERSION,
                labels.PLURAL,
                **kwargs,
            )
        else:
            response = self._call(
                target,
                self._custom.list_namespaced_custom_object,
                labels.GROUP,
                labels.VERSION,
                namespace,
                labels.PLURAL,
                **kwargs,
            )
        from urllib3.exceptions import HTTPError, ReadTimeoutError

        lines = iter_resp_lines(response)
        try:
            while True:
                try:
                    line = next(lines)
                except (StopIteration, ReadTimeoutError):
                    return
                except (HTTPError, OSError) as exc:
                    # A stream dropped mid-watch is the server going away, not a bug.
                    raise CliError(
                        f"lost the watch on the API server at {self.server}: {_reason(exc)}"
                    ) from exc
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
        finally:
            response.release_conn()


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
    from kubernetes import config as config_module

    k8s_config: Any = config_module  # the kubeconfig loaders are untyped
    configuration = k8s.Configuration()
    paths = kubeconfig_paths(options)
    if not paths:
        if not _in_cluster(options):
            raise CliError(
                "no kubeconfig found: set KUBECONFIG or pass --kubeconfig "
                "(kubectl reads the same files)"
            )
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException as exc:
            raise CliError(f"cannot load the in-cluster configuration: {exc}") from exc
    else:
        context, _ = resolve_context(options, paths)
        try:
            k8s_config.load_kube_config(
                config_file=os.pathsep.join(str(p) for p in paths),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (k8s_config.ConfigException, OSError, ValueError) as exc:
            raise CliError(f"invalid kubeconfig: {' '.join(str(exc).split())}") from exc
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
