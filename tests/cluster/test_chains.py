"""Chains (spec.after) on the real control plane, applied with kubectl as users do.

extract runs on the clock; load runs after extract; report runs after both
(a fan-in on the scheduled time they share, and a chain of chains). Beside
them, broken fails on the clock: audit (after its success) is skipped, alert
(after its failure) runs. Then what cannot be followed is Valid=False.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster._faults import leading, replica
from tests.support.checks import counted, generation_seen
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    RUN_NOW,
    Schedules,
    condition,
    history,
    job_template,
    next_minutes,
    parse_time,
    record_jobs,
    schedule,
)


def _valid(status: dict[str, Any]) -> bool:
    return (condition(status, "Valid") or {}).get("status") == "True"


def _invalid(status: dict[str, Any]) -> str:
    """The Valid condition's message when it is False, else ''."""
    valid = condition(status, "Valid") or {}
    return str(valid.get("message") or "") if valid.get("status") == "False" else ""


def _cron(m: datetime) -> str:
    return f"{m.minute} {m.hour} * * *"


def _env(job: dict[str, Any]) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


def _report(*, deadline: str) -> dict[str, Any]:
    """report, after extract and load (the fan-in)."""
    return schedule(
        "report",
        after=[{"schedule": "extract"}, {"schedule": "load"}],
        afterDeadline=deadline,
        jobTemplate=job_template(run_seconds=1),
    )


def _after_runs(here: Schedules, name: str) -> list[dict[str, Any]]:
    return [e for e in history(here.status(name)) if e.get("trigger") == "After"]


