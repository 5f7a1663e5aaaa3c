"""The pure reconcile decision, by tables of situations and by replaying streams of them.

Each case builds a schedule as the API would show it, the Jobs the index
would hold and a clock, calls :func:`jobwarden.reconcile.plan`, and checks
what the plan asks for. Cases that span several reconciles use ``World``,
which carries a plan out the way the scheduler does (create the Jobs, delete
the Jobs, merge-patch the status) so that the next plan sees what the API
server would show it. No API and no kopf: every product rule is decided here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden import labels
from jobwarden.api.status import Executions, format_time
from jobwarden.reconcile import ChainView, Deletion, GroupView, Observed, Plan, Policy, plan
from jobwarden.runs.jobs import JobObservation, observe_job
from jobwarden.runs.naming import job_name
from jobwarden.safety.start import NotStarted

T0 = datetime(2024, 1, 1, tzinfo=UTC)  # every schedule here is created at T0
H = timedelta(hours=1)
S = timedelta(seconds=1)
TEMPLATE: dict[str, Any] = {
    "spec": {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}],
            }
        }
    }
}
HOURLY = "0 * * * *"


def at(hhmmss: str, *, day: int = 1) -> datetime:
    """A moment on 2024-01-``day`` (UTC), e.g. ``at("01:00:02")``."""
    return datetime.fromisoformat(f"2024-01-{day:02d}T{hhmmss}").replace(tzinfo=UTC)


def scheduled_name(run: datetime, *, schedule: str = "nightly") -> str:
    return job_name(schedule=schedule, scheduled=run, trigger=labels.TRIGGER_SCHEDULE)


def manual_name(token: str, *, schedule: str = "nightly") -> str:
    return job_name(schedule=schedule, scheduled=T0, trigger=labels.TRIGGER_MANUAL, token=token)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies the status patch the scheduler sends."""
    result = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            old = result.get(key)
            result[key] = merge_patch(old if isinstance(old, Mapping) else {}, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@dataclass
class World:
    """One schedule and its Jobs as the API server holds them, advanced plan by plan."""

    spec: dict[str, Any]
    name: str = "nightly"
    annotations: dict[str, str] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    generation: int = 1
    created: datetime = T0
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    plans: list[Plan] = field(default_factory=list)
    deleted: list[Deletion] = field(default_factory=list)
    # The pod listings the executor would make for runs past their start deadline.
    probed: dict[str, NotStarted | None] = field(default_factory=dict)
    # What the namespace shows a chained schedule of its upstreams (spec.after).
    chain: ChainView = field(default_factory=ChainView)
    # What the namespace shows of the schedule's concurrency group.
    group: GroupView = field(default_factory=GroupView)

    @classmethod
    def of(cls, **spec: Any) -> World:
        return cls(spec={"jobTemplate": TEMPLATE, **spec})

    def observed(self) -> Observed:
        return Observed(
            namespace="ns",
            name=self.name,
            uid="uid-1",
            generation=self.generation,
            created=self.created,
            annotations=dict(self.annotations),
            spec=copy.deepcopy(self.spec),
            status=copy.deepcopy(self.status),
        )

    def edit(self, **changes: Any) -> None:
        """A spec change as a user applies one: the API server bumps the generation."""
        self.spec.update(changes)
        self.generation += 1

    def observations(self) -> list[JobObservation]:
        return [observe_job(body) for body in self.jobs.values()]

    def decide(self, now: datetime, *, pending: frozenset[str] = frozenset()) -> Plan:
        """The plan at ``now``, without carrying it out."""
        return plan(
            obj=self.observed(),
            jobs=self.observations(),
            pending=pending,
            now=now,
            policy=self.policy,
            probed=self.probed,
            chain=self.chain,
            group=self.group,
        )

    def step(self, now: datetime) -> Plan:
        """Plan at ``now`` and carry the plan out, as the scheduler does."""
        result = self.decide(now)
        for start in result.starts:
            name = start.body["metadata"]["name"]
            assert name not in self.jobs, f"{name} created twice"
            self.jobs[name] = copy.deepcopy(start.body)
        for deletion in result.deletes:
            self.jobs.pop(deletion.job, None)
            self.deleted.append(deletion)
        if result.status is not None:
            self.status = merge_patch(self.status, result.status)
        self.plans.append(result)
        return result

    # --- what the Job controller does to a Job -------------------------------------------

    def start(self, job: str, when: datetime) -> None:
        self.jobs[job].setdefault("status", {})["startTime"] = format_time(when)

    def finish(
        self,
        job: str,
        when: datetime,
        *,
        result: str = "Succeeded",
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        status = self.jobs[job].setdefault("status", {})
        status.setdefault("startTime", format_time(when - 30 * S))
        cond: dict[str, Any] = {
            "type": "Complete" if result == "Succeeded" else "Failed",
            "status": "True",
            "lastTransitionTime": format_time(when),
        }
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        status["conditions"] = [cond]
        if result == "Succeeded":
            status["completionTime"] = format_time(when)

    # --- reading status ------------------------------------------------------------------

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.status.get("history") or [])

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.status.get("executions") or {})

    def condition(self, kind: str) -> dict[str, Any] | None:
        return next((c for c in self.status.get("conditions") or [] if c["type"] == kind), None)

    def entry(self, job: str) -> dict[str, Any]:
        return next(e for e in self.history if e.get("job") == job)


def started(result: Plan) -> list[str]:
    return [s.body["metadata"]["name"] for s in result.starts]


