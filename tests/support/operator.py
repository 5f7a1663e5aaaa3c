"""The operator under test, run as users run it: the ``jobwarden`` console script."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.kube import Cluster, wait_for


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
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            self.command(), env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(self.healthy, timeout=60, what=f"operator /healthz (log: {self.log_path})")

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

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
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
