"""Scheduled runs on a real control plane: on time, exactly once, shaped as promised."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support.checks import (
    active_count,
    all_of,
    counted,
    counted_at_least,
    has_next_run,
    next_run,
    phase,
)
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    PRINTER_COLUMNS,
    SCHEDULE_LABEL,
    SCHEDULED_AT_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    TRIGGER_LABEL,
    Schedules,
    condition,
    executions,
    has_event,
    history,
    job_template,
    next_minutes,
    parse_time,
    record_jobs,
    rfc3339,
    schedule,
    seconds_ahead,
    utcnow,
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
    here = Schedules(cluster, namespace)
    with record_jobs(cluster, namespace) as recorder:
        here.apply(manifest)
        sched = cluster.schedule(namespace, "once")
        status = here.wait(
            "once",
            all_of(phase("Completed"), counted("succeeded", 1)),
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
    # A run at second 0 keeps the CronJob-style name (minutes only).
    seconds = f"s{due.second:02d}" if due.second else ""
    assert meta["name"] == f"once-{int(due.timestamp()) // 60}{seconds}"
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
        # The API server leaves out an empty value: the variable is set, and empty.
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        assert parse_time(env["JOBWARDEN_SCHEDULED_TIME"]) == due, container["name"]
        # A one-time run has no instant before it; the trigger and schedule are named.
        assert (
            env["JOBWARDEN_PREVIOUS_SCHEDULED_TIME"],
            env["JOBWARDEN_TRIGGER"],
            env["JOBWARDEN_SCHEDULE"],
        ) == ("", "Schedule", "once"), container["name"]
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
    assert [j["metadata"]["name"] for j in here.jobs("once")] == [meta["name"]]


def _env(job: dict[str, Any]) -> dict[str, str]:
    """The env of a Job's first container, by name."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


def _running(cluster: Cluster, namespace: str, job: str) -> bool:
    found = [j for j in cluster.jobs(namespace) if j["metadata"]["name"] == job]
    return (
        bool(found)
        and not found[0]["status"].get("conditions")
        and not found[0]["metadata"].get("deletionTimestamp")
    )