def reasons(result: Plan) -> list[str]:
    return [n.reason for n in result.notes]


# --- the first run, and the same decision twice -------------------------------------------


def test_first_run_due_creates_one_job_with_the_deterministic_name() -> None:
    world = World.of(schedule=HOURLY)
    result = world.step(at("01:00:02"))
    name = scheduled_name(at("01:00:00"))
    assert started(result) == [name]
    assert result.starts[0].due == at("01:00:00")
    body = result.starts[0].body
    assert body["metadata"]["namespace"] == "ns"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert body["metadata"]["labels"][labels.TRIGGER_LABEL] == labels.TRIGGER_SCHEDULE
    assert world.entry(name)["result"] == "Running"
    assert world.entry(name)["trigger"] == "Schedule"
    assert world.counters["scheduled"] == 1
    assert world.status["lastScheduleTime"] == "2024-01-01T01:00:00Z"
    assert world.status["phase"] == "Active"
    assert world.status["active"] == [{"name": name, "scheduledTime": "2024-01-01T01:00:00Z"}]
    assert reasons(result) == ["Started"]


def test_the_same_plan_again_with_the_job_observed_creates_nothing() -> None:
    world = World.of(schedule=HOURLY)
    world.step(at("01:00:02"))
    again = world.decide(at("01:00:03"))
    assert again.starts == []
    assert again.status is None  # nothing changed: no write
    assert again.notes == []


def test_nothing_is_due_before_the_first_run() -> None:
    world = World.of(schedule=HOURLY)
    result = world.step(at("00:59:59"))
    assert result.starts == []
    assert world.counters["scheduled"] == 0
    assert "lastScheduleTime" not in world.status
    assert world.status["nextRunTime"] == "2024-01-01T01:00:00Z"


def test_a_job_not_yet_seen_by_the_watch_is_not_mistaken_for_deleted() -> None:
    world = World.of(schedule=HOURLY)
    name = started(world.step(at("01:00:02")))[0]
    del world.jobs[name]  # the watch has not shown it yet
    waiting = world.decide(at("01:00:03"), pending=frozenset({name}))
    assert waiting.status is None
    gone = world.step(at("01:00:04"))
    assert world.entry(name)["result"] == "Terminated"
    assert world.entry(name)["reason"] == "JobDeleted"
    assert world.counters["terminated"] == 1
    assert gone.starts == []


# --- outcomes and health ------------------------------------------------------------------


def test_a_succeeded_job_finishes_its_history_entry() -> None:
    world = World.of(schedule=HOURLY)
    name = started(world.step(at("01:00:02")))[0]
    world.start(name, at("01:00:05"))
    world.finish(name, at("01:10:05"))
    result = world.step(at("01:10:06"))
    entry = world.entry(name)
    assert entry["result"] == "Succeeded"
    assert entry["durationSeconds"] == 600.0
    assert entry["completionTime"] == "2024-01-01T01:10:05Z"
    assert world.counters["succeeded"] == 1
    assert world.status["lastSuccessfulTime"] == "2024-01-01T01:10:05Z"
    assert world.status["lastResult"] == "Succeeded"
    assert world.status["active"] == []
    assert [(n.type, n.reason) for n in result.notes] == [("Normal", "Succeeded")]
    assert [(t.job, t.result) for t in result.finished] == [(name, "Succeeded")]
    assert world.status["health"]["state"] == "Healthy"
    assert world.decide(at("01:10:07")).status is None


@pytest.mark.parametrize(
    ("failures", "state"), [(1, "Degraded"), (2, "Degraded"), (3, "Unhealthy")]
)
def test_consecutive_failures_degrade_then_make_unhealthy(failures: int, state: str) -> None:
    world = World.of(schedule=HOURLY)
    for hour in range(1, failures + 1):
        name = started(world.step(at(f"{hour:02d}:00:02")))[0]
        world.finish(
            name,
            at(f"{hour:02d}:05:00"),
            result="Failed",
            reason="BackoffLimitExceeded",
            message="exit 1",
        )
        result = world.step(at(f"{hour:02d}:05:01"))
        assert [(n.type, n.reason) for n in result.notes] == [("Warning", "Failed")]
        assert "BackoffLimitExceeded" in result.notes[0].message
    assert world.status["health"]["state"] == state
    assert world.status["health"]["consecutiveFailures"] == failures
    assert world.counters["failed"] == failures
    assert world.status["lastFailureTime"] == f"2024-01-01T{failures:02d}:05:00Z"
    assert world.status["lastResult"] == "Failed"


def test_the_policy_sets_how_many_failures_make_unhealthy() -> None:
    world = World.of(schedule=HOURLY)
    world.policy = Policy(unhealthy_after=1)
    name = started(world.step(at("01:00:02")))[0]
    world.finish(name, at("01:05:00"), result="Failed")
    world.step(at("01:05:01"))
    assert world.status["health"]["state"] == "Unhealthy"


def test_a_failure_on_the_stale_deadline_reads_back_as_stale() -> None:
    world = World.of(schedule=HOURLY, staleAfter="30m")
    name = started(world.step(at("01:00:02")))[0]
    assert world.jobs[name]["spec"]["activeDeadlineSeconds"] == 1800
    world.finish(name, at("01:30:05"), result="Failed", reason="DeadlineExceeded")
    world.step(at("01:30:06"))
    assert world.entry(name)["result"] == "Stale"
    assert world.counters["stale"] == 1
    assert world.counters["failed"] == 0


# --- concurrency policy -------------------------------------------------------------------


