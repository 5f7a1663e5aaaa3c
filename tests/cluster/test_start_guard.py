"""The start guard on the real control plane: a run whose pod never starts.

The fake nodes keep a pod Pending with its containers waiting on
``ImagePullBackOff`` (the ``jobwarden.test/waiting-reason`` stage), as a
kubelet does for an image that never pulls. The operator must record the run
``NeverStarted`` with that reason once its start deadline passes, and leave
a run whose pod runs alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.cluster._safety import (
    events,
    job,
    job_template,
    plain_job,
    pods_of_job,
    schedule,
    wait_job_started,
)
from tests.support.checks import entry, run_reason, run_result
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    RUN_NOW,
    Schedules,
    executions,
    history,
    parse_time,
    record_jobs,
)

# Long enough for a loaded control plane to create the pod: judged before its pod
# exists, the run would rightly be NoPods instead.
DEADLINE = timedelta(seconds=12)
# The wake-up at the deadline, a LIST of pods, the plan and the status write, on 2 busy cores.
MARGIN = timedelta(seconds=6)
RUNS_PAST = 20  # seconds a run whose pod starts keeps running: past its 15 s deadline


def _run(here: Schedules, name: str) -> str:
    """Start one run of ``name`` by run-now; its Job's name once history has it."""
    here.annotate(name, RUN_NOW, "go")
    status = here.wait(name, lambda s: bool(history(s)), timeout=20, what="a run recorded")
    job_name: str = history(status)[0]["job"]
    return job_name


def test_a_pod_that_never_pulls_is_recorded_never_started_within_its_deadline(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """The run ends NeverStarted, reason ImagePullBackOff from the pod, within a few
    seconds of its deadline; its Job goes; a Warning Event says why; it counts as a
    failure. A run of the same deadline whose pod runs is never touched."""
    here = Schedules(cluster, namespace)
    pulls = job_template(waiting_reason="ImagePullBackOff")
    here.apply(schedule("stuck", template=pulls, startDeadline=f"{DEADLINE.seconds}s"))
    # Room for a loaded machine to start the pod; the run outlives its deadline.
    here.apply(schedule("fine", template=job_template(run_seconds=RUNS_PAST), startDeadline="15s"))
    with record_jobs(cluster, namespace) as recorder:
        stuck = _run(here, "stuck")
        fine = _run(here, "fine")
        status = here.wait(
            "stuck",
            run_result(stuck, "NeverStarted"),
            timeout=DEADLINE.seconds + 30,
            what="the stuck run recorded NeverStarted",
        )
        created = {j.name: j.created for j in recorder.snapshot()}
    record = entry(status, stuck)
    assert record is not None
    assert record["reason"] == "ImagePullBackOff", record
    assert "container work" in record["message"] and "Back-off pulling image" in record["message"]
    ended = parse_time(record["completionTime"])
    # creationTimestamp and completionTime are whole seconds: a second of slack below.
    assert created[stuck] + DEADLINE - timedelta(seconds=1) <= ended, (created[stuck], ended)
    assert ended <= created[stuck] + DEADLINE + MARGIN, (created[stuck], ended)
    counts = executions(status)
    assert (counts.get("neverStarted"), counts.get("failed", 0)) == (1, 0)
    assert status["health"]["reason"] == "LastRunNeverStarted"
    warnings = wait_for(
        lambda: events(cluster, namespace, "stuck", reason="NeverStarted"),
        timeout=10,
        what="a NeverStarted Event",
    )
    assert [e["type"] for e in warnings] == ["Warning"]
    assert stuck in warnings[0]["message"] and "ImagePullBackOff" in warnings[0]["message"]
    wait_for(lambda: job(cluster, namespace, stuck) is None, timeout=15, what="the Job deleted")
    wait_for(lambda: not pods_of_job(cluster, namespace, stuck), timeout=20, what="pods gone")

    done = here.wait(
        "fine",
        run_result(fine, "Succeeded"),
        timeout=RUNS_PAST + 30,
        what="the run whose pod runs succeeded",
    )
    assert executions(done).get("neverStarted", 0) == 0
    assert not events(cluster, namespace, "fine", reason="NeverStarted")


def test_report_marks_a_run_that_never_started_and_keeps_its_job(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """staleAction Report: the run stays Running, marked NotStartedReported with the
    pod's reason, counted once; its Job and pod are left waiting."""
    here = Schedules(cluster, namespace)
    pulls = job_template(waiting_reason="ErrImagePull")
    here.apply(
        schedule(
            "queued", template=pulls, startDeadline=f"{DEADLINE.seconds}s", staleAction="Report"
        )
    )
    name = _run(here, "queued")
    status = here.wait(
        "queued",
        run_reason(name, "NotStartedReported"),
        timeout=DEADLINE.seconds + 30,
        what="the run reported",
    )
    record = entry(status, name)
    assert record is not None and record["result"] == "Running"
    assert record["message"].startswith("ErrImagePull: "), record
    assert executions(status)["neverStarted"] == 1
    assert job(cluster, namespace, name) is not None
    pods = pods_of_job(cluster, namespace, name)
    assert [p["status"]["phase"] for p in pods] == ["Pending"]


def test_any_job_opts_in_by_label(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """A Job labelled jobwarden.io/start-deadline whose pod never pulls is deleted with
    a NeverStarted Event on the Job naming the pod's reason; one whose pod runs, and
    an unlabelled one that never pulls, are left alone; a bad label is reported."""
    start = "jobwarden.io/start-deadline"
    cluster.apply(
        # Deadlines long enough for a loaded control plane to create and start the pods:
        # judged before its pod exists, the run would rightly be NoPods instead.
        plain_job("stuck", labels={start: "20s"}, waiting_reason="ImagePullBackOff"),
        namespace=namespace,
    )
    cluster.apply(plain_job("running", labels={start: "60s"}), namespace=namespace)
    cluster.apply(plain_job("unlabelled", waiting_reason="ImagePullBackOff"), namespace=namespace)
    cluster.apply(plain_job("typo", labels={start: "3x"}), namespace=namespace)
    wait_job_started(cluster, namespace, "running")

    warnings = wait_for(
        lambda: events(cluster, namespace, "stuck", reason="NeverStarted"),
        timeout=60,
        what="a NeverStarted Event on the Job",
    )
    assert [(e["type"], e["involvedObject"]["kind"]) for e in warnings] == [("Warning", "Job")]
    assert warnings[0]["message"].startswith("ImagePullBackOff: "), warnings[0]
    wait_for(lambda: job(cluster, namespace, "stuck") is None, timeout=15, what="Job deleted")
    bad = wait_for(
        lambda: events(cluster, namespace, "typo", reason="BadStartDeadline"),
        timeout=20,
        what="the bad label reported",
    )
    assert start in bad[0]["message"]
    running = job(cluster, namespace, "running")
    assert running is not None
    created = parse_time(running["metadata"]["creationTimestamp"])
    # Past the running Job's deadline and two sweeps (every 2 s): it was judged started.
    wait_for(
        lambda: datetime.now(UTC) > created + timedelta(seconds=60 + 5),
        timeout=90,
        what="past the running Job's deadline",
    )
    for name in ("running", "unlabelled", "typo"):
        assert job(cluster, namespace, name) is not None, name
        assert not events(cluster, namespace, name, reason="NeverStarted"), name
