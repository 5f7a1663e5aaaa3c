"""Memory: the operator's resident set with 0, 1,000 and 10,000 JobSchedules.

Run with ``.venv/bin/python bench/memory.py [--counts 0 1000 10000]``.

One operator watches a namespace that fills up step by step with schedules
that are not due (a ``runAt`` next year); after each step, once every
schedule has been reconciled and a pause has passed, VmRSS is read from
``/proc/<pid>/status``. Then the operator is restarted on the full namespace
(as after a crash or a rollout), which is what a deployment lives with.
The per-schedule figure is the growth between steps divided by the
schedules added. The time to create the objects is shown too.

``--tracemalloc FILE`` runs the operator with tracemalloc on, shows the
traced Python heap at each step, and writes its growth from the first to
the last step by source line to FILE: live objects, as against RSS, which
also holds freed memory the allocators keep.

Target: at most 10 KiB per schedule.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path

from common import load, say, table
from harness import Bench, create_schedules
from objects import jobschedule, not_due_spec
from operator_process import Operator

# Run in place of the console script with --tracemalloc: SIGUSR1 writes a snapshot.
# Tracing starts at the first one (after startup): with many frames per trace,
# tracing the imports and kopf's startup would take minutes.
TRACED = """
import os, signal, sys, tracemalloc
def dump(*_):
    if not tracemalloc.is_tracing():
        tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1")))
    out = os.environ["BENCH_TRACEMALLOC_OUT"]
    tracemalloc.take_snapshot().dump(out + ".tmp")
    os.replace(out + ".tmp", out)
signal.signal(signal.SIGUSR1, dump)
from jobwarden.main import main
sys.exit(main([]))
"""


class TracedOperator(Operator):
    def command(self) -> list[str]:
        return [sys.executable, "-c", TRACED]


def snapshot_of(op: Operator, path: Path) -> tracemalloc.Snapshot:
    """Ask a traced operator for a snapshot (SIGUSR1) and load it."""
    path.unlink(missing_ok=True)
    os.kill(op.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the traced operator wrote no snapshot")
        time.sleep(0.2)
    return tracemalloc.Snapshot.load(str(path))


def settle_rss(op: Operator, *, pause: float) -> int:
    """VmRSS after ``pause`` seconds, the largest of a few reads (no transient dip counts)."""
    time.sleep(pause)
    reads = []
    for _ in range(3):
        reads.append(op.stat().rss_kib)
        time.sleep(0.3)
    return max(reads)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", type=int, nargs="+", default=[0, 1000, 10000])
    parser.add_argument("--threads", type=int, default=64, help="creating threads")
    parser.add_argument("--pause", type=float, default=10.0)
    parser.add_argument("--tracemalloc", type=Path, default=None)
    parser.add_argument("--no-restart", action="store_true")
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="measure the first row on an operator that never reconciled",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the operator (e.g. MALLOC_ARENA_MAX=2)",
    )
    args = parser.parse_args()
    counts = sorted(set(args.counts))
    extra_env = dict(e.split("=", 1) for e in args.env)

    rows: list[list[object]] = []
    snaps: list[tracemalloc.Snapshot] = []
    with Bench() as bench:
        ns = bench.namespace("mem")
        snapshot = bench.tmp / "tracemalloc.snap"

        def operator(name: str) -> Operator:
            if args.tracemalloc is None:
                return bench.operator(namespaces=[ns], name=name, env=extra_env)
            op = TracedOperator(
                kubeconfig=bench.operator_kubeconfig(),
                namespaces=[ns],
                log_path=bench.tmp / f"{name}.log",
                profile=None,
                env={**extra_env, "BENCH_TRACEMALLOC_OUT": str(snapshot)},
            )
            bench._operators.append(op)
            return op

        op = operator("memory")
        op.start()
        spec = not_due_spec()
        have = 0
        base: int | None = None
        prev: tuple[int, int] | None = None
        if not args.no_warmup:
            # One schedule that comes and goes: the first reconcile's one-time costs (code
            # loaded on first use, the API threads' first connections) are not per schedule.
            base = settle_rss(op, pause=args.pause)
            rows.append([0, "fresh", base / 1024, math.nan, math.nan, math.nan, math.nan, load()])
            create_schedules(bench, ns, [jobschedule("warmup", spec=spec)])
            op.wait_reconciled(1, timeout=120)
            bench.custom.delete_namespaced_custom_object(
                "jobwarden.io", "v1alpha1", ns, "jobschedules", "warmup"
            )
            while op.schedules_reconciled() > 0:
                time.sleep(0.2)
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
            stage = "growing" if count or args.no_warmup else "warmed up"
            traced = math.nan
            if args.tracemalloc is not None:
                snaps.append(snapshot_of(op, snapshot))
                traced = sum(s.size for s in snaps[-1].statistics("filename")) / 2**20
            rows.append([count, stage, rss / 1024, per, traced, created, reconciled, load()])
            say(f"{count} schedules: RSS {rss / 1024:.1f} MiB")
            prev = (count, rss)
        if len(snaps) > 1:
            diff = snaps[-1].compare_to(snaps[0], "lineno")
            lines = [
                f"{d.size_diff / 1024:10.1f} KiB {d.count_diff:8d} {d.traceback}" for d in diff[:60]
            ]
            by_stack = snaps[-1].compare_to(snaps[0], "traceback")[:8]
            stacks = [
                f"{d.size_diff / 1024:.1f} KiB in {d.count_diff} blocks:\n"
                + "\n".join(f"    {frame}" for frame in d.traceback.format()[-24:])
                for d in by_stack
            ]
            args.tracemalloc.write_text(
                f"traced growth from {counts[0]} to {counts[-1]} schedules, by source line\n"
                + "\n".join(lines)
                + "\n\nthe largest growth by stack (BENCH_TRACEMALLOC_FRAMES frames)\n"
                + "\n".join(stacks)
                + "\n"
            )
            say(f"tracemalloc growth by line written to {args.tracemalloc}")
        if not args.no_restart and have:
            op.stop()
            op = operator("memory-restarted")
            began = time.monotonic()
            op.start()
            op.wait_reconciled(have, timeout=900)
            reconciled = time.monotonic() - began
            rss = settle_rss(op, pause=args.pause)
            per = (rss - base) / have if base is not None else math.nan
            rows.append(
                [have, "restarted", rss / 1024, per, math.nan, math.nan, reconciled, load()]
            )
            say(f"restarted with {have} schedules: RSS {rss / 1024:.1f} MiB")
        op.stop()
        gone = bench.delete_namespace(ns, wait=True, timeout=900)
        say(f"deleted the namespace of {have} schedules in {gone:.0f}s")

    env_note = f" (operator env: {' '.join(args.env)})" if args.env else ""
    print(f"Operator memory (VmRSS) by JobSchedules watched, none due{env_note}")
    headers = [
        "schedules",
        "operator",
        "RSS (MiB)",
        "KiB per schedule (vs previous row)",
        "traced heap (MiB)",
        "create (s)",
        "all reconciled (s)",
        "load 1/5/15",
    ]
    print(table(headers, rows))
    print(
        "warmed up: after one schedule came and went; restarted row: KiB per schedule "
        "against the fresh empty operator's RSS"
    )
    worst = max(
        (r[3] for r in rows if isinstance(r[3], float) and not math.isnan(r[3])), default=math.nan
    )
    print(
        f"\ntarget <= 10 KiB per schedule: worst {worst:.1f} KiB -> "
        f"{'met' if worst <= 10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