def _busy(**spec: Any) -> tuple[World, str]:
    """A schedule whose 01:00 run is still running at 02:00."""
    world = World.of(schedule=HOURLY, **spec)
    first = started(world.step(at("01:00:02")))[0]
    world.start(first, at("01:00:03"))
    return world, first


def test_forbid_skips_a_run_while_one_is_active() -> None:
    world, first = _busy(concurrencyPolicy="Forbid")
    result = world.step(at("02:00:02"))
    assert result.starts == []
    assert result.deletes == []
    skipped = world.history[0]
    assert (skipped["result"], skipped["reason"]) == ("Skipped", "ConcurrencyForbid")
    assert skipped["scheduledTime"] == "2024-01-01T02:00:00Z"
    assert "job" not in skipped
    assert world.counters["skipped"] == 1
    assert world.counters["scheduled"] == 1
    assert world.status["lastScheduleTime"] == "2024-01-01T02:00:00Z"  # not retried later
    assert reasons(result) == ["Skipped"]
    assert world.entry(first)["result"] == "Running"
    assert world.decide(at("02:00:03")).status is None


def test_allow_starts_alongside_an_active_run() -> None:
    world, first = _busy()
    result = world.step(at("02:00:02"))
    assert started(result) == [scheduled_name(at("02:00:00"))]
    assert result.deletes == []
    assert world.status["activeCount"] == 2
    assert world.entry(first)["result"] == "Running"


def test_replace_deletes_the_active_job_and_starts_the_new_one() -> None:
    world, first = _busy(concurrencyPolicy="Replace")
    result = world.step(at("02:00:02"))
    assert started(result) == [scheduled_name(at("02:00:00"))]
    assert [(d.job, d.reason) for d in result.deletes] == [(first, "Replaced")]
    old = world.entry(first)
    assert (old["result"], old["reason"]) == ("Terminated", "Replaced")
    assert old["durationSeconds"] == 3599.0
    assert world.counters["terminated"] == 1
    assert world.counters["scheduled"] == 2
    assert reasons(result) == ["Replaced", "Started"]
    assert [a["name"] for a in world.status["active"]] == [scheduled_name(at("02:00:00"))]


# --- suspend and catch-up -----------------------------------------------------------------


def test_suspend_starts_nothing_and_shows_suspended() -> None:
    world = World.of(schedule=HOURLY, suspend=True)
    result = world.step(at("01:00:02"))
    assert result.starts == []
    assert world.status["phase"] == "Suspended"
    assert "nextRunTime" not in world.status
    assert world.condition("Ready") is not None
    assert world.condition("Ready")["status"] == "False"  # type: ignore[index]
    assert result.wake_at is None  # a spec change wakes it, not the clock


def _suspended_until_five(catch_up: str, **spec: Any) -> tuple[World, Plan]:
    """Suspended through 01:00..04:00, resumed at ``05:00:10``."""
    world = World.of(schedule=HOURLY, suspend=True, catchUp=catch_up, **spec)
    world.step(at("00:30:00"))
    world.step(at("03:30:00"))
    world.edit(suspend=False)
    return world, world.step(at("05:00:10"))


# (case, catchUp, extra spec, resumed at, started hours, missed hours)
CATCH_UP = [
    ("latest starts the newest", "Latest", {}, "05:00:10", [5], [1, 2, 3, 4]),
    ("all starts each, oldest first", "All", {}, "05:00:10", [1, 2, 3, 4, 5], []),
    (
        "all within the deadline",
        "All",
        {"startingDeadlineSeconds": 7200},
        "05:00:10",
        [4, 5],
        [1, 2, 3],
    ),
    ("none starts the on-time run", "None", {}, "05:00:10", [5], [1, 2, 3, 4]),
    ("none starts nothing late", "None", {}, "05:10:00", [], [1, 2, 3, 4, 5]),
    (
        "latest past the deadline",
        "Latest",
        {"startingDeadlineSeconds": 60},
        "05:10:00",
        [],
        [1, 2, 3, 4, 5],
    ),
]


@pytest.mark.parametrize(
    ("catch_up", "extra", "resumed", "starts", "missed"),
    [pytest.param(*case[1:], id=case[0]) for case in CATCH_UP],
)
def test_catch_up_on_resume(
    catch_up: str, extra: dict[str, Any], resumed: str, starts: list[int], missed: list[int]
) -> None:
    world = World.of(schedule=HOURLY, suspend=True, catchUp=catch_up, **extra)
    assert world.step(at("03:30:00")).starts == []
    world.edit(suspend=False)
    result = world.step(at(resumed))
    assert started(result) == [scheduled_name(at(f"{h:02d}:00:00")) for h in starts]
    missed_times = [e["scheduledTime"] for e in world.history if e["result"] == "Missed"]
    assert sorted(missed_times) == [f"2024-01-01T{h:02d}:00:00Z" for h in missed]
    assert world.counters["missed"] == len(missed)
    assert world.counters["scheduled"] == len(starts)
    assert world.status["lastScheduleTime"] == "2024-01-01T05:00:00Z"
    assert world.status["phase"] == "Active"
    assert ("MissedRuns" in reasons(result)) == bool(missed)
    triggers = {e["job"]: e["trigger"] for e in world.history if e.get("job")}
    for hour in starts:
        late = at(resumed) - at(f"{hour:02d}:00:00") > timedelta(minutes=1)
        assert triggers[scheduled_name(at(f"{hour:02d}:00:00"))] == (
            "CatchUp" if late else "Schedule"
        )
    assert world.decide(at(resumed) + S).status is None


