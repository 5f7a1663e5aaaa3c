"""Each step of the plan pipeline alone, by tables of situations.

A step is pure: it takes the inputs and a status and returns a new status
and the effects it asks for. Every case here also checks that the status it
was given is left exactly as it was, which is what lets the pipeline hand one
step's output to the next without a copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from jobwarden import labels
from jobwarden.api.status import HistoryEntry, ScheduleStatus, SuspendedByOperator, format_time
from jobwarden.reconcile import Plan, Refusal, load_status, plan, read
from jobwarden.reconcile.actions import act_on_running, parse_grace
from jobwarden.reconcile.due import start_due
from jobwarden.reconcile.fold import fold_jobs, token_hash
from jobwarden.reconcile.model import NO_EFFECTS, Effects, Inputs, Observed, Policy
from jobwarden.reconcile.phase import decide
from jobwarden.reconcile.render import render
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation
from tests.unit.test_history import obs
from tests.unit.test_reconcile import HOURLY, T0, TEMPLATE, at, manual_name, scheduled_name

H = timedelta(hours=1)


@dataclass
class Case:
    """The inputs of one step: a schedule, its status, its Jobs and the clock."""

    now: datetime = field(default_factory=lambda: at("01:00:02"))
    spec: dict[str, Any] = field(default_factory=lambda: {"schedule": HOURLY})
    history: Sequence[HistoryEntry] = ()
    status: dict[str, Any] = field(default_factory=dict)
    jobs: Sequence[JobObservation] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    refused: Mapping[str, Refusal | str] = field(default_factory=dict)
    pending: frozenset[str] = frozenset()
    policy: Policy = field(default_factory=Policy)
    generation: int = 1
    deleting: datetime | None = None
    warned: frozenset[str] = frozenset()

    def inputs(self) -> tuple[Inputs, ScheduleStatus]:
        raw = dict(self.status)
        if self.history:
            raw["history"] = [e.to_api() for e in self.history]
        obj = Observed(
            namespace="ns",
            name="nightly",
            uid="uid-1",
            generation=self.generation,
            created=T0,
            annotations=self.annotations,
            spec={"jobTemplate": TEMPLATE, **self.spec},
            status=raw,
            deleting=self.deleting,
        )
        inp = read(
            obj=obj,
            jobs=self.jobs,
            pending=self.pending,
            now=self.now,
            policy=self.policy,
            refused=self.refused,
            warned=self.warned,
        )
        return inp, load_status(raw)


MIDNIGHT = at("00:00:00")


def running(job: str, *, scheduled: datetime = MIDNIGHT, **fields: Any) -> HistoryEntry:
    return HistoryEntry(job=job, trigger="Schedule", scheduled_time=scheduled, result="Running",
                        **fields)  # fmt: skip


def failed(job: str, *, when: datetime) -> HistoryEntry:
    return HistoryEntry(job=job, trigger="Schedule", scheduled_time=when, completion_time=when,
                        result="Failed")  # fmt: skip


def untouched(before: ScheduleStatus, given: ScheduleStatus) -> None:
    assert given.model_dump() == before.model_dump(), "a step edited the status it was given"


def counts(status: ScheduleStatus) -> dict[str, int]:
    return {k: v for k, v in (status.executions or hist.tally(None)).model_dump().items() if v}


def names(effects: Effects) -> list[str]:
    return [s.body["metadata"]["name"] for s in effects.starts]


RUN = scheduled_name(at("01:00:00"))
PREV = scheduled_name(at("00:00:00"))


# --- fold_jobs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "results", "counted", "notes", "deletes"),
    [
        pytest.param(
            Case(jobs=[obs(PREV, scheduled=at("00:00:00"))]),
            {PREV: ("Running", None)}, {"scheduled": 1}, [], [],
            id="an orphan Job is adopted",
        ),
        pytest.param(
            Case(annotations={labels.RUN_NOW_ANNOTATION: "t1"},
                 jobs=[obs(manual_name("t1"), trigger=labels.TRIGGER_MANUAL, scheduled=T0)]),
            {manual_name("t1"): ("Running", "RunNow")}, {"manual": 1}, [], [],
            id="the run-now Job of an unhandled token is adopted",
        ),
        pytest.param(
            Case(history=[running(PREV)],
                 jobs=[obs(PREV, result="Succeeded", start=T0, finish=T0 + H)]),
            {PREV: ("Succeeded", "Completed")}, {"succeeded": 1}, ["Succeeded"], [],
            id="a finished Job finishes its run",
        ),
        pytest.param(
            Case(history=[running(PREV)],
                 jobs=[obs(PREV, result="Failed", start=T0, finish=T0 + H,
                           reason="DeadlineExceeded", stale_deadline=True)]),
            {PREV: ("Stale", "StaleTerminated")}, {"stale": 1}, ["StaleTerminated"],
            [(PREV, "StaleTerminated")],
            id="a Job stopped at the stale deadline is stale and removed",
        ),
        pytest.param(
            Case(history=[running(PREV)]),
            {PREV: ("Terminated", "JobDeleted")}, {"terminated": 1}, [], [],
            id="a Job deleted behind the operator's back",
        ),
        pytest.param(
            Case(history=[running(PREV)], refused={PREV: "quota exceeded"}),
            {PREV: ("Failed", "JobRejected")}, {"failed": 1}, ["JobRejected"], [],
            id="a refused create ends its run Failed",
        ),
        pytest.param(
            Case(history=[running(PREV)], jobs=[obs(PREV, scheduled=at("00:00:00"))],
                 refused={PREV: Refusal("NameTaken", "owned by someone else")}),
            {PREV: ("Failed", "NameTaken")}, {"failed": 1}, ["NameTaken"], [],
            id="a squatter's Job is neither merged nor adopted",
        ),
    ],
)  # fmt: skip
def test_fold_jobs(
    case: Case,
    results: dict[str, tuple[str, str | None]],
    counted: dict[str, int],
    notes: list[str],
    deletes: list[tuple[str, str]],
) -> None:
    inp, given = case.inputs()
    before = given.model_copy(deep=True)
    status, effects = fold_jobs(inp, given)
    untouched(before, given)
    history = status.history or []
    assert {e.job: (e.result, e.reason) for e in history if e.job} == results
    assert counts(status) == counted
    assert [n.reason for n in effects.notes] == notes
    assert [(d.job, d.reason) for d in effects.deletes] == deletes
    assert effects.starts == ()


def test_fold_jobs_carries_the_apis_message_and_ends_the_run_now() -> None:
    case = Case(history=[running(PREV, start_time=at("00:00:00"))],
                refused={PREV: "jobs.batch is forbidden: exceeded quota"})  # fmt: skip
    inp, given = case.inputs()
    status, effects = fold_jobs(inp, given)
    entry = (status.history or [])[0]
    assert entry.message == "jobs.batch is forbidden: exceeded quota"
    assert entry.completion_time == case.now and entry.duration_seconds == 3602.0
    assert [(t.job, t.result) for t in effects.finished] == [(PREV, "Failed")]
    assert "exceeded quota" in effects.notes[0].message


def test_fold_jobs_adopts_no_more_than_the_active_limit() -> None:
    jobs = [obs(f"j{i}", scheduled=T0 + i * timedelta(minutes=1)) for i in range(5)]
    held = [running(f"r{i}") for i in range(hist.ACTIVE_LIMIT - 2)]
    jobs += [obs(e.job or "") for e in held]
    status, _ = fold_jobs(*Case(history=held, jobs=jobs).inputs())
    assert len(hist.running(status.history or [])) == hist.ACTIVE_LIMIT
    assert status.last_schedule_time == T0 + timedelta(minutes=1)  # j0 and j1 adopted


# --- act_on_running -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "results", "counted", "notes", "deletes"),
    [
        pytest.param(
            Case(history=[running(PREV), running("other")],
                 annotations={labels.TERMINATE_ANNOTATION: "x",
                              labels.TERMINATE_GRACE_ANNOTATION: "0"}),
            {PREV: ("Terminated", "TerminateRequested"),
             "other": ("Terminated", "TerminateRequested")},
            {"terminated": 2}, ["Terminated"], [(PREV, 0, True), ("other", 0, True)],
            id="terminate stops every running run",
        ),
        pytest.param(
            Case(annotations={labels.RUN_NOW_ANNOTATION: "t1"}),
            {manual_name("t1"): ("Running", "RunNow")}, {"manual": 1}, ["ManualRun"], [],
            id="run-now starts a manual run",
        ),
        pytest.param(
            Case(annotations={labels.RUN_NOW_ANNOTATION: "t1"},
                 refused={manual_name("t1"): "denied"}),
            {manual_name("t1"): ("Failed", "JobRejected")}, {"manual": 1, "failed": 1},
            ["JobRejected"], [],
            id="a refused run-now is failed and not created again",
        ),
        pytest.param(
            Case(history=[running(PREV, start_time=at("00:00:00"))],
                 spec={"schedule": HOURLY, "staleAfter": "30m"}),
            {PREV: ("Stale", "StaleTerminated")}, {"stale": 1}, ["StaleTerminated"],
            [(PREV, None, False)],
            id="a stale run is terminated",
        ),
        pytest.param(
            Case(history=[running(PREV, start_time=at("00:00:00"))],
                 spec={"schedule": HOURLY, "staleAfter": "30m", "staleAction": "Report"}),
            {PREV: ("Running", "StaleReported")}, {"stale": 1}, ["StaleReported"], [],
            id="a stale run is reported when the action is Report",
        ),
    ],
)  # fmt: skip
def test_act_on_running(
    case: Case,
    results: dict[str, tuple[str, str | None]],
    counted: dict[str, int],
    notes: list[str],
    deletes: list[tuple[str, int | None, bool]],
) -> None:
    inp, given = case.inputs()
    before = given.model_copy(deep=True)
    status, effects = act_on_running(inp, given)
    untouched(before, given)
    assert {e.job: (e.result, e.reason) for e in status.history or [] if e.job} == results
    assert counts(status) == counted
    assert [n.reason for n in effects.notes] == notes
    assert [(d.job, d.grace_seconds, d.force_pods) for d in effects.deletes] == deletes
    assert effects.force_stuck_pods == any(force for _, _, force in deletes)
    for annotation, token in case.annotations.items():
        if annotation != labels.TERMINATE_GRACE_ANNOTATION:
            assert (status.handled_actions or {})[annotation] == token_hash(token)


@pytest.mark.parametrize(
    ("value", "grace", "reported"),
    [
        (None, None, False),
        ("", None, False),
        ("  ", None, False),
        ("0", 0, False),
        (" 30 ", 30, False),
        ("999999999", 999_999_999, False),
        ("1000000000", None, True),
        ("-1", None, True),
        ("+5", None, True),
        ("1e99", None, True),
        ("1.5", None, True),
        ("abc", None, True),
        ("99999999999999999999999", None, True),
        ("\u00b2", None, True),  # a superscript two: str.isdigit() says yes, int() says no
        ("\u0663", None, True),  # an Arabic-Indic three: a digit, but not ASCII
        ("9" * 5000, None, True),  # int() of it would raise (the digit limit)
    ],
)
def test_parse_grace(value: str | None, grace: int | None, reported: bool) -> None:
    parsed, problem = parse_grace(value)
    assert parsed == grace
    assert (problem is not None) == reported
    if problem is not None:
        assert labels.TERMINATE_GRACE_ANNOTATION in problem
        assert "gracefully" in problem
        assert len(problem) < 400  # a long value is shortened in the Event


@pytest.mark.parametrize("value", ["-1", "1e99", "abc", "99999999999999999999999"])
def test_a_bad_grace_period_is_reported_once_and_the_terminate_is_graceful(value: str) -> None:
    annotations = {labels.TERMINATE_ANNOTATION: "x", labels.TERMINATE_GRACE_ANNOTATION: value}
    case = Case(history=[running(PREV)], annotations=annotations)
    inp, given = case.inputs()
    status, effects = act_on_running(inp, given)
    assert [(d.job, d.grace_seconds, d.force_pods) for d in effects.deletes] == [
        (PREV, None, False)
    ]
    assert not effects.force_stuck_pods
    assert [(n.type, n.reason) for n in effects.notes] == [
        ("Normal", "Terminated"),
        ("Warning", "BadGracePeriod"),
    ]
    assert labels.TERMINATE_GRACE_ANNOTATION in effects.notes[1].message
    # The next reconcile (the token handled) says nothing again.
    case.status = status.to_api()
    case.history = ()
    _, again = act_on_running(*case.inputs())
    assert again.notes == () and again.deletes == ()


def test_a_bad_grace_period_without_a_terminate_is_not_read() -> None:
    case = Case(history=[running(PREV)], annotations={labels.TERMINATE_GRACE_ANNOTATION: "-1"})
    _, effects = act_on_running(*case.inputs())
    assert effects.notes == () and effects.deletes == ()


def test_act_on_running_starts_the_run_now_job_unless_refused() -> None:
    _, started = act_on_running(*Case(annotations={labels.RUN_NOW_ANNOTATION: "t1"}).inputs())
    assert names(started) == [manual_name("t1")]
    refused = Case(annotations={labels.RUN_NOW_ANNOTATION: "t1"},
                   refused={manual_name("t1"): "denied"})  # fmt: skip
    assert act_on_running(*refused.inputs())[1].starts == ()


def test_act_on_running_skips_a_run_now_over_the_active_limit() -> None:
    held = [running(f"r{i}") for i in range(hist.ACTIVE_LIMIT)]
    case = Case(history=held, annotations={labels.RUN_NOW_ANNOTATION: "t1"},
                jobs=[obs(f"r{i}") for i in range(hist.ACTIVE_LIMIT)])  # fmt: skip
    status, effects = act_on_running(*case.inputs())
    top = (status.history or [])[0]
    assert (top.trigger, top.result, top.reason) == ("Manual", "Skipped", hist.ACTIVE_LIMIT_REASON)
    assert effects.starts == () and counts(status) == {"manual": 1, "skipped": 1}


def test_act_on_running_wakes_at_the_stale_deadline_of_a_young_run() -> None:
    case = Case(history=[running(PREV, start_time=at("00:30:00"))], jobs=[obs(PREV)],
                spec={"schedule": HOURLY, "staleAfter": "2h"})  # fmt: skip
    _, effects = act_on_running(*case.inputs())
    assert effects.wake_at == at("02:30:00") and effects.deletes == ()


@pytest.mark.parametrize(
    ("case", "suspended", "reason"),
    [
        pytest.param(Case(generation=2), False, "SpecChanged", id="a spec change lifts it"),
        pytest.param(Case(generation=1), True, "TooManyFailures", id="the same spec keeps it"),
        pytest.param(Case(generation=1, annotations={labels.RESUME_ANNOTATION: "r"}), False,
                     "ResumeRequested", id="resume lifts it"),
    ],
)  # fmt: skip
def test_act_on_running_lifts_the_operators_suspension(
    case: Case, suspended: bool, reason: str
) -> None:
    held = SuspendedByOperator(suspended=True, since=T0, generation=1, reason="TooManyFailures")
    case.status = {"suspendedByOperator": held.to_api()}
    status, _ = act_on_running(*case.inputs())
    assert status.suspended_by_operator is not None
    assert (status.suspended_by_operator.suspended, status.suspended_by_operator.reason) == (
        suspended,
        reason,
    )


# --- start_due ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "started", "top", "counted"),
    [
        pytest.param(Case(), [RUN], (RUN, "Running", None), {"scheduled": 1},
                     id="the due run starts"),
        pytest.param(Case(pending=frozenset({RUN})), [], (RUN, "Running", None),
                     {"scheduled": 1}, id="a Job being created is not created again"),
        pytest.param(Case(refused={RUN: "denied"}), [], (RUN, "Failed", "JobRejected"),
                     {"scheduled": 1, "failed": 1}, id="a refused name is never created again"),
        pytest.param(Case(spec={"schedule": HOURLY, "concurrencyPolicy": "Forbid"},
                          history=[running(PREV)], jobs=[obs(PREV)]),
                     [], (None, "Skipped", "ConcurrencyForbid"), {"skipped": 1},
                     id="Forbid skips while a run is active"),
        pytest.param(Case(history=[running(f"r{i}") for i in range(hist.ACTIVE_LIMIT)]),
                     [], (None, "Skipped", hist.ACTIVE_LIMIT_REASON), {"skipped": 1},
                     id="Allow skips past the active limit"),
        pytest.param(Case(spec={"schedule": HOURLY, "suspend": True}), [], None, {},
                     id="suspended: nothing"),
        pytest.param(Case(spec={"schedule": "nonsense"}), [], None, {},
                     id="invalid: nothing"),
        pytest.param(Case(spec={"schedule": HOURLY, "catchUp": "None"},
                          status={"lastScheduleTime": "2023-12-31T22:00:00Z"}),
                     [RUN], (RUN, "Running", None), {"scheduled": 1, "missed": 2},
                     id="runs past are recorded missed"),
    ],
)  # fmt: skip
def test_start_due(
    case: Case,
    started: list[str],
    top: tuple[str | None, str, str | None] | None,
    counted: dict[str, int],
) -> None:
    inp, given = case.inputs()
    before = given.model_copy(deep=True)
    status, effects = start_due(inp, given, started=frozenset())
    untouched(before, given)
    assert names(effects) == started
    history = status.history or []
    if top is None:
        assert (status, effects) == (given, NO_EFFECTS)
        return
    assert (history[0].job, history[0].result, history[0].reason) == top
    assert counts(status) == counted
    assert status.last_schedule_time == at("01:00:00")


# --- decide ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "phase", "next_run", "wake"),
    [
        pytest.param(Case(now=at("00:30:00")), "Active", at("01:00:00"), at("01:00:00"),
                     id="active: wakes for the next run"),
        pytest.param(Case(spec={"schedule": HOURLY, "suspend": True}), "Suspended", None, None,
                     id="suspended"),
        pytest.param(Case(spec={"runAt": "2023-12-31T00:00:00Z"}), "Completed", None, None,
                     id="completed"),
        pytest.param(Case(spec={"schedule": "nonsense"}), "Invalid", None, None, id="invalid"),
    ],
)  # fmt: skip
def test_decide_phase_and_wake(
    case: Case, phase: str, next_run: datetime | None, wake: datetime | None
) -> None:
    inp, given = case.inputs()
    _, effects, decision = decide(inp, given, acted=NO_EFFECTS, so_far=NO_EFFECTS)
    assert (decision.phase, decision.next_run, effects.wake_at) == (phase, next_run, wake)


def test_decide_suspends_after_failures_and_wakes_only_for_running_runs() -> None:
    fails = [failed(f"f{i}", when=at(f"0{i}:00:00")) for i in range(3)]
    case = Case(now=at("03:00:02"), spec={"schedule": HOURLY, "suspendAfterFailures": 3},
                history=fails)  # fmt: skip
    inp, given = case.inputs()
    before = given.model_copy(deep=True)
    stale = Effects(wake_at=at("05:00:00"))
    status, effects, decision = decide(inp, given, acted=stale, so_far=stale)
    untouched(before, given)
    assert (decision.phase, decision.next_run, effects.wake_at) == (
        "Suspended",
        None,
        stale.wake_at,
    )
    assert status.suspended_by_operator is not None
    assert status.suspended_by_operator.reason == "TooManyFailures"
    assert [n.reason for n in effects.notes] == ["SuspendedAfterFailures"]
    assert decision.health.consecutive_failures == 3


def test_decide_deletes_finished_jobs_past_the_limits_and_trims() -> None:
    jobs = [obs(f"ok{i}", result="Succeeded", finish=at(f"0{i}:10:00")) for i in range(4)]
    case = Case(spec={"schedule": HOURLY, "successfulJobsHistoryLimit": 1, "historyLimit": 1},
                history=[failed(f"f{i}", when=at(f"0{i}:00:00")) for i in range(3)],
                jobs=jobs)  # fmt: skip
    inp, given = case.inputs()
    status, effects, _ = decide(inp, given, acted=NO_EFFECTS, so_far=NO_EFFECTS)
    assert [d.job for d in effects.deletes] == ["ok2", "ok1", "ok0"]
    assert [e.job for e in status.history or []] == ["f0"]


# --- render ---------------------------------------------------------------------------------


def _rendered(case: Case) -> tuple[Inputs, ScheduleStatus, Any]:
    inp, prev = case.inputs()
    status, effects, decision = decide(inp, prev, acted=NO_EFFECTS, so_far=NO_EFFECTS)
    return inp, prev, render(inp, prev=prev, status=status, effects=effects, decided=decision)


def test_render_writes_nothing_when_nothing_changed() -> None:
    case = Case(now=at("00:30:00"))
    _, _, first = _rendered(case)
    assert first.status is not None and first.status["phase"] == "Active"
    case.status = first.status
    _, _, again = _rendered(case)
    assert again.status is None and again.notes == []


def test_render_reports_an_invalid_spec_once_with_its_condition() -> None:
    case = Case(spec={"schedule": "nonsense"})
    _, _, first = _rendered(case)
    assert first.status is not None
    valid = next(c for c in first.status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec")
    assert [n.reason for n in first.notes] == ["InvalidSpec"]
    case.status = first.status
    _, _, again = _rendered(case)
    assert again.notes == []


def test_render_derives_the_fields_users_read_from_history() -> None:
    ok = HistoryEntry(job="ok", trigger="Schedule", scheduled_time=at("00:00:00"),
                      completion_time=at("00:05:00"), result="Succeeded")  # fmt: skip
    case = Case(now=at("00:30:00"),
                history=[running("now"), failed("bad", when=at("00:10:00")), ok])  # fmt: skip
    _, _, result = _rendered(case)
    assert result.status is not None
    assert result.status["lastSuccessfulTime"] == "2024-01-01T00:05:00Z"
    assert result.status["lastFailureTime"] == "2024-01-01T00:10:00Z"
    assert result.status["lastResult"] == "Failed"
    assert result.status["activeCount"] == 1 == result.active
    assert result.status["active"] == [{"name": "now", "scheduledTime": "2024-01-01T00:00:00Z"}]


# --- a schedule being deleted (metadata.deletionTimestamp, held by a finalizer) -----------


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Case(deleting=at("00:59:00")), id="a due run"),
        pytest.param(Case(deleting=at("00:59:00"), now=at("05:00:02"),
                          status={"lastScheduleTime": format_time(at("01:00:00"))}),
                     id="due runs to catch up"),
        pytest.param(Case(deleting=at("00:59:00"), spec={"schedule": HOURLY, "catchUp": "None"},
                          now=at("05:00:02"),
                          status={"lastScheduleTime": format_time(at("01:00:00"))}),
                     id="runs that would be missed"),
    ],
)  # fmt: skip
def test_a_schedule_being_deleted_starts_and_misses_nothing(case: Case) -> None:
    inp, given = case.inputs()
    status, effects = start_due(inp, given, started=frozenset())
    assert status is given
    assert effects == NO_EFFECTS


def test_a_schedule_being_deleted_starts_no_run_now_and_says_why() -> None:
    case = Case(deleting=at("00:59:00"), annotations={labels.RUN_NOW_ANNOTATION: "t1"})
    inp, given = case.inputs()
    status, effects = act_on_running(inp, given)
    assert effects.starts == ()
    assert [(n.type, n.reason) for n in effects.notes] == [("Warning", "Deleting")]
    assert (status.handled_actions or {})[labels.RUN_NOW_ANNOTATION] == token_hash("t1")
    assert not status.history


def test_a_schedule_being_deleted_still_ends_its_runs() -> None:
    case = Case(deleting=at("00:59:00"), history=[running(PREV)],
                jobs=[obs(PREV, result="Succeeded", finish=at("01:00:00"))])  # fmt: skip
    inp, given = case.inputs()
    status, _ = fold_jobs(inp, given)
    assert [e.result for e in status.history or []] == ["Succeeded"]


def test_the_plan_of_a_schedule_being_deleted() -> None:
    """Not Ready (reason Deleting, said once as an Event), no next run, nothing started."""
    case = Case(deleting=at("00:59:00"))
    planned = _plan(case)
    assert planned.starts == []
    ready = {c["type"]: c for c in planned.status["conditions"]}["Ready"]  # type: ignore[index]
    assert (ready["status"], ready["reason"]) == ("False", "Deleting")
    assert format_time(at("00:59:00")) in ready["message"]
    assert planned.status.get("nextRunTime") is None  # type: ignore[union-attr]
    assert [n.reason for n in planned.notes] == ["Deleting"]
    case.status = planned.status or {}
    again = _plan(case)
    assert again.notes == [] and again.starts == [] and again.status is None


def _plan(case: Case) -> Plan:
    inp, _ = case.inputs()
    return plan(
        obj=inp.obj,
        jobs=case.jobs,
        pending=case.pending,
        now=case.now,
        policy=case.policy,
        refused=case.refused,
        warned=case.warned,
    )


# --- Jobs this schedule does not own --------------------------------------------------------

FUTURE = at("00:00:00", day=28) + timedelta(days=365 * 50)


@pytest.mark.parametrize(
    "owner_uid",
    [None, "uid-of-another-schedule", ""],
    ids=["no owner", "another uid", "empty uid"],
)
def test_a_squatter_with_our_labels_is_not_adopted_deleted_or_counted(
    owner_uid: str | None,
) -> None:
    squatter = obs("nightly-squat", result="Succeeded", scheduled=FUTURE,
                   finish=at("00:30:00"), owner_uid=owner_uid)  # fmt: skip
    manual = obs("nightly-m-squat", trigger=labels.TRIGGER_MANUAL, owner_uid=owner_uid)
    case = Case(jobs=[squatter, manual], spec={"schedule": HOURLY, "successfulJobsHistoryLimit": 0},
                status={"lastScheduleTime": format_time(at("00:00:00"))})  # fmt: skip
    inp, given = case.inputs()
    assert inp.jobs == {} and {o.name for o in inp.foreign} == {squatter.name, manual.name}
    status, effects = fold_jobs(inp, given)
    assert status.last_schedule_time == at("00:00:00")  # the cursor did not move
    assert not status.history
    assert counts(status) == {}
    assert sorted(n.message.split()[1] for n in effects.notes) == sorted(
        [squatter.name, manual.name]
    )
    assert {(n.type, n.reason) for n in effects.notes} == {("Warning", "ForeignJob")}
    planned = _plan(case)
    assert all(d.job not in (squatter.name, manual.name) for d in planned.deletes)
    assert planned.foreign == {squatter.name, manual.name}
    assert [s.body["metadata"]["name"] for s in planned.starts] == [scheduled_name(at("01:00:00"))]


def test_a_squatter_is_reported_once() -> None:
    squatter = obs("nightly-squat", scheduled=FUTURE, owner_uid=None)
    case = Case(jobs=[squatter], warned=frozenset({"nightly-squat"}))
    _, effects = fold_jobs(*case.inputs())
    assert effects.notes == ()


def test_a_job_of_ours_is_still_adopted() -> None:
    """The same Job, owned by this schedule's uid, is a lost run: adopted."""
    mine = obs("nightly-lost", scheduled=at("00:30:00"))
    case = Case(jobs=[mine], status={"lastScheduleTime": format_time(at("00:00:00"))})
    inp, given = case.inputs()
    status, effects = fold_jobs(inp, given)
    assert [e.job for e in status.history or []] == ["nightly-lost"]
    assert status.last_schedule_time == at("00:30:00")
    assert effects.notes == ()


def test_a_running_entry_whose_job_was_replaced_by_a_squatter_ends() -> None:
    """Our Job deleted and a tenant's put in its name: the run is not the squatter's."""
    squatter = obs(PREV, result="Succeeded", finish=at("00:30:00"), owner_uid=None)
    case = Case(history=[running(PREV)], jobs=[squatter])
    status, _ = fold_jobs(*case.inputs())
    [entry] = status.history or []
    assert (entry.result, entry.reason) == ("Terminated", "JobDeleted")
