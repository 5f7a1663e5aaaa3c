"""Two operator replicas sharing one leader Lease, against the real control plane.

Deterministic Job names already make a doubled *create* impossible, so these
tests prove more than "one Job per run": the standby sends no write at all
while it stands by (every request is in the API server's audit log, its
User-Agent naming the replica), no create is ever refused as a duplicate,
and every schedule counts and records its run once. Each test has an xdist
group of its own, so ``--dist loadgroup`` runs them beside the rest.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from tests.cluster._faults import (
    RecordProperty,
    apply_run_at,
    assert_each_ran_exactly_once,
    audit_mark,
    audit_requests,
    leading,
    lease_holder,
    replica,
    run_at_schedules,
    spread,
    wait_all_scheduled,
    writes_by,
)
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import record_jobs, seconds_ahead, utcnow

LEASE = "jobwarden-ha"
SCHEDULES = 36
WINDOW = timedelta(seconds=60)
HANDOVER_WITHIN = timedelta(seconds=60)


def leader_and_standby(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> tuple[OperatorProcess, OperatorProcess]:
    """replica-a leading, replica-b started after it and standing by (it read the Lease)."""
    a, b = (
        replica(
            cluster,
            namespaces=[namespace],
            log_path=tmp_path / f"{who}.log",
            lease=LEASE,
            lease_namespace=namespace,
            identity=f"replica-{who}",
        )
        for who in ("a", "b")
    )
    a.start()
    wait_for(lambda: leading(a), timeout=30, what="replica-a to lead")
    b.start()
    wait_for(
        lambda: f"held by {a.extra_env['POD_NAME']}" in b.log(),
        timeout=30,
        what="replica-b to stand by",
    )
    assert leading(b) is False
    return a, b


@pytest.mark.xdist_group("ha-sigkill")
def test_two_replicas_never_double_run_and_the_standby_takes_over(
    cluster: Cluster, namespace: str, tmp_path: Path, record_property: RecordProperty
) -> None:
    """36 one-time runs due over a minute, two replicas; the leader is SIGKILLed
    mid-stream. Every run happens exactly once, the standby wrote nothing before
    the kill, and the first run due after the kill is created by the standby
    within 60 s of it (runs due in the gap are started late, not lost)."""
    audit = audit_mark(cluster)
    a, b = leader_and_standby(cluster, namespace, tmp_path)
    try:
        first = seconds_ahead(12)
        runs = run_at_schedules("r", spread(first=first, last=first + WINDOW, count=SCHEDULES))
        last = max(runs.values())
        with record_jobs(cluster, namespace) as recorder:
            apply_run_at(cluster, namespace, runs)
            kill_at = first + WINDOW * 0.4 + timedelta(seconds=random.random())
            wait_for(
                lambda: utcnow() >= kill_at,
                timeout=WINDOW.total_seconds(),
                interval=0.05,
                what="the kill moment",
            )
            a.kill()
            killed = utcnow()
            took_over = wait_for(
                lambda: utcnow() if leading(b) else None,
                timeout=HANDOVER_WITHIN.total_seconds(),
                what="replica-b to lead after replica-a was killed",
            )
            wait_all_scheduled(cluster, namespace, runs, timeout=WINDOW.total_seconds() + 60)
            wait_for(
                lambda: utcnow() > last + timedelta(seconds=10),
                timeout=120,
                what="ten seconds past the last run",
            )
            verdict = assert_each_ran_exactly_once(cluster, namespace, runs)
            seen = {j.name: j.seen for j in recorder.snapshot()}
        holder = lease_holder(cluster, namespace, LEASE)  # before b's stop releases it
    finally:
        a.stop()
        b.stop()

    after_kill = sorted((due, name) for name, due in runs.items() if due > killed)
    assert after_kill, "the kill came after the last run"
    _, next_name = after_kill[0]
    [next_job] = verdict.jobs[next_name]
    handover = seen[next_job["metadata"]["name"]] - killed
    gap = [name for name, due in runs.items() if killed < due < took_over]
    record_property("lease_handover_seconds", round((took_over - killed).total_seconds(), 1))
    record_property("run_handover_seconds", round(handover.total_seconds(), 1))
    record_property("runs_due_in_the_gap", len(gap))
    assert handover <= HANDOVER_WITHIN, f"first run after the kill created {handover} later"
    assert seen[next_job["metadata"]["name"]] >= took_over - timedelta(seconds=1)

    assert holder is not None and holder.get("holderIdentity") == "replica-b", holder
    assert holder["leaseTransitions"] == 1

    if audit is not None:
        requests = audit_requests(audit, namespace=namespace)
        standby = [r for r in writes_by(requests, "replica-b") if r.at < killed]
        assert not standby, f"the standby wrote while standing by: {standby[:5]}"
        creates = [r for r in requests if r.verb == "create" and r.resource == "jobs"]
        assert not [r for r in creates if r.code == 409], "a run was attempted twice"
        accepted = [r for r in creates if r.code == 201]
        by_a = [r for r in accepted if "(replica-a)" in r.user_agent]
        by_b = [r for r in accepted if "(replica-b)" in r.user_agent]
        assert len(accepted) == len(by_a) + len(by_b) == SCHEDULES
        assert by_a and by_b, (len(by_a), len(by_b))
        assert all(r.at < killed for r in by_a)
        record_property("jobs_created", {"replica-a": len(by_a), "replica-b": len(by_b)})


@pytest.mark.xdist_group("ha-release")
def test_a_clean_shutdown_hands_the_lease_over_at_once(
    cluster: Cluster, namespace: str, tmp_path: Path, record_property: RecordProperty
) -> None:
    """SIGTERM: the leader stops acting, then releases its Lease, and the standby
    leads at its next look (one 5 s renew interval), not after the 15 s Lease runs out."""
    a, b = leader_and_standby(cluster, namespace, tmp_path)
    try:
        runs = run_at_schedules(
            "q", spread(first=seconds_ahead(15), last=seconds_ahead(21), count=4)
        )
        apply_run_at(cluster, namespace, runs)
        a.stop()
        stopped = utcnow()
        assert "released" in a.log()
        took_over = wait_for(
            lambda: utcnow() if leading(b) else None,
            timeout=15,
            what="replica-b to lead after replica-a stopped",
        )
        wait_all_scheduled(cluster, namespace, runs, timeout=40)
        assert_each_ran_exactly_once(cluster, namespace, runs)
        holder = lease_holder(cluster, namespace, LEASE)
        assert holder is not None and holder.get("holderIdentity") == "replica-b", holder
        b.stop()
        released = lease_holder(cluster, namespace, LEASE)
        assert released is not None and not released.get("holderIdentity"), released
        assert "released" in b.log()
    finally:
        a.stop()
        b.stop()
    handover = took_over - stopped
    record_property("release_handover_seconds", round(handover.total_seconds(), 1))
    assert handover <= timedelta(seconds=7), handover