# --- the end of a schedule ----------------------------------------------------------------


def test_max_executions_reached_completes_and_runs_nothing_more() -> None:
    world = World.of(schedule=HOURLY, maxExecutions=2)
    assert len(world.step(at("01:00:02")).starts) == 1
    assert world.status["phase"] == "Active"
    result = world.step(at("02:00:02"))
    assert len(result.starts) == 1
    # The last allowed run is still going: not Completed yet, and nothing next.
    assert world.status["phase"] == "Active"
    assert world.condition("Ready")["reason"] == "LastRunActive"  # type: ignore[index]
    assert "nextRunTime" not in world.status
    assert world.step(at("03:00:02")).starts == []
    for job in list(world.jobs):
        world.finish(job, at("03:10:00"))
    assert world.step(at("03:10:01")).starts == []
    assert world.status["phase"] == "Completed"
    assert world.step(at("09:00:02")).starts == []
    assert world.counters["scheduled"] == 2
    assert world.condition("Ready")["reason"] == "Completed"  # type: ignore[index]


def test_end_at_passed_completes() -> None:
    world = World.of(schedule=HOURLY, endAt="2024-01-01T02:30:00Z")
    world.step(at("01:00:02"))
    assert world.status["phase"] == "Active"
    result = world.step(at("02:00:02"))
    assert len(result.starts) == 1
    assert world.status["phase"] == "Active"  # until the last run ends
    assert result.wake_at is None  # nothing left to run, and the run has not started
    assert world.step(at("03:00:02")).starts == []
    for job in list(world.jobs):
        world.finish(job, at("03:05:00"), result="Failed")
    world.step(at("03:05:01"))
    assert world.status["phase"] == "Completed"


def test_run_at_runs_once_then_completes() -> None:
    world = World.of(runAt="2024-01-01T01:30:00Z")
    early = world.step(at("00:00:05"))
    assert early.starts == []
    assert early.wake_at == at("01:30:00")
    assert world.status["nextRunTime"] == "2024-01-01T01:30:00Z"
    due = world.step(at("01:30:01"))
    assert started(due) == [scheduled_name(at("01:30:00"))]
    assert world.status["phase"] == "Active"
    assert world.step(at("05:00:00")).starts == []
    world.finish(started(due)[0], at("05:00:00"))
    world.step(at("05:00:01"))
    assert world.status["phase"] == "Completed"


def test_run_at_before_creation_completes_without_a_run() -> None:
    """A one-time run whose moment passed before the schedule existed never runs.

    Decision: runs are due only after creation (as for CronJob), so applying a
    manifest with a stale ``runAt`` does not start surprise work; the schedule
    goes straight to Completed, records nothing missed and creates no Job.
    """
    world = World.of(runAt="2023-12-31T23:59:30Z")
    result = world.step(at("00:00:05"))
    assert result.starts == []
    assert world.status["phase"] == "Completed"
    assert world.counters["scheduled"] == 0
    assert world.history == []
    assert result.wake_at is None


# --- actions ------------------------------------------------------------------------------


def test_run_now_starts_a_manual_job_not_counted_against_max_executions() -> None:
    world = World.of(schedule=HOURLY, maxExecutions=1)
    world.annotations[labels.RUN_NOW_ANNOTATION] = "t1"
    result = world.step(at("00:10:00"))
    assert started(result) == [manual_name("t1")]
    assert result.starts[0].body["metadata"]["labels"][labels.TRIGGER_LABEL] == "Manual"
    entry = world.entry(manual_name("t1"))
    assert (entry["trigger"], entry["result"], entry["reason"]) == ("Manual", "Running", "RunNow")
    assert world.counters["manual"] == 1
    assert world.counters["scheduled"] == 0
    assert reasons(result) == ["ManualRun"]
    # The same token again: nothing.
    again = world.step(at("00:10:01"))
    assert again.starts == []
    assert again.status is None
    # A new token: another run.
    world.annotations[labels.RUN_NOW_ANNOTATION] = "t2"
    assert started(world.step(at("00:20:00"))) == [manual_name("t2")]
    assert world.counters["manual"] == 2
    # The one scheduled run is still allowed: manual runs did not use it up.
    assert started(world.step(at("01:00:02"))) == [scheduled_name(at("01:00:00"))]
    for job in list(world.jobs):
        world.finish(job, at("01:30:00"))
    world.step(at("01:30:01"))
    assert world.status["phase"] == "Completed"


def test_run_now_on_an_invalid_spec_waits_for_a_valid_one() -> None:
    world = World.of(schedule=HOURLY, timeZone="Nowhere/Atlantis")
    world.annotations[labels.RUN_NOW_ANNOTATION] = "t1"
    assert world.step(at("00:10:00")).starts == []
    world.edit(timeZone="UTC")
    assert started(world.step(at("00:20:00"))) == [manual_name("t1")]


def test_terminate_deletes_active_jobs_and_records_terminated() -> None:
    world = World.of(schedule=HOURLY)
    first = started(world.step(at("01:00:02")))[0]
    second = started(world.step(at("02:00:02")))[0]
    world.annotations[labels.TERMINATE_ANNOTATION] = "k1"
    result = world.step(at("02:10:00"))
    assert sorted(d.job for d in result.deletes) == sorted([first, second])
    assert all(d.grace_seconds is None and not d.force_pods for d in result.deletes)
    for name in (first, second):
        assert (world.entry(name)["result"], world.entry(name)["reason"]) == (
            "Terminated",
            "TerminateRequested",
        )
    assert world.counters["terminated"] == 2
    assert world.status["active"] == []
    assert reasons(result) == ["Terminated"]
    assert "2 active run(s)" in result.notes[0].message
    again = world.step(at("02:10:01"))
    assert again.deletes == []
    assert again.status is None


