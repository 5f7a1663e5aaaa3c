"""CPU time of one stale sweep over 1,000 active runs, and the API requests it makes.

Run with ``.venv/bin/python bench/sweep.py [--runs 1000] [--rounds 20]``.

The sweep reads its candidates from memory (the Job watch keeps them), so a
pass should cost microseconds per run and no API call at all unless it finds
work. Three cases, each a real ``Sweep`` with a real ``Kube`` (an API client
for the local control plane) and a real ``Scheduler``:

* ``none due``: 1,000 runs of schedules, all well inside their threshold;
* ``all due (schedules)``: the same runs all past it; the sweep wakes each
  run's schedule in the scheduler's heap (``touch``), which is all it does for
  a schedule: the reconcile that follows is the scheduler's, not the sweep's;
* ``all due (opt-in, Report)``: 1,000 opt-in Jobs past their threshold under
  dry run; the sweep records one Event for each (in a namespace made for it),
  so here the requests are the point.

CPU is ``time.process_time()`` (every thread of this process, so the client's
worker threads count too), per sweep; the first round is a warm-up. Requests
are counted two ways: by wrapping the API client's ``call_api`` (every request
the sweep's ``Kube`` sends), and from the API server's audit log, by this
run's own User-Agent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client, config

from jobwarden.handlers.scheduler import Scheduler
from jobwarden.handlers.sweep import JobCandidate, Sweep
from jobwarden.kube import Kube
from jobwarden.reconcile import Policy
from jobwarden.safety.stale import StaleCandidate

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = ROOT / "tests" / "controlplane" / "cluster.sh"


def _cluster(arg: str) -> str:
    out = subprocess.run(["bash", str(CLUSTER_SH), arg], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


class Counted:
    """An API client for the local control plane that counts the requests it sends."""

    def __init__(self, *, user_agent: str) -> None:
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=_cluster("kubeconfig"), client_configuration=configuration
        )  # type: ignore[no-untyped-call]
        self.api = client.ApiClient(configuration)
        self.api.user_agent = user_agent
        self.calls = 0
        real: Callable[..., Any] = self.api.call_api

        def call_api(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        self.api.call_api = call_api  # type: ignore[method-assign]


def audit_count(user_agent: str, *, path: Path) -> int | None:
    """Requests the audit log recorded from ``user_agent`` (None without a log)."""
    if not path.exists():
        return None
    count = 0
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if user_agent in line:
                with_agent = json.loads(line)
                if with_agent.get("userAgent") == user_agent:
                    count += 1
    return count


def schedule_runs(n: int, *, due: bool, now: datetime) -> list[StaleCandidate]:
    threshold = timedelta(seconds=1) if due else timedelta(hours=6)
    return [
        JobCandidate(
            key=("bench", f"run-{i:05d}", f"schedule-{i:05d}"),
            start_time=now - timedelta(minutes=1),
            threshold=threshold,
            action="Terminate",
            uid=f"uid-{i}",
        )
        for i in range(n)
    ]


def opt_in_jobs(n: int, *, namespace: str, now: datetime) -> list[StaleCandidate]:
    return [
        JobCandidate(
            key=(namespace, f"job-{i:05d}", ""),
            start_time=now - timedelta(minutes=1),
            threshold=timedelta(seconds=1),
            action="Report",
            uid=f"uid-{i}",
        )
        for i in range(n)
    ]


async def one_sweep(
    kube: Kube, candidates: Sequence[StaleCandidate], *, now: datetime
) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, runs found) of one pass with a fresh scheduler.

    Fresh each time, so every pass really pushes its wake-ups onto the heap:
    each schedule is made known as a watch event would make it, and its wake
    then consumed (private attributes: a benchmark's liberty), so that the
    sweep's ``touch`` does its whole work.
    """
    scheduler = Scheduler(kube=kube, policy=Policy(), jobs_of=lambda _: [])
    for c in candidates:
        key: tuple[str, str, str] = c.key  # type: ignore[assignment]
        namespace, _, schedule = key
        if schedule:
            scheduler.seen((namespace, schedule), resource_version=None)
    scheduler._queue.clear()
    sweep = Sweep(kube=kube, scheduler=scheduler, interval=timedelta(seconds=60))
    cpu, wall = time.process_time(), time.perf_counter()
    found = await sweep.sweep_once(candidates, now=now)
    return time.process_time() - cpu, time.perf_counter() - wall, found


Row = tuple[str, int, float, float, float, int, float, int | None]


async def measure(args: argparse.Namespace) -> list[Row]:
    agent = f"jobwarden-sweep-bench/{uuid.uuid4().hex[:8]}"
    counted = Counted(user_agent=agent)
    kube = Kube(counted.api)
    core = client.CoreV1Api(counted.api)
    namespace = f"bench-sweep-{uuid.uuid4().hex[:6]}"
    audit = Path(_cluster("workdir")) / "logs" / "audit.log"
    now = datetime.now(UTC)
    rows: list[Row] = []
    try:
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)),
            _preload_content=False,
        )
        cases = [
            ("none due", schedule_runs(args.runs, due=False, now=now), args.rounds),
            ("all due (schedules)", schedule_runs(args.runs, due=True, now=now), args.rounds),
            (
                "all due (opt-in, Report)",
                opt_in_jobs(args.runs, namespace=namespace, now=now),
                args.opt_in_rounds,
            ),
        ]
        for name, candidates, rounds in cases:
            await one_sweep(kube, candidates, now=now)  # warm-up
            await asyncio.sleep(1.0)  # the audit log written up to here
            before, audit_before = counted.calls, audit_count(agent, path=audit)
            cpu: list[float] = []
            wall: list[float] = []
            found = 0
            for _ in range(rounds):
                # A fresh Sweep each pass: opt-in Jobs are found and reported anew.
                c, w, found = await one_sweep(kube, candidates, now=now)
                cpu.append(c)
                wall.append(w)
            calls = (counted.calls - before) / rounds
            await asyncio.sleep(2.0)
            audit_after = audit_count(agent, path=audit)
            audited = (
                None
                if audit_before is None or audit_after is None
                else round((audit_after - audit_before) / rounds)
            )
            rows.append(
                (
                    name,
                    found,
                    statistics.median(cpu) * 1e3,
                    min(cpu) * 1e3,
                    statistics.median(wall) * 1e3,
                    rounds,
                    calls,
                    audited,
                )
            )
    finally:
        kube.close()
        core.delete_namespace(namespace, _preload_content=False)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20, help="sweeps per case (plus a warm-up)")
    parser.add_argument(
        "--opt-in-rounds",
        type=int,
        default=2,
        help="sweeps of the opt-in case (each records --runs Events)",
    )
    args = parser.parse_args()
    rows = asyncio.run(measure(args))
    loads = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"one sweep over {args.runs} active runs (load {loads})")
    print(
        "| case | found | CPU ms (median) | CPU ms (min) | wall ms (median) | sweeps | "
        "requests/sweep (wrapped client) | requests/sweep (audit log) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, found, cpu_med, cpu_min, wall_med, rounds, calls, audited in rows:
        print(
            f"| {name} | {found} | {cpu_med:.2f} | {cpu_min:.2f} | {wall_med:.2f} | {rounds} | "
            f"{calls:.0f} | {'-' if audited is None else audited} |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
