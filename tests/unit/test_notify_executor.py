"""The executor hands a plan's notifications on only once its status write succeeded:
a refused write tells nobody, the write that lands tells once, and a later reconcile
of the recorded status tells nothing again."""

from __future__ import annotations

from typing import Any

from jobwarden.handlers.scheduler import Scheduler
from jobwarden.notify.events import Delivery
from jobwarden.reconcile import Policy
from jobwarden.runs.jobs import observe_job
from tests.unit.test_executor import KEY, FakeKube, one_time, reconcile


def failing(kube: FakeKube, job: str) -> None:
    kube.jobs[job]["status"] = {
        "startTime": "2024-01-01T00:00:00Z",
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
    }


def test_notifications_follow_the_status_write_that_records_them() -> None:
    kube = FakeKube(one_time(notify=[{"sink": "hook", "events": ["Failed"]}]))
    sent: list[Delivery] = []

    def jobs_of(key: tuple[str, str]) -> list[Any]:
        return [observe_job(j) for j in kube.jobs.values()]

    sched = Scheduler(
        kube=kube,  # type: ignore[arg-type]
        policy=Policy(sinks=frozenset({"hook"})),
        jobs_of=jobs_of,
        notify=sent.extend,
    )
    reconcile(sched)
    [job] = kube.created()
    assert sent == []  # a start is no event
    failing(kube, job)
    kube.refuse_status = True
    reconcile(sched)
    assert sent == [], "told before the failure was recorded"
    kube.refuse_status = False
    reconcile(sched)
    assert [(d.sink, d.notification.event, d.notification.job) for d in sent] == [
        ("hook", "Failed", job)
    ]
    assert kube.bodies[KEY]["status"]["history"][0]["result"] == "Failed"
    reconcile(sched)
    assert len(sent) == 1, "told again from a status that already records it"