@pytest.mark.parametrize(
    ("grace", "seconds", "force"), [("0", 0, True), ("30", 30, False), ("soon", None, False)]
)
def test_terminate_grace(grace: str, seconds: int | None, force: bool) -> None:
    world = World.of(schedule=HOURLY)
    name = started(world.step(at("01:00:02")))[0]
    world.annotations[labels.TERMINATE_ANNOTATION] = "k1"
    world.annotations[labels.TERMINATE_GRACE_ANNOTATION] = grace
    result = world.step(at("01:02:00"))
    assert result.deletes == [Deletion(name, seconds, force, "TerminateRequested")]
    assert ("force-deleted" in result.notes[0].message) == force


# --- stale runs ---------------------------------------------------------------------------


def _long_run(**spec: Any) -> tuple[World, str]:
    """A daily run started at 00:00:05 on the 2nd, held to a 90-minute threshold."""
    world = World.of(schedule="0 0 * * *", staleAfter="90m", **spec)
    name = started(world.step(at("00:00:01", day=2)))[0]
    world.start(name, at("00:00:05", day=2))
    return world, name


def test_a_running_job_wakes_the_schedule_at_its_stale_deadline() -> None:
    world, name = _long_run()
    result = world.step(at("00:00:06", day=2))
    assert result.wake_at == at("01:30:05", day=2)
    assert world.entry(name)["startTime"] == "2024-01-02T00:00:05Z"


def test_stale_run_is_terminated() -> None:
    world, name = _long_run()
    assert world.step(at("01:30:04", day=2)).deletes == []
    result = world.step(at("01:30:05", day=2))
    assert result.deletes == [Deletion(name, None, False, "StaleTerminated")]
    entry = world.entry(name)
    assert (entry["result"], entry["reason"]) == ("Stale", "StaleTerminated")
    assert entry["durationSeconds"] == 5400.0
    assert world.counters["stale"] == 1
    assert [(n.type, n.reason) for n in result.notes] == [("Warning", "StaleTerminated")]
    assert world.status["health"]["reason"] == "LastRunStale"
    assert world.step(at("01:30:06", day=2)).status is None


@pytest.mark.parametrize(
    ("spec", "policy"),
    [
        pytest.param({"staleAction": "Report"}, Policy(), id="staleAction Report"),
        pytest.param({}, Policy(dry_run=True), id="dry run"),
    ],
)
def test_stale_run_is_reported_once(spec: dict[str, Any], policy: Policy) -> None:
    world = World.of(schedule="0 0 * * *", staleAfter="90m", **spec)
    world.policy = policy
    first = world.step(at("00:00:01", day=2))
    name = started(first)[0]
    assert "activeDeadlineSeconds" not in first.starts[0].body["spec"]  # nothing to enforce
    world.start(name, at("00:00:05", day=2))
    result = world.step(at("01:30:05", day=2))
    assert result.deletes == []
    assert [(n.type, n.reason) for n in result.notes] == [("Warning", "StaleReported")]
    entry = world.entry(name)
    assert (entry["result"], entry["reason"]) == ("Running", "StaleReported")
    assert world.counters["stale"] == 1
    again = world.step(at("01:45:00", day=2))
    assert again.notes == []
    assert again.deletes == []
    assert again.status is None
    assert world.counters["stale"] == 1


# --- suspension after failures ------------------------------------------------------------


def _fail_at(world: World, hour: int) -> Plan:
    """Run the ``hour`` o'clock run and let it fail five minutes later."""
    for name in started(world.step(at(f"{hour:02d}:00:02"))):
        world.finish(name, at(f"{hour:02d}:05:00"), result="Failed", reason="BackoffLimitExceeded")
    return world.step(at(f"{hour:02d}:05:01"))


def test_suspend_after_failures() -> None:
    world = World.of(schedule=HOURLY, suspendAfterFailures=2)
    _fail_at(world, 1)
    assert world.status["phase"] == "Active"
    result = _fail_at(world, 2)
    assert world.status["phase"] == "Suspended"
    suspended = world.condition("Suspended")
    assert suspended is not None
    assert (suspended["status"], suspended["reason"]) == ("True", "TooManyFailures")
    assert "2 consecutive failed runs" in suspended["message"]
    assert ("Warning", "SuspendedAfterFailures") in [(n.type, n.reason) for n in result.notes]
    assert result.wake_at is None
    assert "nextRunTime" not in world.status
    assert world.step(at("03:00:02")).starts == []
    assert "suspend" not in world.spec  # held in status, never by writing spec


def test_resume_lifts_the_suspension_and_old_failures_do_not_resuspend() -> None:
    world = World.of(schedule=HOURLY, suspendAfterFailures=2)
    _fail_at(world, 1)
    _fail_at(world, 2)
    world.annotations[labels.RESUME_ANNOTATION] = "r1"
    result = world.step(at("02:30:00"))
    assert world.status["phase"] == "Active"
    assert "Resumed" in reasons(result)
    suspended = world.condition("Suspended")
    assert suspended is not None
    assert (suspended["status"], suspended["reason"]) == ("False", "ResumeRequested")
    assert result.wake_at == at("03:00:00")
    _fail_at(world, 3)  # one new failure: below the threshold again
    assert world.status["phase"] == "Active"
    _fail_at(world, 4)
    assert world.status["phase"] == "Suspended"


