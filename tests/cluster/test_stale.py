"""Stale safety on the real control plane: terminate, report, the threshold with
the operator down, and Jobs that opt in by label.

Thresholds are 3 s and the operator sweeps every 2 s, so a stale run is due a
few seconds into a test; each test measures against the Job's own
``status.startTime``, the clock ``activeDeadlineSeconds`` counts from too.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.cluster._safety import (
    STALE_AFTER_LABEL,
    STALE_DEADLINE_ANNOTATION,
    SWEEP_SECONDS,
    events,
    job,
    job_start,
    operator_with,
    plain_job,
    pods_of_job,
    running_pod,
    schedule,
    wait_job_started,
)
from tests.support.checks import entry, generation_seen, recorded, run_reason, run_result
from tests.support.kube import Cluster, condition_true, holds, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    RUN_NOW,
    Schedules,
    executions,
    history,
    parse_time,
    rfc3339,
    seconds_ahead,
)

THRESHOLD = timedelta(seconds=3)
MARGIN = timedelta(seconds=3)
S = timedelta(seconds=1)  # API round trips and the status write, on 2 busy cores


def _first_run(here: Schedules, name: str) -> str:
    """The Job name of the schedule's first run, once status records it."""
    status = here.wait(name, recorded, timeout=20, what="a run recorded")
    job_name: str = history(status)[0]["job"]
    return job_name


