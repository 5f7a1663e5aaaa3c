"""The Helm chart (charts/jobwarden): lint, and what `helm template` renders.

Rendered YAML is parsed and asserted on as structure. helm comes from the
control plane's build (`bash tests/controlplane/cluster.sh bin-dir`), or
$HELM. When it has not been built the helm tests fail, saying how to build
it; JOBWARDEN_ALLOW_NO_HELM=1 turns that into a skip for a quick local run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "jobwarden"
CRDS = ROOT / "crds"
# libyaml when present: the rendered chart holds the CRD, 400 KB of YAML (5 s in pure Python).
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_render_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "render_manifests", ROOT / "hack" / "render-manifests.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_manifests", module)
    spec.loader.exec_module(module)
    return module


render_manifests = _load_render_module()


def locate_helm() -> Path:
    try:
        helm: Path = render_manifests.find_helm()
    except render_manifests.RenderError as err:
        helm_missing(str(err))
    if not helm.exists():
        helm_missing(f"{helm} does not exist")
    out = subprocess.run([str(helm), "version", "--short"], capture_output=True, text=True)
    assert out.returncode == 0, f"{helm} is there but does not run: {out.stderr}"
    return helm


def helm_missing(why: str) -> None:
    message = (
        f"helm is not available ({why}); build it with "
        "`bash tests/controlplane/cluster.sh build` (or set HELM=/path/to/helm)"
    )
    if os.environ.get("JOBWARDEN_ALLOW_NO_HELM") == "1":
        pytest.skip(message)
    pytest.fail(message)


@pytest.fixture(scope="session")
def helm() -> Path:
    return locate_helm()


class Rendered:
    """The objects of one `helm template`, with lookups by kind and name."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def kinds(self) -> set[str]:
        return {d["kind"] for d in self.docs}

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        metas = [d["metadata"] for d in found]
        assert len(found) == 1, f"{len(found)} {kind} {name or ''}: {metas}"
        obj: dict[str, Any] = found[0]
        return obj

    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    def container(self) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.deployment()["spec"]["template"]["spec"][
            "containers"
        ]
        assert len(containers) == 1
        return containers[0]

    def env(self) -> dict[str, Any]:
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in self.container()["env"]}


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