def test_extract_then_load_then_report_with_one_upstream_failing(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """Each upstream run starts exactly one downstream run, named from the upstream
    runs' scheduled time and told their Jobs and results; a failed upstream skips the
    run that wants success and starts the one that wants failure."""
    (m1,) = next_minutes(count=1)
    here = Schedules(cluster, namespace)
    quick = job_template(run_seconds=1)
    here.apply(schedule("extract", schedule=_cron(m1), jobTemplate=quick))
    here.apply(schedule("load", after=[{"schedule": "extract"}], jobTemplate=quick))
    here.apply(_report(deadline="5m"))
    here.apply(schedule("broken", schedule=_cron(m1), jobTemplate=job_template(fail=True)))
    here.apply(schedule("audit", after=[{"schedule": "broken"}], jobTemplate=quick))
    here.apply(
        schedule("alert", after=[{"schedule": "broken", "result": "Failed"}], jobTemplate=quick)
    )
    for name in ("load", "report", "audit", "alert"):
        status = here.wait(name, _valid, timeout=20, what=f"{name} valid")
        assert status["scheduleDescription"].startswith("after "), status
        assert "nextRunTime" not in status

    wait = (m1 - datetime.now(m1.tzinfo)).total_seconds() + 60
    report = here.wait(
        "report", counted("succeeded", 1), timeout=wait, what="report ran after extract and load"
    )
    alert = here.wait("alert", counted("succeeded", 1), timeout=30, what="alert ran")
    audit = here.wait(
        "audit",
        lambda s: any(e.get("reason") == "UpstreamResult" for e in history(s)),
        timeout=30,
        what="audit skipped",
    )

    (extract_job,) = here.jobs("extract")
    (load_job,) = here.jobs("load")
    (report_job,) = here.jobs("report")
    assert _env(load_job)["JOBWARDEN_UPSTREAM_JOB"] == extract_job["metadata"]["name"]
    facts = _env(report_job)
    assert facts["JOBWARDEN_TRIGGER"] == "After"
    assert facts["JOBWARDEN_UPSTREAM_JOB"] == ",".join(
        j["metadata"]["name"] for j in (extract_job, load_job)
    )
    assert facts["JOBWARDEN_UPSTREAM_RESULT"] == "Succeeded,Succeeded"
    assert parse_time(facts["JOBWARDEN_UPSTREAM_SCHEDULED_TIME"]) == m1
    assert report_job["metadata"]["labels"]["jobwarden.io/trigger"] == "After"
    assert parse_time(report["lastAfterTime"]) == m1
    (alerted,) = _after_runs(here, "alert")
    assert alerted["result"] == "Succeeded"
    assert _env(here.jobs("alert")[0])["JOBWARDEN_UPSTREAM_RESULT"] == "Failed"
    (skipped,) = _after_runs(here, "audit")
    assert (skipped["result"], skipped["reason"]) == ("Skipped", "UpstreamResult")
    assert here.jobs("audit") == []
    assert parse_time(audit["lastAfterTime"]) == m1
    assert alert["executions"]["scheduled"] == 1

    # Never twice: a spec change (a fresh reconcile of each) starts nothing more.
    here.apply(_report(deadline="6m"))
    here.wait("report", generation_seen(2), timeout=15, what="the edit reconciled")
    assert len(here.jobs("report")) == 1
    assert [e["result"] for e in _after_runs(here, "report")] == ["Succeeded"]


def test_what_cannot_be_followed_is_invalid_naming_the_field(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """A missing upstream, another namespace and a cycle are Valid=False with the field;
    the missing upstream applied later makes its downstream valid."""
    here = Schedules(cluster, namespace)
    here.apply(schedule("orphan", after=[{"schedule": "nope"}]))
    here.apply(schedule("abroad", after=[{"schedule": "nope", "namespace": "kube-system"}]))
    here.apply(schedule("ping", after=[{"schedule": "pong"}]))
    here.apply(schedule("pong", after=[{"schedule": "ping"}]))
    expected = {
        "orphan": "spec.after[0].schedule: no JobSchedule 'nope'",
        "abroad": "spec.after[0].namespace: 'kube-system'",
        "ping": "spec.after[0].schedule: a cycle: ping -> pong -> ping",
        "pong": "spec.after[0].schedule: a cycle: pong -> ping -> pong",
    }
    for name, message in expected.items():
        # ping may first be reported without pong (missing), until pong arrives and wakes it.
        status = here.wait(
            name,
            lambda s, m=message: _invalid(s).startswith(m),  # type: ignore[misc]
            timeout=20,
            what=f"{name} invalid: {message}",
        )
        assert status["phase"] == "Invalid"
    here.apply(schedule("nope", schedule="0 0 1 1 *"))
    here.wait("orphan", _valid, timeout=20, what="orphan valid")
    assert not here.jobs("orphan")


@pytest.mark.xdist_group("chains-handover")
def test_a_chain_through_sigkills_and_a_handover_between_replicas(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """extract -> load -> report with two replicas: the leader is killed while extract
    runs (the standby takes over), started again, and the new leader is killed while
    load runs. Each upstream run still starts exactly one downstream run."""
    a, b = (
        replica(
            cluster,
            namespaces=[namespace],
            log_path=tmp_path / f"{who}.log",
            lease="jobwarden-chain",
            lease_namespace=namespace,
            identity=f"replica-{who}",
        )
        for who in ("a", "b")
    )
    here = Schedules(cluster, namespace)
    a.start()
    try:
        wait_for(lambda: leading(a), timeout=30, what="replica-a to lead")
        b.start()
        wait_for(lambda: leading(b) is False, timeout=30, what="replica-b standing by")
        with record_jobs(cluster, namespace) as recorder:
            here.apply(
                schedule(
                    "extract",
                    runAt="2999-01-01T00:00:00Z",
                    jobTemplate=job_template(run_seconds=8),
                )
            )
            here.apply(
                schedule(
                    "load", after=[{"schedule": "extract"}], jobTemplate=job_template(run_seconds=8)
                )
            )
            here.apply(_report(deadline="10m"))
            here.wait("report", _valid, timeout=20, what="report valid")
            here.annotate("extract", RUN_NOW, "go")
            wait_for(lambda: here.jobs("extract"), timeout=30, what="extract's Job")
            a.kill()
            wait_for(lambda: here.jobs("load"), timeout=90, what="load's Job, led by replica-b")
            a.start()
            wait_for(lambda: leading(a) is False, timeout=30, what="replica-a standing by")
            b.kill()
            for name in ("load", "report"):
                here.wait(name, counted("succeeded", 1), timeout=120, what=f"{name} ran")
            names = recorder.names()
        assert len(names) == len(set(names)) == 3, names  # no Job created twice
        for name in ("load", "report"):
            status = here.status(name)
            assert status["executions"]["scheduled"] == 1
            assert [e["result"] for e in _after_runs(here, name)] == ["Succeeded"]
            assert len(here.jobs(name)) == 1
    finally:
        a.stop()
        b.stop()
