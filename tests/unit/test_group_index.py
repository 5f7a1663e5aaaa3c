"""The namespace's concurrency groups as the informers show them (handlers.groups).

What a member's plan sees of its group (``view``), who is woken when room is
made, that a fresh index fed only by the Jobs and the schedules' statuses (a
restart, a new leader) sees the same group, and the occupancy gauge.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from jobwarden.api.status import format_time
from jobwarden.handlers.groups import GroupIndex
from jobwarden.handlers.memory import Key
from jobwarden.reconcile import Plan, Start, Waiting
from jobwarden.reconcile.group import admit
from jobwarden.runs.jobs import JobObservation, JobResult
from tests.unit.test_reconcile import at

T = at("02:00:00")
NS = "team"


def member(
    name: str, *, limit: int = 1, group: str = "etl", queue: tuple[tuple[int, str], ...] = ()
) -> dict[str, Any]:
    """A schedule body naming ``group``, its ``status.queue`` (minute, job) as written."""
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"concurrencyGroup": {"name": group, "limit": limit}},
    }
    if queue:
        body["status"] = {
            "queue": [
                {
                    "job": job,
                    "trigger": "Schedule",
                    "scheduledTime": format_time(T + timedelta(minutes=minute)),
                }
                for minute, job in queue
            ]
        }
    return body


def job(name: str, schedule: str, *, result: JobResult = "Running", group: str = "etl") -> Any:
    return JobObservation(
        name=name,
        namespace=NS,
        schedule=schedule,
        trigger="Schedule",
        scheduled_time=T,
        start_time=None,
        finish_time=None,
        result=result,
        reason=None,
        message=None,
        active=1,
        stale_deadline=False,
        group=group,
    )


class Woken:
    def __init__(self) -> None:
        self.keys: list[Key] = []

    def __call__(self, key: Key) -> None:
        self.keys.append(key)


def occupancy(state: str, group: str = "etl") -> float | None:
    labels = {"namespace": NS, "group": group, "state": state}
    return REGISTRY.get_sample_value("jobwarden_group_runs", labels)


def test_a_member_sees_the_group_runs_queue_and_the_smallest_limit_of_the_others() -> None:
    index = GroupIndex()
    index.schedule((NS, "a"), member("a", limit=3))
    index.schedule((NS, "b"), member("b", limit=2, queue=((1, "b-1"),)))
    index.schedule((NS, "c"), member("c", limit=5))
    index.job(None, job("a-0", "a"))
    view = index.view((NS, "a"), complete=True)
    assert (view.name, view.limit, view.active, view.complete) == ("etl", 2, {"a-0"}, True)
    assert view.waiting == (Waiting(T + timedelta(minutes=1), "b-1", "b"),)
    # Its own limit is the plan's to add (its spec may have changed since the watch).
    assert index.view((NS, "b"), complete=True).limit == 3


def test_before_every_job_is_listed_the_view_says_so() -> None:
    index = GroupIndex()
    index.schedule((NS, "a"), member("a"))
    assert not index.view((NS, "a"), complete=False).complete


def test_a_schedule_outside_any_group_sees_none() -> None:
    index = GroupIndex()
    index.schedule((NS, "a"), {"metadata": {"name": "a"}, "spec": {}})
    assert index.view((NS, "a"), complete=True).name is None


def test_groups_are_per_namespace_and_per_name() -> None:
    index = GroupIndex()
    index.schedule((NS, "a"), member("a"))
    index.schedule((NS, "b"), member("b", group="other"))
    index.schedule(("elsewhere", "a"), member("a"))
    index.job(None, job("b-0", "b", group="other"))
    assert index.view((NS, "a"), complete=True).active == frozenset()
    assert index.view(("elsewhere", "a"), complete=True).limit is None


def test_a_run_ending_wakes_the_member_whose_run_waited_longest_only() -> None:
    woken = Woken()
    index = GroupIndex(wake=woken)
    index.job(None, job("a-0", "a"))
    index.schedule((NS, "b"), member("b", queue=((5, "b-5"),)))
    index.schedule((NS, "c"), member("c", queue=((1, "c-1"),)))
    index.schedule((NS, "a"), member("a"))
    assert woken.keys == []  # full: nobody has anything to gain
    index.job(job("a-0", "a"), job("a-0", "a", result="Succeeded"))
    assert woken.keys == [(NS, "c")]


def test_a_job_created_here_holds_room_before_the_watch_shows_it() -> None:
    index = GroupIndex()
    index.schedule((NS, "a"), member("a", queue=((0, "a-0"),)))
    index.schedule((NS, "b"), member("b"))
    body = {"metadata": {"name": "a-0", "labels": {"jobwarden.io/concurrency-group": "etl"}}}
    index.planned((NS, "a"), Plan(starts=[Start(body, T)]))
    view = index.view((NS, "b"), complete=True)
    assert (view.active, view.waiting) == ({"a-0"}, ())  # admitted: no longer queued
    index.job(None, job("a-0", "a"))  # the watch shows it: counted once
    assert index.view((NS, "b"), complete=True).active == {"a-0"}


def test_a_create_that_failed_frees_its_room() -> None:
    woken = Woken()
    index = GroupIndex(wake=woken)
    index.schedule((NS, "a"), member("a"))
    index.schedule((NS, "b"), member("b", queue=((3, "b-3"),)))
    body = {"metadata": {"name": "a-0", "labels": {"jobwarden.io/concurrency-group": "etl"}}}
    index.planned((NS, "a"), Plan(starts=[Start(body, T)]))
    woken.keys.clear()
    index.abandoned((NS, "a"), "a-0")
    assert index.view((NS, "b"), complete=True).active == frozenset()
    assert woken.keys == [(NS, "b")]


def test_a_restarted_index_fed_by_the_jobs_and_statuses_sees_the_same_group() -> None:
    """The queue and the runs in progress are the API's, not the process's."""
    events: list[tuple[str, Any]] = [
        ("schedule", member("a", limit=2)),
        ("schedule", member("b", queue=((2, "b-2"), (4, "b-4")))),
        ("job", job("a-0", "a")),
        ("job", job("b-0", "b")),
        ("schedule", member("c", queue=((3, "c-3"),))),
    ]

    def fed(order: list[tuple[str, Any]]) -> GroupIndex:
        index = GroupIndex()
        for kind, item in order:
            if kind == "schedule":
                index.schedule((NS, item["metadata"]["name"]), item)
            else:
                index.job(None, item)
        return index

    before, after = fed(events), fed(list(reversed(events)))
    for name in "abc":
        one, two = before.view((NS, name), complete=True), after.view((NS, name), complete=True)
        assert (one.limit, one.active, sorted(one.waiting)) == (
            two.limit,
            two.active,
            sorted(two.waiting),
        )
    assert [w.job for w in sorted(before.view((NS, "a"), complete=True).waiting)] == [
        "b-2",
        "c-3",
        "b-4",
    ]


def test_the_occupancy_gauge_follows_the_group_and_goes_with_it() -> None:
    index = GroupIndex()
    index.schedule((NS, "a"), member("a", limit=2, group="gauged"))
    index.schedule((NS, "b"), member("b", limit=3, group="gauged", queue=((1, "b-1"),)))
    index.job(None, job("a-0", "a", group="gauged"))
    assert [occupancy(s, "gauged") for s in ("active", "queued", "limit")] == [1, 1, 2]
    index.job(job("a-0", "a", group="gauged"), None)
    index.schedule((NS, "a"), None)
    index.schedule((NS, "b"), None)
    assert [occupancy(s, "gauged") for s in ("active", "queued", "limit")] == [None] * 3


# A member's runs: (member index, minute due); the group has members "m0".."m2".
runs = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30)), max_size=12, unique=True)


@settings(max_examples=200, deadline=None)
@given(runs=runs, limit=st.integers(1, 3), ending=st.lists(st.integers(0, 20), max_size=20))
def test_waking_as_runs_end_never_exceeds_the_limit_and_serves_in_scheduled_order(
    runs: list[tuple[int, int]], limit: int, ending: list[int]
) -> None:
    """Driven as the executor drives it: a woken member admits what ``admit`` gives it."""
    woken = Woken()
    index = GroupIndex(wake=woken)
    queues: dict[str, list[tuple[int, str]]] = {f"m{i}": [] for i in range(3)}
    for i, minute in runs:
        queues[f"m{i}"].append((minute, f"m{i}-{minute:02}"))
    for name, queue in queues.items():
        index.schedule((NS, name), member(name, limit=limit, queue=tuple(queue)))
    started: list[Waiting] = []
    running: list[str] = []

    def serve() -> None:
        while woken.keys:
            key = woken.keys.pop(0)
            view = index.view(key, complete=True)
            chosen = admit(limit=limit, active=len(view.active), waiting=view.waiting)
            mine = [w for w in chosen if w.schedule == key[1]]
            for run in mine:
                started.append(run)
                running.append(run.job)
                index.job(None, job(run.job, run.schedule))
                assert len(index.view(key, complete=True).active) <= limit
            left = tuple((w.scheduled, w.job) for w in view.waiting if w.schedule == key[1])
            left = tuple(x for x in left if x[1] not in {r.job for r in mine})
            index.schedule(
                key,
                member(
                    key[1],
                    limit=limit,
                    queue=tuple((int((t - T) / timedelta(minutes=1)), j) for t, j in left),
                ),
            )

    woken.keys.extend((NS, name) for name in queues)
    serve()
    for pick in ending:
        if not running:
            break
        done = running.pop(pick % len(running))
        schedule = done.split("-")[0]
        index.job(job(done, schedule), job(done, schedule, result="Succeeded"))
        serve()
    assert len(running) <= limit
    everything = sorted(Waiting(T + timedelta(minutes=m), f"m{i}-{m:02}", "") for i, m in runs)
    # Admitted together or one by one, what started is the oldest of what was due.
    assert sorted(w.job for w in started) == sorted(w.job for w in everything[: len(started)])
