"""Edits and the end of a schedule on a real control plane: an edit never back-dates a
run, and Completed appears only once the last run has ended."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support.checks import active_count, all_of, generation_seen, phase
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    Schedules,
    condition,
    executions,
    job_template,
    parse_time,
    rfc3339,
    schedule,
    seconds_ahead,
    utcnow,
)


def test_an_edit_to_a_minute_that_just_passed_starts_nothing(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    here = Schedules(cluster, namespace)
    # A minute boundary a few seconds behind: applied now, its run would not be due.
    wait_for(lambda: 3 <= utcnow().second <= 40, timeout=70, interval=0.5, what="early in a minute")
    passed = utcnow().replace(second=0, microsecond=0)
    far = (passed + timedelta(minutes=30)).minute
    here.apply(schedule("edited", schedule=f"{far} * * * *"))
    here.wait("edited", generation_seen(1), timeout=20, what="the first spec is seen")
    # The edit: to the minute that has just passed (13:40 -> 13:39 in the issue).
    here.apply(schedule("edited", schedule=f"{passed.minute} {passed.hour} * * *"))
    status = here.wait("edited", generation_seen(2), timeout=20, what="the edit is seen")
    assert parse_time(status["timing"]["since"]) > passed
    assert status["nextRunTime"] == rfc3339(passed + timedelta(days=1))
    assert here.jobs("edited") == []
    assert executions(status).get("scheduled", 0) == 0
    assert executions(status).get("missed", 0) == 0
    assert not status.get("history")


def test_completed_appears_only_after_the_last_run_ends(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    here = Schedules(cluster, namespace)
    due = seconds_ahead(4)
    here.apply(schedule("last", runAt=rfc3339(due), jobTemplate=job_template(run_seconds=8)))
    seen: list[dict[str, Any]] = []

    def noting(check: Any) -> Any:
        def probe(status: dict[str, Any]) -> bool:
            seen.append(status)
            return bool(check(status))

        return probe

    running = here.wait("last", noting(active_count(1)), timeout=30, what="the one run is going")
    assert running["phase"] == "Active"
    ready = condition(running, "Ready")
    assert ready is not None and ready["reason"] == "LastRunActive", ready
    done = here.wait(
        "last",
        noting(all_of(phase("Completed"), active_count(0))),
        timeout=60,
        what="the run ended and the schedule completed",
    )
    assert executions(done)["succeeded"] == 1
    early = [s for s in seen if s.get("phase") == "Completed" and s.get("activeCount")]
    assert early == [], "Completed shown while a run was active"
