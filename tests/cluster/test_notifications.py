"""Notifications on the real control plane: a local HTTP receiver started here is the
sink, given to an operator started with it (as the chart's sinks file would be).

Each event of a failing schedule reaches the receiver once after deduplication by
CloudEvent id, though the receiver refuses every first try; and a receiver that never
answers delays no run, of another schedule or of its own.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.support.checks import all_of, counted, phase, run_result
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.receiver import Receiver
from tests.support.schedules import (
    RUN_NOW,
    Schedules,
    condition,
    events_of,
    history,
    job_template,
    record_jobs,
    rfc3339,
    schedule,
    seconds_ahead,
)

# A yearly clock that never comes due in a test: the runs here are started by run-now.
YEARLY = "0 0 1 1 *"
LATE_ALLOWANCE = timedelta(seconds=2)  # as tests/cluster/test_scheduling.py


@contextmanager
def operator_with_sinks(
    cluster: Cluster, namespace: str, tmp_path: Path, sinks: list[dict[str, Any]]
) -> Iterator[OperatorProcess]:
    """An operator watching ``namespace`` whose sinks file lists ``sinks``."""
    path = tmp_path / "sinks.json"
    path.write_text(json.dumps({"sinks": sinks}))
    proc = OperatorProcess(
        cluster=cluster,
        namespaces=[namespace],
        log_path=tmp_path / "op.log",
        extra_env={"JOBWARDEN_NOTIFY_SINKS": str(path)},
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _run_now(here: Schedules, name: str, token: str, *, runs: int) -> str:
    """Start a run of ``name``; its Job once history holds ``runs`` runs."""
    here.annotate(name, RUN_NOW, token)
    status = here.wait(name, lambda s: len(history(s)) == runs, timeout=30, what=f"run {token}")
    job: str = history(status)[0]["job"]
    return job


def test_each_event_of_a_failing_schedule_arrives_once_by_id(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """Two failed runs, the suspension they cause, and the recovery after a fix: four
    events, each delivered once by id although every first try is answered 500."""
    here = Schedules(cluster, namespace)
    refuse_first = Receiver(answer=lambda attempt: 500 if attempt == 1 else 200)
    with (
        refuse_first.running() as receiver,
        operator_with_sinks(
            cluster, namespace, tmp_path, [{"name": "hook", "url": receiver.url}]
        ) as operator,
    ):
        here.apply(
            schedule(
                "flaky",
                schedule=YEARLY,
                suspendAfterFailures=2,
                notify=[{"sink": "hook", "events": ["Failed", "Suspended", "Recovered"]}],
                jobTemplate=job_template(run_seconds=1, fail=True),
            )
        )
        first = _run_now(here, "flaky", "1", runs=1)
        here.wait("flaky", run_result(first, "Failed"), timeout=60, what="run 1 failed")
        second = _run_now(here, "flaky", "2", runs=2)
        here.wait(
            "flaky",
            all_of(run_result(second, "Failed"), phase("Suspended")),
            timeout=60,
            what="run 2 failed and the schedule suspended",
        )
        # A fix: a spec change lifts the operator's suspension; the next run succeeds.
        here.apply(
            schedule(
                "flaky",
                schedule=YEARLY,
                suspendAfterFailures=2,
                notify=[{"sink": "hook", "events": ["Failed", "Suspended", "Recovered"]}],
                jobTemplate=job_template(run_seconds=1),
            )
        )
        here.wait("flaky", phase("Active"), timeout=30, what="the suspension lifted")
        fixed = _run_now(here, "flaky", "3", runs=3)
        status = here.wait(
            "flaky",
            all_of(run_result(fixed, "Succeeded"), counted("succeeded", 1)),
            timeout=60,
            what="run 3 succeeded",
        )
        receiver.wait(lambda r: len(r.unique()) >= 4, timeout=60, what="four events delivered")
        metrics = operator.metrics()

    uid = cluster.schedule(namespace, "flaky")["metadata"]["uid"]
    events = sorted(receiver.unique().values(), key=lambda r: r.at)
    assert [(e.type, e.subject) for e in events] == [
        ("io.jobwarden.run.failed", first),
        ("io.jobwarden.run.failed", second),
        ("io.jobwarden.schedule.suspended", None),
        ("io.jobwarden.schedule.recovered", fixed),
    ]
    for event in events:
        assert (
            event.source == f"/apis/jobwarden.io/v1alpha1/namespaces/{namespace}/jobschedules/flaky"
        )
        assert event.data["schedule"] == {"namespace": namespace, "name": "flaky", "uid": uid}
    failed = {e["job"]: e for e in history(status) if e["result"] == "Failed"}
    assert events[0].data["reason"] == failed[first]["reason"]
    assert events[0].data["run"]["scheduledTime"] == failed[first]["scheduledTime"]
    assert events[3].data["result"] == "Healthy"
    # Every event was refused once, then sent again under the same id.
    tries = Counter(r.id for r in receiver.snapshot())
    statuses = {i: [r.status for r in receiver.snapshot() if r.id == i] for i in tries}
    assert all(s[:2] == [500, 200] for s in statuses.values()), statuses
    assert f'jobwarden_notifications_total{{outcome="Delivered",sink="hook"}} {len(tries)}' in (
        metrics.replace(".0\n", "\n")
    )
    # The sink's worker is judged by liveness like every loop of the operator.
    assert 'jobwarden_heartbeat_age_seconds{component="notify hook"}' in metrics


def test_a_hanging_receiver_delays_no_run(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """While the sink holds its first event unanswered, another schedule's run starts on
    time and the failing schedule's own next run is recorded; the held event's successor
    waits in the sink's queue, which the metric shows."""
    here = Schedules(cluster, namespace)
    with (
        Receiver(hang=True).running() as stuck,
        operator_with_sinks(
            cluster,
            namespace,
            tmp_path,
            [{"name": "stuck", "url": stuck.url, "timeoutSeconds": 300}],
        ) as operator,
    ):
        here.apply(
            schedule(
                "noisy",
                schedule=YEARLY,
                notify=[{"sink": "stuck", "events": ["Failed"]}],
                jobTemplate=job_template(run_seconds=0.5, fail=True),
            )
        )
        first = _run_now(here, "noisy", "1", runs=1)
        here.wait("noisy", run_result(first, "Failed"), timeout=60, what="run 1 failed")
        stuck.wait(lambda r: r.hanging == 1, timeout=30, what="the first event held")

        due = seconds_ahead(6)
        with record_jobs(cluster, namespace) as recorder:
            here.apply(
                schedule("other", runAt=rfc3339(due), jobTemplate=job_template(run_seconds=0.5))
            )
            second = _run_now(here, "noisy", "2", runs=2)
            here.wait("noisy", run_result(second, "Failed"), timeout=60, what="run 2 failed")
            here.wait("other", phase("Completed"), timeout=60, what="the other run done")
            seen = {j.name: j for j in recorder.snapshot()}
        queued = wait_for(
            lambda: 'jobwarden_notification_queue{sink="stuck"} 1.0' in operator.metrics(),
            timeout=20,
            what="the second event queued behind the held one",
        )
        assert queued
        assert stuck.hanging == 1 and stuck.unique() == {}  # held all along

    (other,) = [j for name, j in seen.items() if name.startswith("other-")]
    assert other.created >= due
    assert other.seen - due <= LATE_ALLOWANCE, f"seen {other.seen}, due {due}"
    assert second in seen


