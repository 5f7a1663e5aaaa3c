"""The operator under test as a child process, and its CPU time and memory.

``Operator`` runs the ``jobwarden`` console script (optionally under
cProfile) against the bench namespaces, waits for /healthz and reads its
/metrics; ``proc_stat`` reads its CPU time and resident memory from ``/proc``.
It knows nothing of ``Bench``, which starts and stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common import free_port

# --- the operator -----------------------------------------------------------------------


@dataclass
class ProcStat:
    cpu_seconds: float  # user + system, all threads
    rss_kib: int


def proc_stat(pid: int) -> ProcStat:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return ProcStat(cpu_seconds=cpu, rss_kib=rss)


class Operator:
    """The ``jobwarden`` console script watching the bench namespaces.

    With ``profile``, it runs under ``python -m cProfile -o profile`` instead
    (the profile is written when it stops on SIGTERM/SIGINT).
    """

    def __init__(
        self,
        *,
        kubeconfig: Path,
        namespaces: Sequence[str],
        log_path: Path,
        profile: Path | None,
        env: Mapping[str, str],
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = list(namespaces)
        self.log_path = log_path
        self.profile = profile
        self.extra_env = dict(env)
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_wall = 0.0

    def command(self) -> list[str]:
        exe = Path(sys.executable).with_name("jobwarden")
        if self.profile is None:
            return [str(exe)]
        return [sys.executable, "-m", "cProfile", "-o", str(self.profile), str(exe)]

    def start(self, *, timeout: float = 120) -> float:
        """Start and wait for /healthz; returns the seconds to healthy."""
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "JOBWARDEN_NAMESPACES": ",".join(self.namespaces),
                "JOBWARDEN_METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}",
                "JOBWARDEN_HEALTH_ADDRESS": f"127.0.0.1:{self.health_port}",
                # The bench measures the engine: plain /metrics on loopback, no reviews.
                "JOBWARDEN_METRICS_SECURE": "false",
            }
        )
        env.update(self.extra_env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.started_wall = time.time()
        began = time.monotonic()
        self.proc = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log()}")
            if self.healthy():
                return time.monotonic() - began
            time.sleep(0.2)
        raise RuntimeError(f"operator not healthy after {timeout}s:\n{self.log()[-4000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stat(self) -> ProcStat:
        return proc_stat(self.pid)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        """The operator's /metrics as {series: value} (labels kept in the key)."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10
        ) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[key] = float(value)
        return out

    def schedules_reconciled(self) -> int:
        """Schedules the operator has reconciled at least once (its health gauge's total)."""
        return int(
            sum(v for k, v in self.metrics().items() if k.startswith("jobwarden_schedules{"))
        )

    def runs_started(self) -> int:
        return int(
            sum(
                v
                for k, v in self.metrics().items()
                if k.startswith("jobwarden_runs_total{") and 'result="Started"' in k
            )
        )

    def wait_reconciled(self, count: int, *, timeout: float) -> float:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.schedules_reconciled() >= count:
                return time.monotonic() - began
            time.sleep(0.5)
        raise RuntimeError(
            f"operator reconciled {self.schedules_reconciled()} of {count} schedules in {timeout}s"
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT if self.profile else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
