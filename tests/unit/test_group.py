"""Concurrency groups (spec.concurrencyGroup): the admission decision as tables, the
whole plan across member schedules, and a property over random interleavings.

Each member is a ``World``; its plans get the group as the executor gives it
(``GroupView``): every member's unfinished Jobs with the group's label, and
every member's ``status.queue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden import labels
from jobwarden.api.status import parse_time
from jobwarden.reconcile import GroupView, Plan, Waiting
from jobwarden.reconcile.group import admit
from jobwarden.runs.jobs import observe_job
from tests.unit.test_reconcile import World, at, scheduled_name, started

S = timedelta(seconds=1)
T = at("02:00:00")


def w(minute: int, job: str, schedule: str = "s") -> Waiting:
    return Waiting(T + timedelta(minutes=minute), job, schedule)


# (case, limit, active, waiting, admitted)
ADMIT = [
    ("room for all", 3, 0, [w(0, "a"), w(1, "b")], ["a", "b"]),
    ("full", 1, 1, [w(0, "a")], []),
    ("over full (a smaller limit)", 1, 3, [w(0, "a")], []),
    ("oldest scheduled time first", 1, 0, [w(5, "a"), w(1, "z"), w(3, "m")], ["z"]),
    ("ties by job name", 2, 0, [w(0, "c"), w(0, "a"), w(0, "b")], ["a", "b"]),
    ("room left after the active", 3, 1, [w(2, "c"), w(1, "b"), w(0, "a")], ["a", "b"]),
    ("one run listed twice counts once", 2, 0, [w(0, "a"), w(0, "a"), w(1, "b")], ["a", "b"]),
]


@pytest.mark.parametrize(
    ("limit", "active", "waiting", "admitted"), [pytest.param(*c[1:], id=c[0]) for c in ADMIT]
)
def test_admit(limit: int, active: int, waiting: list[Waiting], admitted: list[str]) -> None:
    assert [x.job for x in admit(limit=limit, active=active, waiting=waiting)] == admitted


def member(name: str, schedule: str = "0 2 * * *", **group: Any) -> World:
    world = World.of(schedule=schedule, concurrencyGroup={"name": "etl", **group})
    world.name = name
    return world


@dataclass
class Group:
    """The member schedules of one group, planned as the executor plans them."""

    members: dict[str, World]
    complete: bool = True

    @classmethod
    def of(cls, *worlds: World) -> Group:
        return cls({world.name: world for world in worlds})

    def running(self) -> list[str]:
        """The group's Jobs that have not finished (what the limit holds to)."""
        return sorted(
            name
            for world in self.members.values()
            for name, body in world.jobs.items()
            if body["metadata"]["labels"].get(labels.GROUP_LABEL) == "etl"
            and not observe_job(body).finished
        )

    def waiting(self) -> list[Waiting]:
        return sorted(
            Waiting(parse_time(q["scheduledTime"]), q["job"], world.name)  # type: ignore[arg-type]
            for world in self.members.values()
            for q in world.status.get("queue") or ()
        )

    def view(self, me: World) -> GroupView:
        others = [
            w.spec["concurrencyGroup"].get("limit", 1)
            for w in self.members.values()
            if w is not me and w.spec.get("concurrencyGroup")
        ]
        return GroupView(
            name="etl",
            limit=min(others) if others else None,
            active=frozenset(self.running()),
            waiting=tuple(self.waiting()),
            complete=self.complete,
        )

    def step(self, name: str, now: datetime) -> Plan:
        world = self.members[name]
        world.group = self.view(world)
        return world.step(now)

    def step_all(self, now: datetime) -> list[str]:
        """Every member plans at ``now``, in name order; the Jobs started."""
        return [job for name in sorted(self.members) for job in started(self.step(name, now))]

    def finish(self, job: str, when: datetime) -> None:
        for world in self.members.values():
            if job in world.jobs:
                world.finish(job, when)


def queue_of(world: World) -> list[str]:
    return [q["job"] for q in world.status.get("queue") or ()]