@contextmanager
def values_file(values: dict[str, Any]) -> Iterator[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(values, f)
    try:
        yield f.name
    finally:
        os.unlink(f.name)


def template(
    helm: Path,
    values: dict[str, Any] | None = None,
    *extra: str,
    release: str = "jobwarden",
    namespace: str = "jobwarden-system",
) -> Rendered:
    with values_file(values or {}) as path:
        out = run_helm(
            helm, "template", release, str(CHART), "--namespace", namespace, "-f", path, *extra
        )
    assert out.returncode == 0, out.stderr
    return Rendered([d for d in yaml.load_all(out.stdout, Loader=LOADER) if d])


def template_error(helm: Path, values: dict[str, Any], *extra: str) -> str:
    with values_file(values) as path:
        out = run_helm(helm, "template", "jobwarden", str(CHART), "-f", path, *extra)
    assert out.returncode != 0, f"rendered although it should fail:\n{out.stdout[:2000]}"
    return out.stderr


HA: dict[str, Any] = {"replicas": 2, "leaderElection": {"enabled": True}}
NAMESPACED: dict[str, Any] = {"watchNamespaces": ["team-a", "team-b"]}
EVERYTHING: dict[str, Any] = {
    **HA,
    **NAMESPACED,
    "selector": "shard=a",
    "dryRun": True,
    "logFormat": "json",
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "dashboard": {"enabled": True},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "ha": HA,
    "namespaced": NAMESPACED,
    "ha-namespaced": {**HA, **NAMESPACED},
    "everything": EVERYTHING,
    "no-crds-no-aggregate": {
        "crds": {"install": False},
        "rbac": {"aggregateToDefaultRoles": False},
    },
}

# What the operator calls, by (apiGroup, resource): exactly these verbs
# (tests/cluster/test_rbac.py proves it against the API server's audit log).
NAMESPACED_GRANTS = {
    ("jobwarden.io", "jobschedules"): {"get", "list", "watch"},
    ("jobwarden.io", "jobschedules/status"): {"patch"},
    ("batch", "jobs"): {"list", "watch", "create", "delete"},
    ("", "pods"): {"list", "patch", "delete"},
    ("", "events"): {"create"},
}
# JobCalendars (cluster-scoped): read, and their status written, in every variant.
CALENDAR_GRANTS = {
    ("jobwarden.io", "jobcalendars"): {"list", "watch"},
    ("jobwarden.io", "jobcalendars/status"): {"patch"},
}
# Secure metrics: each scraper's token and right to /metrics, reviewed (cluster-scoped).
METRICS_AUTH_GRANTS = {
    ("authentication.k8s.io", "tokenreviews"): {"create"},
    ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
}
# The leader Lease (release "jobwarden"): get/update on that one name; create
# cannot be limited by name, so it is granted on leases in the release namespace.
LEASE_GRANTS = {
    ("coordination.k8s.io", "leases[jobwarden]"): {"get", "update"},
    ("coordination.k8s.io", "leases"): {"create"},
}
# The due-soon list: its own ConfigMap, by name, and no other.
DUE_SOON = "jobwarden-due-soon"
DUE_SOON_GRANTS = {("", f"configmaps[{DUE_SOON}]"): {"get", "patch"}}


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """Verbs by (apiGroup, resource); a rule limited to names keys as ``resource[names]``."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role.get("rules") or []:
        assert "nonResourceURLs" not in rule, rule
        names = ",".join(rule.get("resourceNames") or [])
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                key = (group, f"{resource}[{names}]" if names else resource)
                out.setdefault(key, set()).update(rule["verbs"])
    return out


def operator_roles(r: Rendered) -> list[dict[str, Any]]:
    """The operator's own ClusterRole and Roles (not the user-facing ones, nor
    the scrapers' metrics-reader)."""
    return [
        d
        for d in r.all("ClusterRole") + r.all("Role")
        if d["metadata"]["name"] not in ("jobwarden-view", "jobwarden-edit", "jobwarden-admin")
        and not d["metadata"]["name"].endswith("-metrics-reader")
    ]


# --- no helm needed ------------------------------------------------------------


def test_chart_crd_copy_is_byte_identical_to_crds() -> None:
    """charts/jobwarden/files/crds/ is crds/, byte for byte (hack/render-manifests.py syncs it)."""
    sources = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert sources, "crds/ is empty"
    assert sorted(copies) == sorted(sources), "run python hack/render-manifests.py"
    for name in sources:
        assert copies[name] == sources[name], f"{name} differs: run python hack/render-manifests.py"


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "jobwarden"
    assert chart["appVersion"] == "0.1.0"
    assert chart["type"] == "application"


def test_values_schema_covers_every_default_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])


def test_default_values() -> None:
    v = yaml.safe_load((CHART / "values.yaml").read_text())
    assert v["replicas"] == 1
    assert v["strategy"] == {"type": "Recreate"}
    assert v["image"]["repository"] == "jobwarden/jobwarden" and v["image"]["tag"] == ""
    assert v["watchNamespaces"] == [] and v["selector"] == ""
    assert (v["staleAfter"], v["sweepInterval"], v["unhealthyAfter"]) == ("6h", "60s", 3)
    assert v["dryRun"] is False and v["logFormat"] == "text"
    assert v["crds"] == {"install": True, "keep": True}
    assert v["leaderElection"] == {"enabled": False}
    assert v["dashboard"]["labels"] == {"grafana_dashboard": "1"}


def test_no_kopf_peering_left_in_the_chart() -> None:
    """Replicas elect a leader with a Lease; kopf's peering CRDs and objects are gone."""
    assert not (CHART / "crds").exists(), "the chart's crds/ held only kopf's peering CRDs"
    for path in CHART.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".tpl", ".txt", ".json"):
            text = path.read_text()
            assert "kopf.dev" not in text and "peering" not in text.lower(), path


