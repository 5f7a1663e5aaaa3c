"""Shared pieces of the delivery tests: Helm releases, rendered charts, dry runs,
ServiceAccount identities and the API server's audit log.

Every release a test installs has a unique name (so its cluster-scoped RBAC
objects are its own) and leaves the JobSchedule CRD alone: the session
fixture applies ``crds/`` with server-side apply, and a Helm release that
also owned the CRD would fight it over the fields (and, uninstalled with
``crds.keep=false``, delete every JobSchedule of every concurrent test).
So installs set ``crds.install=false``; the chart's CRD template is proven by
server-side dry runs instead, which persist nothing. The user-facing roles
(``jobwarden-view``/``-edit``) have fixed names, so installs leave them out
too; tests/cluster/test_rbac.py proves them under names of their own. The
admission policies are on only in namespace-list installs (see SHARED_SAFE).
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.kube import Cluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "jobwarden"
MANIFESTS = ROOT / "manifests"
CLUSTER_SH = ROOT / "tests" / "controlplane" / "cluster.sh"

# Values every test install uses: see the module docstring. The admission
# policies are cluster-scoped: installed for all namespaces they would check
# every concurrent test's JobSchedules, so tests turn them on only with
# watchNamespaces, where the bindings reach the test's own namespaces.
SHARED_SAFE: dict[str, Any] = {
    "crds": {"install": False},
    "rbac": {"aggregateToDefaultRoles": False},
    "admissionPolicy": {"enabled": False},
}
POLICY_ON: dict[str, Any] = {"admissionPolicy": {"enabled": True}}
# Several replicas, one acting: the leader Lease.
HA: dict[str, Any] = {"replicas": 2, "leaderElection": {"enabled": True}}
# Kinds of the Prometheus Operator: their CRDs are not part of this control plane.
MONITORING_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` laid over ``base``, maps merged key by key (as Helm merges values)."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def fullname(release: str) -> str:
    """The chart's resource-name prefix (and ServiceAccount name) for ``release``."""
    return release if "jobwarden" in release else f"{release}-jobwarden"