def test_resume_leaves_no_trace_of_the_old_suspension_in_status() -> None:
    """The status write after a resume removes the suspension's message and
    generation (a merge patch keeps what it does not null), so the next plan
    sees what it wrote and writes nothing."""
    world = World.of(schedule=HOURLY, suspendAfterFailures=1)
    _fail_at(world, 1)
    world.annotations[labels.RESUME_ANNOTATION] = "r1"
    world.step(at("01:30:00"))
    assert world.status["suspendedByOperator"] == {
        "suspended": False,
        "reason": "ResumeRequested",
        "since": "2024-01-01T01:30:00Z",
    }
    assert world.decide(at("01:30:01")).status is None


def test_a_spec_change_lifts_the_suspension() -> None:
    world = World.of(schedule=HOURLY, suspendAfterFailures=1)
    _fail_at(world, 1)
    assert world.status["phase"] == "Suspended"
    world.edit(historyLimit=10)
    world.step(at("01:30:00"))
    assert world.status["phase"] == "Active"
    assert world.condition("Suspended")["reason"] == "SpecChanged"  # type: ignore[index]
    assert len(world.step(at("02:00:02")).starts) == 1
    assert world.status["phase"] == "Active"


def test_a_suspension_still_wakes_for_a_stale_deadline() -> None:
    world = World.of(schedule=HOURLY, suspendAfterFailures=1, staleAfter="2h", staleAction="Report")
    world.annotations[labels.RUN_NOW_ANNOTATION] = "t1"
    manual = started(world.step(at("00:30:00")))[0]
    world.start(manual, at("00:30:01"))
    result = _fail_at(world, 1)
    assert world.status["phase"] == "Suspended"
    assert result.wake_at == at("02:30:01")


# --- invalid specs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field_name"),
    [
        pytest.param({"schedule": HOURLY, "timeZone": "Mars/Olympus"}, "spec.timeZone", id="zone"),
        pytest.param({"schedule": "0 0 30 2 *"}, "spec.schedule", id="never fires"),
        pytest.param({"every": {"period": "Week"}}, "spec.every.weekdays", id="weekdays missing"),
    ],
)
def test_invalid_spec(spec: dict[str, Any], field_name: str) -> None:
    world = World.of(**spec)
    result = world.step(at("01:00:02"))
    assert result.starts == []
    assert world.status["phase"] == "Invalid"
    valid = world.condition("Valid")
    assert valid is not None
    assert valid["status"] == "False"
    assert valid["message"].startswith(field_name)
    assert [(n.type, n.reason) for n in result.notes] == [("Warning", "InvalidSpec")]
    assert field_name in result.notes[0].message
    assert world.status["health"]["state"] == "Unhealthy"
    again = world.step(at("02:00:02"))
    assert again.notes == []
    assert again.starts == []
    assert again.status is None


def test_a_different_error_is_reported_again() -> None:
    world = World.of(schedule=HOURLY, timeZone="Mars/Olympus")
    world.step(at("01:00:02"))
    world.edit(timeZone="Venus/Maxwell")
    assert reasons(world.step(at("01:00:03"))) == ["InvalidSpec"]


# --- history and Job limits ---------------------------------------------------------------


def test_history_limit_trims_oldest_entries() -> None:
    world = World.of(schedule=HOURLY, historyLimit=3)
    for hour in range(1, 6):
        for name in started(world.step(at(f"{hour:02d}:00:02"))):
            world.finish(name, at(f"{hour:02d}:01:00"))
        world.step(at(f"{hour:02d}:01:01"))
    assert [e["scheduledTime"][11:13] for e in world.history] == ["05", "04", "03"]
    assert world.counters["succeeded"] == 5  # counters outlive history


def test_history_limit_never_drops_a_running_entry() -> None:
    world = World.of(schedule=HOURLY, historyLimit=1)
    first = started(world.step(at("01:00:02")))[0]
    for name in started(world.step(at("02:00:02"))):
        world.finish(name, at("02:01:00"))
    world.step(at("02:01:01"))
    assert {e["job"] for e in world.history} == {first, scheduled_name(at("02:00:00"))}


def test_finished_jobs_beyond_the_job_history_limits_are_deleted() -> None:
    world = World.of(schedule=HOURLY, successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1)
    outcome = {1: "Failed", 2: "Succeeded", 3: "Succeeded", 4: "Failed", 5: "Succeeded"}
    for hour, result in outcome.items():
        for name in started(world.step(at(f"{hour:02d}:00:02"))):
            world.finish(name, at(f"{hour:02d}:01:00"), result=result)
        world.step(at(f"{hour:02d}:01:01"))
    assert sorted(world.jobs) == [scheduled_name(at(f"{h:02d}:00:00")) for h in (3, 4, 5)]
    assert sorted(d.job for d in world.deleted) == [
        scheduled_name(at(f"{h:02d}:00:00")) for h in (1, 2)
    ]
    assert {d.reason for d in world.deleted} == {"HistoryLimit"}
    assert len(world.history) == 5  # status history is kept apart from Jobs


def test_running_jobs_are_never_deleted_for_the_limits() -> None:
    world = World.of(schedule=HOURLY, successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0)
    for hour in (1, 2, 3):
        world.step(at(f"{hour:02d}:00:02"))
    assert world.deleted == []
    assert len(world.jobs) == 3


# --- lost status writes -------------------------------------------------------------------


