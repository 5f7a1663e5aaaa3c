"""Which notifications a status write makes: ``events(before, after)``, ``route``, and the
check of ``spec.notify``; then the same through ``plan``, as the executor receives them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwarden.api.notify import Subscription
from jobwarden.api.spec import SpecError, parse_spec
from jobwarden.api.status import Health, HistoryEntry, ScheduleStatus, SuspendedByOperator
from jobwarden.notify.events import ScheduleRef, event_id, events, route, run_events
from jobwarden.notify.subscriptions import check_notify
from jobwarden.reconcile import Policy
from tests.unit.test_reconcile import TEMPLATE, World, at, manual_name

T0 = datetime(2026, 12, 1, 2, tzinfo=UTC)
M = timedelta(minutes=1)
REF = ScheduleRef(namespace="ns", name="nightly", uid="uid-1")


def entry(
    job: str | None, result: str, *, reason: str | None = None, minute: int = 0
) -> HistoryEntry:
    return HistoryEntry(
        job=job,
        trigger="Schedule",
        scheduled_time=T0 + minute * M,
        completion_time=None
        if result == "Running"
        else T0 + minute * M + 30 * timedelta(seconds=1),
        result=result,  # type: ignore[arg-type]
        reason=reason,
    )


def status(*history: HistoryEntry, health: str | None = None,
           suspended: bool | None = None) -> ScheduleStatus:  # fmt: skip
    return ScheduleStatus(
        history=list(history),
        health=Health(state=health) if health else None,  # type: ignore[arg-type]
        suspended_by_operator=(
            SuspendedByOperator(suspended=True, reason="TooManyFailures", since=T0 + 5 * M)
            if suspended
            else None
        ),
    )


def kinds(before: ScheduleStatus, after: ScheduleStatus) -> list[tuple[str, str | None]]:
    return [(n.event, n.job) for n in events(before=before, after=after, ref=REF, now=T0)]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # A run that ends Failed, Stale or NeverStarted; a time recorded Missed.
        (status(entry("a", "Running")), status(entry("a", "Failed")), [("Failed", "a")]),
        (status(entry("a", "Running")), status(entry("a", "Stale")), [("Stale", "a")]),
        (status(entry("a", "Running")), status(entry("a", "NeverStarted")),
         [("NeverStarted", "a")]),
        (status(), status(entry(None, "Missed")), [("Missed", None)]),
        # Reported, not ended (staleAction: Report): the run is still Running.
        (status(entry("a", "Running")), status(entry("a", "Running", reason="StaleReported")),
         [("Stale", "a")]),
        (status(entry("a", "Running")),
         status(entry("a", "Running", reason="NotStartedReported")), [("NeverStarted", "a")]),
        # A reported run that then fails: a second, different event.
        (status(entry("a", "Running", reason="StaleReported")), status(entry("a", "Failed")),
         [("Failed", "a")]),
        # Nothing new: the same entries, a success, a run still going, a Skipped time.
        (status(entry("a", "Failed")), status(entry("a", "Failed")), []),
        (status(entry("a", "Running")), status(entry("a", "Succeeded")), []),
        (status(), status(entry("a", "Running")), []),
        (status(), status(entry(None, "Skipped")), []),
        # An old failure trimmed away is no event; several new ones come oldest first.
        (status(entry("a", "Failed")), status(), []),
        (status(entry("b", "Running", minute=1), entry("a", "Running")),
         status(entry("b", "Failed", minute=1), entry("a", "Stale")),
         [("Stale", "a"), ("Failed", "b")]),
        # The operator's suspension, and health back to Healthy.
        (status(health="Unhealthy"), status(health="Unhealthy", suspended=True),
         [("Suspended", None)]),
        (status(health="Unhealthy", suspended=True), status(health="Unhealthy", suspended=True),
         []),
        (status(entry("a", "Failed"), health="Degraded"),
         status(entry("b", "Succeeded", minute=1), entry("a", "Failed"), health="Healthy"),
         [("Recovered", "b")]),
        (status(health="Healthy"), status(health="Healthy"), []),
        (status(), status(health="Healthy"), []),  # a first verdict is no recovery
    ],
)  # fmt: skip
def test_events_are_the_transitions_the_write_records(
    before: ScheduleStatus, after: ScheduleStatus, expected: list[tuple[str, str | None]]
) -> None:
    assert kinds(before, after) == expected


def test_an_events_id_depends_on_the_schedule_event_and_run_only() -> None:
    """The same write derived again (a redone plan, another replica, a restart) has the
    same ids; another run, event or schedule has another."""
    before, after = status(entry("a", "Running")), status(entry("a", "Failed"))
    first = events(before=before, after=after, ref=REF, now=T0)
    again = events(before=before, after=after, ref=REF, now=T0 + 7 * M)
    assert [n.id for n in first] == [n.id for n in again]
    assert first[0].id == event_id(uid="uid-1", event="Failed", about="a")
    others = {
        event_id(uid="uid-1", event="Failed", about="b"),
        event_id(uid="uid-1", event="Stale", about="a"),
        event_id(uid="uid-2", event="Failed", about="a"),
    }
    assert first[0].id not in others and len(others) == 3


def test_a_notification_carries_the_run_it_is_about() -> None:
    after = status(entry("a", "Failed", reason="BackoffLimitExceeded", minute=3))
    (n,) = events(before=status(entry("a", "Running", minute=3)), after=after, ref=REF, now=T0)
    assert (n.schedule, n.job, n.result, n.reason, n.trigger) == (
        REF, "a", "Failed", "BackoffLimitExceeded", "Schedule",
    )  # fmt: skip
    assert n.scheduled_time == T0 + 3 * M
    assert n.time == n.completion_time == T0 + 3 * M + timedelta(seconds=30)


def test_route_sends_each_event_to_the_sinks_subscribed_to_it() -> None:
    found = events(
        before=status(entry("b", "Running", minute=1), entry("a", "Running")),
        after=status(entry("b", "Stale", minute=1), entry("a", "Failed")),
        ref=REF,
        now=T0,
    )
    subscriptions = [
        Subscription(sink="oncall", events=["Failed", "Stale"]),
        Subscription(sink="chat", events=["Stale", "Recovered"]),
    ]
    routed = [(d.sink, d.notification.event) for d in route(found, subscriptions=subscriptions)]
    assert routed == [("oncall", "Failed"), ("oncall", "Stale"), ("chat", "Stale")]


def _spec(**fields: Any) -> dict[str, Any]:
    return {"schedule": "0 * * * *", "jobTemplate": TEMPLATE, **fields}


@pytest.mark.parametrize(
    ("notify", "extra", "field", "says"),
    [
        ([{"sink": "pager", "events": ["Failed"]}], {}, "spec.notify[0].sink", "'pager'"),
        ([{"sink": "oncall", "events": ["Failed"]}, {"sink": "oncall", "events": ["Missed"]}],
         {}, "spec.notify[1].sink", "listed twice"),
        ([{"sink": "oncall", "events": ["Failed"]}], {"historyLimit": 0},
         "spec.notify[0].events", "historyLimit"),
    ],
)  # fmt: skip
def test_a_subscription_the_operator_cannot_honour_names_its_field(
    notify: list[dict[str, Any]], extra: dict[str, Any], field: str, says: str
) -> None:
    spec = parse_spec(_spec(notify=notify, **extra))
    with pytest.raises(SpecError) as caught:
        check_notify(spec, sinks={"oncall", "chat"})
    assert caught.value.field == field
    assert says in str(caught.value)
    assert "http" not in str(caught.value)  # names, never addresses


def test_schedule_events_alone_need_no_history() -> None:
    spec = parse_spec(_spec(notify=[{"sink": "oncall", "events": ["Suspended"]}], historyLimit=0))
    check_notify(spec, sinks={"oncall"})


@pytest.mark.parametrize(
    ("notify", "field"),
    [
        ([{"sink": "oncall", "events": ["Failed", "Failed"]}], "spec.notify[0].events"),
        ([{"sink": "oncall", "events": []}], "spec.notify[0].events"),
        ([{"sink": "On Call", "events": ["Failed"]}], "spec.notify[0].sink"),
        ([{"sink": "oncall", "events": ["Exploded"]}], "spec.notify[0].events[0]"),
        ([{"sink": "oncall"}], "spec.notify[0].events"),
    ],
)
def test_a_malformed_subscription_is_a_spec_error(notify: list[Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec(notify=notify))
    assert caught.value.field == field


# --- through the plan -----------------------------------------------------------------------


def test_a_failed_run_makes_one_notification_in_the_plan_that_records_it() -> None:
    world = World.of(
        schedule="0 * * * *", notify=[{"sink": "oncall", "events": ["Failed", "Recovered"]}]
    )
    world.policy = Policy(sinks=frozenset({"oncall"}))
    world.annotations["jobwarden.io/run-now"] = "t1"
    world.step(at("00:10:00"))
    job = manual_name("t1")
    assert world.plans[-1].notifications == []  # a start is no event
    world.finish(job, at("00:11:00"), result="Failed", reason="BackoffLimitExceeded")
    recorded = world.step(at("00:11:01"))
    assert [(d.sink, d.notification.event, d.notification.job) for d in recorded.notifications] == [
        ("oncall", "Failed", job)
    ]
    assert world.step(at("00:11:02")).notifications == []  # recorded: not again


def test_a_plan_redone_from_the_same_status_makes_the_same_ids() -> None:
    """A status write that failed is planned again from the same status: same events, ids."""
    world = World.of(schedule="0 * * * *", notify=[{"sink": "oncall", "events": ["Failed"]}])
    world.policy = Policy(sinks=frozenset({"oncall"}))
    world.annotations["jobwarden.io/run-now"] = "t1"
    world.step(at("00:10:00"))
    world.finish(manual_name("t1"), at("00:11:00"), result="Failed")
    first = world.decide(at("00:11:01")).notifications
    second = world.decide(at("00:11:09")).notifications
    assert [d.notification.id for d in first] == [d.notification.id for d in second]
    assert len(first) == 1


def test_an_unconfigured_sink_makes_the_schedule_invalid_and_starts_nothing() -> None:
    world = World.of(schedule="* * * * *", notify=[{"sink": "pager", "events": ["Failed"]}])
    world.policy = Policy(sinks=frozenset({"oncall"}))
    result = world.step(at("01:00:00"))
    assert result.starts == []
    valid = world.condition("Valid")
    assert valid is not None and valid["status"] == "False"
    assert valid["message"].startswith("spec.notify[0].sink:")


# --- properties -----------------------------------------------------------------------------

RESULTS = ["Running", "Succeeded", "Failed", "Stale", "NeverStarted", "Missed", "Skipped"]
entries = st.builds(
    lambda job, result, reason, minute: entry(
        None if result in ("Missed", "Skipped") else f"j{job}", result, reason=reason,
        minute=minute,
    ),
    st.integers(0, 5),
    st.sampled_from(RESULTS),
    st.sampled_from([None, "StaleReported", "NotStartedReported", "BackoffLimitExceeded"]),
    st.integers(0, 5),
)  # fmt: skip
statuses = st.builds(
    lambda history, health, suspended: status(*history, health=health, suspended=suspended),
    st.lists(entries, max_size=6, unique_by=lambda e: e.job or str(e.scheduled_time)),
    st.sampled_from([None, "Healthy", "Degraded", "Unhealthy"]),
    st.booleans(),
)


@given(before=statuses, after=statuses)
def test_a_write_makes_each_event_once_and_an_unchanged_status_none(
    before: ScheduleStatus, after: ScheduleStatus
) -> None:
    found = events(before=before, after=after, ref=REF, now=T0)
    assert len({n.id for n in found}) == len(found)
    assert events(before=after, after=after, ref=REF, now=T0) == []


@given(first=statuses, second=statuses, third=statuses)
def test_an_event_told_by_one_write_is_not_told_by_the_next(
    first: ScheduleStatus, second: ScheduleStatus, third: ScheduleStatus
) -> None:
    """Writes first → second → third: what the status recorded in the first write is the
    ``before`` of the second, so no id is told twice in a row, whatever the third holds."""
    told = {n.id for n in run_events(before=first, after=second, ref=REF, now=T0)}
    again = {n.id for n in run_events(before=second, after=third, ref=REF, now=T0)}
    assert not told & again
