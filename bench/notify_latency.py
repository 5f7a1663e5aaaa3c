"""Notification delivery latency: from a run's end to its CloudEvent at the receiver.

Run with ``.venv/bin/python bench/notify_latency.py [--n 100] [--spread 0 20]``.

For each spread S, N JobSchedules whose one run (``runAt``, a one-second pod
that fails) falls within S seconds (0: all at one instant, a burst), each
subscribed to ``Failed`` on one sink: an HTTP receiver in this process
(tests/support/receiver.py), named in the operator's ``--notify-sinks``
file. A Job watch in this process stamps, on its own clock, the first event
showing each Job failed (its Failed condition); the receiver stamps each
CloudEvent's arrival on the same clock; the figure is the difference,
matched by the event's ``subject`` (the Job). It covers the Job watch
reaching the operator, the reconcile and its status write, the queue and
the POST.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import load, percentile, say, table
from harness import Bench, create_schedules
from objects import jobschedule
from stale_latency import StopWatch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.receiver import Receiver

SINK = "bench"


@dataclass
class FailWatch(StopWatch):
    """The stale benchmark's Job watch, stamping when each Job is first seen failed."""

    failed: dict[str, float] = field(default_factory=dict)

    def _see(self, kind: str, body: dict[str, Any], wall: float) -> None:
        meta = body.get("metadata") or {}
        done = any(
            c.get("type") == "Failed" and c.get("status") == "True"
            for c in (body.get("status") or {}).get("conditions") or []
        )
        if done:
            with self._lock:
                self.failed.setdefault(meta.get("name", ""), wall)

    def seen_failed(self) -> dict[str, float]:
        if self._error is not None:
            raise RuntimeError(f"watch failed: {self._error!r}")
        with self._lock:
            return dict(self.failed)


def _template() -> dict[str, Any]:
    return {
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "annotations": {
                        "jobwarden.test/run-seconds": "1s",
                        "jobwarden.test/fail": "true",
                    }
                },
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "main", "image": "busybox"}],
                },
            },
        }
    }


def _schedules(bench: Bench, namespace: str, n: int, spread: float) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8 + 0.05 * n)
    bodies = [
        jobschedule(
            f"fails-{i:04d}",
            spec={
                "runAt": (start + timedelta(seconds=int(spread * i / n))).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "notify": [{"sink": SINK, "events": ["Failed"]}],
                "jobTemplate": _template(),
            },
        )
        for i in range(n)
    ]
    create_schedules(bench, namespace, bodies)


def _wait(receiver: Receiver, n: int, *, timeout: float) -> None:
    try:
        receiver.wait(lambda r: len(r.unique()) >= n, timeout=timeout, what=f"{n} events")
    except AssertionError as exc:
        say(str(exc))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--spread", type=float, nargs="+", default=[0.0, 20.0])
    args = parser.parse_args()

    rows: list[list[object]] = []
    with Bench() as bench, Receiver().running() as receiver:
        sinks = bench.tmp / "sinks.json"
        sinks.write_text(json.dumps({"sinks": [{"name": SINK, "url": receiver.url}]}))
        for spread in args.spread:
            n = args.n
            namespace = bench.namespace(f"notify-{int(spread)}")
            operator = bench.operator(
                namespaces=[namespace],
                name=f"notify-{int(spread)}",
                env={"JOBWARDEN_NOTIFY_SINKS": str(sinks)},
            )
            try:
                operator.start()
            except RuntimeError:
                say("operator did not start; once more")  # a ServiceAccount not bound yet
                time.sleep(3)
                operator.start()
            before = set(receiver.unique())
            sent_before = len(receiver.snapshot())
            with FailWatch(bench, namespace) as watch:
                say(f"{n} failing run(s) within {spread:g}s")
                _schedules(bench, namespace, n, spread)
                _wait(receiver, len(before) + n, timeout=90 + spread + 0.5 * n)
                failed = watch.seen_failed()
            operator.stop()
            bench.delete_namespace(namespace, wait=False)
            got = {
                r.subject: r.at
                for key, r in receiver.unique().items()
                if key not in before and r.subject is not None
            }
            lags = sorted(got[job] - at for job, at in failed.items() if job in got)
            # Copies: requests beyond one per event (a retry or a re-send of the same id).
            copies = len(receiver.snapshot()) - sent_before - len(got)
            rows.append(
                [
                    f"{spread:g}",
                    n,
                    len(failed),
                    len(got),
                    copies,
                    percentile(lags, 50),
                    percentile(lags, 99),
                    lags[-1] if lags else math.nan,
                    load(),
                ]
            )
    print("seconds from a Job seen failed to its CloudEvent received")
    print(
        table(
            [
                "spread s",
                "runs",
                "seen failed",
                "events",
                "copies",
                "p50 s",
                "p99 s",
                "max s",
                "load 1/5/15",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
