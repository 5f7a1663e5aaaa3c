"""Creates the API refused, as the next plan sees them; and a step that fails.

The executor creates the Jobs a plan asks for. When the API refuses one (a
4xx, or a 409 whose Job is not this schedule's), it plans again with the
name in ``refused``: the run is Failed, counted once, and never created
again, whether the first plan's status was written or not.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from jobwarden import labels
from jobwarden.reconcile import Plan, PlanStepError, Refusal, plan
from jobwarden.reconcile import due as due_step
from tests.unit.test_reconcile import HOURLY, World, at, manual_name, merge_patch, scheduled_name


def replan(world: World, now: datetime, refused: dict[str, Refusal | str]) -> Plan:
    """Plan again with refusals and carry the plan out, as the executor does."""
    result = plan(
        obj=world.observed(),
        jobs=world.observations(),
        pending=frozenset(),
        now=now,
        policy=world.policy,
        refused=refused,
    )
    for start in result.starts:
        world.jobs[start.body["metadata"]["name"]] = start.body
    if result.status is not None:
        world.status = merge_patch(world.status, result.status)
    return result


@pytest.mark.parametrize("written", [True, False], ids=["status written", "status not written"])
@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        ("admission webhook denied the request", "JobRejected"),
        (Refusal("JobRejected", "exceeded quota"), "JobRejected"),
        (Refusal("NameTaken", "a Job of that name belongs to someone else"), "NameTaken"),
    ],
)
def test_a_refused_scheduled_run_fails_once_and_is_never_created_again(
    written: bool, refusal: Refusal | str, reason: str
) -> None:
    world = World.of(schedule=HOURLY)
    name = scheduled_name(at("01:00:00"))
    first = world.decide(at("01:00:02"))
    assert [s.body["metadata"]["name"] for s in first.starts] == [name]
    if written:  # the first plan's status reached the API before the create was refused
        assert first.status is not None
        world.status = merge_patch(world.status, first.status)
    result = replan(world, at("01:00:03"), {name: refusal})
    assert result.starts == []
    entry = world.entry(name)
    assert (entry["result"], entry["reason"]) == ("Failed", reason)
    assert entry["message"] == Refusal.of(refusal).message
    assert world.counters == {**world.counters, "scheduled": 1, "failed": 1}
    assert world.status["active"] == [] and world.status["lastResult"] == "Failed"
    assert [n.reason for n in result.notes if n.type == "Warning"] == [reason]
    assert [t.result for t in result.finished] == ["Failed"]
    # Later plans, without the refusal, neither create it nor count it again.
    for minute in ("01:00:04", "01:30:00"):
        later = world.step(at(minute))
        assert later.starts == []
    assert world.counters["failed"] == 1 and world.counters["scheduled"] == 1
    assert name not in world.jobs
    assert scheduled_name(at("02:00:00")) in [
        s.body["metadata"]["name"] for s in world.step(at("02:00:01")).starts
    ]


def test_a_refused_run_now_fails_once_and_its_token_is_spent() -> None:
    world = World.of(schedule=HOURLY)
    world.annotations[labels.RUN_NOW_ANNOTATION] = "t1"
    name = manual_name("t1")
    result = replan(world, at("00:10:00"), {name: "forbidden"})
    assert result.starts == []
    assert (world.entry(name)["result"], world.entry(name)["trigger"]) == ("Failed", "Manual")
    assert world.counters["manual"] == 1 and world.counters["failed"] == 1
    assert world.step(at("00:10:05")).starts == []
    assert world.counters["failed"] == 1


def test_a_squatters_job_is_not_adopted_nor_deleted() -> None:
    world = World.of(schedule=HOURLY, successfulJobsHistoryLimit=0)
    name = scheduled_name(at("01:00:00"))
    squatter = world.decide(at("01:00:02")).starts[0].body  # same name and labels as ours
    squatter["metadata"]["ownerReferences"] = []
    world.jobs[name] = squatter
    world.finish(name, at("01:00:30"))
    result = replan(world, at("01:00:40"), {name: Refusal("NameTaken", "not ours")})
    assert [d.job for d in result.deletes] == []
    assert world.entry(name)["result"] == "Failed"
    assert world.counters.get("succeeded", 0) == 0


def test_a_failing_step_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr("jobwarden.reconcile.start_due", broken)
    world = World.of(schedule=HOURLY)
    with pytest.raises(PlanStepError) as caught:
        world.decide(at("01:00:02"))
    assert caught.value.step == "start_due"
    assert isinstance(caught.value.cause, OverflowError)
    assert "start_due" in str(caught.value) and "out of range" in str(caught.value)
    assert due_step.start_due is not broken  # only the pipeline's reference was replaced


def test_a_spec_error_is_not_a_step_failure() -> None:
    world = World.of(schedule="61 * * * *")
    result = world.step(at("01:00:02"))
    assert world.status["phase"] == "Invalid"
    valid = world.condition("Valid")
    assert valid is not None and valid["status"] == "False"
    assert [n.reason for n in result.notes] == ["InvalidSpec"]