def test_three_schedules_due_at_one_minute_run_one_at_a_time_in_order() -> None:
    group = Group.of(member("c"), member("a"), member("b"))
    first = group.step_all(at("02:00:01"))
    assert first == [scheduled_name(T, schedule="a")]
    assert [queue_of(group.members[n]) for n in "bc"] == [
        [scheduled_name(T, schedule="b")],
        [scheduled_name(T, schedule="c")],
    ]
    b = group.members["b"]
    assert b.status["queue"][0]["trigger"] == "Schedule"
    assert "Queued" in [n.reason for p in b.plans for n in p.notes]
    assert "Started" not in [n.reason for p in b.plans for n in p.notes]
    assert not b.status.get("active")
    order = list(first)
    for minute in range(1, 4):
        assert len(group.running()) <= 1
        group.finish(group.running()[0], at(f"02:0{minute}:00"))
        order += group.step_all(at(f"02:0{minute}:01"))
    assert order == [scheduled_name(T, schedule=n) for n in "abc"]
    assert group.waiting() == []
    assert group.members["c"].entry(order[-1])["result"] == "Succeeded"


def test_the_queue_drains_by_scheduled_time_not_by_schedule_name() -> None:
    group = Group.of(member("a", "30 1 * * *"), member("b", "0 1 * * *"), member("z", "10 0 * * *"))
    first = group.step_all(at("00:10:01"))  # z runs, and holds the group
    group.step_all(at("01:00:01"))
    group.step_all(at("01:30:01"))
    assert [q.schedule for q in group.waiting()] == ["b", "a"]
    group.finish(first[0], at("01:40:00"))
    assert group.step_all(at("01:40:01")) == [scheduled_name(at("01:00:00"), schedule="b")]


def test_whenfull_skip_records_the_run_skipped_and_creates_nothing() -> None:
    group = Group.of(member("a"), member("b", whenFull="Skip"))
    assert group.step_all(at("02:00:01")) == [scheduled_name(T, schedule="a")]
    b = group.members["b"]
    (entry,) = b.status["history"]
    assert (entry["result"], entry["reason"]) == ("Skipped", "GroupFull")
    assert b.status["executions"]["skipped"] == 1
    assert b.status["executions"]["scheduled"] == 0
    assert queue_of(b) == [] and b.jobs == {}


def test_a_queued_run_past_the_starting_deadline_is_missed() -> None:
    group = Group.of(member("a"), member("b"))
    group.members["b"].spec["startingDeadlineSeconds"] = 300
    group.step_all(at("02:00:01"))
    b = group.members["b"]
    assert b.plans[-1].wake_at == at("02:05:01")
    group.step("b", at("02:05:01"))
    (entry,) = b.status["history"]
    assert (entry["result"], entry["reason"]) == ("Missed", "GroupQueueDeadline")
    assert b.status["executions"]["missed"] == 1 and queue_of(b) == []
    group.finish(group.running()[0], at("02:06:00"))
    assert group.step_all(at("02:06:01")) == []


def test_the_smallest_limit_of_the_members_holds() -> None:
    group = Group.of(member("a", limit=3), member("b", limit=1), member("c", limit=3))
    assert group.step_all(at("02:00:01")) == [scheduled_name(T, schedule="a")]
    assert len(group.waiting()) == 2


def test_a_limit_of_two_admits_two() -> None:
    group = Group.of(member("a", limit=2), member("b", limit=2), member("c", limit=2))
    assert len(group.step_all(at("02:00:01"))) == 2
    assert len(group.running()) == 2


def test_nothing_is_admitted_before_every_job_is_listed() -> None:
    group = Group.of(member("a", whenFull="Skip"))
    group.complete = False
    assert group.step_all(at("02:00:01")) == []
    a = group.members["a"]
    assert queue_of(a) == [scheduled_name(T, schedule="a")]  # held, not skipped
    group.complete = True
    assert group.step_all(at("02:00:02")) == [scheduled_name(T, schedule="a")]
    assert a.entry(scheduled_name(T, schedule="a"))["result"] == "Running"


