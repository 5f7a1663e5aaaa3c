"""The Helm chart on a real API server: a release's life, and rendered output it accepts.

`helm template` and the unit tests say what the chart renders; only the API
server says whether that is valid (schemas, admission, Pod Security) and
whether install, upgrade and uninstall really do what they promise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cluster._delivery import CHART as CHART_DIR
from tests.cluster._delivery import (
    HA,
    MONITORING_KINDS,
    POLICY_ON,
    RESTRICTED,
    SHARED_SAFE,
    api_serves,
    dry_run,
    fullname,
    helm,
    installed,
    label,
    merged,
    object_names,
    render,
    temp_namespace,
    unique,
    values_file,
)
from tests.support.kube import Cluster, wait_for
from tests.support.schedules import schedule

CRD = "jobschedules.jobwarden.io"
# Every CRD the chart ships; Helm names the first it finds someone else owns.
CHART_CRDS = tuple(path.stem for path in sorted((CHART_DIR / "files" / "crds").glob("*.yaml")))


def deployment(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.get_json("deployment", name, "-n", namespace)
    return found


def env_of(dep: dict[str, Any]) -> dict[str, str]:
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def running_pods(cluster: Cluster, namespace: str, release: str) -> list[str]:
    pods = cluster.pods(namespace, f"app.kubernetes.io/instance={release}")
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    )


def exists(cluster: Cluster, *args: str) -> bool:
    proc = cluster.kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False)
    assert proc.returncode == 0, proc.stderr
    return bool(proc.stdout.strip())


def crd_ownership(cluster: Cluster) -> tuple[set[str], dict[str, str]]:
    """Who manages the JobSchedule CRD's fields, and its Helm ownership annotations."""
    crd = cluster.get_json(f"crd/{CRD}", "--show-managed-fields")
    managers = {m["manager"] for m in crd["metadata"].get("managedFields") or []}
    annotations = {
        k: v
        for k, v in (crd["metadata"].get("annotations") or {}).items()
        if k.startswith("meta.helm.sh/")
    }
    return managers, annotations


