"""Shared fixtures: a real cluster, a namespace per test, an operator per test.

The cluster is the local control plane (started if needed), or, with
``JOBWARDEN_TEST_KUBECONFIG=1``, whatever cluster ``KUBECONFIG`` names — the
same tests run unchanged against a kind cluster. Tests under ``tests/cluster``
are marked ``cluster``; ``pytest -m "not cluster"`` runs the fast unit tests alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kube import Cluster, start_cluster
from tests.support.operator import OperatorProcess

ROOT = Path(__file__).resolve().parent.parent

# In CI every skip fails the run: see tests/support/ci_skips.py.
pytest_plugins = ("tests.support.ci_skips",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    cluster_dir = ROOT / "tests" / "cluster"
    for item in items:
        if cluster_dir in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The cluster for this test session, with the CRDs installed."""
    c = start_cluster(ROOT)
    c.install_crds(ROOT / "crds")
    return c


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, removed afterwards (without waiting)."""
    base = request.node.name.lower().replace("_", "-")
    safe = "".join(ch for ch in base if ch.isalnum() or ch == "-")[:40]
    name = f"t-{safe}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        if not os.environ.get("JOBWARDEN_KEEP_NAMESPACES"):
            cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """A jobwarden operator watching only this test's namespace."""
    proc = OperatorProcess(cluster=cluster, namespaces=[namespace], log_path=tmp_path / "op.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