# --- helm ---------------------------------------------------------------------------------


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the helm the control plane's build made (else the one on PATH) on ``cluster``."""
    exe = "helm"
    if cluster.bin_dir is not None and (cluster.bin_dir / "helm").exists():
        exe = str(cluster.bin_dir / "helm")
    proc = subprocess.run(
        [exe, *args], capture_output=True, text=True, env=cluster.env(), timeout=180
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def values_file(directory: Path, values: Mapping[str, Any]) -> Path:
    path = directory / f"values-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    return path


def render(
    cluster: Cluster, *, release: str, namespace: str, values: Mapping[str, Any], directory: Path
) -> list[dict[str, Any]]:
    """``helm template`` of the chart, parsed."""
    args = [
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "-f",
        str(values_file(directory, values)),
    ]
    return [d for d in yaml.safe_load_all(helm(cluster, *args).stdout) if d]


@dataclass(frozen=True)
class Release:
    cluster: Cluster
    name: str
    namespace: str
    directory: Path

    @property
    def fullname(self) -> str:
        return fullname(self.name)

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    def upgrade(self, values: Mapping[str, Any]) -> None:
        """``helm upgrade`` with these values in full (nothing reused from before)."""
        helm(
            self.cluster,
            "upgrade",
            self.name,
            str(CHART),
            "--namespace",
            self.namespace,
            "-f",
            str(values_file(self.directory, values)),
            "--wait",
            "--timeout",
            "120s",
        )

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(
            helm(self.cluster, "status", self.name, "-n", self.namespace, "-o", "json").stdout
        )
        return out

    def history(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json.loads(
            helm(self.cluster, "history", self.name, "-n", self.namespace, "-o", "json").stdout
        )
        return out

    def uninstall(self, *, check: bool = True) -> None:
        helm(
            self.cluster,
            "uninstall",
            self.name,
            "--namespace",
            self.namespace,
            "--wait",
            "--timeout",
            "120s",
            check=check,
        )


@contextmanager
def installed(
    cluster: Cluster,
    *,
    namespace: str,
    values: Mapping[str, Any],
    directory: Path,
) -> Iterator[Release]:
    """A release of the chart for the duration of the block (uninstalled after, if still there)."""
    rel = Release(cluster, unique("r"), namespace, directory)
    helm(
        cluster,
        "install",
        rel.name,
        str(CHART),
        "--namespace",
        namespace,
        "-f",
        str(values_file(directory, values)),
        "--wait",
        "--timeout",
        "120s",
    )
    try:
        yield rel
    finally:
        rel.uninstall(check=False)


# --- namespaces ---------------------------------------------------------------------------


@contextmanager
def temp_namespace(
    cluster: Cluster, prefix: str, labels: Mapping[str, str] | None = None
) -> Iterator[str]:
    """One more namespace for a test that needs two (deleted afterwards, without waiting)."""
    name = unique(prefix)
    cluster.kubectl("create", "namespace", name)
    if labels:
        label(cluster, name, labels)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def label(cluster: Cluster, namespace: str, labels: Mapping[str, str]) -> None:
    cluster.kubectl(
        "label", "--overwrite", "namespace", namespace, *(f"{k}={v}" for k, v in labels.items())
    )


# --- server-side dry runs -----------------------------------------------------------------


def api_serves(cluster: Cluster, kind: str) -> bool:
    """Whether the API server knows ``kind`` (e.g. the Prometheus Operator's ServiceMonitor)."""
    out = cluster.kubectl("api-resources", "--no-headers", "-o", "wide", check=False).stdout
    return any(kind in line.split() for line in out.splitlines())


@dataclass(frozen=True)
class DryRun:
    objects: list[str]  # "kind/name" the server accepted
    warnings: list[str]


def dry_run(cluster: Cluster, docs: list[dict[str, Any]]) -> DryRun:
    """``kubectl apply --dry-run=server`` of ``docs``: validated and admitted, never persisted.

    Fails naming the server's error when any object is refused.
    """
    text = yaml.safe_dump_all(docs, sort_keys=False)
    proc = cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-", input=text, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"the API server refused the dry run:\n{proc.stderr.strip()}")
    warnings = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith("Warning:") and "last-applied-configuration" not in line
    ]
    return DryRun(objects=proc.stdout.split(), warnings=warnings)


def object_names(docs: list[dict[str, Any]]) -> list[str]:
    """``kind.group/name`` as ``kubectl -o name`` prints it, for comparing with a dry run."""
    out = []
    for doc in docs:
        group = doc["apiVersion"].rpartition("/")[0]
        kind = doc["kind"].lower() + (f".{group}" if group else "")
        out.append(f"{kind}/{doc['metadata']['name']}")
    return out


# --- identities ---------------------------------------------------------------------------


def service_account_cluster(cluster: Cluster, *, namespace: str, name: str, path: Path) -> Cluster:
    """``cluster`` as ServiceAccount ``namespace/name`` sees it: a kubeconfig with its token.

    Server and CA come from the admin kubeconfig; the credentials are only the
    token, so every request is authorized by the ServiceAccount's RBAC alone.
    """
    admin = yaml.safe_load(
        cluster.kubectl("config", "view", "--raw", "--minify", "--flatten").stdout
    )
    server = admin["clusters"][0]["cluster"]
    token = cluster.kubectl(
        "create", "token", name, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    entry: dict[str, Any] = {"server": server["server"]}
    if "certificate-authority-data" in server:
        entry["certificate-authority-data"] = server["certificate-authority-data"]
    elif "certificate-authority" in server:
        ca = Path(server["certificate-authority"]).read_bytes()
        entry["certificate-authority-data"] = base64.b64encode(ca).decode()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sa",
        "clusters": [{"name": "c", "cluster": entry}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": namespace}}
        ],
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return Cluster(kubeconfig=path, bin_dir=cluster.bin_dir, local=cluster.local)


def can_i(
    cluster: Cluster,
    user: str,
    verb: str,
    resource: str,
    *,
    namespace: str | None = None,
    subresource: str | None = None,
) -> bool:
    """``kubectl auth can-i`` as ``user`` (impersonated by the admin)."""
    args = ["auth", "can-i", verb, resource]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    if subresource:
        args.append(f"--subresource={subresource}")
    proc = cluster.kubectl(*args, as_user=user, check=False)
    answer = proc.stdout.strip()
    if answer not in ("yes", "no"):
        raise AssertionError(f"kubectl auth can-i {' '.join(args)}: {proc.stderr.strip()}")
    return answer == "yes"


# (verb, resource, namespace or None for all namespaces / cluster scope, subresource or None)
Question = tuple[str, str, str | None, str | None]


def can_i_all(cluster: Cluster, user: str, questions: list[Question]) -> dict[Question, bool]:
    """:func:`can_i` for many questions at once (each is a kubectl process: run a few at a time)."""
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = pool.map(
            lambda q: can_i(cluster, user, q[0], q[1], namespace=q[2], subresource=q[3]),
            questions,
        )
        return dict(zip(questions, answers, strict=True))


# Grants: (apiGroup, resource[/subresource], verb).
Grant = tuple[str, str, str]


def rules_review(cluster: Cluster, namespace: str, *, as_user: str | None = None) -> set[Grant]:
    """What the caller may do in ``namespace`` (SelfSubjectRulesReview), as grants."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    out = cluster.kubectl(
        "create",
        "--validate=false",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(review),
        as_user=as_user,
    )
    status = json.loads(out.stdout)["status"]
    assert not status.get("incomplete"), status.get("evaluationError")
    grants: set[Grant] = set()
    for rule in status.get("resourceRules") or []:
        # A rule limited to resourceNames (the leader Lease) still counts: the
        # calls it allows are by name, and the audit log names them too.
        for group in rule.get("apiGroups") or [""]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    grants.add((group, resource, verb))
    return grants


# --- the audit log (local control plane only) ---------------------------------------------


def audit_log(cluster: Cluster) -> Path | None:
    """The local control plane's audit log; None on any other cluster."""
    if not cluster.local:
        return None
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "workdir"], capture_output=True, text=True, check=False
    )
    path = Path(out.stdout.strip()) / "logs" / "audit.log"
    return path if out.returncode == 0 and path.exists() else None