def test_stale_run_is_terminated_within_one_sweep(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """A scheduled run past staleAfter ends Stale (StaleTerminated) within one sweep
    interval of its threshold, counted once, with one Warning Event, and leaves no
    Job or pod behind."""
    here = Schedules(cluster, namespace)
    here.apply(schedule("slow", runAt=rfc3339(seconds_ahead(2)), staleAfter="3s"))
    name = _first_run(here, "slow")
    # The threshold counts from the Job controller's startTime, which a loaded
    # control plane may set many seconds after the Job is created.
    wait_job_started(cluster, namespace, name, pod=False)
    status = here.wait("slow", run_result(name, "Stale"), timeout=20, what="the run recorded Stale")
    record = entry(status, name)
    assert record is not None
    assert record["reason"] == "StaleTerminated"
    # The Job's own status.startTime, as the operator copied it into history.
    started = parse_time(record["startTime"])
    ended = parse_time(record["completionTime"])
    deadline = started + THRESHOLD
    # Whole-second timestamps on both sides: a second of slack for the rounding.
    assert (
        deadline - timedelta(seconds=1)
        <= ended
        <= deadline + timedelta(seconds=SWEEP_SECONDS) + MARGIN
    )
    counts = executions(status)
    assert (counts["stale"], counts["failed"], counts["terminated"]) == (1, 0, 0)
    assert status["health"]["state"] == "Degraded"

    warnings = wait_for(
        lambda: events(cluster, namespace, "slow", reason="StaleTerminated"),
        timeout=10,
        what="a StaleTerminated Event",
    )
    assert [e["type"] for e in warnings] == ["Warning"]
    assert name in warnings[0]["message"]
    wait_for(lambda: not here.jobs("slow"), timeout=15, what="the Job deleted")
    wait_for(
        lambda: not pods_of_job(cluster, namespace, name), timeout=20, what="the Job's pods gone"
    )


def test_report_marks_a_stale_run_and_leaves_it_running(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """staleAction Report: the run keeps running, history says StaleReported, one Event."""
    here = Schedules(cluster, namespace)
    here.apply(schedule("watched", staleAfter="3s", staleAction="Report"))
    here.annotate("watched", RUN_NOW, "go")
    name = _first_run(here, "watched")
    body = wait_job_started(cluster, namespace, name)
    assert "activeDeadlineSeconds" not in body["spec"]  # nothing for the Job controller to enforce

    status = here.wait(
        "watched", run_reason(name, "StaleReported"), timeout=15, what="the run reported stale"
    )
    record = entry(status, name)
    assert record is not None and record["result"] == "Running"
    assert executions(status)["stale"] == 1
    assert [a["name"] for a in status["active"]] == [name]

    # Another reconcile (a spec change) must not report it a second time.
    here.apply(schedule("watched", staleAfter="3s", staleAction="Report", historyLimit=19))
    status = here.wait("watched", generation_seen(2), timeout=10, what="the spec change seen")
    assert executions(status)["stale"] == 1
    reported = wait_for(
        lambda: events(cluster, namespace, "watched", reason="StaleReported"),
        timeout=10,
        what="a StaleReported Event",
    )
    assert [e["type"] for e in reported] == ["Warning"]
    current = job(cluster, namespace, name)
    assert current is not None and not current["metadata"].get("deletionTimestamp")
    assert running_pod(cluster, namespace, name) is not None


def test_threshold_holds_while_the_operator_is_down(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """The Job carries activeDeadlineSeconds = staleAfter, so the Job controller ends
    the run with the operator killed; the restarted operator records it Stale.

    5 s rather than 3 s: the operator must be killed before the threshold, and
    on two busy cores a few seconds can pass between the Job and the kill.
    """
    here = Schedules(cluster, namespace)
    here.apply(schedule("orphaned", runAt=rfc3339(seconds_ahead(2)), staleAfter="5s"))
    name = _first_run(here, "orphaned")
    body = wait_for(lambda: job(cluster, namespace, name), timeout=10, what="the Job")
    operator.kill()
    assert body["spec"]["activeDeadlineSeconds"] == 5
    assert body["metadata"]["annotations"][STALE_DEADLINE_ANNOTATION] == "5"
    assert (entry(here.status("orphaned"), name) or {})["result"] == "Running"

    failed = wait_for(
        lambda: condition_true(job(cluster, namespace, name) or {}, "Failed"),
        timeout=20,
        what="the Job controller failing the Job on its deadline",
    )
    assert failed["reason"] == "DeadlineExceeded"
    wait_for(
        lambda: not pods_of_job(cluster, namespace, name),
        timeout=20,
        what="the stale run's pods gone",
    )
    started = job_start(job(cluster, namespace, name) or {})
    assert started is not None and parse_time(failed["lastTransitionTime"]) >= started + 5 * S

    operator.start()
    status = here.wait(
        "orphaned",
        run_result(name, "Stale"),
        timeout=20,
        what="the restarted operator recording Stale",
    )
    record = entry(status, name)
    assert record is not None and record["reason"] == "StaleTerminated"
    assert "activeDeadlineSeconds" in record["message"]
    counts = executions(status)
    assert (counts["stale"], counts["failed"]) == (1, 0)
    warnings = wait_for(
        lambda: events(cluster, namespace, "orphaned", reason="StaleTerminated"),
        timeout=10,
        what="a StaleTerminated Event",
    )
    assert [e["type"] for e in warnings] == ["Warning"]
    wait_for(
        lambda: not here.jobs("orphaned"),
        timeout=15,
        what="the stale Job deleted",
    )


def test_opt_in_job_is_terminated_and_others_are_left_alone(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """A Job labelled jobwarden.io/stale-after is deleted past its threshold, with a
    Warning Event on the Job; an unlabelled Job running longer is not touched."""
    cluster.apply(plain_job("unlabelled"), namespace=namespace)
    bystander = wait_job_started(cluster, namespace, "unlabelled")
    cluster.apply(plain_job("opted-in", labels={STALE_AFTER_LABEL: "3s"}), namespace=namespace)
    started = job_start(wait_job_started(cluster, namespace, "opted-in", pod=False))
    assert started is not None

    warnings = wait_for(
        lambda: events(cluster, namespace, "opted-in", reason="StaleTerminated"),
        timeout=20,
        what="a StaleTerminated Event on the Job",
    )
    assert [(e["type"], e["involvedObject"]["kind"]) for e in warnings] == [("Warning", "Job")]
    assert parse_time(warnings[0]["firstTimestamp"]) <= (
        started + THRESHOLD + timedelta(seconds=SWEEP_SECONDS) + MARGIN
    )
    wait_for(
        lambda: job(cluster, namespace, "opted-in") is None,
        timeout=15,
        what="the opted-in Job deleted",
    )
    wait_for(
        lambda: not pods_of_job(cluster, namespace, "opted-in"), timeout=20, what="its pods gone"
    )

    # The bystander started first, so it was past 3 s in every sweep that acted.
    bystander_start = job_start(bystander)
    assert bystander_start is not None and bystander_start <= started
    remaining = job(cluster, namespace, "unlabelled")
    assert remaining is not None and not remaining["metadata"].get("deletionTimestamp")
    assert running_pod(cluster, namespace, "unlabelled") is not None
    assert events(cluster, namespace, "unlabelled", reason="StaleTerminated") == []


def test_dry_run_reports_instead_of_terminating(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """JOBWARDEN_DRY_RUN=true: a stale opt-in Job and a stale scheduled run are
    reported (one Warning Event each) and keep running."""
    with operator_with(cluster, namespace, tmp_path, JOBWARDEN_DRY_RUN="true"):
        cluster.apply(plain_job("opted-in", labels={STALE_AFTER_LABEL: "3s"}), namespace=namespace)
        opted_in = wait_job_started(cluster, namespace, "opted-in")
        here = Schedules(cluster, namespace)
        here.apply(schedule("dry", staleAfter="3s"))
        here.annotate("dry", RUN_NOW, "go")
        name = _first_run(here, "dry")
        body = wait_job_started(cluster, namespace, name)
        assert "activeDeadlineSeconds" not in body["spec"]

        reported = wait_for(
            lambda: events(cluster, namespace, "opted-in", reason="StaleReported"),
            timeout=20,
            what="a StaleReported Event on the opted-in Job",
        )
        assert [e["type"] for e in reported] == ["Warning"]
        # With the Job's uid, so that ``kubectl describe job`` lists it.
        assert reported[0]["involvedObject"]["uid"] == opted_in["metadata"]["uid"]
        status = here.wait(
            "dry",
            run_reason(name, "StaleReported"),
            timeout=15,
            what="the scheduled run reported stale",
        )
        assert (entry(status, name) or {})["result"] == "Running"

        # Several sweeps later both still run, each reported exactly once.
        def unchanged() -> bool:
            return (
                running_pod(cluster, namespace, "opted-in") is not None
                and running_pod(cluster, namespace, name) is not None
            )

        holds(unchanged, seconds=2 * SWEEP_SECONDS + 0.5, what="dry run leaving stale work running")
        assert len(events(cluster, namespace, "opted-in", reason="StaleReported")) == 1
        assert len(events(cluster, namespace, "dry", reason="StaleReported")) == 1
        assert events(cluster, namespace, "opted-in", reason="StaleTerminated") == []
