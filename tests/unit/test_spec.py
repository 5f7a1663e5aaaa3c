"""The spec model: defaults, aliases, and every operator-side check naming its field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobwarden.api.spec import (
    Every,
    JobScheduleSpec,
    SpecError,
    parse_duration,
    parse_spec,
)
from jobwarden.api.values import MAX_DURATION_SECONDS
from jobwarden.runs.naming import is_dns_label, job_name
from jobwarden.schedule.checks import load_spec
from jobwarden.schedule.walltime import parse_instant

TEMPLATE: dict[str, Any] = {"spec": {"template": {"spec": {"containers": []}}}}


def spec(**fields: Any) -> dict[str, Any]:
    return {"jobTemplate": TEMPLATE, **fields}


def _nested(depth: int) -> dict[str, Any]:
    """A template whose metadata nests ``depth`` levels of objects."""
    inner: dict[str, Any] = {}
    for _ in range(depth):
        inner = {"x": inner}
    return {"metadata": inner, "spec": {"template": {}}}


def test_defaults_match_the_design() -> None:
    parsed = parse_spec(spec(schedule="0 * * * *"))
    assert parsed.time_zone == "UTC"
    assert parsed.catch_up == "Latest"
    assert parsed.concurrency_policy == "Allow"
    assert parsed.suspend is False
    assert parsed.successful_jobs_history_limit == 3
    assert parsed.failed_jobs_history_limit == 1
    assert parsed.history_limit == 20
    assert parsed.stale_action == "Terminate"
    assert parsed.exclude == []
    for unset in (
        parsed.run_at,
        parsed.every,
        parsed.start_at,
        parsed.end_at,
        parsed.max_executions,
        parsed.jitter_seconds,
        parsed.starting_deadline_seconds,
        parsed.suspend_after_failures,
        parsed.stale_after,
    ):
        assert unset is None


def test_every_defaults() -> None:
    parsed = parse_spec(spec(every={"period": "Day"}))
    assert parsed.every == Every(period="Day", interval=1, times=["00:00"])


def test_camel_case_and_snake_case_both_populate() -> None:
    camel = parse_spec(
        spec(every={"period": "Month", "monthDays": [1, -1]}, timeZone="Europe/Berlin")
    )
    snake = JobScheduleSpec.model_validate(
        {"every": {"period": "Month", "month_days": [1, -1]}, "time_zone": "Europe/Berlin"}
        | {"job_template": TEMPLATE}
    )
    assert camel == snake
    assert camel.every is not None and camel.every.month_days == [1, -1]


def test_a_cronjob_spec_is_valid_as_it_is() -> None:
    cronjob = {
        "schedule": "*/5 * * * *",
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 200,
        "suspend": True,
        "successfulJobsHistoryLimit": 5,
        "failedJobsHistoryLimit": 2,
        "jobTemplate": TEMPLATE,
    }
    parsed = parse_spec(cronjob)
    assert (parsed.concurrency_policy, parsed.starting_deadline_seconds) == ("Forbid", 200)
    assert (parsed.successful_jobs_history_limit, parsed.failed_jobs_history_limit) == (5, 2)
    assert parsed.suspend is True


def test_unknown_fields_are_ignored() -> None:
    parsed = parse_spec(spec(schedule="@daily", somethingNew={"x": 1}))
    assert parsed.schedule == "@daily"


def test_exclude_parses_dates_in_both_forms() -> None:
    parsed = parse_spec(spec(schedule="@daily", exclude=["2025-12-25", date(2026, 1, 1)]))
    assert parsed.exclude == [date(2025, 12, 25), date(2026, 1, 1)]


def test_spec_error_string_and_attributes() -> None:
    err = SpecError("spec.every.times[1]", "bad")
    assert (err.field, err.message, str(err)) == (
        "spec.every.times[1]",
        "bad",
        "spec.every.times[1]: bad",
    )
    assert isinstance(err, ValueError)


BAD_SPECS: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, spec, field, words in the message)
    ("no form", spec(), "spec.schedule", "one of"),
    ("two forms", spec(schedule="@daily", runAt="2027-01-01T00:00:00Z"), "spec.runAt", "only one"),
    (
        "three forms",
        spec(schedule="@daily", runAt="x", every={"period": "Day"}),
        "spec.runAt",
        "only one",
    ),
    ("missing template", {"schedule": "@daily"}, "spec.jobTemplate", "required"),
    (
        "bad zone",
        spec(schedule="@daily", timeZone="Mars/Olympus"),
        "spec.timeZone",
        "unknown time zone",
    ),
    (
        "zone path",
        spec(schedule="@daily", timeZone="../etc/passwd"),
        "spec.timeZone",
        "unknown time zone",
    ),
    ("zone localtime", spec(schedule="@daily", timeZone="localtime"), "spec.timeZone", "unknown"),
    ("cron garbage", spec(schedule="every day"), "spec.schedule", "5 fields"),
    ("cron range", spec(schedule="61 * * * *"), "spec.schedule", "invalid cron"),
    ("cron six fields", spec(schedule="0 0 * * * *"), "spec.schedule", "seconds and years"),
    ("cron seven fields", spec(schedule="0 0 0 * * * 2030"), "spec.schedule", "seconds and years"),
    ("cron never", spec(schedule="0 0 30 2 *"), "spec.schedule", "never fires"),
    ("cron never april", spec(schedule="0 0 31 4 *"), "spec.schedule", "never fires"),
    ("cron macro", spec(schedule="@reboot"), "spec.schedule", "unknown macro"),
    ("cron @every", spec(schedule="@every 5m"), "spec.schedule", "every field"),
    ("cron tz prefix", spec(schedule="CRON_TZ=UTC 0 * * * *"), "spec.schedule", "timeZone"),
    ("cron random", spec(schedule="R 0 * * *"), "spec.schedule", "random"),
    ("period", spec(every={"period": "Year"}), "spec.every.period", "'Day'"),
    (
        "interval zero",
        spec(every={"period": "Day", "interval": 0}),
        "spec.every.interval",
        "greater",
    ),
    (
        "interval bool",
        spec(every={"period": "Day", "interval": True}),
        "spec.every.interval",
        "integer",
    ),
    ("time format", spec(every={"period": "Day", "times": ["9:00"]}), "spec.every.times", "HH:MM"),
    (
        "time range",
        spec(every={"period": "Day", "times": ["00:00", "24:00"]}),
        "spec.every.times",
        "24:00",
    ),
    ("no times", spec(every={"period": "Day", "times": []}), "spec.every.times", "at least 1"),
    ("week no days", spec(every={"period": "Week"}), "spec.every.weekdays", "required"),
    (
        "weekday name",
        spec(every={"period": "Week", "weekdays": ["Mon", "Funday"]}),
        "spec.every.weekdays[1]",
        "'Mon'",
    ),
    (
        "weekdays on day",
        spec(every={"period": "Day", "weekdays": ["Mon"]}),
        "spec.every.weekdays",
        "only allowed",
    ),
    ("month no days", spec(every={"period": "Month"}), "spec.every.monthDays", "required"),
    (
        "month day 32",
        spec(every={"period": "Month", "monthDays": [1, 32]}),
        "spec.every.monthDays[1]",
        "31",
    ),
    (
        "month day -2",
        spec(every={"period": "Month", "monthDays": [-2]}),
        "spec.every.monthDays[0]",
        "-1",
    ),
    (
        "month day 0",
        spec(every={"period": "Month", "monthDays": [0]}),
        "spec.every.monthDays",
        "0 is not",
    ),
    (
        "monthDays on week",
        spec(every={"period": "Week", "weekdays": ["Mon"], "monthDays": [1]}),
        "spec.every.monthDays",
        "only allowed",
    ),
    ("runAt format", spec(runAt="tomorrow"), "spec.runAt", "RFC 3339"),
    ("runAt date only", spec(runAt="2027-01-01"), "spec.runAt", "RFC 3339"),
    ("runAt impossible", spec(runAt="2027-02-30T00:00:00Z"), "spec.runAt", "invalid date-time"),
    ("startAt format", spec(schedule="@daily", startAt="2027/01/01"), "spec.startAt", "RFC 3339"),
    ("endAt format", spec(schedule="@daily", endAt="soon"), "spec.endAt", "RFC 3339"),
    (
        "end before start",
        spec(schedule="@daily", startAt="2027-01-02T00:00:00Z", endAt="2027-01-01T00:00:00Z"),
        "spec.endAt",
        "after startAt",
    ),
    (
        "end equals start",
        spec(schedule="@daily", startAt="2027-01-01T01:00:00+01:00", endAt="2027-01-01T00:00:00Z"),
        "spec.endAt",
        "after startAt",
    ),
    (
        "staleAfter",
        spec(schedule="@daily", staleAfter="6 hours"),
        "spec.staleAfter",
        "invalid duration",
    ),
    ("staleAfter zero", spec(schedule="@daily", staleAfter="0s"), "spec.staleAfter", "positive"),
    (
        "exclude format",
        spec(schedule="@daily", exclude=["2025-12-25", "25/12/2025"]),
        "spec.exclude",
        "YYYY-MM-DD",
    ),
    ("exclude int", spec(schedule="@daily", exclude=[1735084800]), "spec.exclude", "YYYY-MM-DD"),
    ("exclude bad day", spec(schedule="@daily", exclude=["2025-02-30"]), "spec.exclude[0]", "date"),
    ("catchUp", spec(schedule="@daily", catchUp="Some"), "spec.catchUp", "'Latest'"),
    (
        "concurrency",
        spec(schedule="@daily", concurrencyPolicy="Never"),
        "spec.concurrencyPolicy",
        "'Forbid'",
    ),
    ("staleAction", spec(schedule="@daily", staleAction="Kill"), "spec.staleAction", "'Report'"),
    ("maxExecutions", spec(schedule="@daily", maxExecutions=0), "spec.maxExecutions", "greater"),
    (
        "maxExecutions str",
        spec(schedule="@daily", maxExecutions="3"),
        "spec.maxExecutions",
        "integer",
    ),
    ("jitter negative", spec(schedule="@daily", jitterSeconds=-1), "spec.jitterSeconds", "greater"),
    (
        "deadline negative",
        spec(schedule="@daily", startingDeadlineSeconds=-5),
        "spec.startingDeadlineSeconds",
        "greater",
    ),
    ("suspend string", spec(schedule="@daily", suspend="yes"), "spec.suspend", "boolean"),
    ("history negative", spec(schedule="@daily", historyLimit=-1), "spec.historyLimit", "greater"),
    (
        "suspendAfterFailures",
        spec(schedule="@daily", suspendAfterFailures=0),
        "spec.suspendAfterFailures",
        "greater",
    ),
    ("template type", spec(schedule="@daily", jobTemplate="job"), "spec.jobTemplate", "dictionary"),
]

# Beyond every maximum: the same SpecError naming the field, never an OverflowError.
HUGE = 10**30
OUT_OF_BOUNDS: list[tuple[str, dict[str, Any], str, str]] = [
    ("deadline huge", spec(schedule="@daily", startingDeadlineSeconds=HUGE),
     "spec.startingDeadlineSeconds", "less than or equal to 315360000"),
    ("deadline just over",
     spec(schedule="@daily", startingDeadlineSeconds=MAX_DURATION_SECONDS + 1),
     "spec.startingDeadlineSeconds", "315360000"),
    ("staleAfter millions of days", spec(schedule="@daily", staleAfter="5000000d"),
     "spec.staleAfter", "at most 3650d"),
    ("staleAfter sum over", spec(schedule="@daily", staleAfter="3650d1s"),
     "spec.staleAfter", "at most 3650d"),
    ("staleAfter beyond a float", spec(schedule="@daily", staleAfter="9" * 400 + "s"),
     "spec.staleAfter", "at most"),
    ("staleAfter too long", spec(schedule="@daily", staleAfter="1s" * 40),
     "spec.staleAfter", "at most 64"),
    ("runAt far future with offset", spec(runAt="9999-12-31T23:59:59-05:00"),
     "spec.runAt", "2000 to 2999"),
    ("runAt far past with offset", spec(runAt="0001-01-01T00:00:00+05:00"),
     "spec.runAt", "2000 to 2999"),
    ("runAt year 3000", spec(runAt="3000-01-01T00:00:00Z"), "spec.runAt", "2000 to 2999"),
    ("runAt before 2000", spec(runAt="1999-12-31T23:59:59Z"), "spec.runAt", "2000 to 2999"),
    ("endAt 9999-12-31", spec(schedule="@daily", endAt="9999-12-31T23:59:59Z"),
     "spec.endAt", "leave the field unset"),
    ("endAt 9999 wall clock", spec(schedule="@daily", endAt="9999-12-31T23:59:59",
                                   timeZone="Pacific/Kiritimati"), "spec.endAt", "2000 to 2999"),
    ("startAt year 1", spec(schedule="@daily", startAt="0001-01-01T00:00"),
     "spec.startAt", "2000 to 2999"),
    ("exclude far", spec(schedule="@daily", exclude=["9999-12-31"]), "spec.exclude",
     "2000 to 2999"),
    ("exclude too many", spec(schedule="@daily", exclude=["2030-01-01"] * 1001),
     "spec.exclude", "at most 1000"),
    ("jitter huge", spec(schedule="@daily", jitterSeconds=HUGE), "spec.jitterSeconds", "86400"),
    ("interval huge", spec(every={"period": "Day", "interval": HUGE}), "spec.every.interval",
     "1000"),
    ("maxExecutions huge", spec(schedule="@daily", maxExecutions=HUGE), "spec.maxExecutions",
     "100000000"),
    ("historyLimit huge", spec(schedule="@daily", historyLimit=HUGE), "spec.historyLimit", "1000"),
    ("successful limit huge", spec(schedule="@daily", successfulJobsHistoryLimit=HUGE),
     "spec.successfulJobsHistoryLimit", "1000"),
    ("failed limit huge", spec(schedule="@daily", failedJobsHistoryLimit=HUGE),
     "spec.failedJobsHistoryLimit", "1000"),
    ("suspendAfterFailures huge", spec(schedule="@daily", suspendAfterFailures=HUGE),
     "spec.suspendAfterFailures", "1000"),
    ("times too many", spec(every={"period": "Day", "times": ["00:00"] * 1441}),
     "spec.every.times", "at most 1440"),
    ("monthDays too many", spec(every={"period": "Month", "monthDays": [1] * 33}),
     "spec.every.monthDays", "at most 32"),
    ("schedule too long", spec(schedule="0 0 * * " + "1," * 200 + "2"), "spec.schedule",
     "at most 256"),
    ("zone too long", spec(schedule="@daily", timeZone="A" * 65), "spec.timeZone", "at most 64"),
    ("runAt too long", spec(runAt="2030-01-01T00:00:00." + "0" * 60 + "Z"), "spec.runAt",
     "at most 64"),
    ("template too deep", spec(schedule="@daily", jobTemplate=_nested(10_000)),
     "spec.jobTemplate", "deeper than"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "raw", "field", "words"), OUT_OF_BOUNDS, ids=[c[0] for c in OUT_OF_BOUNDS]
)
def test_out_of_bounds_names_the_field(
    case: str, raw: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(raw)
    assert (caught.value.field, words in caught.value.message) == (field, True), caught.value


AT_THE_BOUNDS: list[dict[str, Any]] = [
    spec(schedule="@daily", startingDeadlineSeconds=MAX_DURATION_SECONDS, staleAfter="3650d",
         jitterSeconds=86400, maxExecutions=100_000_000, historyLimit=1000,
         successfulJobsHistoryLimit=1000, failedJobsHistoryLimit=1000, suspendAfterFailures=1000,
         startAt="2000-01-01T00:00:00+14:00", endAt="2999-12-31T23:59:59-12:00",
         exclude=["2000-01-01", "2999-12-31"]),
    spec(runAt="2999-12-31T23:59:59-12:00"),
    spec(runAt="2999-12-31T23:59:59", timeZone="Pacific/Kiritimati"),
    spec(runAt="2000-01-01T00:00", timeZone="Pacific/Kiritimati"),
    spec(every={"period": "Month", "interval": 1000, "monthDays": [31]},
         startAt="2999-12-31T23:59:59"),
    spec(schedule="@daily", jobTemplate=_nested(60)),
]  # fmt: skip


@pytest.mark.parametrize("raw", AT_THE_BOUNDS)
def test_at_the_bounds_is_valid_and_plannable(raw: dict[str, Any]) -> None:
    from jobwarden.schedule.timeline import build_timeline

    parsed = load_spec(raw)
    timeline = build_timeline(parsed, key="ns/x", created=datetime(2026, 1, 1, tzinfo=UTC))
    found = []
    for moment in (datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, tzinfo=UTC)):
        found += [timeline.next_after(moment), timeline.last_at_or_before(moment)]
    runs = [run for run in found if run is not None]
    assert runs, "a spec at the bounds still runs at some time"
    # Every run it can reach still gets a Job name (names hold until the year 3870).
    names = [job_name(schedule="x", scheduled=run, trigger="Schedule") for run in runs]
    assert all(is_dns_label(name) for name in names), names


@pytest.mark.parametrize(
    ("case", "raw", "field", "words"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS]
)
def test_bad_spec_names_the_field(case: str, raw: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(raw)
    assert caught.value.field == field
    assert words in caught.value.message
    assert str(caught.value) == f"{field}: {caught.value.message}"


def test_first_problem_is_reported() -> None:
    # Both the time zone and the cron expression are wrong; the zone comes first.
    with pytest.raises(SpecError) as caught:
        load_spec(spec(schedule="0 0 30 2 *", timeZone="Nowhere/City"))
    assert caught.value.field == "spec.timeZone"


GOOD_SCHEDULES = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                  "@hourly", "@DAILY", "H H * * *", "H(0-29)/10 H(1-5) * * 1-5",
                  "0 0 29 2 *", "0 9 * * MON-FRI", "0  0 * *  *", "*/5 * ? * *"]  # fmt: skip


@pytest.mark.parametrize("expression", GOOD_SCHEDULES)
def test_good_schedules_parse(expression: str) -> None:
    assert load_spec(spec(schedule=expression)).schedule == expression


DURATIONS = [
    ("90m", timedelta(minutes=90)),
    ("6h", timedelta(hours=6)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("45s", timedelta(seconds=45)),
    ("2d", timedelta(days=2)),
    ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ("1.5h", timedelta(minutes=90)),
    (" 10m ", timedelta(minutes=10)),
]


@pytest.mark.parametrize(("text", "expected"), DURATIONS)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "6", "h", "-5m", "5 m", "1w", "1h-30m", "0m", "0h0s", "5mm", "ms"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
INSTANTS = [
    ("2027-01-01T09:00:00Z", BERLIN, datetime(2027, 1, 1, 9, tzinfo=UTC)),
    ("2027-01-01t09:00:00z", BERLIN, datetime(2027, 1, 1, 9, tzinfo=UTC)),
    ("2027-01-01T09:00:00+02:00", BERLIN, datetime(2027, 1, 1, 7, tzinfo=UTC)),
    ("2027-01-01T09:00:00.250-05:00", BERLIN, datetime(2027, 1, 1, 14, 0, 0, 250000, tzinfo=UTC)),
    # Without an offset: wall clock in the zone.
    ("2027-01-01T09:00:00", BERLIN, datetime(2027, 1, 1, 8, tzinfo=UTC)),
    ("2027-07-01T09:00:00", BERLIN, datetime(2027, 7, 1, 7, tzinfo=UTC)),
    ("2027-07-01T09:00", NEW_YORK, datetime(2027, 7, 1, 13, tzinfo=UTC)),
    ("2027-07-01 09:00:00", NEW_YORK, datetime(2027, 7, 1, 13, tzinfo=UTC)),
    # DST rule: skipped wall time runs when the gap ends; repeated one at its first occurrence.
    ("2024-03-31T02:30:00", BERLIN, datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
    ("2024-10-27T02:30:00", BERLIN, datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
    ("2024-03-10T02:15:00", NEW_YORK, datetime(2024, 3, 10, 7, 0, tzinfo=UTC)),
    ("2024-11-03T01:15:00", NEW_YORK, datetime(2024, 11, 3, 5, 15, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "tz", "expected"), INSTANTS)
def test_parse_instant(text: str, tz: ZoneInfo, expected: datetime) -> None:
    result = parse_instant(text, tz)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


BAD_INSTANTS = ["2027-01-01", "2027-01-01T9:00:00Z", "2027-13-01T00:00:00Z",
                "2027-01-01T00:00:00+0200", "2027-01-01T25:00:00Z", "now"]  # fmt: skip


@pytest.mark.parametrize("text", BAD_INSTANTS)
def test_parse_instant_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="date-time"):
        parse_instant(text, BERLIN)
