"""Job creation throughput: jobwarden's burst against the API server's own limit.

Run with ``.venv/bin/python bench/throughput.py [--n 1000]``.

jobwarden: N JobSchedules due at one minute boundary (the burst of
``lag.py``); its rate is the Jobs per second between the first and the last
Job's ADDED event. The limit: the same N Jobs (built by jobwarden's own
``build_job``, owned by a real JobSchedule, sent by its own ``kube.send``)
created directly from a tight loop in a process of its own (as the operator
is), with the concurrency the
operator uses (the 32 threads and 32 connections of ``kube.Kube``), stamped
by the same kind of watch. Target: jobwarden at least 0.8 of the limit.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bursts import Burst, JobWatch, burst, next_boundary
from common import OPERATOR_CONCURRENCY, load, say, table
from harness import Bench, bulk, create_schedules
from objects import cron_at, job_template, jobschedule, not_due_spec

from jobwarden import labels
from jobwarden.api.spec import parse_spec
from jobwarden.kube import JOBS_PATH, send
from jobwarden.runs.context import RunContext
from jobwarden.runs.jobs import build_job
from jobwarden.runs.naming import job_name


def raw_rate(bench: Bench, *, n: int, threads: int) -> tuple[float, float, str]:
    """Jobs/s of a tight create loop: (first-to-last ADDED rate, client-side rate, load)."""
    ns = bench.namespace(f"raw{n}")
    try:
        create_schedules(bench, ns, [jobschedule("owner", spec=not_due_spec())])
        owner = json.loads(
            bench.custom.get_namespaced_custom_object(
                "jobwarden.io", "v1alpha1", ns, "jobschedules", "owner", _preload_content=False
            ).data
        )
        moment = next_boundary(margin=0)
        spec = parse_spec({"schedule": cron_at(moment), "jobTemplate": job_template(suspend=True)})
        bodies = []
        for i in range(n):
            # One Job per name, as N schedules would each create one at the same minute.
            name = job_name(schedule=f"s{i:05d}", scheduled=moment, trigger=labels.TRIGGER_SCHEDULE)
            bodies.append(
                build_job(
                    schedule_name="owner",
                    schedule_uid=owner["metadata"]["uid"],
                    namespace=ns,
                    job_template=spec.job_template,
                    context=RunContext(
                        schedule="owner", scheduled=moment, trigger=labels.TRIGGER_SCHEDULE
                    ),
                    name=name,
                    stale_after_seconds=6 * 3600,
                )
            )

        path = bench.tmp / f"raw-{ns}.json"
        path.write_text(json.dumps(bodies))
        with JobWatch(bench, ns) as watch:
            load_now = load()
            # The loop runs in a process of its own, as the operator does: the watch's
            # parsing here must not take the creating threads' interpreter lock.
            out = subprocess.run(
                [sys.executable, __file__, "--raw-child", ns, str(path), str(threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds = float(out.stdout.strip().splitlines()[-1])
            watch.wait(n, until_wall=time.time() + 60)
            stamps = sorted(s.wall for s in watch.added.values())
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else math.nan
        return rate, n / seconds, load_now
    finally:
        bench.delete_namespace(ns, wait=True)


def raw_child(namespace: str, path: str, threads: int) -> None:
    """The tight loop itself: create the Jobs in ``path``, print the seconds it took."""
    bench = Bench()
    bodies = json.loads(Path(path).read_text())

    path = JOBS_PATH.format(namespace=namespace)

    def create(body: dict[str, object]) -> object:
        # The operator's own request path (kube.send), so only the scheduling differs.
        return send(bench.api, "POST", path, query=[("fieldManager", "jobwarden")], body=body)

    # Warm the connection pool first: the operator's connections are open long before a burst.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda _: bench.core.read_namespace(namespace), range(threads * 2)))
    print(bulk(create, bodies, threads=threads))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--raw-child":
        raw_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[OPERATOR_CONCURRENCY, 64],
        help="concurrency of the raw loops (the first is the limit compared)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds (burst, then raw loops)")
    args = parser.parse_args()
    began = time.monotonic()
    rounds: list[tuple[Burst, dict[int, tuple[float, float, str]]]] = []
    with Bench() as bench:
        for _ in range(args.repeat):
            jw = burst(bench, kind="jobwarden", n=args.n)
            raw = {t: raw_rate(bench, n=args.n, threads=t) for t in args.threads}
            rounds.append((jw, raw))

    print(f"Job creation throughput, N={args.n} Jobs (suspended), {datetime.now(UTC):%Y-%m-%d}")
    rows: list[list[object]] = []
    ratios = []
    for i, (jw, raw) in enumerate(rounds, 1):
        limit = raw[args.threads[0]][0]
        ratios.append(jw.rate / limit)
        rows.append(
            [
                i,
                "jobwarden burst (due at one minute)",
                OPERATOR_CONCURRENCY,
                jw.rate,
                args.n / jw.p(100) if jw.lags else math.nan,
                jw.rate / limit,
                1000 * jw.burst_cpu_seconds / args.n,
                jw.load,
            ]
        )
        for t, (rate, client_rate, load_now) in raw.items():
            rows.append(
                [
                    i,
                    f"raw create loop, {t} threads",
                    t,
                    rate,
                    client_rate,
                    rate / limit,
                    "-",
                    load_now,
                ]
            )
    headers = [
        "round",
        "creator",
        "concurrency",
        "Jobs/s (first->last ADDED)",
        "Jobs/s (other clock)",
        "vs limit",
        "operator CPU ms/Job in burst",
        "load 1/5/15",
    ]
    print(table(headers, rows))
    print("other clock: jobwarden N / (due -> last ADDED); raw loops N / client-side elapsed")
    ratio = statistics.median(ratios)
    worst = max(r.p(99) for r, _ in rounds)
    print(
        f"\ntarget jobwarden/limit >= 0.8: median {ratio:.2f} over {len(ratios)} rounds -> "
        f"{'met' if ratio >= 0.8 else 'MISSED'} (worst jobwarden p99 lag {worst:.3f}s)"
    )
    say(f"throughput benchmark took {time.monotonic() - began:.0f}s; load now {load()}")


if __name__ == "__main__":
    main()