def test_a_job_whose_status_write_was_lost_is_adopted_not_recreated() -> None:
    world = World.of(schedule=HOURLY)
    world.step(at("01:00:02"))
    before = copy.deepcopy(world.status)
    name = started(world.step(at("02:00:02")))[0]
    world.status = before  # the status patch after creating the Job never arrived
    result = world.step(at("02:00:05"))
    assert result.starts == []
    assert world.entry(name)["result"] == "Running"
    assert world.counters["scheduled"] == 2
    assert world.status["lastScheduleTime"] == "2024-01-01T02:00:00Z"
    assert world.decide(at("02:00:06")).status is None
    assert started(world.step(at("03:00:02"))) == [scheduled_name(at("03:00:00"))]
    assert world.counters["scheduled"] == 3


def test_an_adopted_job_that_already_finished_gets_its_result_at_once() -> None:
    world = World.of(schedule=HOURLY)
    before = copy.deepcopy(world.status)
    name = started(world.step(at("01:00:02")))[0]
    world.status = before
    world.finish(name, at("01:03:00"))
    result = world.step(at("01:03:01"))
    assert world.entry(name)["result"] == "Succeeded"
    assert (world.counters["scheduled"], world.counters["succeeded"]) == (1, 1)
    assert world.status["activeCount"] == 0
    assert reasons(result) == ["Succeeded"]


def test_a_manual_job_whose_status_write_was_lost_is_recorded_once() -> None:
    world = World.of(schedule=HOURLY)
    world.annotations[labels.RUN_NOW_ANNOTATION] = "t1"
    name = started(world.step(at("00:10:00")))[0]
    world.status = {}
    result = world.step(at("00:10:05"))
    assert result.starts == []
    assert world.entry(name)["trigger"] == "Manual"
    assert world.counters["manual"] == 1
    assert world.decide(at("00:10:06")).status is None


# --- when to look again -------------------------------------------------------------------


def test_wake_at_is_the_next_run() -> None:
    world = World.of(schedule="*/15 * * * *")
    result = world.step(at("00:20:00"))
    assert result.wake_at == at("00:30:00")
    assert world.status["nextRunTime"] == "2024-01-01T00:30:00Z"
    result = world.step(at("00:30:01"))
    assert result.wake_at == at("00:45:00")


def test_wake_at_is_the_stale_deadline_when_it_comes_first() -> None:
    world = World.of(schedule="0 0 * * *", staleAfter="1h")
    name = started(world.step(at("00:00:01", day=2)))[0]
    world.start(name, at("00:00:04", day=2))
    assert world.step(at("00:00:05", day=2)).wake_at == at("01:00:04", day=2)


def test_jitter_delays_the_start_within_the_bound() -> None:
    world = World.of(schedule=HOURLY, jitterSeconds=600)
    early = world.step(at("00:30:00"))
    wake = early.wake_at
    assert wake is not None
    assert at("01:00:00") <= wake < at("01:10:00")
    assert world.status["nextRunTime"] == "2024-01-01T01:00:00Z"
    on_the_hour = world.step(at("01:00:00"))
    assert on_the_hour.starts == []
    assert on_the_hour.wake_at == wake
    assert world.step(wake - timedelta(milliseconds=1)).starts == []
    due = world.step(wake)
    assert started(due) == [scheduled_name(at("01:00:00"))]
    assert due.starts[0].due == wake
    assert world.history[0]["trigger"] == "Schedule"  # jitter is not lateness


def test_the_jitter_delay_never_reaches_the_next_run() -> None:
    world = World.of(schedule="*/5 * * * *", jitterSeconds=3600)
    wake = world.step(at("00:01:00")).wake_at
    assert wake is not None
    assert at("00:05:00") <= wake < at("00:10:00")


# --- properties over streams of observations ----------------------------------------------

COUNTERS = tuple(Executions.model_fields)

specs = st.fixed_dictionaries(
    {"schedule": st.sampled_from(["*/10 * * * *", HOURLY, "30 */2 * * *"])},
    optional={
        "concurrencyPolicy": st.sampled_from(["Allow", "Forbid", "Replace"]),
        "catchUp": st.sampled_from(["Latest", "All", "None"]),
        "startingDeadlineSeconds": st.sampled_from([0, 120, 3600]),
        "maxExecutions": st.integers(1, 6),
        "jitterSeconds": st.sampled_from([0, 30, 900]),
        "suspendAfterFailures": st.integers(1, 3),
        "staleAfter": st.sampled_from(["20m", "2h"]),
        "staleAction": st.sampled_from(["Terminate", "Report"]),
        "historyLimit": st.integers(0, 4),
        "successfulJobsHistoryLimit": st.integers(0, 2),
        "failedJobsHistoryLimit": st.integers(0, 2),
    },
)
events = st.one_of(
    st.tuples(st.just("wait"), st.integers(1, 3 * 3600)),
    st.tuples(st.just("start"), st.integers(0, 5)),
    st.tuples(st.just("finish"), st.integers(0, 5), st.sampled_from(["Succeeded", "Failed"])),
    st.tuples(st.just("delete"), st.integers(0, 5)),
    st.tuples(st.just("lose-next-write"), st.just(0)),
    st.tuples(
        st.sampled_from(
            [labels.RUN_NOW_ANNOTATION, labels.TERMINATE_ANNOTATION, labels.RESUME_ANNOTATION]
        ),
        st.just(0),
    ),
    st.tuples(st.just("toggle-suspend"), st.just(0)),
)


def _pick(names: list[str], index: int) -> str | None:
    return sorted(names)[index % len(names)] if names else None


