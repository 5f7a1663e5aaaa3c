"""Runs missed while the operator was down, and exactly-once creation across its restart."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from tests.support.checks import active_count, all_of, counted, next_run
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    TRIGGER_LABEL,
    Schedules,
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

# A run at most this far behind is the on-time run of a reconcile that woke late,
# not a missed one (the operator's tolerance); the restart waits past it.
ON_TIME_TOLERANCE = timedelta(seconds=60)


def test_catch_up_after_operator_restart(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """With the operator killed over two due runs and restarted: catchUp All starts each
    once, oldest first; Latest starts the newest and records the other Missed; None
    starts none and records Missed. A run started just before the kill is not started
    again, and no Job is ever created twice.

    One namespace and one outage serve all policies: the outage (minutes, as cron
    has minute resolution) is the expensive part.
    """
    m1, m2 = next_minutes(count=2, margin=20)
    two = f"{m1.minute},{m2.minute} * * * *"
    # None gets only the first minute: a run at m2 would still be within the
    # on-time tolerance at restart, and on-time runs start under every policy.
    manifests = {
        "all": schedule("all", schedule=two, catchUp="All"),
        "latest": schedule("latest", schedule=two, catchUp="Latest"),
        "none": schedule("none", schedule=f"{m1.minute} * * * *", catchUp="None"),
    }
    here = Schedules(cluster, namespace)
    with record_jobs(cluster, namespace) as recorder:
        for manifest in manifests.values():
            here.apply(manifest)
        for name in ("all", "latest", "none"):
            here.wait(name, next_run(m1), timeout=15, what="seen by the operator")
        # A one-time run, killed the moment its Job exists: the status write may or
        # may not have happened.
        here.apply(
            schedule(
                "before",
                runAt=rfc3339(seconds_ahead(2)),
                jobTemplate=job_template(run_seconds=None),
            )
        )
        wait_for(lambda: recorder.names(), timeout=10, what="the run before the kill")
        operator.kill()
        assert utcnow() < m1, "the operator must be down before the first due run"

        wait_for(
            lambda: utcnow() > max(m2, m1 + ON_TIME_TOLERANCE) + timedelta(seconds=2),
            timeout=(m1 - utcnow()).total_seconds() + 70,
            what="both runs past, unserved",
        )
        assert [j.body["metadata"]["labels"][SCHEDULE_LABEL] for j in recorder.snapshot()] == [
            "before"
        ], "a run started while the operator was down"
        operator.start()

        caught_up = {
            "all": (counted("scheduled", 2), "both missed runs started"),
            "latest": (
                all_of(counted("missed", 1), counted("scheduled", 1)),
                "the newest started, the other missed",
            ),
            "none": (counted("missed", 1), "the missed run recorded"),
        }
        statuses = {
            name: here.wait(name, check, timeout=30, what=what)
            for name, (check, what) in caught_up.items()
        }
        # Settle: reconcile once more after the catch-up (a Job finishing wakes
        # each schedule) so a double start would have had its chance.
        for name in ("all", "latest"):
            here.wait(
                name,
                lambda s: executions(s).get("succeeded", 0) == executions(s).get("scheduled"),
                timeout=30,
                what="the caught-up runs finished",
            )
        statuses["before"] = here.wait(
            "before",
            all_of(lambda s: len(history(s)) == 1, active_count(1)),
            timeout=15,
            what="the earlier run recorded once",
        )
        added = recorder.snapshot()

    created: dict[str, list[tuple[str, str]]] = {}
    for job in added:
        meta = job.body["metadata"]
        created.setdefault(meta["labels"][SCHEDULE_LABEL], []).append(
            (
                rfc3339(parse_time(meta["annotations"][SCHEDULED_TIME_ANNOTATION])),
                meta["labels"][TRIGGER_LABEL],
            )
        )
    assert max(Counter(j.name for j in added).values()) == 1, "a Job was created twice"

    # All: each missed run once, oldest first (creation order seen by the watch).
    assert [at for at, _ in created["all"]] == [rfc3339(m1), rfc3339(m2)]
    assert created["all"][0][1] == "CatchUp"
    all_history = history(statuses["all"])
    assert [parse_time(e["scheduledTime"]) for e in all_history] == [m2, m1]
    assert executions(statuses["all"]).get("missed", 0) == 0

    # Latest: only the newest; the older one Missed.
    assert [at for at, _ in created["latest"]] == [rfc3339(m2)]
    [started, missed] = history(statuses["latest"])
    assert parse_time(started["scheduledTime"]) == m2
    assert (missed["result"], parse_time(missed["scheduledTime"])) == ("Missed", m1)
    assert "job" not in missed

    # None: nothing started, the run recorded Missed, with a Warning Event.
    assert "none" not in created
    [entry] = history(statuses["none"])
    assert (entry["result"], parse_time(entry["scheduledTime"])) == ("Missed", m1)
    assert executions(statuses["none"]).get("scheduled", 0) == 0
    assert has_event(cluster, namespace, "none", reason="MissedRuns", type_="Warning")

    # The run started before the kill: one Job, one history entry, counted once.
    assert len(created["before"]) == 1
    [entry] = history(statuses["before"])
    assert entry["result"] == "Running"
    assert executions(statuses["before"]).get("scheduled") == 1
