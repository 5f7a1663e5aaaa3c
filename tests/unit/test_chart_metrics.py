"""The chart's secure metrics, PodDisruptionBudget, anti-affinity and NetworkPolicy,
as `helm template` renders them (helm as in tests/unit/test_chart.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_chart import HA, Rendered, grants, helm, template, template_error

__all__ = ["helm"]  # the fixture, shared with test_chart.py

SA = {"kind": "ServiceAccount", "name": "jobwarden", "namespace": "jobwarden-system"}
PROMETHEUS = {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}


def pod_spec(r: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = r.deployment()["spec"]["template"]["spec"]
    return spec


def test_metrics_are_secure_by_default(helm: Path) -> None:
    r = template(helm)
    env = r.env()
    assert env["JOBWARDEN_METRICS_SECURE"] == "true"
    assert env["JOBWARDEN_METRICS_SCHEDULE_LABELS"] == "true"
    assert "JOBWARDEN_METRICS_CERT_FILE" not in env and "JOBWARDEN_METRICS_KEY_FILE" not in env
    # The operator may review tokens and access, and nothing more for it.
    auth = r.one("ClusterRole", "jobwarden-metrics-auth")
    assert grants(auth) == {
        ("authentication.k8s.io", "tokenreviews"): {"create"},
        ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
    }
    binding = r.one("ClusterRoleBinding", "jobwarden-metrics-auth")
    assert binding["roleRef"]["name"] == "jobwarden-metrics-auth"
    assert binding["subjects"] == [SA]
    # Scrapers: GET on /metrics, nothing else; bound to no one unless asked.
    reader = r.one("ClusterRole", "jobwarden-metrics-reader")
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert not [b for b in r.all("ClusterRoleBinding") if b["roleRef"]["name"].endswith("-reader")]


def test_metrics_auth_rbac_is_cluster_wide_in_namespace_list_mode(helm: Path) -> None:
    """TokenReview and SubjectAccessReview are cluster-scoped: a Role cannot grant them."""
    r = template(helm, {"watchNamespaces": ["team-a"]})
    assert r.one("ClusterRole", "jobwarden-metrics-auth")
    assert r.one("ClusterRoleBinding", "jobwarden-metrics-auth")["subjects"] == [SA]


def test_reader_subjects_are_bound(helm: Path) -> None:
    r = template(helm, {"metrics": {"reader": {"subjects": [PROMETHEUS]}}})
    binding = r.one("ClusterRoleBinding", "jobwarden-metrics-reader")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "jobwarden-metrics-reader",
    }
    assert binding["subjects"] == [PROMETHEUS]


def test_insecure_metrics_drop_the_review_rbac(helm: Path) -> None:
    r = template(helm, {"metrics": {"secure": False, "scheduleLabels": False}})
    assert r.env()["JOBWARDEN_METRICS_SECURE"] == "false"
    assert r.env()["JOBWARDEN_METRICS_SCHEDULE_LABELS"] == "false"
    names = {d["metadata"]["name"] for d in r.all("ClusterRole")}
    assert not {"jobwarden-metrics-auth", "jobwarden-metrics-reader"} & names
    assert r.one("Service")["spec"]["ports"][0]["appProtocol"] == "http"


def test_a_tls_secret_is_mounted_and_named_to_the_operator(helm: Path) -> None:
    r = template(helm, {"metrics": {"tls": {"secretName": "jobwarden-metrics-tls"}}})
    env = r.env()
    assert env["JOBWARDEN_METRICS_CERT_FILE"] == "/etc/jobwarden/metrics-tls/tls.crt"
    assert env["JOBWARDEN_METRICS_KEY_FILE"] == "/etc/jobwarden/metrics-tls/tls.key"
    mounts = {m["name"]: m for m in r.container()["volumeMounts"]}
    assert mounts["metrics-tls"] == {
        "name": "metrics-tls",
        "mountPath": "/etc/jobwarden/metrics-tls",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in pod_spec(r)["volumes"]}
    assert volumes["metrics-tls"]["secret"]["secretName"] == "jobwarden-metrics-tls"


def test_service_monitor_scrapes_https_with_prometheus_token(helm: Path) -> None:
    sm = template(helm, {"metrics": {"serviceMonitor": {"enabled": True}}})
    (endpoint,) = sm.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}
    assert "authorization" not in endpoint

    verified = {"ca": {"secret": {"name": "ca", "key": "ca.crt"}}, "serverName": "jw"}
    credentials = {"type": "Bearer", "credentials": {"name": "scraper", "key": "token"}}
    given = template(
        helm,
        {
            "metrics": {
                "serviceMonitor": {
                    "enabled": True,
                    "tlsConfig": verified,
                    "authorization": credentials,
                }
            }
        },
    )
    (endpoint,) = given.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["tlsConfig"] == verified  # no insecureSkipVerify left behind
    assert endpoint["authorization"] == credentials
    assert "bearerTokenFile" not in endpoint

    plain = template(helm, {"metrics": {"secure": False, "serviceMonitor": {"enabled": True}}})
    (endpoint,) = plain.one("ServiceMonitor")["spec"]["endpoints"]
    assert not {"scheme", "tlsConfig", "bearerTokenFile", "authorization"} & set(endpoint)


def test_one_replica_gets_no_pdb_and_no_anti_affinity(helm: Path) -> None:
    r = template(helm)
    assert "PodDisruptionBudget" not in r.kinds()
    assert "affinity" not in pod_spec(r)


def test_replicas_get_a_pdb_and_spread_over_nodes(helm: Path) -> None:
    r = template(helm, HA)
    pdb = r.one("PodDisruptionBudget")
    pod_labels = r.deployment()["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (preferred,) = pod_spec(r)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == pdb["spec"]["selector"]["matchLabels"]

    hard = pod_spec(template(helm, {**HA, "podAntiAffinity": "hard"}))["affinity"]
    (required,) = hard["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == term
    assert "affinity" not in pod_spec(template(helm, {**HA, "podAntiAffinity": "none"}))
    mine = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    assert pod_spec(template(helm, {**HA, "affinity": mine}))["affinity"] == mine


def test_network_policy_is_optional_and_narrow(helm: Path) -> None:
    assert "NetworkPolicy" not in template(helm).kinds()
    peers = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    r = template(helm, {"networkPolicy": {"enabled": True, "metricsFrom": peers}})
    spec = r.one("NetworkPolicy")["spec"]
    assert spec["podSelector"] == r.deployment()["spec"]["selector"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    metrics, health = spec["ingress"]
    assert metrics == {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": peers}
    assert health == {"ports": [{"port": "health", "protocol": "TCP"}]}
    dns, api = spec["egress"]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert [p["port"] for p in api["ports"]] == [443, 6443] and "to" not in api
    # Container ports the policy names exist under those names.
    assert {p["name"] for p in r.container()["ports"]} >= {"metrics", "health"}


@pytest.mark.parametrize(
    "values",
    [
        {"podAntiAffinity": "sometimes"},
        {"podDisruptionBudget": {"minAvailable": -1}},
        {"networkPolicy": {"apiServerPorts": [0]}},
        {"networkPolicy": {"enabled": "yes"}},
        {"metrics": {"secure": "on"}},
        {"metrics": {"tls": {"secret": "x"}}},
        {"metrics": {"reader": {"subjects": [{"kind": "Robot", "name": "r"}]}}},
    ],
)
def test_schema_refuses_bad_metrics_and_availability_values(
    helm: Path, values: dict[str, Any]
) -> None:
    assert "values don't meet the specifications of the schema" in template_error(helm, values)