# --- helm lint -------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_clean(helm: Path, variant: str) -> None:
    with values_file(VARIANTS[variant]) as path:
        out = run_helm(helm, "lint", "--strict", str(CHART), "-f", path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


# --- structure of what renders ---------------------------------------------------------


def test_default_render_objects(helm: Path) -> None:
    r = template(helm)
    assert r.kinds() == {
        "ServiceAccount",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Service",
        "Deployment",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    assert [c["metadata"]["name"] for c in r.all("ConfigMap")] == [DUE_SOON]
    names = {(d["kind"], d["metadata"]["name"]) for d in r.docs}
    assert ("ClusterRole", "jobwarden-view") in names and ("ClusterRole", "jobwarden-edit") in names
    for d in r.docs:
        labels = d["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "jobwarden", d["metadata"]
        assert labels["app.kubernetes.io/part-of"] == "jobwarden"
        if d["kind"] in ("ServiceAccount", "Service", "Deployment"):
            assert d["metadata"]["namespace"] == "jobwarden-system"


def test_deployment_defaults(helm: Path) -> None:
    r = template(helm)
    dep = r.deployment()
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pod["serviceAccountName"] == r.one("ServiceAccount")["metadata"]["name"]
    c = r.container()
    assert c["image"] == "jobwarden/jobwarden:0.1.0"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]


def test_security_context(helm: Path) -> None:
    r = template(helm)
    pod = r.deployment()["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = r.container()["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # the only writable path is an emptyDir at /tmp
    mounts = {m["mountPath"]: m["name"] for m in r.container()["volumeMounts"]}
    assert mounts == {"/tmp": "tmp"}
    assert {v["name"]: set(v) for v in pod["volumes"]} == {"tmp": {"name", "emptyDir"}}


def test_service_account_token_only_for_the_operator_pod(helm: Path) -> None:
    r = template(helm)
    assert r.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert r.deployment()["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def test_env_defaults(helm: Path) -> None:
    env = template(helm).env()
    assert env["JOBWARDEN_STALE_AFTER"] == "6h"
    assert env["JOBWARDEN_SWEEP_INTERVAL"] == "60s"
    assert env["JOBWARDEN_UNHEALTHY_AFTER"] == "3"
    assert env["JOBWARDEN_DRY_RUN"] == "false"
    assert env["JOBWARDEN_METRICS_ADDRESS"] == "0.0.0.0:8080"
    assert env["JOBWARDEN_HEALTH_ADDRESS"] == "0.0.0.0:8081"
    assert env["JOBWARDEN_LOG_FORMAT"] == "text"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # The due-soon list lives in the release namespace: the pod's own.
    assert env["JOBWARDEN_DUE_SOON_CONFIGMAP"] == DUE_SOON
    assert env["JOBWARDEN_LEASE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    for unset in (
        "JOBWARDEN_NAMESPACES",
        "JOBWARDEN_SELECTOR",
        "JOBWARDEN_LEASE",
        "JOBWARDEN_PEERING",
        "POD_ID",
    ):
        assert unset not in env
    assert all(isinstance(v, (str, dict)) for v in env.values())


def test_env_carries_every_setting(helm: Path) -> None:
    r = template(
        helm,
        {
            **HA,
            "watchNamespaces": ["a", "b"],
            "selector": "shard in (x,y)",
            "staleAfter": "90m",
            "sweepInterval": "30s",
            "unhealthyAfter": 5,
            "dryRun": True,
            "logFormat": "json",
            "ports": {"metrics": 9090, "health": 9091},
            "extraEnv": [{"name": "EXTRA", "value": "1"}],
        },
    )
    env = r.env()
    assert env["JOBWARDEN_NAMESPACES"] == "a,b"
    assert env["JOBWARDEN_SELECTOR"] == "shard in (x,y)"
    assert env["JOBWARDEN_STALE_AFTER"] == "90m"
    assert env["JOBWARDEN_SWEEP_INTERVAL"] == "30s"
    assert env["JOBWARDEN_UNHEALTHY_AFTER"] == "5"
    assert env["JOBWARDEN_DRY_RUN"] == "true"
    assert env["JOBWARDEN_LOG_FORMAT"] == "json"
    assert env["JOBWARDEN_METRICS_ADDRESS"] == "0.0.0.0:9090"
    assert env["JOBWARDEN_HEALTH_ADDRESS"] == "0.0.0.0:9091"
    assert env["JOBWARDEN_LEASE"] == "jobwarden"
    assert env["JOBWARDEN_LEASE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["EXTRA"] == "1"
    ports = {p["name"]: p["containerPort"] for p in r.container()["ports"]}
    assert ports == {"metrics": 9090, "health": 9091}
    assert r.deployment()["spec"]["replicas"] == 2


def test_image_tag_and_digest(helm: Path) -> None:
    tagged = template(helm, {"image": {"tag": "1.2.3"}}).container()
    assert tagged["image"] == "jobwarden/jobwarden:1.2.3"
    digest = "sha256:" + "a" * 64
    c = template(
        helm, {"image": {"repository": "reg.example/jw", "digest": digest, "pullPolicy": "Always"}}
    ).container()
    assert c["image"] == f"reg.example/jw@{digest}"
    assert c["imagePullPolicy"] == "Always"


def test_metrics_service(helm: Path) -> None:
    r = template(helm)
    svc = r.one("Service")
    assert svc["spec"]["selector"] == r.deployment()["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [
        {
            "name": "metrics",
            "port": 8080,
            "targetPort": "metrics",
            "protocol": "TCP",
            "appProtocol": "https",
        }
    ]
    assert "Service" not in template(helm, {"service": {"enabled": False}}).kinds()


# --- RBAC ------------------------------------------------------------------------------


def test_cluster_wide_rbac_is_exactly_the_contract(helm: Path) -> None:
    r = template(helm)
    roles = {d["metadata"]["name"]: d for d in operator_roles(r)}
    assert set(roles) == {
        "jobwarden",
        "jobwarden-metrics-auth",
        "jobwarden-calendars",
        DUE_SOON,
    }
    assert grants(roles[DUE_SOON]) == DUE_SOON_GRANTS
    role, metrics_auth = roles["jobwarden"], roles["jobwarden-metrics-auth"]
    assert grants(roles["jobwarden-calendars"]) == CALENDAR_GRANTS
    assert role["kind"] == "ClusterRole"
    # Informers by path: no discovery, so no CRD or namespace reads.
    assert grants(role) == NAMESPACED_GRANTS
    assert grants(metrics_auth) == METRICS_AUTH_GRANTS
    # Namespaced grants: only the due-soon list's, in the release namespace.
    assert [d["metadata"]["name"] for d in r.all("Role") + r.all("RoleBinding")] == [DUE_SOON] * 2
    binding = r.one("ClusterRoleBinding", "jobwarden")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "jobwarden", "namespace": "jobwarden-system"}
    ]


def test_watch_namespaces_grant_a_role_per_namespace(helm: Path) -> None:
    r = template(helm, {"watchNamespaces": ["team-a", "team-b", "team-c"]})
    assert not [d for d in r.all("ClusterRole") if d["metadata"]["name"] == "jobwarden"], (
        "with a namespace list, the operator gets Roles in those namespaces only"
    )
    assert not [d for d in r.all("ClusterRoleBinding") if d["metadata"]["name"] == "jobwarden"]
    watched = [d for d in r.all("Role") + r.all("RoleBinding") if d["metadata"]["name"] != DUE_SOON]
    roles = {d["metadata"]["namespace"]: d for d in watched if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in watched if d["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"team-a", "team-b", "team-c"}
    for ns, role in roles.items():
        assert grants(role) == NAMESPACED_GRANTS, ns
        b = bindings[ns]
        assert b["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert b["subjects"] == [
            {"kind": "ServiceAccount", "name": "jobwarden", "namespace": "jobwarden-system"}
        ]
    assert r.env()["JOBWARDEN_NAMESPACES"] == "team-a,team-b,team-c"


def lease_role(
    r: Rendered, *, namespace: str = "jobwarden-system", name: str = "jobwarden-leader-election"
) -> dict[str, Any]:
    role = r.one("Role", name)
    assert role["metadata"]["namespace"] == namespace
    return role


def test_leader_election_cluster_wide(helm: Path) -> None:
    r = template(helm, HA)
    assert grants(r.one("ClusterRole", "jobwarden")) == NAMESPACED_GRANTS
    assert grants(lease_role(r)) == LEASE_GRANTS
    binding = r.one("RoleBinding", "jobwarden-leader-election")
    assert binding["metadata"]["namespace"] == "jobwarden-system"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "jobwarden-leader-election",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "jobwarden", "namespace": "jobwarden-system"}
    ]
    env = r.env()
    assert env["JOBWARDEN_LEASE"] == "jobwarden"
    assert env["JOBWARDEN_LEASE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert r.deployment()["spec"]["replicas"] == 2
    assert not {"ClusterKopfPeering", "KopfPeering", "Lease"} & r.kinds(), (
        "the operator creates its Lease; the chart creates none"
    )


def test_leader_election_namespaced(helm: Path) -> None:
    """The Lease lives in the release namespace, whatever namespaces are watched."""
    r = template(helm, {**HA, **NAMESPACED})
    watched = {
        d["metadata"]["namespace"]: d for d in r.all("Role") if d["metadata"]["name"] == "jobwarden"
    }
    assert set(watched) == {"team-a", "team-b"}
    for role in watched.values():
        assert grants(role) == NAMESPACED_GRANTS
    assert grants(lease_role(r)) == LEASE_GRANTS


def test_leader_election_names_the_lease_after_the_release(helm: Path) -> None:
    r = template(helm, HA, release="prod", namespace="ops")
    assert r.env()["JOBWARDEN_LEASE"] == "prod-jobwarden"
    role = lease_role(r, namespace="ops", name="prod-jobwarden-leader-election")
    assert ("coordination.k8s.io", "leases[prod-jobwarden]") in grants(role)


def test_leader_election_rbac_follows_rbac_create(helm: Path) -> None:
    r = template(helm, {**HA, "rbac": {"create": False, "aggregateToDefaultRoles": False}})
    assert not {"Role", "RoleBinding"} & r.kinds()
    assert r.env()["JOBWARDEN_LEASE"] == "jobwarden"


def test_single_replica_has_no_lease(helm: Path) -> None:
    r = template(helm)
    assert not [d for d in r.all("Role") if "leases" in str(d["rules"])]
    assert "JOBWARDEN_LEASE" not in r.env()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_rbac_rule_reaches_secrets_or_wildcards(helm: Path, variant: str) -> None:
    r = template(helm, VARIANTS[variant])
    roles = r.all("ClusterRole") + r.all("Role")
    assert roles
    for role in roles:
        for rule in role.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs", "nonResourceURLs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
            if rule.get("resources") == ["configmaps"]:
                # The due-soon list's own ConfigMap, by name, read and patched: no other.
                assert rule.get("resourceNames") == [DUE_SOON], rule
                assert set(rule["verbs"]) <= {"get", "patch"}, rule
                continue
            assert not {
                "secrets",
                "configmaps",
                "serviceaccounts",
                "roles",
                "rolebindings",
                "clusterroles",
                "clusterrolebindings",
            } & set(rule.get("resources", [])), rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_operator_grants_never_exceed_the_contract(helm: Path, variant: str) -> None:
    allowed = {
        **NAMESPACED_GRANTS,
        **LEASE_GRANTS,
        **METRICS_AUTH_GRANTS,
        **CALENDAR_GRANTS,
        **DUE_SOON_GRANTS,
    }
    for role in operator_roles(template(helm, VARIANTS[variant])):
        for key, verbs in grants(role).items():
            assert key in allowed and verbs <= allowed[key], (role["metadata"]["name"], key, verbs)


def test_the_due_soon_list_is_one_configmap_the_operator_may_only_read_and_patch(
    helm: Path,
) -> None:
    """Created by the chart without data (an upgrade never resets what the operator
    wrote), named to the operator, and granted by name in the release namespace."""
    r = template(helm)
    config = r.one("ConfigMap", DUE_SOON)
    assert config["metadata"]["namespace"] == "jobwarden-system" and "data" not in config
    assert grants(r.one("Role", DUE_SOON)) == DUE_SOON_GRANTS
    binding = r.one("RoleBinding", DUE_SOON)
    assert binding["metadata"]["namespace"] == "jobwarden-system"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "jobwarden", "namespace": "jobwarden-system"}
    ]
    env = {e["name"]: e.get("value") for e in r.container()["env"]}
    assert env["JOBWARDEN_DUE_SOON_CONFIGMAP"] == DUE_SOON
    off = template(helm, {"dueSoonList": {"enabled": False}})
    assert not off.all("ConfigMap") and not off.all("Role")
    off_env = {e["name"] for e in off.container()["env"]}
    assert "JOBWARDEN_DUE_SOON_CONFIGMAP" not in off_env


@pytest.mark.parametrize("variant", ["default", "namespaced"])
def test_calendars_are_read_cluster_wide_in_every_variant(helm: Path, variant: str) -> None:
    """A cluster-scoped ClusterRole with exactly the calendar grants, bound to the operator."""
    r = template(helm, VARIANTS[variant])
    assert grants(r.one("ClusterRole", "jobwarden-calendars")) == CALENDAR_GRANTS
    binding = r.one("ClusterRoleBinding", "jobwarden-calendars")
    assert binding["roleRef"]["name"] == "jobwarden-calendars"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "jobwarden", "namespace": "jobwarden-system"}
    ]


