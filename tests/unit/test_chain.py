"""Chains (spec.after): tables of upstream outcomes, and a property over interleavings.

Each schedule of a namespace is a ``World``; the downstream's plans get the
upstreams' Jobs and the namespace's ``after`` graph as the executor would give
them (``ChainView``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden import labels
from jobwarden.reconcile import ChainView, Plan
from jobwarden.runs.naming import job_name
from tests.unit.test_reconcile import World, at, started

NIGHTLY = "0 2 * * *"
T = at("02:00:00")  # the upstreams' run of the first night
S = timedelta(seconds=1)


@dataclass
class Namespace:
    """Upstream schedules and one downstream, planned as the executor would."""

    down: World
    ups: dict[str, World] = field(default_factory=dict)

    @classmethod
    def of(
        cls, after: list[dict[str, Any]], *, ups: tuple[str, ...] = (), **spec: Any
    ) -> Namespace:
        down = World.of(after=after, **spec)
        down.name = "report"
        worlds = {}
        for name in ups:
            world = World.of(schedule=NIGHTLY)
            world.name = name
            worlds[name] = world
        return cls(down, worlds)

    def view(self) -> ChainView:
        graph = {n: () for n in self.ups}
        graph[self.down.name] = tuple(u["schedule"] for u in self.down.spec.get("after") or ())
        return ChainView(
            graph=graph,
            jobs={n: tuple(w.observations()) for n, w in self.ups.items()},
        )

    def run(self, up: str, night: int, *, result: str = "Succeeded", ends: str = "02:10:00") -> str:
        """The upstream's run of ``night`` (at 02:00), ended ``result`` at ``ends``."""
        world = self.ups[up]
        (job,) = started(world.step(at("02:00:01", day=night)))
        world.finish(job, at(ends, day=night), result=result)
        world.step(at(ends, day=night) + S)
        return job

    def plan(self, now: datetime) -> Plan:
        self.down.chain = self.view()
        return self.down.step(now)


def after(*names: str, result: str = "Succeeded") -> list[dict[str, Any]]:
    return [{"schedule": n, "result": result} for n in names]


def after_name(t: datetime) -> str:
    return job_name(schedule="report", scheduled=t, trigger=labels.TRIGGER_AFTER)


