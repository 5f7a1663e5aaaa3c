"""Memory: the operator's resident set with 0, 1,000 and 10,000 JobSchedules.

Run with ``.venv/bin/python bench/memory.py [--counts 0 1000 10000]``.

One operator watches a namespace that fills up step by step with schedules
that are not due (a ``runAt`` next year); after each step, once every
schedule has been reconciled and a pause has passed, VmRSS is read from
``/proc/<pid>/status``. Then the operator is restarted on the full namespace
(as after a crash or a rollout), which is what a deployment lives with.
The per-schedule figure is the growth between steps divided by the
schedules added. The time to create the objects is shown too.

``--tracemalloc FILE`` runs the operator with tracemalloc on and writes the
top allocation sites (by source line) at the last step to FILE.

Target: at most 10 KiB per schedule.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from common import (
    Bench,
    Operator,
    create_schedules,
    jobschedule,
    load,
    not_due_spec,
    say,
    table,
)

# Run in place of the console script with --tracemalloc: SIGUSR1 writes a snapshot.
TRACED = """
import os, signal, sys, tracemalloc
tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1")))
def dump(*_):
    tracemalloc.take_snapshot().dump(os.environ["BENCH_TRACEMALLOC_OUT"])
signal.signal(signal.SIGUSR1, dump)
from jobwarden.main import main
sys.exit(main([]))
"""


class TracedOperator(Operator):
    def command(self) -> list[str]:
        import sys

        return [sys.executable, "-c", TRACED]


def settle_rss(op: Operator, *, pause: float) -> int:
    """VmRSS after ``pause`` seconds, the largest of a few reads (no transient dip counts)."""
    time.sleep(pause)
    return max(op.stat().rss_kib for _ in range(3) if time.sleep(0.3) is None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", type=int, nargs="+", default=[0, 1000, 10000])
    parser.add_argument("--threads", type=int, default=64, help="creating threads")
    parser.add_argument("--pause", type=float, default=10.0)
    parser.add_argument("--tracemalloc", type=Path, default=None)
    parser.add_argument("--no-restart", action="store_true")
    args = parser.parse_args()
    counts = sorted(set(args.counts))

    rows: list[list[object]] = []
    with Bench() as bench:
        ns = bench.namespace("mem")
        snapshot = bench.tmp / "tracemalloc.snap"
        env = {"BENCH_TRACEMALLOC_OUT": str(snapshot)}

        def operator(name: str) -> Operator:
            if args.tracemalloc is None:
                return bench.operator(namespaces=[ns], name=name)
            op = TracedOperator(
                kubeconfig=bench.operator_kubeconfig(),
                namespaces=[ns],
                log_path=bench.tmp / f"{name}.log",
                profile=None,
                env=env,
            )
            bench._operators.append(op)
            return op

        op = operator("memory")
        op.start()
        spec = not_due_spec()
        have = 0
        base: int | None = None
        prev: tuple[int, int] | None = None
        for count in counts:
            created = math.nan
            if count > have:
                bodies = [jobschedule(f"s{i:05d}", spec=spec) for i in range(have, count)]
                created = create_schedules(bench, ns, bodies, threads=args.threads)
                say(
                    f"created {count - have} schedules in {created:.1f}s "
                    f"({(count - have) / created:.0f}/s)"
                )
                have = count
            reconciled = op.wait_reconciled(count, timeout=900)
            rss = settle_rss(op, pause=args.pause)
            base = rss if base is None else base
            per = (rss - prev[1]) / (count - prev[0]) if prev and count > prev[0] else math.nan
            rows.append([count, "growing", rss / 1024, per, created, reconciled, load()])
            say(f"{count} schedules: RSS {rss / 1024:.1f} MiB")
            prev = (count, rss)
        if args.tracemalloc is not None:
            import os
            import signal
            import tracemalloc

            os.kill(op.pid, signal.SIGUSR1)
            time.sleep(3)
            snap = tracemalloc.Snapshot.load(str(snapshot))
            lines = [
                f"{s.size / 1024:10.1f} KiB {s.count:8d} {s.traceback}"
                for s in snap.statistics("lineno")[:40]
            ]
            args.tracemalloc.write_text("\n".join(lines) + "\n")
            say(f"tracemalloc top lines written to {args.tracemalloc}")
        if not args.no_restart and have:
            op.stop()
            op = operator("memory-restarted")
            began = time.monotonic()
            op.start()
            op.wait_reconciled(have, timeout=900)
            reconciled = time.monotonic() - began
            rss = settle_rss(op, pause=args.pause)
            per = (rss - base) / have if base is not None else math.nan
            rows.append([have, "restarted", rss / 1024, per, math.nan, reconciled, load()])
            say(f"restarted with {have} schedules: RSS {rss / 1024:.1f} MiB")
        op.stop()
        gone = bench.delete_namespace(ns, wait=True, timeout=900)
        say(f"deleted the namespace of {have} schedules in {gone:.0f}s")

    print("Operator memory (VmRSS) by JobSchedules watched, none due")
    print(
        table(
            [
                "schedules",
                "operator",
                "RSS (MiB)",
                "KiB per schedule (vs previous row)",
                "create (s)",
                "all reconciled (s)",
                "load 1/5/15",
            ],
            rows,
        )
    )
    print("restarted row: KiB per schedule against the empty operator's RSS")
    worst = max(
        (r[3] for r in rows if isinstance(r[3], float) and not math.isnan(r[3])), default=math.nan
    )
    print(
        f"\ntarget <= 10 KiB per schedule: worst {worst:.1f} KiB -> "
        f"{'met' if worst <= 10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