def test_an_event_a_sink_refuses_is_a_warning_event_on_the_schedule(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """A sink that answers 400 is not retried: the event is given up, counted Failed and
    recorded as a Warning Event NotificationFailed on the schedule, naming the run, the
    sink and the answer, never the sink's address."""
    here = Schedules(cluster, namespace)
    with (
        Receiver(answer=lambda attempt: 400).running() as refusing,
        operator_with_sinks(
            cluster, namespace, tmp_path, [{"name": "pager", "url": refusing.url}]
        ) as operator,
    ):
        here.apply(
            schedule(
                "refused",
                schedule=YEARLY,
                notify=[{"sink": "pager", "events": ["Failed"]}],
                jobTemplate=job_template(run_seconds=0.5, fail=True),
            )
        )
        job = _run_now(here, "refused", "1", runs=1)
        here.wait("refused", run_result(job, "Failed"), timeout=60, what="the run failed")
        (event,) = wait_for(
            lambda: [
                e
                for e in events_of(cluster, namespace, "refused")
                if e.get("reason") == "NotificationFailed"
            ],
            timeout=60,
            what="a NotificationFailed Event",
        )
        metrics = operator.metrics()
        url = refusing.url
    assert event["type"] == "Warning"
    assert job in event["message"] and "'pager'" in event["message"], event["message"]
    assert "HTTP 400" in event["message"] and url not in event["message"]
    assert len(refusing.snapshot()) == 1  # a refusal is not retried
    assert 'jobwarden_notifications_total{outcome="Failed",sink="pager"} 1.0' in metrics


def test_a_sink_the_operator_lacks_is_valid_false_naming_the_entry(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """A schedule naming a sink the owner did not configure is Invalid and says which
    entry, listing the sinks there are by name, never their addresses."""
    here = Schedules(cluster, namespace)
    with (
        Receiver().running() as receiver,
        operator_with_sinks(cluster, namespace, tmp_path, [{"name": "hook", "url": receiver.url}]),
    ):
        here.apply(
            schedule(
                "typo",
                schedule=YEARLY,
                notify=[
                    {"sink": "hook", "events": ["Failed"]},
                    {"sink": "pager", "events": ["Missed"]},
                ],
            )
        )
        status = here.wait(
            "typo",
            lambda s: (condition(s, "Valid") or {}).get("status") == "False",
            timeout=30,
            what="Valid=False",
        )
    message = (condition(status, "Valid") or {})["message"]
    assert message.startswith("spec.notify[1].sink: "), message
    assert "'pager'" in message and "hook" in message and receiver.url not in message
    assert status.get("phase") == "Invalid"
