"""Chain latency: from an upstream run's end to its downstream's Job (spec.after).

Run with ``.venv/bin/python bench/chain_latency.py [--n 1 100]``.

For each N, N chains on the local control plane: ``up-i`` runs once at one
instant for all (a one-second pod), ``down-i`` runs after ``up-i``. A Job
watch in this process stamps, on its own clock, the first event showing each
upstream Job finished (its Complete condition) and the ADDED event of each
downstream Job; the figure is the difference, matched by the downstream's
``jobwarden.io/upstream-jobs`` annotation. It covers the Job watch reaching
the operator, the downstream woken, its plan and the create.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from common import load, percentile, say, table
from harness import Bench, create_schedules
from objects import jobschedule
from stale_latency import StopWatch

UPSTREAM_JOBS = "jobwarden.io/upstream-jobs"


@dataclass
class ChainWatch(StopWatch):
    """The stale benchmark's Job watch, stamping upstream ends and downstream creates."""

    ended: dict[str, float] = field(default_factory=dict)  # upstream Job -> when seen finished
    created: dict[str, float] = field(default_factory=dict)  # upstream Job -> downstream ADDED

    def _see(self, kind: str, body: dict[str, Any], wall: float) -> None:
        meta = body.get("metadata") or {}
        done = any(
            c.get("type") == "Complete" and c.get("status") == "True"
            for c in (body.get("status") or {}).get("conditions") or []
        )
        upstream = (meta.get("annotations") or {}).get(UPSTREAM_JOBS)
        with self._lock:
            if done and not upstream:
                self.ended.setdefault(meta.get("name", ""), wall)
            if kind == "ADDED" and upstream:
                self.created.setdefault(upstream, wall)

    def wait_created(self, count: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._error is not None:
                raise RuntimeError(f"watch failed: {self._error!r}")
            with self._lock:
                if len(self.created) >= count:
                    return
            time.sleep(0.1)
        say(f"only {len(self.created)} of {count} downstream Jobs within {timeout:.0f}s")

    def latencies(self, threshold: float = 0.0) -> tuple[list[float], dict[str, int], int]:
        with self._lock:
            lags = [self.created[j] - t for j, t in self.ended.items() if j in self.created]
            return sorted(lags), {}, len(self.ended)


def _template() -> dict[str, Any]:
    return {
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"jobwarden.test/run-seconds": "1s"}},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "main", "image": "busybox"}],
                },
            },
        }
    }


def _chains(bench: Bench, namespace: str, n: int) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8 + 0.05 * n)
    ups = [
        jobschedule(
            f"up-{i:04d}",
            spec={"runAt": due.strftime("%Y-%m-%dT%H:%M:%SZ"), "jobTemplate": _template()},
        )
        for i in range(n)
    ]
    downs = [
        jobschedule(
            f"down-{i:04d}",
            spec={"after": [{"schedule": f"up-{i:04d}"}], "jobTemplate": _template()},
        )
        for i in range(n)
    ]
    create_schedules(bench, namespace, downs + ups)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1, 100])
    args = parser.parse_args()

    rows: list[list[object]] = []
    with Bench() as bench:
        for n in args.n:
            namespace = bench.namespace(f"chain-{n}")
            operator = bench.operator(namespaces=[namespace], name=f"chain-{n}")
            try:
                operator.start()
            except RuntimeError:
                say("operator did not start; once more")  # a ServiceAccount not bound yet
                time.sleep(3)
                operator.start()
            with ChainWatch(bench, namespace) as watch:
                say(f"{n} chain(s)")
                _chains(bench, namespace, n)
                watch.wait_created(n, timeout=60 + 0.5 * n)
                lags, _, ended = watch.latencies()
            operator.stop()
            bench.delete_namespace(namespace, wait=False)
            rows.append(
                [
                    n,
                    ended,
                    len(lags),
                    percentile(lags, 50),
                    percentile(lags, 99),
                    lags[-1] if lags else math.nan,
                    load(),
                ]
            )
    print("seconds from an upstream Job seen finished to its downstream Job seen ADDED")
    print(
        table(
            ["N", "upstreams ended", "downstreams", "p50 s", "p99 s", "max s", "load 1/5/15"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
