"""The operator under test, run as users run it: the ``jobwarden`` console script."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.kube import Cluster, wait_for

# A scraper for every test operator: a ServiceAccount allowed `get` on /metrics,
# as the chart's metrics-reader ClusterRole allows it (the operator's default
# is secure metrics, and the tests keep that default).
SCRAPER_NAMESPACE = "default"
SCRAPER = "jobwarden-test-scraper"
_SCRAPER_OBJECTS = [
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SCRAPER, "namespace": SCRAPER_NAMESPACE},
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": SCRAPER},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": SCRAPER},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": SCRAPER,
        },
        "subjects": [{"kind": "ServiceAccount", "name": SCRAPER, "namespace": SCRAPER_NAMESPACE}],
    },
]


def mint_token(cluster: Cluster, *, namespace: str, name: str) -> str:
    """A fresh token of ServiceAccount ``namespace/name`` (an hour long)."""
    return cluster.kubectl("create", "token", name, "-n", namespace, "--duration=1h").stdout.strip()


@functools.cache
def _scraper_token(kubeconfig: str, bin_dir: str | None) -> str:
    cluster = Cluster(
        kubeconfig=Path(kubeconfig), bin_dir=Path(bin_dir) if bin_dir else None, local=False
    )
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": _SCRAPER_OBJECTS})
    # Server-side apply: idempotent, and safe when several test workers race to it.
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=jobwarden-tests",
        "-f",
        "-",
        input=body,
    )
    return mint_token(cluster, namespace=SCRAPER_NAMESPACE, name=SCRAPER)


def scraper_token(cluster: Cluster) -> str:
    """A token allowed to read /metrics (made once per test process and cluster)."""
    return _scraper_token(
        str(cluster.kubeconfig), str(cluster.bin_dir) if cluster.bin_dir else None
    )


def unverified_tls() -> ssl.SSLContext:
    """The operator's self-signed certificate is not verifiable: encryption only."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


PORT_TRIES = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OperatorProcess:
    def __init__(
        self,
        *,
        cluster: Cluster,
        namespaces: list[str],
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.namespaces = namespaces
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.args = args or []
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        exe = Path(sys.executable).with_name("jobwarden")
        return [str(exe), *self.args]

    def env(self) -> dict[str, str]:
        env = self.cluster.env()
        env.update(
            {
                "JOBWARDEN_NAMESPACES": ",".join(self.namespaces),
                "JOBWARDEN_METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}",
                "JOBWARDEN_HEALTH_ADDRESS": f"127.0.0.1:{self.health_port}",
                "JOBWARDEN_SWEEP_INTERVAL": "2s",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Start the process and wait until /healthz answers.

        Its ports were free when picked, but any socket on the machine (an API
        client's ephemeral port, another worker's server) may take one before
        the process binds it; then new ports are picked and it is started again.
        """
        for attempt in range(1, PORT_TRIES + 1):
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
            self.proc = subprocess.Popen(
                self.command(), env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
            try:
                wait_for(self.healthy, timeout=60, what=f"operator /healthz (log: {self.log_path})")
                return
            except AssertionError:
                if attempt == PORT_TRIES or not self._port_taken(since=offset):
                    raise
            self.metrics_port, self.health_port = free_port(), free_port()

    def _port_taken(self, *, since: int) -> bool:
        """Whether the process exited because a port was taken (its log after ``since``)."""
        if self.proc is None or self.proc.poll() is None:
            return False
        with self.log_path.open("rb") as f:
            f.seek(since)
            return b"address already in use" in f.read()

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    @property
    def secure_metrics(self) -> bool:
        value = self.env().get("JOBWARDEN_METRICS_SECURE", "").strip().lower()
        return value not in {"0", "false", "no", "off"}

    def metrics_url(self) -> str:
        scheme = "https" if self.secure_metrics else "http"
        return f"{scheme}://127.0.0.1:{self.metrics_port}/metrics"

    def metrics(self, *, token: str | None = None) -> str:
        """/metrics as an authorized scraper reads it (``token``: whose; default
        the tests' scraper, minted with this operator's cluster credentials)."""
        if not self.secure_metrics:
            request = urllib.request.Request(self.metrics_url())
            context = None
        else:
            bearer = token if token is not None else scraper_token(self.cluster)
            request = urllib.request.Request(
                self.metrics_url(), headers={"Authorization": f"Bearer {bearer}"}
            )
            context = unverified_tls()
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            text: str = r.read().decode()
            return text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the operator gets no chance to clean up, as in a node crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
