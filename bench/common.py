"""Shared machinery of the cluster benchmarks (lag, throughput, idle, memory).

Every benchmark runs against the local control plane (or the cluster
``KUBECONFIG`` names), in namespaces of its own that it deletes afterwards.
The pieces exist so that the benchmarks measure jobwarden and its peer,
kube-controller-manager's CronJob controller, the same way:

* ``harness.Bench``: API clients, namespaces, and an identity for the operator. The
  operator runs as a ServiceAccount of its own, so the API server's audit
  log can tell its requests from everyone else's (other engineers run tests
  on this control plane at the same time);
* ``operator_process.Operator``: the ``jobwarden`` console script as a child process,
  with its CPU time and resident memory read from ``/proc``;
* ``bursts.JobWatch``: a watch on Jobs that stamps each ADDED event with the local
  clock as it arrives (``creationTimestamp`` only has 1-second resolution);
* ``harness.bulk``: many objects created quickly from a thread pool;
* ``bursts.burst``: N schedules (JobSchedules or CronJobs) all due at one minute
  boundary, measured from that boundary to each Job's ADDED event;
* ``objects``: the bodies that get scheduled (JobSchedules, CronJobs, Job templates);
* ``audit``: the API server's audit log, read back per user.

This module holds what all of them share and that needs no cluster: the
constants, progress and table printing, percentiles, and small helpers. It
imports no other bench module, so every one of them can import it.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = ROOT / "tests" / "controlplane" / "cluster.sh"
GROUP, VERSION, PLURAL = "jobwarden.io", "v1alpha1", "jobschedules"
USER_AGENT = "jobwarden-bench"
# The operator's identity (a ServiceAccount in a namespace of each run's own): its
# requests are the audit log entries with that user (``Bench.operator_user``).
SA_NAME = "operator"
# The thread pool and connection pool of jobwarden's kube.Kube: raw baselines use the same.
OPERATOR_CONCURRENCY = 32


def say(message: str) -> None:
    """Progress goes to stderr, so stdout carries only the figures."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    """The 1/5/15-minute load averages, printed beside every figure (2 shared cores)."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was observed, never an interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned table (also valid Markdown), for the terminal and the README."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    say(f"{label}: {time.monotonic() - began:.1f}s")
