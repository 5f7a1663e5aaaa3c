"""Which change of a Job wakes its schedule: a table over (old, new) observations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobwarden import labels
from jobwarden.handlers.calendars import CalendarIndex, calendar_sink, see_calendar
from jobwarden.handlers.chains import ChainIndex
from jobwarden.handlers.groups import GroupIndex
from jobwarden.handlers.schedules import (
    JobSeen,
    ScheduleJobs,
    Wake,
    job_sink,
    job_wake,
    schedule_sink,
    see_job,
)
from jobwarden.watching import Change

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


def _job(
    *,
    started: bool = False,
    result: str = "Running",
    stale_seconds: str | None = None,
    start_seconds: str | None = None,
    ready: int = 0,
) -> JobSeen:
    status: dict[str, Any] = {}
    if started:
        status["startTime"] = "2024-01-01T12:00:00Z"
    if result != "Running":
        kind = "Complete" if result == "Succeeded" else "Failed"
        status["conditions"] = [
            {"type": kind, "status": "True", "lastTransitionTime": "2024-01-01T12:05:00Z"}
        ]
    annotations = {labels.STALE_DEADLINE_ANNOTATION: stale_seconds} if stale_seconds else {}
    if start_seconds:
        annotations[labels.START_DEADLINE_ANNOTATION] = start_seconds
    if ready:
        status["ready"] = ready
    return see_job(
        {
            "metadata": {
                "namespace": "ns",
                "name": "nightly-1",
                "labels": {labels.SCHEDULE_LABEL: "nightly"},
                "annotations": annotations,
                "creationTimestamp": "2024-01-01T12:00:00Z",
            },
            "status": status,
        }
    )


CREATED = _job()
STARTED = _job(started=True)
STARTED_WITH_THRESHOLD = _job(started=True, stale_seconds="600")
SUCCEEDED = _job(started=True, result="Succeeded")
FAILED = _job(started=True, result="Failed")

CASES = [
    # (old, new, wake): new running Job: written to status when it was created
    ("created", None, CREATED, None),
    (
        "created with a start deadline: wake at it",
        None,
        _job(start_seconds="300"),
        Wake(T0 + timedelta(seconds=300)),
    ),
    (
        "listed after a restart, pods not running: at the start deadline",
        None,
        _job(started=True, start_seconds="300"),
        Wake(T0 + timedelta(seconds=300)),
    ),
    (
        "listed with a pod running: no start deadline to wait for",
        None,
        _job(started=True, start_seconds="300", ready=1),
        None,
    ),
    ("listed running", None, STARTED, None),
    ("listed finished", None, SUCCEEDED, Wake()),
    ("no change", STARTED, STARTED, None),
    ("started, no threshold: reconcile reads the spec", CREATED, STARTED, Wake()),
    (
        "started with a threshold: wake at the deadline",
        CREATED,
        STARTED_WITH_THRESHOLD,
        Wake(T0 + timedelta(seconds=600)),
    ),
    ("succeeded", STARTED, SUCCEEDED, Wake()),
    ("failed", STARTED, FAILED, Wake()),
    ("finished before it was seen started", CREATED, SUCCEEDED, Wake()),
    ("deleted while running", STARTED, None, Wake()),
    ("deleted after it finished", SUCCEEDED, None, Wake()),
    ("never kept", None, None, None),
    ("start time gone (not a start)", STARTED, CREATED, None),
]


@pytest.mark.parametrize(("old", "new", "wake"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_job_wake(old: JobSeen | None, new: JobSeen | None, wake: Wake | None) -> None:
    assert job_wake(old, new) == wake


def test_a_threshold_past_the_calendar_wakes_now_instead_of_raising() -> None:
    huge = _job(started=True, stale_seconds="9" * 12)
    assert job_wake(CREATED, huge) == Wake()


def test_an_unreadable_threshold_annotation_is_no_threshold() -> None:
    assert _job(started=True, stale_seconds="1" * 40).stale_seconds is None
    assert _job(started=True, stale_seconds="10m").stale_seconds is None


def test_the_jobs_of_a_schedule_follow_changes_and_deletions() -> None:
    jobs = ScheduleJobs()
    jobs.update(None, CREATED)
    assert [j.name for j in jobs.jobs_of(("ns", "nightly"))] == ["nightly-1"]
    jobs.update(CREATED, SUCCEEDED)
    assert [j.result for j in jobs.jobs_of(("ns", "nightly"))] == ["Succeeded"]
    jobs.update(SUCCEEDED, None)
    assert jobs.jobs_of(("ns", "nightly")) == []


# --- the sinks: what the informers' changes do to the scheduler ----------------------------


class _Scheduler:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.chains = ChainIndex()
        self.groups = GroupIndex(wake=self.touch)
        self.calendars = CalendarIndex()

    def seen(self, key: Any, *, resource_version: str | None, body: Any = None) -> None:
        self.calls.append(("seen", (key, resource_version)))

    def forget(self, key: Any) -> None:
        self.calls.append(("forget", key))

    def touch(self, key: Any, at: Any = None) -> None:
        self.calls.append(("touch", (key, at)))

    def job_seen(self, key: Any, job: str) -> None:
        self.calls.append(("job_seen", (key, job)))


def test_a_schedule_deleted_by_watch_or_by_a_relist_is_forgotten() -> None:
    """Every deletion reaches forget (which also removes the schedule's metric series),
    whether the watch sent it or a relist found the schedule gone."""
    scheduler = _Scheduler()
    sink = schedule_sink(scheduler)  # type: ignore[arg-type]
    sink(Change(key=("ns", "a"), old=None, new="7", body={"metadata": {"name": "a"}}))
    sink(Change(key=("ns", "a"), old="7", new=None))  # as Store.end_relist makes it
    assert scheduler.calls == [("seen", (("ns", "a"), "7")), ("forget", ("ns", "a"))]


def test_a_job_change_indexes_it_tells_the_sweep_and_wakes_its_schedule() -> None:
    scheduler = _Scheduler()
    jobs = ScheduleJobs()
    told: list[Any] = []
    sink = job_sink(scheduler=scheduler, jobs=jobs, candidates=told.append)  # type: ignore[arg-type]
    sink(Change(key=("ns", "nightly-1"), old=None, new=CREATED))
    sink(Change(key=("ns", "nightly-1"), old=CREATED, new=None))  # gone in a watch gap
    key = ("ns", "nightly")
    assert scheduler.calls == [
        ("job_seen", (key, "nightly-1")),
        ("job_seen", (key, "nightly-1")),
        ("touch", (key, None)),
    ]
    assert jobs.jobs_of(key) == []
    assert len(told) == 2


def _schedule(name: str, *after: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"after": [{"schedule": a} for a in after]}}


def test_an_upstream_arriving_or_leaving_wakes_its_downstreams_and_nothing_else() -> None:
    scheduler = _Scheduler()
    sink = schedule_sink(scheduler)  # type: ignore[arg-type]
    sink(Change(key=("ns", "report"), old=None, new="1", body=_schedule("report", "load")))
    sink(Change(key=("ns", "load"), old=None, new="2", body=_schedule("load")))
    sink(Change(key=("ns", "load"), old="2", new="3", body=_schedule("load")))  # its own write
    sink(Change(key=("ns", "load"), old="3", new=None))
    touched = [args[0] for call, args in scheduler.calls if call == "touch"]
    assert touched == [("ns", "report"), ("ns", "report")]
    assert scheduler.chains.downstreams_of(("ns", "load")) == [("ns", "report")]
    assert scheduler.chains.graph_from(("ns", "report")) == {}  # load is gone


def test_an_upstream_run_ending_wakes_its_downstreams() -> None:
    scheduler = _Scheduler()
    scheduler.chains.update(("ns", "report"), ("nightly",))
    scheduler.chains.update(("ns", "nightly"), ())
    sink = job_sink(scheduler=scheduler, jobs=ScheduleJobs(), candidates=lambda _: None)  # type: ignore[arg-type]
    sink(Change(key=("ns", "nightly-1"), old=None, new=CREATED))
    assert ("touch", (("ns", "report"), None)) not in scheduler.calls
    sink(Change(key=("ns", "nightly-1"), old=CREATED, new=SUCCEEDED))
    assert ("touch", (("ns", "report"), None)) in scheduler.calls


def test_a_group_run_ending_wakes_the_member_waiting_and_nothing_else() -> None:
    """The room a run of a concurrency group leaves goes to the member whose run waited
    longest: woken in memory, the other members are not."""
    scheduler = _Scheduler()
    waiting = {
        "spec": {"concurrencyGroup": {"name": "etl"}},
        "status": {
            "queue": [
                {"job": "b-1", "trigger": "Schedule", "scheduledTime": "2024-01-01T12:00:00Z"}
            ]
        },
    }
    scheduler.groups.schedule(("ns", "b"), waiting)
    scheduler.groups.schedule(("ns", "c"), {"spec": {"concurrencyGroup": {"name": "etl"}}})
    sink = job_sink(scheduler=scheduler, jobs=ScheduleJobs(), candidates=lambda _: None)  # type: ignore[arg-type]
    running, done = (
        JobSeen(obs=replace(seen.obs, group="etl"), stale_seconds=None)
        for seen in (STARTED, SUCCEEDED)
    )
    scheduler.calls.clear()
    sink(Change(key=("ns", "nightly-1"), old=None, new=running))
    assert ("touch", (("ns", "b"), None)) not in scheduler.calls  # full: nothing to gain
    sink(Change(key=("ns", "nightly-1"), old=running, new=done))
    woken = [args[0] for call, args in scheduler.calls if call == "touch"]
    assert ("ns", "b") in woken and ("ns", "c") not in woken


class _Writer:
    def __init__(self) -> None:
        self.wanted: list[str] = []

    def want(self, name: str) -> None:
        self.wanted.append(name)


def test_a_calendar_arriving_wakes_the_schedules_that_name_it_and_nothing_else() -> None:
    """The schedule informer registers which calendars each schedule names; a calendar's
    change touches those schedules alone, and asks for the calendar's status."""
    scheduler = _Scheduler()
    sink = schedule_sink(scheduler)  # type: ignore[arg-type]
    for name, spec in (("a", {"calendars": ["hol"]}), ("b", {"calendars": ["other"]}), ("c", {})):
        sink(Change(key=("ns", name), old=None, new="1", body={"spec": spec}))
    scheduler.calls.clear()
    writer = _Writer()
    calendars = calendar_sink(
        index=scheduler.calendars,
        touch=scheduler.touch,
        writer=writer,  # type: ignore[arg-type]
    )
    body = {"metadata": {"name": "hol", "uid": "u", "generation": 1}, "spec": {"yearly": ["12-25"]}}
    calendars(Change(key=("", "hol"), old=None, new=see_calendar(body), body=body))
    assert scheduler.calls == [("touch", (("ns", "a"), None))]
    assert writer.wanted == ["hol"]
    # A schedule deleted no longer wakes for the calendar.
    sink(Change(key=("ns", "a"), old="1", new=None))
    scheduler.calls.clear()
    calendars(Change(key=("", "hol"), old=see_calendar(body), new=None))
    assert scheduler.calls == []
