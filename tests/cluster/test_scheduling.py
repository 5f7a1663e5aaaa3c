"""Scheduled runs on a real control plane: on time, exactly once, shaped as promised."""

from __future__ import annotations

from datetime import timedelta

from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    SCHEDULE_LABEL,
    SCHEDULED_AT_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    TRIGGER_LABEL,
    condition,
    executions,
    history,
    job_template,
    jobs_of,
    parse_time,
    record_jobs,
    rfc3339,
    schedule,
    seconds_ahead,
    utcnow,
    wait_status,
)

# creationTimestamp has whole-second resolution; the watch stamp is finer.
LATE_ALLOWANCE = timedelta(seconds=2)


def test_run_at_creates_one_job_on_time(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """A runAt a few seconds ahead makes exactly one Job, at its time, in the right shape."""
    due = seconds_ahead(5)
    manifest = schedule(
        "once",
        runAt=rfc3339(due),
        jobTemplate=job_template(run_seconds=1, namespace="kube-system"),
    )
    with record_jobs(cluster, namespace) as recorder:
        cluster.apply(manifest, namespace=namespace)
        sched = cluster.schedule(namespace, "once")
        status = wait_status(
            cluster,
            namespace,
            "once",
            lambda s: s.get("phase") == "Completed" and executions(s).get("succeeded") == 1,
            timeout=30,
            what="the run succeeded and the schedule completed",
        )
        # Nothing more may follow the one-time run.
        wait_for(
            lambda: utcnow() > due + timedelta(seconds=3),
            timeout=10,
            what="a few seconds past the run",
        )
        added = recorder.snapshot()

    assert [j.name for j in added] == [j["metadata"]["name"] for j in cluster.jobs(namespace)], (
        "one Job, seen once"
    )
    assert len(added) == 1, [j.name for j in added]
    seen = added[0]
    assert seen.created >= due, f"created {seen.created} before its time {due}"
    assert seen.seen - due <= LATE_ALLOWANCE, f"seen {seen.seen}, due {due}"
    assert seen.created - due <= LATE_ALLOWANCE

    job = seen.body
    meta = job["metadata"]
    assert meta["name"] == f"once-{int(due.timestamp()) // 60}s{due.second:02d}"
    assert meta["namespace"] == namespace, "the template's namespace is ignored"
    assert meta["labels"][SCHEDULE_LABEL] == "once"
    assert meta["labels"][TRIGGER_LABEL] == "Schedule"
    assert meta["labels"][SCHEDULED_AT_LABEL] == str(int(due.timestamp()))
    assert meta["labels"]["app"] == "jobwarden-test", "template labels are kept"
    assert parse_time(meta["annotations"][SCHEDULED_TIME_ANNOTATION]) == due
    [owner] = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "JobSchedule",
        "once",
        sched["metadata"]["uid"],
        True,
    )
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 2
    for container in containers:
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        assert parse_time(env["JOBWARDEN_SCHEDULED_TIME"]) == due, container["name"]
    assert not cluster.jobs("kube-system", f"{SCHEDULE_LABEL}=once")

    [entry] = history(status)
    assert entry["job"] == meta["name"]
    assert entry["trigger"] == "Schedule"
    assert parse_time(entry["scheduledTime"]) == due
    assert entry["result"] == "Succeeded"
    assert entry["durationSeconds"] >= 0.5, entry
    assert parse_time(status["lastSuccessfulTime"]) >= due
    assert parse_time(status["lastScheduleTime"]) == due
    counts = executions(status)
    assert (counts.get("scheduled"), counts.get("succeeded"), counts.get("failed", 0)) == (1, 1, 0)
    assert "nextRunTime" not in status
    ready = condition(status, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "Completed")
    assert [j["metadata"]["name"] for j in jobs_of(cluster, namespace, "once")] == [meta["name"]]
