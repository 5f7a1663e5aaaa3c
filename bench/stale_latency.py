"""Stale latency: from a run's stale threshold to the moment it is stopped.

Run with ``.venv/bin/python bench/stale_latency.py [--n 1 100] [--kinds scheduled opt-in]``.

For each N, N runs go stale together on the local control plane and a Job
watch in this process stamps the moment each is stopped:

* ``scheduled``: N JobSchedules due at one instant, ``staleAfter`` seconds
  long, pods that never finish. Two components race for each run at its
  threshold: the operator (woken at the deadline; it deletes the Job) and the
  Job controller (``activeDeadlineSeconds``; it fails the Job). Whichever
  comes first stops the run; the table says how often each won.
* ``opt-in``: N plain Jobs labelled ``jobwarden.io/stale-after``. Only the
  operator's sweep acts on them, so this is the sweep interval's figure.

A run's threshold is its Job's ``status.startTime`` plus the threshold: the
instant both components count from (startTime has whole seconds, and both
round the same way). "Stopped" is the first watch event that shows it: the
Job deleted or marked for deletion, or a DeadlineExceeded condition.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from common import load, percentile, say, table
from harness import Bench, create_schedules
from kubernetes.watch.watch import iter_resp_lines
from objects import jobschedule

STALE_AFTER_LABEL = "jobwarden.io/stale-after"


def _time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Run:
    start: float | None = None  # status.startTime (epoch seconds, whole)
    stopped: float | None = None  # local wall clock when the watch showed it stopped
    by: str = ""  # "operator" or "job controller"


@dataclass
class StopWatch:
    """Every Job in a namespace: its startTime, and when and by whom it was stopped."""

    bench: Bench
    namespace: str
    runs: dict[str, Run] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _error: BaseException | None = None

    def __enter__(self) -> StopWatch:
        threading.Thread(target=self._run, daemon=True, name=f"stopwatch {self.namespace}").start()
        if not self._ready.wait(30):
            raise RuntimeError(f"watch on {self.namespace} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _see(self, kind: str, body: dict[str, Any], wall: float) -> None:
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        with self._lock:
            run = self.runs.setdefault(meta.get("name", ""), Run())
            run.start = run.start or _time(status.get("startTime"))
            if run.stopped is not None:
                return
            deadline = any(
                c.get("reason") == "DeadlineExceeded" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            if deadline:
                run.stopped, run.by = wall, "job controller"
            elif kind == "DELETED" or meta.get("deletionTimestamp"):
                run.stopped, run.by = wall, "operator"

    def _run(self) -> None:
        try:
            # Raw responses (_preload_content=False), which the client's types do not describe.
            first: Any = self.bench.batch.list_namespaced_job(
                self.namespace, _preload_content=False
            )
            listed = json.loads(first.data)
            rv = listed["metadata"]["resourceVersion"]
            self._ready.set()
            while not self._stop.is_set():
                resp: Any = self.bench.batch.list_namespaced_job(
                    self.namespace,
                    watch=True,
                    resource_version=rv,
                    timeout_seconds=60,
                    _preload_content=False,
                    _request_timeout=(10, 90),
                )
                try:
                    for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                        wall = time.time()
                        if not line:
                            continue
                        event = json.loads(line)
                        body = event.get("object") or {}
                        rv = (body.get("metadata") or {}).get("resourceVersion", rv)
                        if event.get("type") == "ERROR":
                            raise RuntimeError(f"watch error: {body}")
                        self._see(event["type"], body, wall)
                        if self._stop.is_set():
                            break
                finally:
                    resp.release_conn()
        except BaseException as exc:  # reported by wait_stopped()
            self._error = exc
            self._ready.set()

    def wait_stopped(self, count: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._error is not None:
                raise RuntimeError(f"watch failed: {self._error!r}")
            with self._lock:
                if sum(1 for r in self.runs.values() if r.stopped is not None) >= count:
                    return
            time.sleep(0.1)
        with self._lock:
            seen = len(self.runs)
        say(f"only some runs stopped within {timeout:.0f}s (the watch saw {seen} Jobs)")

    def latencies(self, threshold: float) -> tuple[list[float], dict[str, int], int]:
        """Seconds from threshold to stop per run, who stopped them, and Jobs the watch saw
        start (fewer than N means the figures are missing runs, not that runs were slow)."""
        with self._lock:
            runs = list(self.runs.values())
        lags = [
            r.stopped - (r.start + threshold)
            for r in runs
            if r.start is not None and r.stopped is not None
        ]
        by: dict[str, int] = {}
        for r in runs:
            if r.stopped is not None:
                by[r.by] = by.get(r.by, 0) + 1
        return sorted(lags), by, sum(1 for r in runs if r.start is not None)


def _pod_template() -> dict[str, Any]:
    """A pod the fake nodes run until it is deleted."""
    return {
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": "busybox"}],
        }
    }


def _scheduled(bench: Bench, namespace: str, n: int, *, stale_after: int) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6 + 0.05 * n)
    spec = {
        "runAt": due.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "staleAfter": f"{stale_after}s",
        "jobTemplate": {"spec": {"backoffLimit": 0, "template": _pod_template()}},
    }
    create_schedules(bench, namespace, [jobschedule(f"stale-{i:04d}", spec=spec) for i in range(n)])


def _opt_in(bench: Bench, namespace: str, n: int, *, stale_after: int) -> None:
    for i in range(n):
        job: Any = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"opt-in-{i:04d}",
                "labels": {STALE_AFTER_LABEL: f"{stale_after}s"},
            },
            "spec": {"backoffLimit": 0, "template": _pod_template()},
        }
        bench.batch.create_namespaced_job(namespace, job, _preload_content=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1, 100])
    parser.add_argument(
        "--kinds", nargs="+", default=["scheduled", "opt-in"], choices=["scheduled", "opt-in"]
    )
    parser.add_argument("--stale-after", type=int, default=5, help="threshold, seconds")
    parser.add_argument("--sweep-interval", type=int, default=2, help="operator setting, seconds")
    args = parser.parse_args()

    rows: list[list[object]] = []
    with Bench() as bench:
        for kind in args.kinds:
            for n in args.n:
                namespace = bench.namespace(f"stale-{n}")
                operator = bench.operator(
                    namespaces=[namespace],
                    name=f"{kind}-{n}",
                    env={"JOBWARDEN_SWEEP_INTERVAL": f"{args.sweep_interval}s"},
                )
                try:
                    operator.start()
                except RuntimeError:
                    # A ServiceAccount made a moment ago may not be bound yet.
                    say("operator did not start; once more")
                    time.sleep(3)
                    operator.start()
                with StopWatch(bench, namespace) as watch:
                    say(f"{kind}: {n} run(s), staleAfter {args.stale_after}s")
                    if kind == "scheduled":
                        _scheduled(bench, namespace, n, stale_after=args.stale_after)
                    else:
                        _opt_in(bench, namespace, n, stale_after=args.stale_after)
                    watch.wait_stopped(n, timeout=60 + 0.5 * n + args.stale_after)
                    lags, by, seen = watch.latencies(float(args.stale_after))
                operator.stop()
                bench.delete_namespace(namespace, wait=False)
                rows.append(
                    [
                        kind,
                        n,
                        len(lags),
                        percentile(lags, 50),
                        percentile(lags, 99),
                        lags[-1] if lags else math.nan,
                        ", ".join(f"{k} {v}" for k, v in sorted(by.items())) or "-",
                        seen,
                        load(),
                    ]
                )
    print(
        f"staleAfter {args.stale_after}s, sweep interval {args.sweep_interval}s; "
        "seconds from threshold (Job startTime + staleAfter) to the run stopped"
    )
    print(
        table(
            [
                "kind",
                "N",
                "stopped",
                "p50 s",
                "p99 s",
                "max s",
                "stopped by",
                "seen started",
                "load 1/5/15",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