def test_aggregated_user_roles(helm: Path) -> None:
    r = template(helm)
    view = r.one("ClusterRole", "jobwarden-view")
    edit = r.one("ClusterRole", "jobwarden-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    assert grants(view)[("jobwarden.io", "jobschedules")] == {"get", "list", "watch"}
    assert set(grants(view)) <= {
        ("jobwarden.io", "jobschedules"),
        ("jobwarden.io", "jobschedules/status"),
    }
    g = grants(edit)
    writer = {"get", "list", "watch", "create", "update", "patch", "delete"}
    assert writer <= g[("jobwarden.io", "jobschedules")]
    # users never write status: the operator owns it
    assert g.get(("jobwarden.io", "jobschedules/status"), set()) <= {"get", "list", "watch"}
    without = template(helm, {"rbac": {"aggregateToDefaultRoles": False}})
    assert "jobwarden-view" not in {d["metadata"]["name"] for d in without.docs}


def test_rbac_create_false_renders_no_operator_rbac(helm: Path) -> None:
    r = template(helm, {"rbac": {"create": False, "aggregateToDefaultRoles": False}})
    assert not {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} & r.kinds()


def test_existing_service_account(helm: Path) -> None:
    r = template(helm, {"serviceAccount": {"create": False, "name": "preexisting"}})
    assert "ServiceAccount" not in r.kinds()
    assert r.deployment()["spec"]["template"]["spec"]["serviceAccountName"] == "preexisting"
    for binding in r.all("ClusterRoleBinding"):  # the operator's and its metrics reviews'
        assert binding["subjects"][0]["name"] == "preexisting"


# --- refused values ----------------------------------------------------------------------


def test_replicas_without_leader_election_fails_in_schema_and_template(helm: Path) -> None:
    assert "leaderElection" in template_error(helm, {"replicas": 2})
    # the template's own check holds even when the schema is not applied
    err = template_error(helm, {"replicas": 3}, "--skip-schema-validation")
    assert "requires leaderElection.enabled" in err


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"logFormat": "xml"}, "logFormat"),
        ({"staleAfter": "6 hours"}, "staleAfter"),
        ({"sweepInterval": 60}, "sweepInterval"),
        ({"unhealthyAfter": 0}, "unhealthyAfter"),
        ({"replicass": 1}, "replicass"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
        ({"watchNamespaces": ["a", "a"]}, "watchNamespaces"),
        ({"image": {"digest": "latest"}}, "digest"),
    ],
)
def test_schema_refuses_bad_values(helm: Path, values: dict[str, Any], field: str) -> None:
    """Refused by values.schema.json, with an error naming the bad value's field."""
    err = template_error(helm, values)
    assert "don't meet the specifications of the schema" in err, err
    assert field in err.split("schema", 1)[1], err


