"""Startup: from operator start to the Job of a fresh schedule, beside N schedules and N Jobs.

Run with ``.venv/bin/python bench/startup.py [--counts 1000 10000 50000]``.

For each N, a namespace gets N JobSchedules that are not due (a ``runAt``
next year) and N suspended Jobs labelled for and owned by them (as runs the
operator made), created in parallel.
Then the operator starts (as after a crash or a rollout) and, once it answers
/healthz (its informers are still listing), a fresh schedule is applied whose
one run is due ``--due-after`` seconds after the start (or 10 s after the
apply, when a loaded machine made the process that slow to answer; the
note column says so). The figures: the
seconds from the start to that run's Job (its ``creationTimestamp``, 1 s
resolution), the Job's lag behind its due time, and the operator's CPU and
resident memory by then. A row that says "none" found no Job within
``--timeout``.

``--apply-after SECONDS`` applies the fresh schedule that long after the
start instead of as soon as /healthz answers: after the first page of the
schedules' listing, so that the operator can learn of it only through its
watch, while the other pages are still read (applied at once, it is in the
listing's snapshot, and "fresh" sorts onto its first page).

``--listed`` measures a schedule that existed before the restart instead of
a fresh one: the last of the N (on the listing's last page), given a run
due about ``--due-after`` seconds after the start by the operator that ran
before the restart (as a daily schedule whose hour comes). ``--read-ahead`` lets both
operators keep and read the due-soon list (``--due-soon-configmap``);
without it, the schedule is known only once its page is read.

``--operator PATH`` runs another ``jobwarden`` executable (for example an
older checkout's, to compare before and after). ``--reuse NAMESPACE`` measures
in a namespace an earlier run filled (and kept): filling 50,000 of each takes
this machine half an hour. A ``--reuse`` namespace that does not exist yet is
created and filled by this run, and kept.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import GROUP, PLURAL, VERSION, load, say, table
from harness import Bench, bulk, create_schedules
from kubernetes.client.exceptions import ApiException
from objects import job_template, jobschedule, not_due_spec
from operator_process import Operator

SCHEDULE_LABEL = "jobwarden.io/schedule"
DUE_SOON = "due-soon"


class Executable(Operator):
    """The operator, from a given ``jobwarden`` executable."""

    def __init__(self, exe: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exe = exe

    def command(self) -> list[str]:
        return [str(self.exe)]


def _job(i: int, uid: str) -> dict[str, Any]:
    """A run of schedule ``i``: labelled for it and owned by it, as the operator makes them
    (a Job without the owner is a tenant's, and gets a ForeignJob Warning instead)."""
    name = f"s-{i:05d}"
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "JobSchedule", "name": name, "uid": uid}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{name}-1",
            "labels": {SCHEDULE_LABEL: name},
            "ownerReferences": [{**owner, "controller": True}],
        },
        "spec": job_template(suspend=True)["spec"],
    }


def _uids(bench: Bench, namespace: str) -> dict[str, str]:
    """Every schedule's uid in ``namespace``, listed in pages."""
    uids: dict[str, str] = {}
    token = None
    while True:
        page = bench.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, limit=5000, _continue=token
        )
        for item in page["items"]:
            uids[item["metadata"]["name"]] = item["metadata"]["uid"]
        token = page["metadata"].get("continue")
        if not token:
            return uids


def fill(bench: Bench, namespace: str, n: int) -> float:
    """N schedules and N Jobs, in parallel; returns the seconds taken."""
    began = time.monotonic()
    create_schedules(
        bench,
        namespace,
        [jobschedule(f"s-{i:05d}", spec=not_due_spec()) for i in range(n)],
        threads=48,
    )
    say(f"{n} schedules in {time.monotonic() - began:.0f} s")

    def create_job(body: dict[str, Any]) -> object:
        return bench.batch.create_namespaced_job(namespace, body, _preload_content=False)

    uids = _uids(bench, namespace)
    bulk(create_job, [_job(i, uids[f"s-{i:05d}"]) for i in range(n)], threads=48)
    return time.monotonic() - began


def first_job(bench: Bench, namespace: str, schedule: str) -> datetime | None:
    jobs = bench.batch.list_namespaced_job(namespace, label_selector=f"{SCHEDULE_LABEL}={schedule}")
    stamps = [j.metadata.creation_timestamp for j in jobs.items]
    return min(stamps) if stamps else None


def _exists(bench: Bench, namespace: str) -> bool:
    try:
        bench.core.read_namespace(namespace, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _drop_fresh(bench: Bench, namespace: str) -> None:
    """Remove an earlier run's fresh schedule and its Jobs from a reused namespace."""
    try:
        bench.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "fresh")
    except ApiException as exc:
        if exc.status != 404:
            raise
    bench.batch.delete_collection_namespaced_job(
        namespace, label_selector=f"{SCHEDULE_LABEL}=fresh", propagation_policy="Background"
    )