def env(result: Plan) -> dict[str, str]:
    (start,) = result.starts
    container = start.body["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_one_upstream_run_starts_one_downstream_run_with_its_facts() -> None:
    ns = Namespace.of(after("extract"), ups=("extract",))
    job = ns.run("extract", 1)
    result = ns.plan(at("02:10:02"))
    assert started(result) == [after_name(T)]
    facts = env(result)
    assert (facts["JOBWARDEN_TRIGGER"], facts["JOBWARDEN_UPSTREAM_JOB"]) == ("After", job)
    assert facts["JOBWARDEN_UPSTREAM_RESULT"] == "Succeeded"
    assert facts["JOBWARDEN_UPSTREAM_SCHEDULED_TIME"] == "2024-01-01T02:00:00Z"
    body = result.starts[0].body["metadata"]
    assert body["labels"][labels.TRIGGER_LABEL] == "After"
    assert body["annotations"][labels.UPSTREAM_JOBS_ANNOTATION] == job
    entry = ns.down.entry(after_name(T))
    assert (entry["trigger"], entry["result"]) == ("After", "Running")
    assert ns.down.status["lastAfterTime"] == "2024-01-01T02:00:00Z"
    assert ns.down.status["scheduleDescription"] == "after extract"
    assert ns.down.status["phase"] == "Active"
    assert ns.plan(at("02:10:03")).starts == []


# (case, the result asked, the upstream's result, started?, the entry's result and reason)
RESULTS = [
    ("Succeeded asked, succeeded", "Succeeded", "Succeeded", True, None),
    ("Succeeded asked, failed", "Succeeded", "Failed", False, ("Skipped", "UpstreamResult")),
    ("Failed asked, failed", "Failed", "Failed", True, None),
    ("Failed asked, succeeded", "Failed", "Succeeded", False, ("Skipped", "UpstreamResult")),
    ("Any, failed", "Any", "Failed", True, None),
]


@pytest.mark.parametrize(
    ("asked", "ended", "runs", "entry"), [pytest.param(*c[1:], id=c[0]) for c in RESULTS]
)
def test_the_result_asked_for(
    asked: str, ended: str, runs: bool, entry: tuple[str, str] | None
) -> None:
    ns = Namespace.of(after("extract", result=asked), ups=("extract",))
    ns.run("extract", 1, result=ended)
    result = ns.plan(at("02:10:02"))
    assert bool(result.starts) is runs
    if entry is not None:
        (recorded,) = ns.down.history
        assert (recorded["result"], recorded["reason"]) == entry
        assert recorded["trigger"] == "After"
        assert ns.down.counters["skipped"] == 1


def test_fan_in_waits_for_every_upstream_of_the_same_time() -> None:
    ns = Namespace.of(after("extract", "load"), ups=("extract", "load"))
    ns.run("extract", 1, ends="02:05:00")
    waiting = ns.plan(at("02:05:02"))
    assert waiting.starts == []
    assert waiting.wake_at == at("03:05:00")  # the first end + afterDeadline (1h)
    ns.run("load", 1, ends="02:20:00")
    result = ns.plan(at("02:20:02"))
    assert started(result) == [after_name(T)]
    facts = env(result)
    jobs = facts["JOBWARDEN_UPSTREAM_JOB"].split(",")
    assert [j.split("-")[0] for j in jobs] == ["extract", "load"]
    assert facts["JOBWARDEN_UPSTREAM_RESULT"] == "Succeeded,Succeeded"


def test_fan_in_past_the_deadline_is_missed() -> None:
    ns = Namespace.of(after("extract", "load"), ups=("extract", "load"), afterDeadline="30m")
    ns.run("extract", 1, ends="02:05:00")
    assert ns.plan(at("02:34:59")).starts == []
    result = ns.plan(at("02:35:00"))
    assert result.starts == []
    (entry,) = ns.down.history
    assert (entry["result"], entry["reason"]) == ("Missed", "UpstreamsIncomplete")
    assert "load" in entry["message"] and "0:30:00" in entry["message"]
    assert ns.down.counters["missed"] == 1
    # load's run of that night comes late: the time is decided, nothing starts.
    ns.run("load", 1, ends="02:50:00")
    assert ns.plan(at("02:50:02")).starts == []


def test_a_waiting_time_is_missed_when_a_newer_one_completes() -> None:
    ns = Namespace.of(after("extract", "load"), ups=("extract", "load"), afterDeadline="2d")
    ns.run("extract", 1)
    ns.run("extract", 2)
    ns.run("load", 2)
    result = ns.plan(at("02:10:02", day=2))
    assert started(result) == [after_name(at("02:00:00", day=2))]
    missed = [e for e in ns.down.history if e["result"] == "Missed"]
    assert [(e["scheduledTime"], e["reason"]) for e in missed] == [
        ("2024-01-01T02:00:00Z", "Superseded")
    ]


def test_upstream_runs_from_before_the_chain_existed_are_not_replayed() -> None:
    ns = Namespace.of(after("extract"), ups=("extract",))
    ns.run("extract", 1)
    ns.down.created = at("03:00:00")
    assert ns.plan(at("03:00:01")).starts == []
    ns.run("extract", 2)
    assert started(ns.plan(at("02:10:02", day=2))) == [after_name(at("02:00:00", day=2))]


def test_the_downstream_job_deleted_by_its_limits_is_not_run_again() -> None:
    ns = Namespace.of(after("extract"), ups=("extract",))
    ns.run("extract", 1)
    (job,) = started(ns.plan(at("02:10:02")))
    ns.down.finish(job, at("02:11:00"))
    ns.plan(at("02:11:01"))
    ns.down.jobs.clear()  # gone (history limits, a user), while the upstream's Job stays
    ns.down.status.pop("history")
    assert ns.plan(at("02:12:00")).starts == []


def test_a_lost_status_write_decides_again_to_the_same_name() -> None:
    ns = Namespace.of(after("extract"), ups=("extract",))
    ns.run("extract", 1)
    ns.down.chain = ns.view()
    first = ns.down.decide(at("02:10:02"))
    for start in first.starts:  # created, and then the status write is lost
        ns.down.jobs[start.body["metadata"]["name"]] = start.body
    again = ns.plan(at("02:10:03"))
    assert again.starts == []  # the Job exists: never created twice
    assert [e["job"] for e in ns.down.history] == started(first)
    assert ns.down.counters["scheduled"] == 1


def test_a_suspended_downstream_runs_the_waiting_upstream_run_on_resume() -> None:
    ns = Namespace.of(after("extract"), ups=("extract",), suspend=True)
    ns.run("extract", 1)
    assert ns.plan(at("02:10:02")).starts == []
    assert ns.down.status["phase"] == "Suspended"
    ns.down.edit(suspend=False)
    assert started(ns.plan(at("02:20:00"))) == [after_name(T)]


def test_a_clock_and_after_together() -> None:
    ns = Namespace.of(after("extract"), ups=("extract",), schedule="0 12 * * *")
    ns.run("extract", 1)
    assert started(ns.plan(at("02:10:02"))) == [after_name(T)]
    assert started(ns.plan(at("12:00:01"))) == [
        job_name(schedule="report", scheduled=at("12:00:00"), trigger="Schedule")
    ]
    assert ns.down.status["scheduleDescription"] == "0 12 * * *, and after extract"


# --- what cannot be followed is Valid=False naming the field -----------------------------

INVALID = [
    ("missing upstream", after("nope"), {}, "spec.after[0].schedule", "no JobSchedule"),
    ("itself", after("report"), {}, "spec.after[0].schedule", "itself"),
    ("a cycle", after("load"), {"load": ("extract",), "extract": ("report",)},
     "spec.after[0].schedule", "report -> load -> extract -> report"),
    ("another namespace", [{"schedule": "extract", "namespace": "other"}], {"extract": ()},
     "spec.after[0].namespace", "own namespace"),
    ("a namespace in the name", after("other/extract"), {}, "spec.after[0].schedule",
     "in this namespace"),
    ("listed twice", after("extract", "extract"), {"extract": ()}, "spec.after[1].schedule",
     "twice"),
    ("a deadline without after", None, {}, "spec.afterDeadline", "only allowed with after"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("listed", "graph", "field_name", "says"), [pytest.param(*c[1:], id=c[0]) for c in INVALID]
)
def test_an_after_that_cannot_be_followed_is_invalid(
    listed: list[dict[str, Any]] | None,
    graph: dict[str, tuple[str, ...]],
    field_name: str,
    says: str,
) -> None:
    spec: dict[str, Any] = {"after": listed} if listed else {"schedule": NIGHTLY}
    if listed is None:
        spec["afterDeadline"] = "1h"
    world = World.of(**spec)
    world.name = "report"
    world.chain = ChainView(graph=graph)
    result = world.step(at("02:00:00"))
    valid = world.condition("Valid")
    assert valid is not None and valid["status"] == "False", world.status
    assert valid["message"].startswith(field_name), valid["message"]
    assert says in valid["message"]
    assert result.starts == []


# --- a property: never twice per upstream run -----------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["extract", "load", "plan", "lose", "forget"]),
            st.integers(min_value=1, max_value=4),
            st.sampled_from(["Succeeded", "Failed"]),
        ),
        max_size=25,
    )
)
def test_a_chain_never_runs_twice_for_one_set_of_upstream_runs(
    events: list[tuple[str, int, str]],
) -> None:
    """Whatever the order of upstream ends and downstream plans, lost status writes and
    downstream Jobs removed: at most one downstream Job per scheduled time from one
    process, and only for times whose every upstream succeeded."""
    ns = Namespace.of(after("extract", "load"), ups=("extract", "load"), afterDeadline="3d")
    created: list[str] = []
    unrecorded: set[str] = set()
    ran: dict[tuple[str, int], str] = {}
    clock = at("02:30:00", day=4)
    for kind, night, result in events:
        clock += S
        if kind in ("extract", "load"):
            if (kind, night) in ran:
                continue
            world = ns.ups[kind]
            name = job_name(schedule=kind, scheduled=at("02:00:00", day=night), trigger="Schedule")
            body = World.of(schedule=NIGHTLY)
            body.name = kind
            (job,) = started(body.step(at("02:00:01", day=night)))
            world.jobs[name] = body.jobs[job]
            world.finish(name, clock, result=result)
            ran[(kind, night)] = result
        elif kind == "plan":
            ns.down.chain = ns.view()
            # As the executor: a name this process created and has not yet recorded is
            # never created again (``ScheduleMemory.created``), then the write records it.
            created += [n for n in started(ns.down.step(clock)) if n not in unrecorded]
            unrecorded.clear()
        elif kind == "lose":
            ns.down.chain = ns.view()
            decision = ns.down.decide(clock)  # carried out, but its status write lost
            for start in decision.starts:
                name = start.body["metadata"]["name"]
                if name not in unrecorded:
                    created.append(name)
                    unrecorded.add(name)
                ns.down.jobs[name] = start.body
        else:
            ns.down.jobs.clear()
    assert len(created) == len(set(created)), created
    allowed = {
        after_name(at("02:00:00", day=n))
        for n in range(1, 5)
        if ran.get(("extract", n)) == "Succeeded" and ran.get(("load", n)) == "Succeeded"
    }
    assert set(created) <= allowed


def test_an_upstream_retried_by_hand_starts_the_downstream_for_that_run() -> None:
    """The night's run failed (skipped downstream); a run-now of the upstream is a run of
    its own (scheduled when it was asked for): it starts the downstream once."""
    ns = Namespace.of(after("extract"), ups=("extract",))
    ns.run("extract", 1, result="Failed")
    ns.plan(at("02:10:02"))
    extract = ns.ups["extract"]
    extract.annotations[labels.RUN_NOW_ANNOTATION] = "retry"
    (manual,) = started(extract.step(at("03:00:00")))
    extract.finish(manual, at("03:05:00"))
    extract.step(at("03:05:01"))
    result = ns.plan(at("03:05:02"))
    assert started(result) == [after_name(at("03:00:00"))]
    assert env(result)["JOBWARDEN_UPSTREAM_JOB"] == manual
    assert [e["result"] for e in ns.down.history] == ["Running", "Skipped"]
    assert ns.plan(at("03:05:03")).starts == []
