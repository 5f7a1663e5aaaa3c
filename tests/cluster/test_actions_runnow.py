"""Run-now, suspend/resume and history limits, driven through kubectl as users drive them."""

from __future__ import annotations

from datetime import timedelta

from tests.support.checks import completed, counted_at_least, generation_seen, phase
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    RUN_NOW,
    SCHEDULE_LABEL,
    TRIGGER_LABEL,
    Schedules,
    SeenJob,
    executions,
    has_event,
    history,
    job_template,
    parse_time,
    record_jobs,
    rfc3339,
    schedule,
    seconds_ahead,
    utcnow,
)


def test_run_now_token_starts_one_manual_run_each(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """Each new run-now token starts one Manual Job; a token seen again starts nothing;
    manual runs leave maxExecutions to the scheduled run."""
    due = seconds_ahead(12)
    manifest = schedule(
        "manual", runAt=rfc3339(due), maxExecutions=1, jobTemplate=job_template(run_seconds=1)
    )
    here = Schedules(cluster, namespace)
    with record_jobs(cluster, namespace) as recorder:
        here.apply(manifest)
        here.annotate("manual", RUN_NOW, "first")
        here.wait(
            "manual",
            counted_at_least("succeeded", 1),
            timeout=30,
            what="the first manual run succeeded",
        )
        assert len(recorder.names()) == 1

        # The same token again: applied in the manifest together with a spec
        # change (so the operator certainly reconciles), it must not fire twice.
        manifest["metadata"]["annotations"] = {RUN_NOW: "first"}
        manifest["spec"]["historyLimit"] = 19
        here.apply(manifest)
        here.wait("manual", generation_seen(2), timeout=20, what="the spec change was seen")
        here.annotate("manual", RUN_NOW, "second")
        here.wait(
            "manual",
            counted_at_least("succeeded", 2),
            timeout=30,
            what="the second manual run succeeded",
        )
        # The scheduled run still comes: the two manual runs did not use up maxExecutions 1.
        status = here.wait(
            "manual", completed(succeeded=3), timeout=30, what="the scheduled run succeeded"
        )
        added = recorder.snapshot()

    # Order between the second manual run and the scheduled one depends on load;
    # the first manual run certainly came before the scheduled run.
    by_trigger: dict[str, list[SeenJob]] = {}
    for job in added:
        by_trigger.setdefault(job.body["metadata"]["labels"][TRIGGER_LABEL], []).append(job)
    assert sorted(by_trigger) == ["Manual", "Schedule"], [j.name for j in added]
    manual, [scheduled] = by_trigger["Manual"], by_trigger["Schedule"]
    assert len(manual) == 2 and added[0] is manual[0]
    assert all(j.name.startswith("manual-m") for j in manual) and manual[0].name != manual[1].name
    assert scheduled.created >= due
    counts = executions(status)
    assert (counts.get("manual"), counts.get("scheduled"), counts.get("succeeded")) == (2, 1, 3)
    assert sorted(e["trigger"] for e in history(status)) == ["Manual", "Manual", "Schedule"]
    assert has_event(cluster, namespace, "manual", reason="ManualRun")
    assert len(here.jobs("manual")) == 3


def test_suspend_holds_runs_and_resume_starts_the_latest_missed(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """suspend: true starts nothing when a run is due (manual runs still go);
    suspend: false starts the run missed meanwhile (catchUp Latest)."""
    due = seconds_ahead(4)
    manifest = schedule(
        "paused",
        runAt=rfc3339(due),
        suspend=True,
        catchUp="Latest",
        jobTemplate=job_template(run_seconds=1),
    )
    here = Schedules(cluster, namespace)
    with record_jobs(cluster, namespace) as recorder:
        here.apply(manifest)
        here.wait("paused", phase("Suspended"), timeout=20, what="phase Suspended")
        wait_for(
            lambda: utcnow() > due + timedelta(seconds=3), timeout=15, what="the run's time passed"
        )
        status = here.status("paused")
        assert recorder.names() == [], "a suspended schedule started a run"
        assert status.get("phase") == "Suspended", status
        assert "nextRunTime" not in status

        here.annotate("paused", RUN_NOW, "while-suspended")
        status = here.wait(
            "paused",
            counted_at_least("succeeded", 1),
            timeout=30,
            what="the manual run of a suspended schedule succeeded",
        )
        assert len(recorder.names()) == 1
        # Reconciled after the due time: the missed run is still owed, not Completed.
        assert status.get("phase") == "Suspended", status

        manifest["spec"]["suspend"] = False
        here.apply(manifest)
        wait_for(
            lambda: len(recorder.names()) == 2, timeout=20, what="the missed run started on resume"
        )
        status = here.wait(
            "paused", completed(succeeded=2), timeout=30, what="the resumed run succeeded"
        )
        added = recorder.snapshot()

    resumed = added[1].body["metadata"]
    assert resumed["labels"][TRIGGER_LABEL] in ("Schedule", "CatchUp")
    assert parse_time(resumed["annotations"]["jobwarden.io/scheduled-time"]) == due
    assert executions(status).get("scheduled") == 1
    assert executions(status).get("missed", 0) == 0


def test_history_limits_delete_old_jobs_and_trim_history(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """successfulJobsHistoryLimit 1 keeps only the newest finished Job (and its pods);
    historyLimit 2 keeps two entries in status.history."""
    far = utcnow() + timedelta(days=30)
    here = Schedules(cluster, namespace)
    here.apply(
        schedule(
            "limited",
            runAt=rfc3339(far),
            successfulJobsHistoryLimit=1,
            historyLimit=2,
            jobTemplate=job_template(run_seconds=0.5),
        )
    )
    names: list[str] = []
    for n, token in enumerate(("a", "b", "c"), start=1):
        here.annotate("limited", RUN_NOW, token)
        status = here.wait(
            "limited",
            counted_at_least("succeeded", n),
            timeout=30,
            what=f"manual run {token} succeeded",
        )
        names.append(history(status)[0]["job"])

    def only_newest_left() -> bool:
        jobs = [j["metadata"]["name"] for j in here.jobs("limited")]
        pods = {
            p["metadata"]["labels"].get("job-name")
            for p in cluster.pods(namespace, f"{SCHEDULE_LABEL}=limited")
        }
        return jobs == [names[-1]] and pods == {names[-1]}

    wait_for(only_newest_left, timeout=30, what="older Jobs and their pods deleted")
    status = here.status("limited")
    assert [e["job"] for e in history(status)] == [names[2], names[1]]
    assert executions(status).get("succeeded") == 3
