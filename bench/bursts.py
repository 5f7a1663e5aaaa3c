"""Measuring schedule lag: watched Job arrivals and bursts due at one minute boundary.

``JobWatch`` stamps each Job ADDED event with the local clock as it arrives
(``creationTimestamp`` only has 1-second resolution); ``burst`` creates N
schedules (JobSchedules or CronJobs) all due at one minute boundary and
measures from that boundary to each Job's ADDED event, the same way for both
kinds. Built on ``harness``, ``objects`` and ``operator_process``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import load, percentile, say
from harness import Bench, create_cronjobs, create_schedules
from kubernetes.watch.watch import iter_resp_lines
from objects import cron_at, cronjob, job_template, jobschedule
from operator_process import Operator

# --- watching Jobs arrive ---------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    wall: float  # time.time() when the ADDED event arrived
    mono: float  # time.monotonic() at the same instant


@dataclass
class JobWatch:
    """Stamps every Job ADDED in ``namespace`` as this client receives the event.

    The stamp is taken when the event's line arrives, before it is parsed, so
    the figure is creation plus watch delivery (milliseconds on loopback) and
    does not depend on the 1-second resolution of ``creationTimestamp``.
    """

    bench: Bench
    namespace: str
    added: dict[str, Stamp] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    def __enter__(self) -> JobWatch:
        self._thread = threading.Thread(
            target=self._run, name=f"watch {self.namespace}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"watch on {self.namespace} did not start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            listed = json.loads(
                self.bench.batch.list_namespaced_job(
                    self.namespace, limit=1, _preload_content=False
                ).data
            )
            rv = listed["metadata"]["resourceVersion"]
            self._ready.set()
            while not self._stop.is_set():
                resp = self.bench.batch.list_namespaced_job(
                    self.namespace,
                    watch=True,
                    resource_version=rv,
                    timeout_seconds=60,
                    allow_watch_bookmarks=True,
                    _preload_content=False,
                    _request_timeout=(10, 90),
                )
                try:
                    for line in iter_resp_lines(resp):
                        wall, mono = time.time(), time.monotonic()
                        if not line:
                            continue
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                        if event.get("type") == "ADDED":
                            with self._cond:
                                self.added.setdefault(obj["metadata"]["name"], Stamp(wall, mono))
                                self._cond.notify_all()
                        elif event.get("type") == "ERROR":
                            raise RuntimeError(f"watch error: {obj}")
                        if self._stop.is_set():
                            break
                finally:
                    resp.release_conn()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            with self._cond:
                self._cond.notify_all()

    def wait(self, count: int, *, until_wall: float) -> int:
        """Wait until ``count`` Jobs were added or the wall clock passes ``until_wall``."""
        with self._cond:
            while len(self.added) < count and time.time() < until_wall and self._error is None:
                self._cond.wait(timeout=min(1.0, max(0.01, until_wall - time.time())))
            if self._error is not None:
                raise RuntimeError(f"watch failed: {self._error!r}")
            return len(self.added)


# --- a burst of runs due at one minute boundary ----------------------------------------


@dataclass
class Burst:
    """N schedules of one kind due at one minute boundary, and when their Jobs appeared."""

    kind: str  # "jobwarden" or "cronjob"
    n: int
    due: float  # the boundary, as a wall-clock timestamp
    lags: list[float]  # seconds from ``due`` to each Job's ADDED event, ascending
    first_to_last: float  # seconds between the first and the last ADDED event
    setup_seconds: float  # creating the N objects (and, for jobwarden, their first reconcile)
    created_seconds: float  # creating the N objects alone
    settle_seconds: float = math.nan  # jobwarden: due -> every run's bookkeeping done
    cpu_seconds: float = math.nan  # jobwarden: operator CPU from due to settled
    burst_cpu_seconds: float = math.nan  # jobwarden: operator CPU from due to the last Job
    load: str = ""

    @property
    def missing(self) -> int:
        return self.n - len(self.lags)

    def p(self, pct: float) -> float:
        return percentile(self.lags, pct)

    @property
    def rate(self) -> float:
        """Jobs per second within the burst: first to last ADDED event."""
        if len(self.lags) < 2 or self.first_to_last <= 0:
            return math.nan
        return (len(self.lags) - 1) / self.first_to_last


def margin_for(n: int) -> float:
    """Seconds of lead time before the boundary: creation plus first reconcile of N objects."""
    return 20 + 0.05 * n


def next_boundary(*, margin: float) -> datetime:
    """The first minute boundary at least ``margin`` seconds away: the same rule for both kinds."""
    earliest = datetime.now(UTC) + timedelta(seconds=margin)
    boundary = earliest.replace(second=0, microsecond=0)
    return boundary if boundary >= earliest else boundary + timedelta(minutes=1)


def _sleep_until(wall: float) -> None:
    while (left := wall - time.time()) > 0:
        time.sleep(min(left, 1.0))


def burst(
    bench: Bench,
    *,
    kind: str,
    n: int,
    suspend_jobs: bool = True,
    profile: Path | None = None,
    cleanup: bool = True,
    operator_env: Mapping[str, str] | None = None,
) -> Burst:
    """One phase: N schedules of ``kind`` due at the next feasible minute, measured.

    For jobwarden the operator is started on an empty namespace first, then
    the schedules are created and each gets its first reconcile before the
    boundary; for CronJobs kube-controller-manager is always running. Both
    kinds get the same lead time (``margin_for``) and the same cron expression.
    """
    ns = bench.namespace(f"{'jw' if kind == 'jobwarden' else 'cj'}{n}")
    op: Operator | None = None
    try:
        if kind == "jobwarden":
            op = bench.operator(
                namespaces=[ns], name=f"burst-{n}-{ns}", profile=profile, env=operator_env
            )
            op.start()
        boundary = next_boundary(margin=margin_for(n))
        due = boundary.timestamp()
        expr = cron_at(boundary)
        template = job_template(suspend=suspend_jobs)
        say(f"{kind} N={n}: due {boundary:%H:%M:%S} ({due - time.time():.0f}s away), ns {ns}")
        with JobWatch(bench, ns) as watch:
            began = time.monotonic()
            if kind == "jobwarden":
                bodies = [
                    jobschedule(f"s{i:05d}", spec={"schedule": expr, "jobTemplate": template})
                    for i in range(n)
                ]
                created = create_schedules(bench, ns, bodies)
                assert op is not None
                op.wait_reconciled(n, timeout=max(5.0, due - time.time() - 2))
            else:
                bodies = [cronjob(f"c{i:05d}", schedule=expr, template=template) for i in range(n)]
                created = create_cronjobs(bench, ns, bodies)
            setup = time.monotonic() - began
            if time.time() > due - 1:
                raise RuntimeError(f"setup took {setup:.1f}s, past the boundary; raise the margin")
            cpu0 = op.stat().cpu_seconds if op else math.nan
            _sleep_until(due - 0.5)
            load_now = load()
            seen = watch.wait(n, until_wall=due + max(90.0, n * 0.5))
            burst_cpu = op.stat().cpu_seconds - cpu0 if op else math.nan
            stamps = sorted(s.wall for s in watch.added.values())
        settle = cpu = math.nan
        if op is not None:
            while op.runs_started() < seen and time.time() < due + 300:
                time.sleep(0.2)
            settle = time.time() - due
            cpu = op.stat().cpu_seconds - cpu0
        result = Burst(
            kind=kind,
            n=n,
            due=due,
            lags=[s - due for s in stamps],
            first_to_last=(stamps[-1] - stamps[0]) if stamps else math.nan,
            setup_seconds=setup,
            created_seconds=created,
            settle_seconds=settle,
            cpu_seconds=cpu,
            burst_cpu_seconds=burst_cpu,
            load=load_now,
        )
        say(
            f"{kind} N={n}: {seen}/{n} Jobs, p50 {result.p(50):.3f}s p99 {result.p(99):.3f}s "
            f"max {result.p(100):.3f}s (load {load_now})"
        )
        return result
    finally:
        if op is not None:
            op.stop()
        if cleanup:
            bench.delete_namespace(ns, wait=True)
