"""The start guard: runs whose pods never started, why not, and what the plan does.

Pure tables for reading pods (``why_not_started``) and for the deadline
(``start_deadline_at``), then schedules carried through real plans, with the
pod listings the executor would make handed in as ``probed``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from jobwarden import labels
from jobwarden.api.status import format_time
from jobwarden.reconcile import Deletion, Policy
from jobwarden.runs.jobs import observe_job
from jobwarden.safety.start import (
    NotStarted,
    needs_probe,
    parse_start_label,
    start_deadline_at,
    why_not_started,
)
from tests.unit.test_reconcile import HOURLY, World, at, started

M = timedelta(minutes=1)


def pod(phase: str = "Pending", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "status": {"phase": phase, **status}}


def waiting(name: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}}


UNSCHEDULED = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/3 nodes are available: 3 Insufficient cpu.",
}

# (case, pods, Job suspended, expected reason or None when a pod ran)
WHY: list[tuple[str, list[dict[str, Any]], bool, str | None]] = [
    ("an image that never pulls",
     [pod(containerStatuses=[waiting("main", "ImagePullBackOff", "Back-off pulling")])],
     False, "ImagePullBackOff"),
    ("an init container waits first",
     [pod(initContainerStatuses=[waiting("init", "ErrImagePull")],
          containerStatuses=[waiting("main", "PodInitializing")])], False, "ErrImagePull"),
    ("a missing secret", [pod(containerStatuses=[waiting("main", "CreateContainerConfigError")])],
     False, "CreateContainerConfigError"),
    ("on its way is no cause; the scheduler's word is",
     [pod(containerStatuses=[waiting("main", "ContainerCreating")]),
      pod(conditions=[UNSCHEDULED])], False, "Unschedulable"),
    ("unschedulable", [pod(conditions=[UNSCHEDULED])], False, "Unschedulable"),
    ("pending with nothing said", [pod()], False, "PodPending"),
    ("a suspended (queued) Job has no pods", [], True, "JobSuspended"),
    ("no pods at all (a quota refused them)", [], False, "NoPods"),
    ("a running pod (a crash loop) has started",
     [pod("Running", containerStatuses=[waiting("main", "CrashLoopBackOff")])], False, None),
    ("one pod that ran is enough", [pod(conditions=[UNSCHEDULED]), pod("Failed")], False, None),
    ("garbage is read as nothing said",
     [{"status": {"phase": "Pending", "containerStatuses": "x", "conditions": [1]}}],
     False, "PodPending"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pods", "suspended", "reason"), [pytest.param(*c[1:], id=c[0]) for c in WHY]
)
def test_why_not_started(pods: list[dict[str, Any]], suspended: bool, reason: str | None) -> None:
    why = why_not_started(pods=pods, suspended=suspended)
    assert (why.reason if why else None) == reason
    if why is not None:
        assert why.message


def test_the_waiting_message_names_the_container() -> None:
    pods = [pod(containerStatuses=[waiting("main", "ImagePullBackOff", "Back-off pulling x")])]
    assert why_not_started(pods=pods, suspended=False) == NotStarted(
        "ImagePullBackOff", "container main: Back-off pulling x"
    )


T = at("01:00:00")

# (case, created, deadline, started, now, deadline at, needs a probe)
Moment = datetime | None
DEADLINES: list[tuple[str, Moment, timedelta | None, bool, datetime, Moment, bool]] = [
    ("before the deadline", T, 10 * M, False, T + 9 * M, T + 10 * M, False),
    ("at the deadline", T, 10 * M, False, T + 10 * M, T + 10 * M, True),
    ("started: never", T, 10 * M, True, T + 20 * M, None, False),
    ("no deadline on the Job", T, None, False, T + 20 * M, None, False),
    ("no creation time", None, 10 * M, False, T, None, False),
    ("the end of the calendar does not overflow", datetime.max.replace(tzinfo=T.tzinfo),
     10 * M, False, T, datetime.max.replace(tzinfo=T.tzinfo), False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("created", "deadline", "started_", "now", "at_", "probe"),
    [pytest.param(*c[1:], id=c[0]) for c in DEADLINES],
)
def test_start_deadline(
    created: datetime | None,
    deadline: timedelta | None,
    started_: bool,
    now: datetime,
    at_: datetime | None,
    probe: bool,
) -> None:
    assert start_deadline_at(created=created, deadline=deadline, started=started_) == at_
    assert needs_probe(created=created, deadline=deadline, started=started_, now=now) is probe


@pytest.mark.parametrize("value", ["0s", "-5m", "5x", "", "1" * 70, "3651d"])
def test_a_bad_opt_in_label_names_the_label(value: str) -> None:
    with pytest.raises(ValueError, match=labels.START_DEADLINE_LABEL):
        parse_start_label(value)


# --- through the plan ------------------------------------------------------------------------


def create(world: World, now: datetime) -> str:
    """Plan at ``now``; the one Job it creates gets its creation time."""
    (name,) = started(world.step(now))
    world.jobs[name]["metadata"]["creationTimestamp"] = format_time(now)
    return name


PULL = NotStarted("ImagePullBackOff", 'container main: Back-off pulling image "nope"')


def guarded(**spec: Any) -> tuple[World, str]:
    world = World.of(**spec)
    return world, create(world, at("01:00:01"))


def test_each_job_carries_the_start_deadline_of_its_spec_or_the_operator() -> None:
    world, name = guarded(schedule=HOURLY, startDeadline="10m")
    annotations = world.jobs[name]["metadata"]["annotations"]
    assert annotations[labels.START_DEADLINE_ANNOTATION] == "600"
    assert observe_job(world.jobs[name]).start_deadline == 10 * M
    world, name = guarded(schedule=HOURLY)
    world.policy = Policy(default_start_deadline=timedelta(minutes=7))
    (other,) = started(world.step(at("02:00:01")))
    assert world.jobs[other]["metadata"]["annotations"][labels.START_DEADLINE_ANNOTATION] == "420"


def test_a_run_not_started_wakes_its_schedule_at_the_deadline() -> None:
    world, name = guarded(schedule="0 1 * * *", startDeadline="10m")
    result = world.step(at("01:00:30"))
    assert result.wake_at == at("01:10:01")
    world.jobs[name]["status"] = {"ready": 1, "active": 1}
    assert world.step(at("01:00:40")).wake_at == at("01:00:00", day=2)


def test_past_the_deadline_without_the_pods_read_it_asks_again_soon() -> None:
    world, name = guarded(schedule=HOURLY, startDeadline="10m")
    result = world.step(at("01:10:01"))
    assert result.deletes == []
    assert result.wake_at == at("01:10:06")
    assert world.entry(name)["result"] == "Running"


def test_a_run_that_never_started_ends_with_its_pods_reason() -> None:
    world, name = guarded(schedule=HOURLY, startDeadline="10m")
    world.probed = {name: PULL}
    result = world.step(at("01:10:01"))
    assert result.deletes == [Deletion(name, None, False, "NeverStarted")]
    entry = world.entry(name)
    assert (entry["result"], entry["reason"]) == ("NeverStarted", "ImagePullBackOff")
    assert "0:10:00 after its Job was created" in entry["message"]
    assert "Back-off pulling image" in entry["message"]
    assert [(n.type, n.reason) for n in result.notes] == [("Warning", "NeverStarted")]
    assert world.counters["neverStarted"] == 1
    assert world.status["health"]["reason"] == "LastRunNeverStarted"
    assert world.status["lastResult"] == "NeverStarted"
    assert "lastFailureTime" in world.status
    assert world.step(at("01:10:02")).status is None


def test_a_pod_that_runs_unready_is_left_to_the_stale_threshold() -> None:
    world, name = guarded(schedule=HOURLY, startDeadline="10m")
    world.probed = {name: None}
    result = world.step(at("01:10:01"))
    assert result.deletes == [] and result.status is None
    assert world.entry(name)["result"] == "Running"


@pytest.mark.parametrize(
    ("spec", "policy"),
    [
        pytest.param({"staleAction": "Report"}, Policy(), id="staleAction Report"),
        pytest.param({}, Policy(dry_run=True), id="dry run"),
    ],
)
def test_reporting_marks_the_run_once_and_lets_it_wait(
    spec: dict[str, Any], policy: Policy
) -> None:
    world = World.of(schedule=HOURLY, startDeadline="10m", **spec)
    world.policy = policy
    name = create(world, at("01:00:01"))
    world.probed = {name: PULL}
    result = world.step(at("01:10:01"))
    assert result.deletes == []
    entry = world.entry(name)
    assert (entry["result"], entry["reason"]) == ("Running", "NotStartedReported")
    assert entry["message"].startswith("ImagePullBackOff: ")
    assert [n.reason for n in result.notes] == ["NeverStarted"]
    assert world.counters["neverStarted"] == 1
    again = world.step(at("01:20:00"))
    assert (again.notes, again.deletes, again.status) == ([], [], None)


def test_never_started_runs_suspend_after_failures() -> None:
    world, first = guarded(schedule=HOURLY, startDeadline="5m", suspendAfterFailures=2)
    world.probed = {first: PULL}
    world.step(at("01:05:01"))
    assert world.status["phase"] == "Active"
    second = create(world, at("02:00:01"))
    world.probed = {second: PULL}
    world.step(at("02:05:01"))
    assert world.status["phase"] == "Suspended"
    assert world.status["health"]["consecutiveFailures"] == 2