def test_install_upgrade_uninstall(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """A release installs into a `restricted` namespace, upgrades a setting, uninstalls clean."""
    label(cluster, namespace, RESTRICTED)
    crd_before = crd_ownership(cluster)
    values = merged(SHARED_SAFE, {"staleAfter": "6h"})
    with installed(cluster, namespace=namespace, values=values, directory=tmp_path) as rel:
        name = rel.fullname
        status = rel.status()
        assert (status["info"]["status"], status["version"]) == ("deployed", 1)
        first = deployment(cluster, namespace, name)
        assert env_of(first)["JOBWARDEN_STALE_AFTER"] == "6h"
        # Pod Security admission refuses a pod that breaks `restricted` when the
        # ReplicaSet creates it: a running pod proves the operator's pod meets it.
        (pod,) = wait_for(
            lambda: running_pods(cluster, namespace, rel.name),
            timeout=60,
            what="the operator's pod admitted and running",
        )
        sa = cluster.get_json("serviceaccount", name, "-n", namespace)
        assert sa["automountServiceAccountToken"] is False
        assert first["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
        for kind in ("clusterrole", "clusterrolebinding"):
            assert exists(cluster, kind, name), kind
        assert exists(cluster, "service", f"{name}-metrics", "-n", namespace)

        rel.upgrade(merged(values, {"staleAfter": "90m"}))
        second = deployment(cluster, namespace, name)
        assert env_of(second)["JOBWARDEN_STALE_AFTER"] == "90m"
        assert second["metadata"]["generation"] > first["metadata"]["generation"]
        assert [(h["revision"], h["status"]) for h in rel.history()] == [
            (1, "superseded"),
            (2, "deployed"),
        ]
        # Recreate: the old pod goes before the new one (with the new env) runs.
        (new_pod,) = wait_for(
            lambda: [p for p in running_pods(cluster, namespace, rel.name) if p != pod],
            timeout=60,
            what="the upgraded pod running",
        )
        wait_for(
            lambda: running_pods(cluster, namespace, rel.name) == [new_pod],
            timeout=60,
            what="the old pod gone",
        )

        rel.uninstall()
        for args in (
            ["deployment", name],
            ["serviceaccount", name],
            ["service", f"{name}-metrics"],
        ):
            assert not exists(cluster, *args, "-n", namespace), args
        for kind in ("clusterrole", "clusterrolebinding"):
            assert not exists(cluster, kind, name), kind
        assert helm(cluster, "list", "-n", namespace, "-a", "-q").stdout.strip() == ""
    # The release never touched the CRD the session installed: same field
    # managers, none of them Helm, no Helm ownership.
    assert crd_ownership(cluster) == crd_before
    assert "helm" not in crd_before[0] and not crd_before[1]


def test_policy_installs_upgrades_and_uninstalls_in_namespace_list_mode(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """The admission policies come and go with the release, and enforce while it is there.

    A subject who may patch JobSchedules but holds no action permission is
    refused a terminate under [Deny], let through with a warning after an
    upgrade to [Warn, Audit], and unchecked once the release is gone.
    """
    with temp_namespace(cluster, "t-policy") as watched:
        values = merged(SHARED_SAFE, {**POLICY_ON, "watchNamespaces": [watched]})
        user = unique("jw-patcher")
        cluster.kubectl(
            "create",
            "role",
            "patcher",
            "-n",
            watched,
            "--verb=get,patch",
            f"--resource={CRD}",
        )
        cluster.kubectl(
            "create", "rolebinding", "patcher", "-n", watched, "--role=patcher", f"--user={user}"
        )
        cluster.apply(schedule("guarded", schedule="0 3 1 1 *"), namespace=watched)

        def terminate(*, allowed: bool, quiet: bool = False, what: str) -> str:
            """Annotate until the outcome is as expected (policies load asynchronously)."""

            def attempt() -> tuple[str] | None:
                proc = cluster.kubectl(
                    "annotate",
                    "-n",
                    watched,
                    CRD,
                    "guarded",
                    f"jobwarden.io/terminate={unique('t')}",
                    "--overwrite",
                    as_user=user,
                    check=False,
                )
                if (proc.returncode == 0) != allowed or (quiet and "Warning" in proc.stderr):
                    return None
                return (proc.stderr,)

            return wait_for(attempt, timeout=60, what=what)[0]

        with installed(cluster, namespace=namespace, values=values, directory=tmp_path) as rel:
            policies = [f"{rel.fullname}-jobschedules", f"{rel.fullname}-operator-pods"]
            for name in policies:
                assert exists(cluster, "validatingadmissionpolicy", name), name
                binding = cluster.get_json("validatingadmissionpolicybinding", name)
                selector = binding["spec"]["matchResources"]["namespaceSelector"]
                assert selector["matchExpressions"][0]["values"] == [watched]
            err = terminate(allowed=False, what="the policy enforced")
            assert f"ValidatingAdmissionPolicy '{policies[0]}'" in err, err
            assert 'needs "update" on jobschedules/terminate' in err, err

            warn = {"admissionPolicy": {"validationActions": ["Warn", "Audit"]}}
            rel.upgrade(merged(values, warn))
            err = terminate(allowed=True, what="the upgraded policy warning, not denying")
            assert "Warning:" in err and "jobschedules/terminate" in err, err

            rel.uninstall()
            for name in policies:
                assert not exists(cluster, "validatingadmissionpolicy", name), name
                assert not exists(cluster, "validatingadmissionpolicybinding", name), name
        terminate(allowed=True, quiet=True, what="no policy left after uninstall")


def test_install_refuses_to_take_over_a_crd_it_does_not_own(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """With crds.install=true and a CRD applied by kubectl, Helm stops before creating anything."""
    release = unique("r")
    values = values_file(tmp_path, {"rbac": {"aggregateToDefaultRoles": False}})
    proc = helm(
        cluster, "install", release, str(CHART_DIR), "-n", namespace, "-f", str(values), check=False
    )
    try:
        assert proc.returncode != 0, "helm adopted a CRD it does not own"
        assert any(f'CustomResourceDefinition "{crd}"' in proc.stderr for crd in CHART_CRDS), (
            proc.stderr
        )
        assert "cannot be imported into the current release" in proc.stderr, proc.stderr
        assert not exists(cluster, "deployment", fullname(release), "-n", namespace)
        assert not exists(cluster, "clusterrole", fullname(release))
        assert crd_ownership(cluster)[1] == {}
    finally:
        helm(cluster, "uninstall", release, "-n", namespace, check=False)


def variant_values(variant: str, namespaces: list[str]) -> dict[str, Any]:
    """The value sets the dry run covers; ``namespaces`` are real ones to watch."""
    watch: dict[str, Any] = {"watchNamespaces": namespaces}
    everything: dict[str, Any] = {
        **HA,
        **watch,
        "selector": "shard=a",
        "staleAfter": "90m",
        "sweepInterval": "30s",
        "unhealthyAfter": 5,
        "dryRun": True,
        "logFormat": "json",
        "image": {"digest": "sha256:" + "0" * 64},
        "imagePullSecrets": [{"name": "registry"}],
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "podAnnotations": {"example.com/team": "batch"},
        "podLabels": {"example.com/tier": "ops"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}
        ],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "jobwarden"}},
            }
        ],
        "serviceAccount": {"annotations": {"example.com/owner": "platform"}},
        "service": {"annotations": {"example.com/scrape": "true"}},
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
            "prometheusRule": {
                "enabled": True,
                "additionalRules": [{"alert": "JobwardenExtra", "expr": "vector(0) > 0"}],
            },
        },
        "dashboard": {"enabled": True},
    }
    return {
        "default": {},
        "watch-namespaces": watch,
        "ha": HA,
        "ha-watch-namespaces": {**HA, **watch},
        "everything": everything,
    }[variant]


@pytest.mark.parametrize(
    "variant", ["default", "watch-namespaces", "ha", "ha-watch-namespaces", "everything"]
)
def test_rendered_chart_is_accepted_by_the_api_server(
    cluster: Cluster, namespace: str, tmp_path: Path, variant: str
) -> None:
    """`helm template | kubectl apply --dry-run=server` accepts every object, warning-free.

    The release namespace enforces `restricted`, so Pod Security checks the
    Deployment's pod template too. CRDs (the JobSchedule one included) are
    validated as updates of the live ones and nothing is persisted. Kinds of
    the Prometheus Operator are left out only where the cluster does not
    serve them: without their CRDs no API server can validate them (the unit
    tests check their structure, tests/cluster/test_promql.py their queries).
    """
    label(cluster, namespace, RESTRICTED)
    with temp_namespace(cluster, "t-watched") as other:
        values = variant_values(variant, [namespace, other])
        docs = render(
            cluster, release=unique("r"), namespace=namespace, values=values, directory=tmp_path
        )
        kinds = {d["kind"] for d in docs}
        assert {"Deployment", "ServiceAccount", "ClusterRole", "CustomResourceDefinition"} <= kinds
        if variant == "everything":
            assert kinds >= MONITORING_KINDS, "the value set should turn the monitoring kinds on"
        skipped = {k for k in MONITORING_KINDS if not api_serves(cluster, k)}
        checked = [d for d in docs if d["kind"] not in skipped]
        result = dry_run(cluster, checked)
        assert sorted(result.objects) == sorted(object_names(checked))
        assert result.warnings == [], result.warnings