def _namespace(bench: Bench, n: int, reuse: str | None) -> tuple[str, float]:
    """The namespace to measure in, and the seconds its filling took (0: reused)."""
    if reuse and _exists(bench, reuse):
        _drop_fresh(bench, reuse)
        return reuse, 0.0
    if reuse:
        bench.core.create_namespace({"metadata": {"name": reuse}})
        return reuse, fill(bench, reuse, n)
    namespace = bench.namespace(f"startup{n}")
    return namespace, fill(bench, namespace, n)


def _due_soon_names(bench: Bench, namespace: str) -> str:
    try:
        found = bench.core.read_namespaced_config_map(DUE_SOON, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return ""
        raise
    return str((found.data or {}).get("schedules", ""))


def listed_row(
    bench: Bench,
    n: int,
    *,
    exe: Path,
    lead: float,
    timeout: float,
    reuse: str | None,
    read_ahead: bool,
) -> list[object]:
    """The last schedule of N, due soon after a restart: its run's lag."""
    namespace, created = _namespace(bench, n, reuse)
    env = {"JOBWARDEN_LEASE_NAMESPACE": namespace}
    if read_ahead:
        env["JOBWARDEN_DUE_SOON_CONFIGMAP"] = DUE_SOON
    last = f"s-{n - 1:05d}"
    # An earlier row's run of it would read as this row's.
    for job in bench.batch.list_namespaced_job(
        namespace, label_selector=f"{SCHEDULE_LABEL}={last}"
    ).items:
        if job.metadata.name != f"{last}-1":
            bench.batch.delete_namespaced_job(
                job.metadata.name, namespace, propagation_policy="Background"
            )

    def operator(log: str) -> Executable:
        op = Executable(
            exe,
            kubeconfig=bench.operator_kubeconfig(),
            namespaces=[namespace],
            log_path=bench.tmp / log,
            profile=None,
            env=env,
        )
        bench._operators.append(op)
        return op

    before = operator(f"before-listed-{n}.log")
    before.start(timeout=timeout)
    took = before.wait_reconciled(n, timeout=3600)
    say(f"N={n}: the operator before reconciled all in {took:.0f} s")
    # The wait below, the stop, then ``lead`` seconds after the start.
    due = (datetime.now(UTC) + timedelta(seconds=23 + lead)).replace(microsecond=0)
    bench.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, last, {"spec": {"runAt": f"{due:%Y-%m-%dT%H:%M:%SZ}"}}
    )
    # The same wait with or without the list: long enough for the list to be written.
    written = time.monotonic() + 20
    while time.monotonic() < written:
        time.sleep(1)
    named = f"{namespace}/{last}" in _due_soon_names(bench, namespace).split()
    before.stop()
    op = operator(f"listed-{n}.log")
    healthy = op.start(timeout=timeout)
    started = datetime.fromtimestamp(op.started_wall, UTC)
    lead = (due - started).total_seconds()
    say(f"N={n}: {last} due {due:%H:%M:%S} (+{lead:.0f} s); in the due-soon list: {named}")
    job_at: datetime | None = None
    deadline = time.monotonic() + timeout
    while job_at is None and time.monotonic() < deadline and op.proc and op.proc.poll() is None:
        jobs = bench.batch.list_namespaced_job(namespace, label_selector=f"{SCHEDULE_LABEL}={last}")
        runs = [j.metadata.creation_timestamp for j in jobs.items if j.metadata.name != f"{last}-1"]
        job_at = min(runs) if runs else None
        if job_at is None:
            time.sleep(0.5)
    stat = op.stat() if op.proc and op.proc.poll() is None else None
    op.stop()
    if not reuse:
        bench.delete_namespace(namespace, wait=False)
    # Not due again: a later row in the same namespace measures afresh.
    bench.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, last, {"spec": not_due_spec()}
    )
    return [
        n,
        f"{created:.0f}",
        f"{healthy:.1f}",
        f"{(job_at - started).total_seconds():.0f}" if job_at else f"none in {timeout:.0f}",
        f"{(job_at - due).total_seconds():.0f}" if job_at else "-",
        f"{stat.cpu_seconds:.1f}" if stat else "-",
        f"{stat.rss_kib / 1024:.0f}" if stat else "-",
        f"{last} due at +{lead:.0f} s; "
        + ("read ahead" if read_ahead else "no list")
        + ("" if named or not read_ahead else "; NOT in the list"),
        load(),
    ]