def test_zero_replicas_is_allowed(helm: Path) -> None:
    assert template(helm, {"replicas": 0}).deployment()["spec"]["replicas"] == 0


# --- CRDs ---------------------------------------------------------------------------------


def _without_chart_metadata(crd: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    crd = json.loads(json.dumps(crd))
    crd["metadata"].pop("annotations", None)
    crd["metadata"]["labels"] = source["metadata"].get("labels")
    if crd["metadata"]["labels"] is None:
        del crd["metadata"]["labels"]
    return crd


def test_rendered_crd_is_the_source_crd(helm: Path) -> None:
    r = template(helm)
    rendered = {d["metadata"]["name"]: d for d in r.all("CustomResourceDefinition")}
    sources = [yaml.load(p.read_text(), Loader=LOADER) for p in sorted(CRDS.glob("*.yaml"))]
    assert set(rendered) == {s["metadata"]["name"] for s in sources}
    for source in sources:
        crd = rendered[source["metadata"]["name"]]
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        # the CRD's own labels win; the chart's are added
        assert source["metadata"].get("labels", {}).items() <= crd["metadata"]["labels"].items()
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "jobwarden"
        assert _without_chart_metadata(crd, source) == source


def test_crd_keep_and_install_switches(helm: Path) -> None:
    for crd in template(helm, {"crds": {"keep": False}}).all("CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})
    assert "CustomResourceDefinition" not in template(helm, {"crds": {"install": False}}).kinds()


# --- monitoring ------------------------------------------------------------------------------


def test_monitoring_is_off_by_default(helm: Path) -> None:
    r = template(helm)
    assert not {"ServiceMonitor", "PrometheusRule"} & r.kinds()
    assert [c["metadata"]["name"] for c in r.all("ConfigMap")] == [DUE_SOON], "no dashboard"


def test_service_monitor(helm: Path) -> None:
    r = template(
        helm, {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}}}
    )
    sm = r.one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kps"
    service_labels = r.one("Service")["metadata"]["labels"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["jobwarden-system"]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert "serviceMonitor.enabled requires service.enabled" in template_error(
        helm, {"service": {"enabled": False}, "metrics": {"serviceMonitor": {"enabled": True}}}
    )


def test_prometheus_rule(helm: Path) -> None:
    r = template(
        helm,
        {
            "metrics": {
                "prometheusRule": {
                    "enabled": True,
                    "additionalRules": [{"alert": "Extra", "expr": "vector(1)"}],
                }
            }
        },
    )
    rule = r.one("PrometheusRule")
    (group,) = rule["spec"]["groups"]
    alerts = {a["alert"]: a for a in group["rules"]}
    assert set(alerts) == {
        "JobwardenScheduleUnhealthy",
        "JobwardenStaleRuns",
        "JobwardenOperatorDown",
        "JobwardenNoLeader",
        "Extra",
    }
    service = r.one("Service")["metadata"]["name"]
    unhealthy = alerts["JobwardenScheduleUnhealthy"]
    assert "jobwarden_schedules{" in unhealthy["expr"] and 'health="Unhealthy"' in unhealthy["expr"]
    assert unhealthy["for"] == "15m"
    stale = alerts["JobwardenStaleRuns"]
    assert "increase(jobwarden_stale_runs_total{" in stale["expr"]
    down = alerts["JobwardenOperatorDown"]
    assert down["expr"] == f'absent(up{{job="{service}", namespace="jobwarden-system"}} == 1)'
    for a in alerts.values():
        if a["alert"] != "Extra":
            assert a["labels"]["severity"] in ("warning", "critical")
            assert a["annotations"]["summary"] and a["annotations"]["description"]
    # Prometheus templating reaches Prometheus unexpanded
    assert "{{ $value }}" in unhealthy["annotations"]["description"]


def test_grafana_dashboard(helm: Path) -> None:
    r = template(helm, {"dashboard": {"enabled": True, "namespace": "monitoring"}})
    cm = r.one("ConfigMap", "jobwarden-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["jobwarden.json"])
    assert dashboard == json.loads((CHART / "files" / "dashboards" / "jobwarden.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "jobwarden_runs_total",
        "jobwarden_schedule_lag_seconds_bucket",
        "jobwarden_run_duration_seconds_bucket",
        "jobwarden_stale_runs_total",
        "jobwarden_schedules",
        "jobwarden_active_runs",
    ):
        assert metric in exprs, metric
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# --- several releases (sharding) ------------------------------------------------------


def test_two_shards_do_not_collide(helm: Path) -> None:
    a = template(helm, {"selector": "shard=a"}, release="shard-a")
    b = template(
        helm,
        {
            "selector": "shard=b",
            "crds": {"install": False},
            "rbac": {"aggregateToDefaultRoles": False},
        },
        release="shard-b",
    )

    def keys(r: Rendered) -> set[tuple[str, str, str]]:
        return {
            (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in r.docs
        }

    assert not keys(a) & keys(b)
    assert a.deployment()["spec"]["selector"] != b.deployment()["spec"]["selector"]


def test_packaged_chart_carries_the_crd(helm: Path, tmp_path: Path) -> None:
    out = run_helm(helm, "package", str(CHART), "-d", str(tmp_path))
    assert out.returncode == 0, out.stderr
    (archive,) = tmp_path.glob("jobwarden-*.tgz")
    rendered = run_helm(helm, "template", "jobwarden", str(archive), "--include-crds")
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.load_all(rendered.stdout, Loader=LOADER) if d]
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert names == {"jobschedules.jobwarden.io", "jobcalendars.jobwarden.io"}
