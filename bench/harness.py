"""Cluster access for one benchmark run: the ``Bench`` class and bulk creation.

``Bench`` owns the API clients, the run's namespaces, the operator's own
ServiceAccount identity (so the audit log can tell its requests apart) and the
CRD install; ``bulk``, ``create_schedules`` and ``create_cronjobs`` create many
objects quickly from a thread pool. Kept apart from the bodies it creates
(``objects``) and from measuring (``bursts``), which build on it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from common import CLUSTER_SH, GROUP, PLURAL, ROOT, SA_NAME, USER_AGENT, VERSION, say
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from operator_process import Operator


def _cluster(*args: str) -> str:
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), *args], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def _configuration(kubeconfig: Path) -> client.Configuration:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return configuration


# --- cluster access ---------------------------------------------------------------------


class Bench:
    """Clients, namespaces and the operator's identity for one benchmark run.

    Use as a context manager: everything it created (namespaces, the
    ServiceAccount's namespace and binding) is deleted on the way out, even
    after an error or Ctrl-C.
    """

    def __init__(self, *, pool: int = 64) -> None:
        if os.environ.get("JOBWARDEN_TEST_KUBECONFIG") == "1":
            self.kubeconfig = Path(os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser()
            self.bin_dir: Path | None = None
        else:
            self.kubeconfig = Path(_cluster("kubeconfig"))
            self.bin_dir = Path(_cluster("bin-dir"))
        self.configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=self.configuration
        )
        self.configuration.connection_pool_maxsize = pool
        self.api = client.ApiClient(self.configuration)
        self.api.user_agent = USER_AGENT
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self._namespaces: list[str] = []
        # mkdtemp, not TemporaryDirectory: that one removes itself at exit, kept logs too.
        self.tmp = Path(tempfile.mkdtemp(prefix="jobwarden-bench-"))
        self._operator_kubeconfig: Path | None = None
        self._operators: list[Operator] = []
        # Unique per run: a namespace still terminating from an earlier run would
        # revoke the new ServiceAccount's token under the operator.
        self.identity_namespace = f"bench-identity-{uuid.uuid4().hex[:6]}"
        self.operator_user = f"system:serviceaccount:{self.identity_namespace}:{SA_NAME}"
        self._install_crd()

    def _install_crd(self) -> None:
        """Apply the CRD (a fresh cluster has none) and wait until it is served."""
        kubectl = str(self.bin_dir / "kubectl") if self.bin_dir else "kubectl"
        base = [kubectl, "--kubeconfig", str(self.kubeconfig)]
        subprocess.run(
            [*base, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
            check=True,
            capture_output=True,
        )
        # Right after a create the CRD has no conditions yet, and kubectl wait then
        # fails at once instead of waiting: try again for a while.
        for _ in range(10):
            waited = subprocess.run(
                [
                    *base,
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    f"crd/{PLURAL}.{GROUP}",
                ],
                check=False,
                capture_output=True,
            )
            if waited.returncode == 0:
                return
            time.sleep(1)
        raise RuntimeError(f"CRD not Established: {waited.stderr.decode().strip()}")

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        for op in self._operators:
            op.stop()
        for ns in list(self._namespaces):
            self.delete_namespace(ns, wait=False)
        if self._operator_kubeconfig is not None:
            with contextlib.suppress(ApiException):
                self.rbac.delete_cluster_role_binding(self.identity_namespace)
            self.delete_namespace(self.identity_namespace, wait=False)
        if os.environ.get("JOBWARDEN_BENCH_KEEP_LOGS"):
            say(f"operator logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def audit_log(self) -> Path:
        return Path(_cluster("workdir")) / "logs" / "audit.log"

    # namespaces

    def namespace(self, prefix: str) -> str:
        name = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
        self.core.create_namespace({"metadata": {"name": name}})
        self._namespaces.append(name)
        return name

    def delete_namespace(self, name: str, *, wait: bool = True, timeout: float = 300) -> float:
        """Delete a namespace; with ``wait``, until it is gone (returns the seconds taken)."""
        began = time.monotonic()
        with contextlib.suppress(ApiException):
            self.core.delete_namespace(name)
        if name in self._namespaces:
            self._namespaces.remove(name)
        if not wait:
            return 0.0
        while time.monotonic() - began < timeout:
            try:
                self.core.read_namespace(name, _preload_content=False)
            except ApiException as exc:
                if exc.status == 404:
                    return time.monotonic() - began
                raise
            time.sleep(0.5)
        say(f"namespace {name} still terminating after {timeout:.0f}s; moving on")
        return time.monotonic() - began

    # the operator's identity

    def operator_kubeconfig(self) -> Path:
        """A kubeconfig for a ServiceAccount that is the operator's alone.

        cluster-admin keeps the benchmark independent of the chart's RBAC
        (tested elsewhere); what matters here is a distinct user name.
        """
        if self._operator_kubeconfig is not None:
            return self._operator_kubeconfig
        ns = self.identity_namespace
        self.core.create_namespace({"metadata": {"name": ns}})
        self.core.create_namespaced_service_account(ns, {"metadata": {"name": SA_NAME}})
        self.rbac.create_cluster_role_binding(
            {
                "metadata": {"name": ns},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": ns}],
            }
        )
        token = self.core.create_namespaced_service_account_token(
            SA_NAME, ns, {"spec": {"expirationSeconds": 4 * 3600}}
        ).status.token
        c = self.configuration
        ca = Path(c.ssl_ca_cert).read_bytes() if c.ssl_ca_cert else b""
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "bench",
            "clusters": [
                {
                    "name": "bench",
                    "cluster": {
                        "server": c.host,
                        "certificate-authority-data": base64.b64encode(ca).decode(),
                    },
                }
            ],
            "users": [{"name": "bench", "user": {"token": token}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
        }
        path = self.tmp / "operator.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig))
        path.chmod(0o600)
        # The new binding reaches the authorizer within moments; wait for it.
        probe = client.ApiClient(_configuration(path))
        deadline = time.monotonic() + 30
        while True:
            try:
                client.BatchV1Api(probe).list_namespaced_job(ns, limit=1, _preload_content=False)
                break
            except ApiException as exc:
                if exc.status not in (401, 403) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        probe.close()
        self._operator_kubeconfig = path
        return path

    def operator(
        self,
        *,
        namespaces: Sequence[str],
        name: str = "operator",
        profile: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Operator:
        op = Operator(
            kubeconfig=self.operator_kubeconfig(),
            namespaces=namespaces,
            log_path=self.tmp / f"{name}.log",
            profile=profile,
            env=env or {},
        )
        self._operators.append(op)
        return op

    # objects

    def list_names(self, namespace: str, *, kind: str) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            if kind == "jobschedules":
                resp = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, **kwargs
                )
            elif kind == "jobs":
                resp = self.batch.list_namespaced_job(namespace, **kwargs)
            else:
                resp = self.batch.list_namespaced_cron_job(namespace, **kwargs)
            data = json.loads(resp.data)
            names += [i["metadata"]["name"] for i in data["items"]]
            token = data["metadata"].get("continue")
            if not token:
                return names


def bulk(
    create: Callable[[dict[str, Any]], object],
    bodies: Sequence[dict[str, Any]],
    *,
    threads: int = 32,
) -> float:
    """Create ``bodies`` from ``threads`` threads; returns the seconds it took.

    A conflict (the object exists) counts as done, so a retried run converges.
    """

    def one(body: dict[str, Any]) -> None:
        for attempt in range(5):
            try:
                response = create(body)
                # Read the raw body: that returns the connection to the pool. Left
                # unread, every call opened a new TLS connection (half the rate).
                getattr(response, "data", None)
                return
            except ApiException as exc:
                if exc.status == 409:
                    return
                if exc.status in (429, 500, 503, 504) and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, bodies))
    return time.monotonic() - began


def create_schedules(
    bench: Bench, namespace: str, bodies: Sequence[dict[str, Any]], *, threads: int = 32
) -> float:
    def create(body: dict[str, Any]) -> object:
        return bench.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, _preload_content=False
        )

    return bulk(create, bodies, threads=threads)


def create_cronjobs(
    bench: Bench, namespace: str, bodies: Sequence[dict[str, Any]], *, threads: int = 32
) -> float:
    def create(body: dict[str, Any]) -> object:
        return bench.batch.create_namespaced_cron_job(namespace, body, _preload_content=False)

    return bulk(create, bodies, threads=threads)
