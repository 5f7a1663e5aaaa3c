"""Schedule lag: from a run's scheduled time to its Job, jobwarden beside CronJob.

Run with ``.venv/bin/python bench/lag.py [--n 1 10 100 1000]``.

For each N, N JobSchedules and then, in a separate phase at a later minute,
N equivalent CronJobs (kube-controller-manager's controller on the same API
server) are all due at one minute boundary. The lag of a run is the time
from that boundary to the ADDED event of its Job, as a watch in this process
receives it. The two kinds never share a minute, so neither competes with
the other for the API server; both get the same lead time and cron
expression (``bursts.burst``). Jobs are created suspended (no pods), so the
figures are the schedulers' alone; ``--pods`` runs 1-second pods instead.

Targets: jobwarden's p99 at most half of CronJob's at N=1000, and at most
1 s at N=100.
"""

from __future__ import annotations

import argparse
import math
import time

from bursts import Burst, burst
from common import load, say, table
from harness import Bench


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument(
        "--kinds", nargs="+", default=["jobwarden", "cronjob"], choices=["jobwarden", "cronjob"]
    )
    parser.add_argument(
        "--pods",
        action="store_true",
        help="let Jobs create 1-second pods instead of creating them suspended",
    )
    args = parser.parse_args()

    results: dict[tuple[str, int], Burst] = {}
    began = time.monotonic()
    with Bench() as bench:
        for n in args.n:
            for kind in args.kinds:
                results[(kind, n)] = burst(bench, kind=kind, n=n, suspend_jobs=not args.pods)

    print(
        f"Schedule lag: scheduled time -> Job ADDED event (seconds); "
        f"Jobs {'with 1-s pods' if args.pods else 'suspended (no pods)'}"
    )
    rows = []
    for (kind, n), r in results.items():
        rows.append(
            [
                n,
                kind,
                r.p(50),
                r.p(99),
                r.p(100),
                r.missing,
                r.rate,
                r.settle_seconds,
                r.cpu_seconds,
                r.load,
            ]
        )
    print(
        table(
            [
                "N",
                "scheduler",
                "p50",
                "p99",
                "max",
                "missing",
                "Jobs/s in burst",
                "settled (s)",
                "operator CPU (s)",
                "load 1/5/15",
            ],
            rows,
        )
    )
    print()
    ratio_rows = []
    for n in args.n:
        jw, cj = results.get(("jobwarden", n)), results.get(("cronjob", n))
        if jw is None or cj is None:
            continue
        ratio_rows.append(
            [
                n,
                _ratio(jw.p(50), cj.p(50)),
                _ratio(jw.p(99), cj.p(99)),
                _ratio(jw.p(100), cj.p(100)),
            ]
        )
    if ratio_rows:
        print(
            table(
                ["N", "p50 jobwarden/CronJob", "p99 jobwarden/CronJob", "max jobwarden/CronJob"],
                ratio_rows,
            )
        )
        print()
    jw1000, cj1000 = results.get(("jobwarden", 1000)), results.get(("cronjob", 1000))
    if jw1000 and cj1000:
        ok = jw1000.p(99) <= cj1000.p(99) / 2 and jw1000.missing == 0
        print(
            f"target p99(N=1000) <= CronJob's / 2: {jw1000.p(99):.3f}s vs "
            f"{cj1000.p(99) / 2:.3f}s -> {'met' if ok else 'MISSED'}"
        )
    jw100 = results.get(("jobwarden", 100))
    if jw100:
        ok = jw100.p(99) <= 1.0 and jw100.missing == 0
        print(f"target p99(N=100) <= 1 s: {jw100.p(99):.3f}s -> {'met' if ok else 'MISSED'}")
    say(f"lag benchmark took {time.monotonic() - began:.0f}s; load now {load()}")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


if __name__ == "__main__":
    main()
