"""Finding the cluster the way kubectl does, from the user's own kubeconfig.

The plugin is a kubectl plugin, so it finds the cluster as kubectl does:
``--kubeconfig``, else the ``KUBECONFIG`` list of files, else
``~/.kube/config`` (or the pod's ServiceAccount when run inside a cluster);
``--context`` picks the context, whose namespace is the default for
``--namespace``. kubectl passes a plugin its arguments untouched, so these
rules are implemented here. Everything but :func:`load_configuration` reads
only local files, so ``preview`` can use it offline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from jobwarden.cli.errors import CliError

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "ConnectOptions",
    "in_cluster",
    "kubeconfig_paths",
    "load_configuration",
    "resolve_context",
    "resolve_namespace",
]

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")


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


def in_cluster(options: ConnectOptions) -> bool:
    """Whether this runs in a pod with a ServiceAccount token, kubectl's last resort."""
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
        if not paths and in_cluster(options):
            text = (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip()
            return text or "default"
        _, namespace = resolve_context(options, paths)
    except (CliError, OSError):
        if strict:
            raise
        return "default"
    return namespace or "default"


def load_configuration(options: ConnectOptions) -> Any:
    """The client configuration of the chosen context (or of the pod's ServiceAccount).

    Returned as ``Any``: the kubernetes client's Configuration is untyped.
    """
    from kubernetes import client as k8s
    from kubernetes import config as config_module

    k8s_config: Any = config_module  # the kubeconfig loaders are untyped
    configuration = k8s.Configuration()
    paths = kubeconfig_paths(options)
    if not paths:
        if not in_cluster(options):
            raise CliError(
                "no kubeconfig found: set KUBECONFIG or pass --kubeconfig "
                "(kubectl reads the same files)"
            )
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException as exc:
            raise CliError(f"cannot load the in-cluster configuration: {exc}") from exc
        return configuration
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
    return configuration