@dataclass(frozen=True)
class Call:
    grant: Grant
    namespace: str | None
    code: int
    uri: str


def _audit_entries(path: Path, *, offset: int, needle: str) -> Iterator[dict[str, Any]]:
    """The audit log's entries since byte ``offset`` whose line holds ``needle``.

    The API server appends while this reads: a last line not yet whole is left out.
    """
    if path.stat().st_size < offset:
        offset = 0  # rotated meanwhile
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            if needle.encode() in raw and raw.endswith(b"\n"):
                yield json.loads(raw)


def _code(entry: dict[str, Any]) -> int:
    return int((entry.get("responseStatus") or {}).get("code") or 0)


def writers_of(path: Path, *, offset: int, uri: str) -> list[str]:
    """Who wrote to ``uri`` since byte ``offset`` (accepted PATCHes, in the log's order)."""
    found: dict[str, str] = {}
    for entry in _audit_entries(path, offset=offset, needle=uri):
        if (
            entry.get("verb") == "patch"
            and entry.get("requestURI", "").split("?")[0] == uri
            and 200 <= _code(entry) < 300
        ):
            found.setdefault(entry["auditID"], (entry.get("user") or {}).get("username", ""))
    return list(found.values())


def audit_calls(path: Path, *, offset: int, user: str) -> list[Call]:
    """The resource requests ``user`` made since byte ``offset`` (one per audit ID)."""
    calls: dict[str, Call] = {}
    for entry in _audit_entries(path, offset=offset, needle=user):
        ref = entry.get("objectRef")
        if (entry.get("user") or {}).get("username") != user or not ref:
            continue  # another user, or discovery (/api, /apis): open to everyone
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        calls[entry["auditID"]] = Call(
            (ref.get("apiGroup", ""), resource, entry["verb"]),
            ref.get("namespace"),
            _code(entry),
            entry["requestURI"],
        )
    return list(calls.values())