def one_row(
    bench: Bench,
    n: int,
    *,
    exe: Path,
    due_after: float,
    apply_after: float,
    timeout: float,
    warm: bool,
    reuse: str | None,
) -> list[object]:
    namespace, created = _namespace(bench, n, reuse)
    if warm:
        # A restart, not a first start: every schedule already has its status.
        first = Executable(
            exe,
            kubeconfig=bench.operator_kubeconfig(),
            namespaces=[namespace],
            log_path=bench.tmp / f"warm-{n}.log",
            profile=None,
            env={},
        )
        bench._operators.append(first)
        first.start(timeout=timeout)
        say(f"N={n}: warm-up reconciled all in {first.wait_reconciled(n, timeout=3600):.0f} s")
        first.stop()
    op = Executable(
        exe,
        kubeconfig=bench.operator_kubeconfig(),
        namespaces=[namespace],
        log_path=bench.tmp / f"startup-{n}.log",
        profile=None,
        env={},
    )
    bench._operators.append(op)
    healthy = op.start(timeout=timeout)
    started = datetime.fromtimestamp(op.started_wall, UTC)
    time.sleep(max(0.0, op.started_wall + apply_after - time.time()))
    # Due --due-after seconds after the start; on a machine so loaded that the
    # process took nearly that long to answer /healthz, 10 s after the apply.
    due = (started + timedelta(seconds=due_after)).replace(microsecond=0)
    moved = datetime.now(UTC) > due - timedelta(seconds=5)
    if moved:
        due = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    spec = {"runAt": due.strftime("%Y-%m-%dT%H:%M:%SZ"), "jobTemplate": job_template(suspend=True)}
    bench.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, jobschedule("fresh", spec=spec)
    )
    say(f"N={n}: healthy after {healthy:.1f} s; fresh schedule due {due:%H:%M:%S}")
    job_at: datetime | None = None
    deadline = time.monotonic() + timeout
    while job_at is None and time.monotonic() < deadline and op.proc and op.proc.poll() is None:
        job_at = first_job(bench, namespace, "fresh")
        if job_at is None:
            time.sleep(0.5)
    stat = op.stat() if op.proc and op.proc.poll() is None else None
    op.stop()
    if not reuse:
        bench.delete_namespace(namespace, wait=False)
    to_job = (job_at - started).total_seconds() if job_at else math.nan
    lag = (job_at - due).total_seconds() if job_at else math.nan
    return [
        n,
        f"{created:.0f}",
        f"{healthy:.1f}",
        f"{to_job:.0f}" if job_at else f"none in {timeout:.0f}",
        f"{lag:.0f}" if job_at else "-",
        f"{stat.cpu_seconds:.1f}" if stat else "-",
        f"{stat.rss_kib / 1024:.0f}" if stat else "-",
        f"due at +{(due - started).total_seconds():.0f} s" if moved else "",
        load(),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--due-after", type=float, default=20.0)
    parser.add_argument(
        "--apply-after",
        type=float,
        default=0.0,
        help="apply the fresh schedule this many seconds after the start "
        "(default: once /healthz answers)",
    )
    parser.add_argument("--timeout", type=float, default=420.0)
    parser.add_argument(
        "--warm",
        action="store_true",
        help="let an operator reconcile every schedule first, so the measured start is a "
        "restart (schedules with a status) rather than a first start",
    )
    parser.add_argument(
        "--operator", type=Path, default=Path(sys.executable).with_name("jobwarden")
    )
    parser.add_argument(
        "--reuse",
        metavar="NAMESPACE",
        help="measure in this namespace, filled by an earlier run with N of each, and keep it "
        "(a namespace that does not exist yet is created and filled first)",
    )
    parser.add_argument(
        "--listed",
        action="store_true",
        help="measure the last of the N schedules, due soon after the restart, not a fresh one",
    )
    parser.add_argument(
        "--read-ahead",
        action="store_true",
        help="with --listed: the operators keep and read the due-soon list",
    )
    args = parser.parse_args()
    rows = []
    with Bench() as bench:
        for n in args.counts:
            if args.listed:
                rows.append(
                    listed_row(
                        bench,
                        n,
                        exe=args.operator,
                        lead=args.due_after,
                        timeout=args.timeout,
                        reuse=args.reuse,
                        read_ahead=args.read_ahead,
                    )
                )
                say(f"row: {rows[-1]}")
                continue
            rows.append(
                one_row(
                    bench,
                    n,
                    exe=args.operator,
                    due_after=args.due_after,
                    apply_after=args.apply_after,
                    timeout=args.timeout,
                    warm=args.warm,
                    reuse=args.reuse,
                )
            )
            say(f"row: {rows[-1]}")
    print(
        table(
            [
                "N (schedules = Jobs)",
                "create s",
                "start -> healthy s",
                "start -> fresh Job s",
                "Job lag s",
                "operator CPU s",
                "RSS MiB",
                "note",
                "load",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