def test_every_day_runs_consecutively_and_bounds_end_it(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """An every-Day schedule at two minutes runs at each, both at once under Allow, and
    nextRunTime walks m1 -> m2 -> tomorrow; maxExecutions 1 and an endAt between the two
    stop their schedules after the first run (phase Completed, no second Job)."""
    m1, m2 = next_minutes(count=2)
    times = [f"{m:%H:%M}" for m in (m1, m2)]
    every = {"period": "Day", "times": times}
    here = Schedules(cluster, namespace)
    with record_jobs(cluster, namespace) as recorder:
        here.apply(
            schedule(
                "daily",
                every=every,
                concurrencyPolicy="Allow",
                jobTemplate=job_template(run_seconds=None),
            )
        )
        here.apply(schedule("capped", every=every, maxExecutions=1))
        here.apply(schedule("ending", every=every, endAt=rfc3339(m1 + timedelta(seconds=30))))
        for name in ("daily", "capped", "ending"):
            status = here.wait(name, has_next_run, timeout=20, what="a next run time")
            assert parse_time(status["nextRunTime"]) == m1, (name, status)

        wait_for(
            lambda: len(recorder.names()) >= 3,
            timeout=(m1 - utcnow()).total_seconds() + 5,
            what="the three runs at the first time",
        )
        status = here.wait(
            "daily", next_run(m2), timeout=15, what="nextRunTime advanced to the second time"
        )
        for name in ("capped", "ending"):
            done = here.wait(
                name, phase("Completed"), timeout=60, what="Completed after its one run"
            )
            ready = condition(done, "Ready")
            assert ready is not None and (ready["status"], ready["reason"]) == (
                "False",
                "Completed",
            ), done
            assert "nextRunTime" not in done

        wait_for(
            lambda: len(recorder.names()) >= 4,
            timeout=(m2 - utcnow()).total_seconds() + 5,
            what="the second daily run",
        )
        status = here.wait(
            "daily",
            all_of(next_run(m1 + timedelta(days=1)), active_count(2)),
            timeout=15,
            what="two active runs and nextRunTime tomorrow",
        )
        # Give any stray second run of the bounded schedules its chance to show.
        wait_for(lambda: utcnow() > m2 + timedelta(seconds=3), timeout=5, what="past m2")
        added = recorder.snapshot()

    by_schedule: dict[str, list[str]] = {}
    for job in added:
        scheduled = parse_time(job.body["metadata"]["annotations"][SCHEDULED_TIME_ANNOTATION])
        by_schedule.setdefault(job.body["metadata"]["labels"][SCHEDULE_LABEL], []).append(
            rfc3339(scheduled)
        )
        assert scheduled <= job.created and job.seen - scheduled <= LATE_ALLOWANCE, job.name
    # Each run's data interval starts at the instant before it: m2's at m1,
    # m1's at yesterday's m2.
    intervals = {
        rfc3339(parse_time(env["JOBWARDEN_SCHEDULED_TIME"])): env[
            "JOBWARDEN_PREVIOUS_SCHEDULED_TIME"
        ]
        for job in added
        if job.name.startswith("daily-")
        for env in [_env(job.body)]
    }
    assert intervals == {
        rfc3339(m1): rfc3339(m2 - timedelta(days=1)),
        rfc3339(m2): rfc3339(m1),
    }
    assert by_schedule == {
        "daily": [rfc3339(m1), rfc3339(m2)],
        "capped": [rfc3339(m1)],
        "ending": [rfc3339(m1)],
    }
    assert [a["name"] for a in status["active"]] == [
        j.name for j in added if j.name.startswith("daily-")
    ][::-1]
    assert executions(status).get("scheduled") == 2
    for name in ("capped", "ending"):
        assert here.status(name).get("phase") == "Completed"


def test_forbid_skips_and_replace_terminates_a_run_still_active(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """A run due while the previous scheduled run still runs: Forbid skips it (history
    Skipped, skipped counter, Event; the first Job runs on), Replace deletes the first
    Job (history Terminated, reason Replaced) and starts the new one.

    Both schedules share one two-minute timeline, so the test waits for one
    minute boundary pair instead of two.
    """
    m1, m2 = next_minutes(count=2)
    cron = f"{m1.minute},{m2.minute} * * * *"
    here = Schedules(cluster, namespace)
    for name, policy in (("forbid", "Forbid"), ("replace", "Replace")):
        here.apply(
            schedule(
                name,
                schedule=cron,
                concurrencyPolicy=policy,
                jobTemplate=job_template(run_seconds=None),
            )
        )
    first = {name: f"{name}-{int(m1.timestamp()) // 60}" for name in ("forbid", "replace")}
    second = {name: f"{name}-{int(m2.timestamp()) // 60}" for name in ("forbid", "replace")}
    for name in ("forbid", "replace"):
        here.wait(
            name,
            all_of(active_count(1), next_run(m2)),
            timeout=(m1 - utcnow()).total_seconds() + 5,
            what="the first run active",
        )
    assert _running(cluster, namespace, first["forbid"])
    assert _running(cluster, namespace, first["replace"])

    status = here.wait(
        "forbid",
        counted_at_least("skipped", 1),
        timeout=(m2 - utcnow()).total_seconds() + 5,
        what="the second run skipped",
    )
    skipped = history(status)[0]
    assert skipped["result"] == "Skipped" and skipped["reason"] == "ConcurrencyForbid", skipped
    assert parse_time(skipped["scheduledTime"]) == m2
    assert "job" not in skipped
    assert executions(status).get("scheduled") == 1
    assert [a["name"] for a in status["active"]] == [first["forbid"]]
    assert [j["metadata"]["name"] for j in here.jobs("forbid")] == [first["forbid"]]
    assert _running(cluster, namespace, first["forbid"])
    wait_for(
        lambda: has_event(cluster, namespace, "forbid", reason="Skipped"),
        timeout=15,
        what="a Skipped Event",
    )

    status = here.wait(
        "replace", counted_at_least("terminated", 1), timeout=15, what="the first run replaced"
    )
    entries = {e["job"]: e for e in history(status)}
    assert entries[first["replace"]]["result"] == "Terminated", entries
    assert entries[first["replace"]]["reason"] == "Replaced"
    assert entries[second["replace"]]["result"] == "Running"
    assert [a["name"] for a in status["active"]] == [second["replace"]]
    assert executions(status).get("scheduled") == 2

    def first_gone() -> bool:
        names = {j["metadata"]["name"] for j in here.jobs("replace")}
        pods = {p["metadata"]["labels"].get("job-name") for p in cluster.pods(namespace)}
        return first["replace"] not in names | pods and second["replace"] in names

    wait_for(first_gone, timeout=30, what="the replaced Job and its pod deleted")
    assert _running(cluster, namespace, second["replace"])


def test_kubectl_get_shows_printer_columns(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """``kubectl get jobschedules`` shows when each runs in words, its next run and health."""
    due = seconds_ahead(3)
    here = Schedules(cluster, namespace)
    here.apply(schedule("once", runAt=rfc3339(due), jobTemplate=job_template(run_seconds=0.5)))
    here.apply(schedule("twice-daily", every={"period": "Day", "times": ["17:30", "09:00"]}))
    here.wait(
        "once",
        lambda s: s.get("lastResult") == "Succeeded",
        timeout=30,
        what="the one-time run succeeded",
    )
    twice_daily = here.wait("twice-daily", has_next_run, timeout=20, what="a next run time")
    expected_next = twice_daily["nextRunTime"]

    out = cluster.kubectl("get", "jobschedules", "-n", namespace).stdout
    header, *lines = out.splitlines()
    columns = PRINTER_COLUMNS
    starts = [header.index(c) for c in columns]
    assert starts == sorted(starts), header

    def cells(line: str) -> dict[str, str]:
        bounds = [*starts[1:], len(line) + 1]
        return {c: line[a:b].strip() for c, a, b in zip(columns, starts, bounds, strict=True)}

    rows = {cells(line)["NAME"]: cells(line) for line in lines}
    once, daily = rows["once"], rows["twice-daily"]
    assert once["SCHEDULE"] == f"once at {rfc3339(due)}"
    assert (once["SUSPEND"], once["ACTIVE"], once["LAST RESULT"], once["HEALTH"]) == (
        "false",
        "0",
        "Succeeded",
        "Healthy",
    )
    assert once["LAST RUN"].endswith("s"), once  # a relative age such as 4s
    assert once["NEXT RUN"] == "", once  # a finished one-time run has none
    assert daily["SCHEDULE"] == "daily at 09:00,17:30"
    assert daily["NEXT RUN"] == expected_next
    assert parse_time(expected_next) > utcnow()
    assert parse_time(expected_next).strftime("%H:%M") in ("09:00", "17:30")
    assert (daily["LAST RUN"], daily["LAST RESULT"], daily["HEALTH"]) == ("", "", "Healthy")
