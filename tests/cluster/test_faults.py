"""Faults, against the real control plane: the operator SIGKILLed again and again while
runs come due, and the API server itself killed and brought back.

Each test has an xdist group of its own, so ``--dist loadgroup`` runs them
alongside the rest of the suite rather than one after another. The API
server test breaks a control plane of its own (``JOBWARDEN_CLUSTER_NAME=faults``)
and tears it down afterwards; the other tests never see the outage.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cluster._faults import (
    RecordProperty,
    SeparateControlPlane,
    apply_run_at,
    assert_each_ran_exactly_once,
    at_or_after,
    audit_mark,
    audit_requests,
    jobs_present,
    leading,
    lease_holder,
    replica,
    run_at_schedules,
    spread,
    wait_all_scheduled,
)
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    TRIGGER_LABEL,
    parse_time,
    rfc3339,
    schedule,
    seconds_ahead,
    suspended_template,
    utcnow,
)

SCHEDULES = 200
WINDOW = timedelta(seconds=150)
KILLS = 6


@pytest.mark.xdist_group("faults-sigkill")
def test_every_run_exactly_once_through_repeated_sigkills(
    cluster: Cluster, namespace: str, tmp_path: Path, record_property: RecordProperty
) -> None:
    """200 one-time runs due over 2.5 minutes; the operator is SIGKILLed at random
    moments (one in every 25 s), stays down 1-4 s (as a crashed pod does before it is
    restarted) and comes back. Afterwards every
    schedule has exactly one Job for its time, counted once and recorded once, and
    the API server accepted exactly one create per Job.

    A kill can land between a Job's create and the status write that records it
    (the restarted operator must adopt the Job, not count or create it again), or
    while runs are due (the restarted operator must catch them up, not lose them).
    """
    seed = int(os.environ.get("JOBWARDEN_FAULT_SEED") or time.time())
    rng = random.Random(seed)
    record_property("seed", seed)
    audit = audit_mark(cluster)
    first = seconds_ahead(25)
    runs = run_at_schedules("s", spread(first=first, last=first + WINDOW, count=SCHEDULES))
    last = max(runs.values())

    proc = OperatorProcess(
        cluster=cluster, namespaces=[namespace], log_path=tmp_path / "operator.log"
    )
    proc.start()
    try:
        apply_run_at(cluster, namespace, runs)
        # One kill in each slice of the window, at a random moment of its first 70%,
        # so downtime and restart (up to ~6 s) never reach into the next slice.
        slot = WINDOW / KILLS
        kills = [first + slot * i + slot * 0.7 * rng.random() for i in range(KILLS)]
        down: list[tuple[datetime, datetime]] = []  # from the kill to healthy again
        for moment in kills:
            wait_for(
                at_or_after(moment),
                timeout=WINDOW.total_seconds() + 60,
                interval=0.05,
                what=f"kill moment {moment:%H:%M:%S.%f}",
            )
            proc.kill()
            killed = utcnow()
            wait_for(
                at_or_after(killed + timedelta(seconds=rng.uniform(1, 4))),
                timeout=10,
                interval=0.05,
                what="the downtime to pass",
            )
            proc.start()
            down.append((killed, utcnow()))
        wait_all_scheduled(cluster, namespace, runs, timeout=90)
        # Late doubles would appear within a few reconciles: look again after some.
        wait_for(
            lambda: utcnow() > last + timedelta(seconds=10),
            timeout=120,
            what="ten seconds past the last run",
        )
        verdict = assert_each_ran_exactly_once(cluster, namespace, runs)
    finally:
        proc.stop()

    record_property("kills", len(kills))
    record_property("down_seconds", [round((b - a).total_seconds(), 1) for a, b in down])
    record_property("triggers", dict(verdict.triggers))
    while_down = [n for n, due in runs.items() if any(a <= due <= b for a, b in down)]
    record_property("runs_due_while_down", len(while_down))
    record_property("late_runs", len(verdict.late(by=2.0)))
    assert len(kills) >= 5
    # Runs came due while no operator ran: the restarted one had to catch them up
    # (the path a lost run would take), and each still ran exactly once (above).
    assert len(while_down) >= len(kills), while_down
    if audit is not None:
        creates = [
            r
            for r in audit_requests(audit, namespace=namespace)
            if r.verb == "create" and r.resource == "jobs"
        ]
        accepted = [r.name for r in creates if r.code == 201]
        # A create the API server timed out (504) under load may still have been stored:
        # the Job list above is the truth; the log must show no name accepted twice.
        timed_out = {r.name for r in creates if r.code >= 500}
        assert len(accepted) == len(set(accepted)), "a Job name was accepted twice"
        assert len(set(accepted) | timed_out) == SCHEDULES, (
            f"{len(accepted)} Jobs created (+{len(timed_out)} timed out) for {SCHEDULES} runs"
        )
        record_property("create_timeouts", len(timed_out))
        refused = [r.name for r in creates if r.code == 409]
        record_property("create_conflicts", len(refused))


def next_run_known(c: Cluster, namespace: str, name: str) -> Callable[[], bool]:
    """A wait_for predicate: the operator has reconciled ``name`` (its next run is in status)."""
    return lambda: bool((c.schedule(namespace, name).get("status") or {}).get("nextRunTime"))


# --- the API server restarted -------------------------------------------------------------

OUTAGE = timedelta(seconds=20)
RESUME_WITHIN = timedelta(seconds=30)


@pytest.fixture
def faults_plane() -> Iterator[SeparateControlPlane]:
    if os.environ.get("JOBWARDEN_TEST_KUBECONFIG") == "1":
        pytest.skip("needs a local control plane of its own to restart its API server")
    plane = SeparateControlPlane.beside("faults")
    plane.up()
    try:
        plane.install_crds()
        yield plane
    finally:
        plane.down()


@pytest.mark.xdist_group("faults-apiserver")
def test_operator_resumes_after_an_api_server_restart(
    faults_plane: SeparateControlPlane, tmp_path: Path, record_property: RecordProperty
) -> None:
    """kube-apiserver is SIGKILLed for 20 s and started again. A run due during the
    outage is not lost (catchUp Latest starts it once the API answers), a schedule
    applied after the restart runs within 30 s (the watches came back), and nothing
    that ran before is run again.

    Two operators face the same outage: one standalone, one holding a leader
    Lease, which it cannot renew while the API is gone (so it stands down, and
    must take its own Lease back and act again afterwards).
    """
    plane = faults_plane
    c = plane.cluster
    namespaces = {"standalone": "restart-standalone", "leased": "restart-leased"}
    for ns in namespaces.values():
        c.kubectl("create", "namespace", ns)
    procs = {
        "standalone": replica(
            c,
            namespaces=[namespaces["standalone"]],
            log_path=tmp_path / "standalone.log",
            lease=None,
            lease_namespace="default",
            identity="standalone",
        ),
        "leased": replica(
            c,
            namespaces=[namespaces["leased"]],
            log_path=tmp_path / "leased.log",
            lease="jobwarden-restart",
            lease_namespace=namespaces["leased"],
            identity="leased",
        ),
    }

    def apply_in_each(name: str, **spec: Any) -> None:
        """The same schedule in both namespaces; its run never finishes, so it stays in view."""
        for ns in namespaces.values():
            c.apply(schedule(name, jobTemplate=suspended_template(), **spec), namespace=ns)

    try:
        for proc in procs.values():
            proc.start()
        wait_for(lambda: leading(procs["leased"]), timeout=30, what="the leased operator leads")

        before = seconds_ahead(3)
        apply_in_each("before", runAt=rfc3339(before))
        for ns in namespaces.values():
            wait_for(
                jobs_present(c, ns, "before"),
                timeout=20,
                what=f"{ns}: the run before the outage",
            )

        # Due in the middle of the outage; seen by both operators beforehand.
        down_at = seconds_ahead(3)
        during = down_at + OUTAGE / 2
        apply_in_each("during", runAt=rfc3339(during), catchUp="Latest")
        for ns in namespaces.values():
            wait_for(
                next_run_known(c, ns, "during"),
                timeout=20,
                what=f"{ns}: the operator saw 'during'",
            )
        wait_for(lambda: utcnow() >= down_at, timeout=20, what="the moment of the outage")
        plane.kill("kube-apiserver")
        killed = utcnow()
        wait_for(
            lambda: utcnow() >= killed + OUTAGE,
            timeout=OUTAGE.total_seconds() + 10,
            what="the outage to last",
        )
        for name, proc in procs.items():
            assert proc.proc is not None and proc.proc.poll() is None, (
                f"{name} operator exited during the outage:\n{proc.log()[-3000:]}"
            )
        plane.start()
        back = utcnow()

        after = seconds_ahead(3)
        apply_in_each("after", runAt=rfc3339(after))
        for ns in namespaces.values():
            wait_for(
                jobs_present(c, ns, "after"),
                timeout=(back + RESUME_WITHIN - utcnow()).total_seconds(),
                what=f"{ns}: a schedule applied after the restart to run",
            )
            wait_for(
                jobs_present(c, ns, "during", count=1),
                timeout=10,
                what=f"{ns}: the run due during the outage",
            )
        resumed = utcnow() - back
        wait_for(
            lambda: leading(procs["leased"]), timeout=10, what="the leased operator acting again"
        )
        for ns in namespaces.values():
            runs = {"before": before, "during": during, "after": after}
            wait_all_scheduled(c, ns, runs, timeout=15)
            verdict = assert_each_ran_exactly_once(c, ns, runs)
            # Started by the operator once the API answered again, not before the outage.
            # (Within catch-up's 60 s on-time tolerance it counts as Schedule, not CatchUp.)
            [late] = verdict.jobs["during"]
            assert late["metadata"]["labels"][TRIGGER_LABEL] in ("Schedule", "CatchUp")
            created = parse_time(late["metadata"]["creationTimestamp"])
            assert killed <= created <= back + RESUME_WITHIN, (killed, created, back)
        for proc in procs.values():
            assert proc.healthy(), proc.log()[-3000:]
        log = procs["leased"].log()
        assert "not renewed in time: standing down" in log, "the leader stood down"
        assert log.count("leading: lease") >= 2, "and took its own Lease back"
        holder = lease_holder(c, namespaces["leased"], "jobwarden-restart")
        assert holder is not None and holder["holderIdentity"] == "leased"
    finally:
        for proc in procs.values():
            proc.stop()
    record_property("resumed_seconds_after_restart", round(resumed.total_seconds(), 1))
