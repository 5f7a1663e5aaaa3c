"""JobCalendars on a real control plane: schedules that name them, moves, and the watch.

JobCalendars are cluster-scoped, so every test names its calendars after its own
namespace (parallel-safe) and deletes them at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.support.checks import all_of, generation_seen, phase
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import Schedules, condition, next_minutes, rfc3339, schedule

API_VERSION = "jobwarden.io/v1alpha1"


def calendar(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "JobCalendar",
        "metadata": {"name": name},
        "spec": spec,
    }


@contextmanager
def calendars_named(cluster: Cluster, *names: str) -> Iterator[None]:
    """Delete these cluster-scoped calendars when the test ends, however it ends."""
    try:
        yield
    finally:
        for name in names:
            cluster.kubectl("delete", "jobcalendar", name, "--wait=false", "--ignore-not-found")


def calendar_status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.get_json("jobcalendar", name).get("status") or {})


def valid_is(state: str) -> Any:
    def check(status: dict[str, Any]) -> bool:
        valid = condition(status, "Valid")
        return valid is not None and valid["status"] == state

    return check


def first_upcoming(time: str, note: str | None) -> Any:
    def check(status: dict[str, Any]) -> bool:
        upcoming = status.get("upcoming") or []
        return bool(upcoming) and (upcoming[0]["time"], upcoming[0].get("note")) == (time, note)

    return check


def next_weekday(*, weekday: int, after: date) -> date:
    day = after + timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def test_a_missing_calendar_then_created_and_edited_replans_the_schedule(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """Valid=False naming spec.calendars[0]; the calendar applied later (watched, no restart)
    makes it Valid with the move planned; an edit of the calendar re-plans it again."""
    here = Schedules(cluster, namespace)
    name = f"{namespace}-shutdown"
    # A Wednesday at least a week ahead: its 09:00 run moves to Thursday.
    wednesday = next_weekday(weekday=2, after=datetime.now(UTC).date() + timedelta(days=7))
    cron = f"0 9 {wednesday.day} {wednesday.month} *"
    with calendars_named(cluster, name):
        here.apply(
            schedule(
                "yearly-close",
                schedule=cron,
                calendars=[name],
                calendarPolicy="NextBusinessDay",
            )
        )
        status = here.wait(
            "yearly-close", all_of(phase("Invalid"), generation_seen(1)), timeout=30, what="Invalid"
        )
        valid = condition(status, "Valid")
        assert valid is not None and valid["status"] == "False"
        assert valid["message"].startswith(
            f"spec.calendars[0]: JobCalendar '{name}' does not exist"
        )

        cluster.apply(calendar(name, dates=[wednesday.isoformat()]))
        thursday = wednesday + timedelta(days=1)
        status = here.wait(
            "yearly-close",
            all_of(
                phase("Active"),
                valid_is("True"),
                first_upcoming(
                    f"{thursday.isoformat()}T09:00:00Z", f"moved from {wednesday}: {name}"
                ),
            ),
            timeout=30,
            what="re-planned when the calendar appeared",
        )
        assert status["nextRunTime"] == f"{thursday.isoformat()}T09:00:00Z"

        # The operator shows the calendar's dates and Ready.
        shown = wait_for(
            lambda: (s := calendar_status(cluster, name)).get("dates") and s,
            timeout=30,
            what="the calendar's status",
        )
        assert {"date": wednesday.isoformat(), "name": "listed"} in shown["dates"]
        ready = condition(shown, "Ready")
        assert ready is not None and ready["status"] == "True"

        # An edit of the calendar (the date taken out) re-plans the schedule at once.
        cluster.apply(calendar(name, dates=[wednesday.isoformat()], remove=[wednesday.isoformat()]))
        here.wait(
            "yearly-close",
            first_upcoming(f"{wednesday.isoformat()}T09:00:00Z", None),
            timeout=30,
            what="re-planned when the calendar changed",
        )


def test_a_bad_calendar_is_not_ready_and_only_its_schedules_are_invalid(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    here = Schedules(cluster, namespace)
    bad, good = f"{namespace}-bad", f"{namespace}-good"
    with calendars_named(cluster, bad, good):
        cluster.apply(calendar(bad, holidays={"country": "DE", "subdivision": "ZZ"}))
        cluster.apply(calendar(good, holidays={"country": "DE", "subdivision": "BY"}))
        here.apply(schedule("uses-bad", schedule="0 9 * * *", calendars=[good, bad]))
        here.apply(schedule("uses-good", schedule="0 9 * * *", calendars=[good]))
        status = here.wait("uses-bad", phase("Invalid"), timeout=30, what="Invalid")
        valid = condition(status, "Valid")
        assert valid is not None
        assert valid["message"].startswith(f"spec.calendars[1]: JobCalendar '{bad}' is not Ready")
        assert "spec.holidays.subdivision" in valid["message"]
        here.wait("uses-good", all_of(phase("Active"), valid_is("True")), timeout=30, what="Active")
        ready = wait_for(
            lambda: condition(calendar_status(cluster, bad), "Ready"),
            timeout=30,
            what="the bad calendar's Ready condition",
        )
        assert ready["status"] == "False" and ready["message"].startswith(
            "spec.holidays.subdivision"
        )


def test_a_moved_run_starts_on_the_moved_day(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """A run due tomorrow, on a listed day, moves to today (PreviousBusinessDay) and starts.

    Moves land on Mondays to Fridays only; on a weekend today is no business
    day and the previous one has passed, so there the run moves forward
    (NextBusinessDay) and the move is checked in the plan alone.
    """
    here = Schedules(cluster, namespace)
    name = f"{namespace}-tomorrow"
    (at,) = next_minutes(count=1, margin=15)
    today = at.date()
    tomorrow = today + timedelta(days=1)
    cron = f"{at.minute} {at.hour} {tomorrow.day} {tomorrow.month} *"
    moved = at if today.weekday() < 5 else None
    with calendars_named(cluster, name):
        cluster.apply(calendar(name, dates=[tomorrow.isoformat()]))
        wait_for(
            lambda: condition(calendar_status(cluster, name), "Ready"),
            timeout=30,
            what="the calendar seen",
        )
        here.apply(
            schedule(
                "moved",
                schedule=cron,
                calendars=[name],
                calendarPolicy="PreviousBusinessDay" if moved else "NextBusinessDay",
            )
        )
        if moved is None:
            landing = tomorrow + timedelta(days=1)
            while landing.weekday() >= 5:
                landing += timedelta(days=1)
            here.wait(
                "moved",
                first_upcoming(f"{landing}T{at:%H:%M}:00Z", f"moved from {tomorrow}: {name}"),
                timeout=30,
                what="the move planned",
            )
            return
        status = here.wait(
            "moved",
            lambda s: any(e.get("job") for e in s.get("history") or []),
            timeout=120,
            what="the moved run started",
        )
        (entry,) = [e for e in status["history"] if e.get("job")]
        assert entry["scheduledTime"] == rfc3339(moved)
        assert entry["nominalTime"] == f"{tomorrow}T{at:%H:%M}:00Z"
        (job,) = here.jobs("moved")
        assert job["metadata"]["name"] == entry["job"]