def _apply(world: World, event: tuple[Any, ...], now: datetime, serial: int) -> datetime:
    """Change the world as ``event`` says; returns the clock after it."""
    kind = event[0]
    running = [n for n, body in world.jobs.items() if observe_job(body).result == "Running"]
    if kind == "wait":
        return now + timedelta(seconds=event[1])
    if kind == "start":
        name = _pick(
            [n for n in running if "startTime" not in world.jobs[n].get("status", {})], event[1]
        )
        if name is not None:
            world.start(name, now)
    elif kind == "finish":
        name = _pick(running, event[1])
        if name is not None:
            world.finish(name, now, result=event[2])
    elif kind == "delete":
        # Only a Job the stored status knows of: one deleted before any write
        # recorded it leaves no trace from which a reconcile could know it ran.
        recorded = {e.get("job") for e in world.history}
        name = _pick([n for n in world.jobs if n in recorded], event[1])
        if name is not None:
            del world.jobs[name]
    elif kind == "toggle-suspend":
        world.edit(suspend=not world.spec.get("suspend", False))
    elif kind != "lose-next-write":
        world.annotations[kind] = f"token-{serial}"
    return now + S


@settings(max_examples=150, deadline=None)
@given(spec=specs, stream=st.lists(events, min_size=1, max_size=40))
def test_a_stream_of_observations_never_runs_a_job_twice_nor_lowers_a_counter(
    spec: dict[str, Any], stream: list[tuple[Any, ...]]
) -> None:
    """Replay Job progress, user actions, spec edits and lost status writes.

    A lost write is the operator stopping after its API calls but before its
    status patch. Two in a row are not modelled: a Job created by the first
    and deleted by the second (terminate, stale, limits) would leave no trace
    at all, which no decision over the API's state can recover from.
    """
    world = World.of(**spec)
    created: set[str] = set()
    now = at("00:55:00")
    previous = dict.fromkeys(COUNTERS, 0)
    lose = lost_last = False
    for serial, event in enumerate(stream):
        now = _apply(world, event, now, serial)
        if event[0] == "lose-next-write":
            lose = not lost_last
            continue
        stored = copy.deepcopy(world.status)
        result = world.step(now)
        for start in result.starts:
            name = start.body["metadata"]["name"]
            assert name not in created, f"{name} created a second time"
            created.add(name)
        counters = world.counters
        for key in COUNTERS:
            assert counters.get(key, 0) >= previous[key], f"{key} went down"
        previous = {key: counters.get(key, 0) for key in COUNTERS}
        lost_last, lose = lose, False
        if lost_last:
            world.status = stored
            previous = {key: stored.get("executions", {}).get(key, 0) for key in COUNTERS}
            continue
        # Status shows exactly the Jobs that are running, no more and no fewer.
        running = {n for n, body in world.jobs.items() if observe_job(body).result == "Running"}
        assert {a["name"] for a in world.status.get("active", [])} == running
        # A plan carried out is a fixed point: deciding again at once changes nothing.
        again = world.decide(now)
        assert (again.starts, again.deletes, again.notes, again.status) == ([], [], [], None)
    scheduled = [n for n in created if not n.rsplit("-", 1)[1].startswith("m")]
    if "maxExecutions" in spec:
        assert len(scheduled) <= spec["maxExecutions"]


def test_runs_after_max_executions_are_not_missed() -> None:
    """Once used up, later reconciles (a Job event, an annotation) record nothing:
    the runs after the last execution do not exist, so none was missed."""
    world = World.of(schedule=HOURLY, maxExecutions=2)
    world.step(at("01:00:02"))
    world.step(at("02:00:02"))
    for job in list(world.jobs):
        world.finish(job, at("02:30:00"))
    result = world.step(at("05:00:02"))
    assert [n.reason for n in result.notes if n.reason != "Succeeded"] == []
    assert world.counters["missed"] == 0
    assert world.status["phase"] == "Completed"
    assert world.status["lastScheduleTime"] == "2024-01-01T02:00:00Z"


def _resumed_at_three(concurrency: str) -> tuple[World, Plan]:
    """catchUp All, suspended over the runs at 01:00 and 02:00, resumed at ``03:00:10``."""
    world = World.of(schedule=HOURLY, suspend=True, catchUp="All", concurrencyPolicy=concurrency)
    world.step(at("00:30:00"))
    world.edit(suspend=False)
    return world, world.step(at("03:00:10"))


def test_replace_with_catch_up_all_creates_only_the_newest() -> None:
    """Each due run would replace the one before it at once; a Job created and
    deleted in one reconcile would run for nothing, so only the newest gets one."""
    world, result = _resumed_at_three("Replace")
    assert started(result) == [scheduled_name(at("03:00:00"))]
    assert result.deletes == []
    skipped = [e for e in world.history if e["result"] == "Skipped"]
    assert [e["scheduledTime"][11:13] for e in skipped] == ["02", "01"]
    assert {e["reason"] for e in skipped} == {"ConcurrencyReplace"}
    assert (world.counters["skipped"], world.counters["scheduled"]) == (2, 1)
    assert world.status["lastScheduleTime"] == "2024-01-01T03:00:00Z"
    assert world.decide(at("03:00:11")).status is None


def test_forbid_with_catch_up_all_starts_the_oldest_and_skips_the_rest() -> None:
    world, result = _resumed_at_three("Forbid")
    assert started(result) == [scheduled_name(at("01:00:00"))]
    assert world.counters["skipped"] == 2
