"""/metrics for authorized scrapers only, decided by the real API server.

The operator reviews each scrape's bearer token with a TokenReview and the
subject's right to ``get /metrics`` with a SubjectAccessReview. The scrapers
here are ServiceAccounts with tokens minted by the API server: one bound to
the chart's own metrics-reader ClusterRole (as a Prometheus would be), one
bound to nothing. With per-schedule labels off, no tenant's name is served.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from tests.cluster._delivery import render, unique
from tests.cluster._safety import job_template, metric, operator_with, schedule
from tests.support.checks import counted
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess, mint_token, unverified_tls
from tests.support.schedules import RUN_NOW, Schedules


def scrape(operator: OperatorProcess, authorization: str | None) -> tuple[int, str]:
    """(status, body) of one GET /metrics with this Authorization header (None: none)."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    request = urllib.request.Request(operator.metrics_url(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=unverified_tls()) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def chart_reader_role(cluster: Cluster, release: str, directory: Path) -> str:
    """Create the chart's metrics-reader ClusterRole (as `helm install` renders it)."""
    docs = render(cluster, release=release, namespace="default", values={}, directory=directory)
    (role,) = [
        d
        for d in docs
        if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-metrics-reader")
    ]
    cluster.apply(role)
    name: str = role["metadata"]["name"]
    return name


def test_metrics_need_a_token_allowed_to_get_metrics(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """No token: 401. A forged token: 401. A ServiceAccount bound to the chart's
    metrics-reader role: 200 with the metrics. A ServiceAccount bound to nothing: 403."""
    assert operator.secure_metrics  # the default, kept by the test operator
    release = unique("mr")
    role = chart_reader_role(cluster, release, tmp_path)
    try:
        for sa in ("prometheus", "stranger"):
            cluster.kubectl("create", "serviceaccount", sa, "-n", namespace)
        cluster.kubectl(
            "create",
            "clusterrolebinding",
            role,
            f"--clusterrole={role}",
            f"--serviceaccount={namespace}:prometheus",
        )
        reader = mint_token(cluster, namespace=namespace, name="prometheus")
        stranger = mint_token(cluster, namespace=namespace, name="stranger")

        status, body = scrape(operator, None)
        assert status == 401, body
        assert "jobwarden_" not in body
        status, body = scrape(operator, "Bearer not-a-token")
        assert status == 401, body
        status, body = scrape(operator, f"Basic {reader}")  # the right token, wrong scheme
        assert status == 401, body

        # RBAC bindings reach the authorizer within moments: wait for the first 200.
        def allowed() -> str | None:
            code, text = scrape(operator, f"Bearer {reader}")
            return text if code == 200 else None

        text = wait_for(allowed, timeout=15, what="the reader's scrape allowed")
        assert metric(text, "jobwarden_leader") == 1.0

        status, body = scrape(operator, f"Bearer {stranger}")
        assert status == 403, body
        assert f"system:serviceaccount:{namespace}:stranger" in body
        assert "jobwarden_" not in body
    finally:
        cluster.kubectl("delete", "clusterrolebinding", role, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "clusterrole", role, "--ignore-not-found", check=False)
    assert reader not in operator.log() and stranger not in operator.log()


def test_healthz_is_open_and_names_no_tenant(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """The kubelet probes /healthz without credentials; what it reads names no
    namespace and no schedule, even with a schedule in view."""
    name = unique("tenant-secret")
    here = Schedules(cluster, namespace)
    here.apply(schedule(name))
    here.wait(name, lambda status: bool(status.get("observedGeneration")), timeout=20, what="seen")
    with urllib.request.urlopen(
        f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5
    ) as response:
        assert response.status == 200
        body = response.read().decode()
    assert name not in body and namespace not in body


def test_without_schedule_labels_no_tenant_name_is_served(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """A run counted, and neither its schedule's name nor its namespace on /metrics."""
    name = f"secret-{unique('payroll')}"
    with operator_with(
        cluster, namespace, tmp_path, JOBWARDEN_METRICS_SCHEDULE_LABELS="false"
    ) as operator:
        here = Schedules(cluster, namespace)
        here.apply(schedule(name, template=job_template(run_seconds=1)))
        here.annotate(name, RUN_NOW, "go")
        here.wait(name, counted("succeeded", 1), timeout=30, what="the run succeeded")

        def counted_without_labels() -> str | None:
            text = operator.metrics()
            return text if metric(text, "jobwarden_runs_total", result="Succeeded") else None

        text = wait_for(counted_without_labels, timeout=15, what="the run on /metrics")
    assert metric(text, "jobwarden_runs_total", result="Started") == 1.0
    assert name not in text
    assert namespace not in text
    assert 'schedule="' not in text and 'namespace="' not in text