def test_a_restart_derives_the_queue_from_status_and_the_jobs() -> None:
    group = Group.of(member("a"), member("b"))
    group.step_all(at("02:00:01"))
    for name, world in list(group.members.items()):  # a new process: nothing but the API
        fresh = member(name)
        fresh.status, fresh.jobs = world.status, world.jobs
        group.members[name] = fresh
    assert group.step_all(at("02:00:30")) == []
    group.finish(scheduled_name(T, schedule="a"), at("02:01:00"))
    assert group.step_all(at("02:01:01")) == [scheduled_name(T, schedule="b")]


def test_an_admitted_run_whose_status_write_was_lost_is_not_created_again() -> None:
    group = Group.of(member("a"), member("b"))
    group.step_all(at("02:00:01"))
    group.finish(scheduled_name(T, schedule="a"), at("02:01:00"))
    b = group.members["b"]
    before = dict(b.status)
    assert group.step_all(at("02:01:01")) == [scheduled_name(T, schedule="b")]
    b.status = before  # the write was lost; the Job exists
    result = group.step("b", at("02:01:02"))
    assert result.starts == []
    assert queue_of(b) == []
    assert b.entry(scheduled_name(T, schedule="b"))["result"] == "Running"


def test_a_manual_run_waits_in_the_group_too() -> None:
    group = Group.of(member("a"), member("b"))
    group.step_all(at("02:00:01"))
    b = group.members["b"]
    b.annotations[labels.RUN_NOW_ANNOTATION] = "t1"
    group.step("b", at("02:00:10"))
    assert len(queue_of(b)) == 2
    assert b.status["executions"]["manual"] == 1


def test_a_schedule_that_leaves_its_group_starts_its_queued_runs() -> None:
    group = Group.of(member("a"), member("b"))
    group.step_all(at("02:00:01"))
    b = group.members["b"]
    b.edit(concurrencyGroup=None)
    del b.spec["concurrencyGroup"]
    assert started(group.step("b", at("02:00:30"))) == [scheduled_name(T, schedule="b")]
    assert labels.GROUP_LABEL not in b.jobs[scheduled_name(T, schedule="b")]["metadata"]["labels"]


def test_a_suspended_member_skips_what_waits_and_holds_nobody_up() -> None:
    group = Group.of(member("a"), member("b"), member("c"))
    group.step_all(at("02:00:01"))
    b = group.members["b"]
    b.edit(suspend=True)
    group.step("b", at("02:00:30"))
    (entry,) = b.status["history"]
    assert (entry["result"], entry["reason"]) == ("Skipped", "Suspended")
    assert queue_of(b) == []
    group.finish(scheduled_name(T, schedule="a"), at("02:01:00"))
    assert group.step_all(at("02:01:01")) == [scheduled_name(T, schedule="c")]


def test_admitted_jobs_carry_the_group_label() -> None:
    group = Group.of(member("a"))
    (job,) = group.step_all(at("02:00:01"))
    assert group.members["a"].jobs[job]["metadata"]["labels"][labels.GROUP_LABEL] == "etl"


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=3),
    crons=st.lists(
        st.sampled_from(["*/5 * * * *", "*/10 * * * *", "0,7 * * * *", "*/3 * * * *"]),
        min_size=2,
        max_size=4,
    ),
    moves=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=5, max_size=30),
)
def test_the_group_never_exceeds_its_limit_and_admits_first_come_first(
    limit: int, crons: list[str], moves: list[tuple[int, bool]]
) -> None:
    """Each move: maybe a run ends; then every member plans (as the group's wake-up makes
    them), starting from a different one. The limit holds after every plan, and the runs
    admitted from the queue in a round are older than every run left waiting."""
    group = Group.of(*(member(f"s{i}", cron, limit=limit) for i, cron in enumerate(crons)))
    names = sorted(group.members)
    now = at("00:00:00")
    for who, finish in moves:
        now += timedelta(minutes=2)
        running = group.running()
        if finish and running:
            group.finish(running[who % len(running)], now - S)
        before = {x.job: x for x in group.waiting()}
        admitted = []
        for name in names[who % len(names) :] + names[: who % len(names)]:
            admitted += [before[j] for j in started(group.step(name, now)) if j in before]
            assert len(group.running()) <= limit
        for was in admitted:
            assert all(x > was for x in group.waiting())
