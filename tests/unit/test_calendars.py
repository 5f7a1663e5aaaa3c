"""JobCalendars: the expansion of a spec, its status, and the operator's index of them.

The index is what makes a calendar's change cost only its own schedules: these
tests hold it to waking exactly the schedules that name a calendar, and none
for a status write of the operator's own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from jobwarden.api.calendar import (
    MAX_CALENDAR_DATES,
    MAX_YEARLY,
    CalendarStatus,
    parse_calendar,
)
from jobwarden.handlers.calendars import CalendarIndex, calendar_names, see_calendar, stale_status
from jobwarden.reconcile import Observed, Policy, plan
from jobwarden.schedule.calendar_status import calendar_status
from jobwarden.schedule.holidays import KEPT_YEARS, expand

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)


def body(name: str, spec: dict[str, Any], *, generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "generation": generation},
        "spec": spec,
        "status": status,
    }


# --- expansion ------------------------------------------------------------------------------


def test_dates_yearly_holidays_and_removals() -> None:
    days = expand(
        name="de-by",
        spec=parse_calendar(
            {
                "holidays": {"country": "DE", "subdivision": "BY"},
                "yearly": ["12-24", "02-29"],
                "dates": ["2027-08-02"],
                "remove": ["2027-01-06", "05-01"],
            }
        ),
    )
    named = days.year(2027)
    assert named[date(2027, 12, 25)] == "Christmas Day"
    assert named[date(2027, 12, 24)] == "yearly" and named[date(2027, 8, 2)] == "listed"
    assert date(2027, 1, 6) not in days  # Epiphany, removed for 2027 only
    assert date(2028, 1, 6) in days
    assert date(2027, 5, 1) not in days and date(2028, 5, 1) not in days  # removed yearly
    assert date(2028, 2, 29) in days and date(2027, 2, 28) not in days
    assert date(2027, 5, 27) in days  # Corpus Christi: a Bavarian holiday, not a federal one


def test_a_calendar_keeps_a_bounded_number_of_years() -> None:
    days = expand(name="x", spec=parse_calendar({"yearly": ["01-01"]}))
    for year in range(2000, 2100):
        assert date(year, 1, 1) in days
    assert len(days._years) <= KEPT_YEARS
    assert date(2000, 1, 1) in days  # dropped years are expanded again on demand


@pytest.mark.parametrize(
    ("holidays", "field"),
    [
        ({"country": "XX"}, "spec.holidays.country"),
        ({"country": "DE", "subdivision": "ZZ"}, "spec.holidays.subdivision"),
    ],
)
def test_an_unknown_country_or_subdivision_is_not_ready_naming_the_field(
    holidays: dict[str, str], field: str
) -> None:
    seen = see_calendar(body("bad", {"holidays": holidays}))
    assert seen.days is None and seen.problem is not None and seen.problem.startswith(field)
    status = calendar_status(days=None, problem=seen.problem, generation=1, now=NOW)
    (ready,) = status.conditions
    assert (ready.status, ready.reason) == ("False", "InvalidCalendar")
    assert ready.message.startswith(field) and status.dates == []


def _days_of_a_leap_year() -> list[str]:
    return [f"{date(2000, 1, 1) + timedelta(days=i):%m-%d}" for i in range(366)]


@pytest.mark.parametrize(
    "yearly",
    [
        pytest.param(_days_of_a_leap_year(), id="366 days"),
        pytest.param([d for d in _days_of_a_leap_year() if d != "02-29"], id="365, no leap day"),
    ],
)
def test_a_calendar_listing_every_day_is_not_ready_and_its_schedules_are_invalid(
    yearly: list[str],
) -> None:
    """Every day of every year listed: no schedule using it could run, and each search would
    walk its whole budget. The calendar says so on spec.yearly; its users name it."""
    seen = see_calendar(body("closed", {"yearly": yearly}))
    assert seen.days is None and seen.problem is not None
    assert seen.problem.startswith("spec.yearly: lists every day of the year")
    index = CalendarIndex()
    index.use(("ns", "s"), ("closed",))
    index.update("closed", seen)
    status = _plan({"schedule": "0 9 * * *", "calendars": ["closed"]}, index.view(("ns", "s")))
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False"
    assert valid["message"].startswith(
        "spec.calendars[0]: JobCalendar 'closed' is not Ready: spec.yearly"
    )


def test_a_calendar_at_every_maximum_is_ready_its_status_fits_and_schedules_plan() -> None:
    """An admin's largest calendar: every list at its maximum, a country's holidays, one day
    a year left free by a yearly removal. It expands, its status fits its own bounds (and so
    the CRD's), and a schedule using it runs on the free day under every policy."""
    yearly = _days_of_a_leap_year()
    assert len(yearly) == MAX_YEARLY
    dates = [f"{date(2027, 1, 1) + timedelta(days=i)}" for i in range(MAX_CALENDAR_DATES)]
    later = [f"{date(2031, 1, 1) + timedelta(days=i)}" for i in range(MAX_CALENDAR_DATES - 1)]
    spec = {
        "dates": dates,
        "yearly": yearly,
        "holidays": {"country": "DE", "subdivision": "BY"},
        "remove": ["12-31", *later],
    }
    seen = see_calendar(body("full", spec))
    assert seen.problem is None and seen.days is not None
    status = calendar_status(days=seen.days, problem=None, generation=1, now=NOW)
    assert len(status.dates) == 365 + 366 - 2  # 2027 and 2028, less two 12-31s
    CalendarStatus.model_validate(status.to_patch())  # within the bounds the CRD states
    for policy in ("Skip", "NextBusinessDay", "PreviousBusinessDay"):
        planned = _plan(
            {"schedule": "0 9 * * *", "calendars": ["full"], "calendarPolicy": policy},
            {"full": seen.days},
        )
        assert planned["nextRunTime"] == "2027-12-31T09:00:00Z", policy


def test_status_shows_this_year_and_next() -> None:
    seen = see_calendar(body("c", {"yearly": ["12-25"], "dates": ["2029-01-01"]}, generation=3))
    status = calendar_status(days=seen.days, problem=None, generation=3, now=NOW)
    assert status.years == [2027, 2028] and status.observed_generation == 3
    assert [d.date for d in status.dates] == ["2027-12-25", "2028-12-25"]
    assert status.conditions[0].status == "True"
    patch = status.to_patch()
    assert patch["dates"][0] == {"date": "2027-12-25", "name": "yearly"}


def test_a_status_written_for_this_generation_and_year_is_not_written_again() -> None:
    seen = see_calendar(body("c", {"yearly": ["12-25"]}, generation=2))
    assert stale_status(seen, now=NOW)
    written = calendar_status(days=seen.days, problem=None, generation=2, now=NOW).to_patch()
    again = see_calendar(body("c", {"yearly": ["12-25"]}, generation=2, **written))
    assert not stale_status(again, now=NOW)
    assert stale_status(again, now=datetime(2028, 1, 1, tzinfo=UTC))  # the year turned


# --- the index ------------------------------------------------------------------------------


def test_a_calendar_change_wakes_only_the_schedules_that_name_it() -> None:
    index = CalendarIndex()
    index.use(("a", "uses-both"), ("hol", "shut"))
    index.use(("b", "uses-hol"), ("hol",))
    index.use(("c", "other"), ("else",))
    first = see_calendar(body("hol", {"yearly": ["12-25"]}))
    assert index.update("hol", first) == [("a", "uses-both"), ("b", "uses-hol")]
    # Our own status write: a new resourceVersion, the same generation: nobody wakes.
    written = calendar_status(days=first.days, problem=None, generation=1, now=NOW).to_patch()
    assert index.update("hol", see_calendar(body("hol", {"yearly": ["12-25"]}, **written))) == []
    # An edit (a new generation) wakes its users again; a deletion too.
    edited = see_calendar(body("hol", {"yearly": ["12-26"]}, generation=2))
    assert index.update("hol", edited) == [("a", "uses-both"), ("b", "uses-hol")]
    index.use(("b", "uses-hol"), None)
    assert index.update("hol", None) == [("a", "uses-both")]


def test_a_plan_reads_the_calendars_it_names() -> None:
    index = CalendarIndex()
    index.use(("ns", "s"), ("good", "bad", "missing"))
    index.update("good", see_calendar(body("good", {"yearly": ["12-25"]})))
    index.update("bad", see_calendar(body("bad", {"holidays": {"country": "XX"}})))
    view = index.view(("ns", "s"))
    assert set(view) == {"good", "bad"}
    assert isinstance(view["bad"], str) and "spec.holidays.country" in view["bad"]
    assert date(2027, 12, 25) in view["good"]  # type: ignore[operator]


def test_calendar_names_of_a_schedule_body() -> None:
    assert calendar_names({"spec": {"calendars": ["a", "b", "a", 3, ""]}}) == ("a", "b")
    assert calendar_names({"spec": {"calendars": "a"}}) == ()
    assert calendar_names({}) == ()


# --- a schedule's plan ----------------------------------------------------------------------


def _plan(
    spec: dict[str, Any],
    calendars: dict[str, Any],
    *,
    status: dict[str, Any] | None = None,
    now: datetime = NOW,
) -> dict[str, Any]:
    obj = Observed(
        namespace="ns",
        name="s",
        uid="uid-1",
        generation=1,
        created=datetime(2027, 1, 1, tzinfo=UTC),
        annotations={},
        spec={"jobTemplate": {"spec": {"template": {"spec": {}}}}, **spec},
        status=status or {},
    )
    result = plan(
        obj=obj, jobs=[], pending=frozenset(), now=now, policy=Policy(), calendars=calendars
    )
    assert result.status is not None
    return result.status


def test_a_missing_calendar_makes_the_schedule_invalid_naming_the_entry() -> None:
    status = _plan(
        {"schedule": "0 9 * * *", "calendars": ["hol", "gone"]},
        {"hol": expand(name="hol", spec=parse_calendar({}))},
    )
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False"
    assert valid["message"].startswith("spec.calendars[1]: JobCalendar 'gone' does not exist")


def test_upcoming_explains_a_moved_run() -> None:
    """Tuesdays at 09:00; Tuesday 2027-03-02 is a shutdown day: the run moves to Wednesday."""
    shutdown = expand(name="shutdown", spec=parse_calendar({"dates": ["2027-03-02"]}))
    status = _plan(
        {"schedule": "0 9 * * 2", "calendars": ["shutdown"], "calendarPolicy": "NextBusinessDay"},
        {"shutdown": shutdown},
    )
    first, second = status["upcoming"][:2]
    assert first["time"] == "2027-03-03T09:00:00Z"
    assert first["note"] == "moved from 2027-03-02: shutdown"
    assert second["time"] == "2027-03-09T09:00:00Z" and "note" not in second
    assert status["nextRunTime"] == "2027-03-03T09:00:00Z"


def test_an_edit_of_a_named_calendar_is_a_timing_edit() -> None:
    """A calendar's new version brings the timing in force anew (an edit never back-dates a
    run); the same version seen again does not."""
    spec = {"schedule": "0 9 * * *", "calendars": ["hol"]}
    first = expand(name="hol", spec=parse_calendar({"yearly": ["12-25"]}), version="u/1")
    # The status as the API server keeps it: the merge patch without its deletions.
    status = {k: v for k, v in _plan(spec, {"hol": first}).items() if v is not None}
    later = NOW + timedelta(hours=1)
    same = _plan(spec, {"hol": first}, status=status, now=later)
    assert same["timing"] == status["timing"]
    edited = expand(name="hol", spec=parse_calendar({"yearly": ["12-26"]}), version="u/2")
    after = _plan(spec, {"hol": edited}, status=status, now=later)
    assert after["timing"]["since"] == "2027-03-01T13:00:00Z"
    assert after["timing"]["fingerprint"] != status["timing"]["fingerprint"]
