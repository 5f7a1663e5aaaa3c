"""Idle cost: API requests and CPU of an operator whose 1,000 schedules are not due.

Run with ``.venv/bin/python bench/idle.py [--n 1000] [--seconds 150]``.

The schedules (a ``runAt`` next year) exist before the operator starts, as
after a restart. Once it has reconciled every one and a settling pause has
passed, a window of ``--seconds`` (at least two minutes) is measured:

* API requests, from the API server's audit log (Metadata level): the
  entries whose user is the operator's own ServiceAccount, each request
  counted once, by the time the server received it;
* CPU, user plus system time of the operator process from ``/proc/<pid>/stat``.

Startup (requests, CPU, seconds until every schedule is reconciled) is shown
apart from the idle window. Target: about zero.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from audit import audit_requests, audit_size
from common import load, say, table
from harness import Bench, create_schedules
from objects import jobschedule, not_due_spec


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=150.0, help="the idle window")
    parser.add_argument(
        "--settle",
        type=float,
        default=15.0,
        help="pause after the last first reconcile before the window",
    )
    args = parser.parse_args()
    if args.seconds < 120:
        parser.error("the window must be at least 120 s (a watch restarts every 300 s)")

    with Bench() as bench:
        ns = bench.namespace(f"idle{args.n}")
        spec = not_due_spec()
        created = create_schedules(
            bench, ns, [jobschedule(f"s{i:05d}", spec=spec) for i in range(args.n)]
        )
        say(f"created {args.n} schedules in {created:.1f}s")
        audit = bench.audit_log
        op = bench.operator(namespaces=[ns], name="idle")
        offset = audit_size(audit)
        healthy = op.start()
        start_wall = op.started_wall
        reconciled = op.wait_reconciled(args.n, timeout=600) + healthy
        startup_cpu = op.stat().cpu_seconds
        settled_wall = time.time()
        say(f"operator healthy in {healthy:.1f}s, all reconciled after {reconciled:.1f}s")
        time.sleep(args.settle)

        t0, cpu0, offset0 = time.time(), op.stat().cpu_seconds, audit_size(audit)
        load0 = load()
        say(f"idle window of {args.seconds:.0f}s (load {load0})")
        time.sleep(args.seconds)
        t1, stat1 = time.time(), op.stat()
        load1 = load()
        time.sleep(2)  # the last entries of the window reach the log
        startup, _ = audit_requests(
            audit, offset=offset, user=bench.operator_user, since=start_wall, until=settled_wall
        )
        window, _ = audit_requests(
            audit, offset=offset0, user=bench.operator_user, since=t0, until=t1
        )
        op.stop()
        bench.delete_namespace(ns, wait=True)

    minutes = (t1 - t0) / 60
    cpu = stat1.cpu_seconds - cpu0
    print(f"Idle cost: {args.n} JobSchedules, none due; window {t1 - t0:.0f}s")
    print(
        table(
            [
                "phase",
                "seconds",
                "API requests",
                "requests/min",
                "operator CPU (s)",
                "CPU %",
                "RSS (MiB)",
                "load 1/5/15",
            ],
            [
                [
                    "startup (start -> all reconciled)",
                    reconciled,
                    len(startup),
                    len(startup) / (reconciled / 60),
                    startup_cpu,
                    100 * startup_cpu / reconciled,
                    "-",
                    load0,
                ],
                [
                    "idle window",
                    t1 - t0,
                    len(window),
                    len(window) / minutes,
                    cpu,
                    100 * cpu / (t1 - t0),
                    stat1.rss_kib / 1024,
                    load1,
                ],
            ],
        )
    )
    for label, requests in (("startup", startup), ("idle window", window)):
        by = Counter(f"{r.verb} {r.resource}" for r in requests)
        if by:
            print(f"\n{label} requests by verb and resource:")
            print(table(["verb resource", "count"], by.most_common()))
    per_min = len(window) / minutes
    print(
        f"\ntarget ~0 requests/min idle: {per_min:.2f}/min, CPU {100 * cpu / (t1 - t0):.2f}% "
        f"-> {'met' if per_min <= 1 and cpu / (t1 - t0) < 0.01 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
