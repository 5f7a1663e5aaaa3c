"""Job names: valid labels, stable, and never the same for two different runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwarden.labels import TRIGGER_CATCH_UP, TRIGGER_MANUAL, TRIGGER_SCHEDULE
from jobwarden.runs.naming import (
    MAX_NAME,
    is_dns_label,
    job_name,
    name_prefix,
    schedule_label_value,
)

LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
T0 = datetime(2024, 3, 31, 1, 30, tzinfo=UTC)

# Kubernetes object names: DNS subdomains, up to 253 characters.
_segment = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
k8s_names = (
    st.lists(_segment, min_size=1, max_size=12).map(".".join).filter(lambda n: len(n) <= 253)
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@pytest.mark.parametrize(
    ("schedule", "scheduled", "trigger", "token", "expected"),
    [
        ("nightly", T0, TRIGGER_SCHEDULE, None, "nightly-28530810"),
        ("nightly", T0, TRIGGER_CATCH_UP, None, "nightly-28530810"),
        ("nightly", T0 + timedelta(seconds=7), TRIGGER_SCHEDULE, None, "nightly-28530810s07"),
        ("nightly", T0 + timedelta(microseconds=5), TRIGGER_SCHEDULE, None, "nightly-28530810"),
        ("nightly", datetime(1970, 1, 1, tzinfo=UTC), TRIGGER_SCHEDULE, None, "nightly-0"),
    ],
)
def test_scheduled_names(
    schedule: str, scheduled: datetime, trigger: str, token: str | None, expected: str
) -> None:
    assert (
        job_name(schedule=schedule, scheduled=scheduled, trigger=trigger, token=token) == expected
    )


def test_offset_does_not_change_the_name() -> None:
    plus2 = T0.astimezone(timezone(timedelta(hours=2)))
    assert job_name(schedule="a", scheduled=plus2, trigger=TRIGGER_SCHEDULE) == job_name(
        schedule="a", scheduled=T0, trigger=TRIGGER_SCHEDULE
    )


def test_manual_name_depends_on_token_only() -> None:
    a = job_name(schedule="nightly", scheduled=T0, trigger=TRIGGER_MANUAL, token="t1")
    b = job_name(
        schedule="nightly", scheduled=T0 + timedelta(hours=5), trigger=TRIGGER_MANUAL, token="t1"
    )
    c = job_name(schedule="nightly", scheduled=T0, trigger=TRIGGER_MANUAL, token="t2")
    assert a == b != c
    assert a.startswith("nightly-m")
    assert a != job_name(schedule="nightly", scheduled=T0, trigger=TRIGGER_SCHEDULE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trigger": "Cron"}, "unknown trigger"),
        ({"trigger": TRIGGER_MANUAL}, "token"),
        ({"trigger": TRIGGER_MANUAL, "token": ""}, "token"),
        ({"trigger": TRIGGER_SCHEDULE, "scheduled": datetime(2024, 1, 1)}, "timezone-aware"),
        ({"trigger": TRIGGER_SCHEDULE, "scheduled": datetime(1969, 1, 1, tzinfo=UTC)}, "1970"),
    ],
)
def test_rejects(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"schedule": "s", "scheduled": T0, **kwargs}
    with pytest.raises(ValueError, match=message):
        job_name(**args)  # type: ignore[arg-type]


def test_long_names_are_cut_and_hashed() -> None:
    base = "a" * 60
    one, two = name_prefix(base + "-one"), name_prefix(base + "-two")
    assert one != two
    assert len(one) <= MAX_NAME - 13
    huge = "x." * 126 + "y"  # 253 characters
    name = job_name(schedule=huge, scheduled=T0, trigger=TRIGGER_SCHEDULE)
    assert is_dns_label(name) and len(name) <= MAX_NAME


def test_dots_and_short_names() -> None:
    assert name_prefix("nightly") == "nightly"
    # "a.b" and "a-b" must not share a prefix, though both sanitise to "a-b".
    assert name_prefix("a.b") != name_prefix("a-b") == "a-b"


@pytest.mark.parametrize(
    ("schedule", "kept"),
    [("nightly", True), ("a.b-c", True), ("x" * 63, True), ("x" * 64, False), ("x" * 253, False)],
)
def test_schedule_label_value(schedule: str, kept: bool) -> None:
    value = schedule_label_value(schedule)
    assert (value == schedule) is kept
    assert len(value) <= 63 and LABEL_VALUE.match(value)


@settings(max_examples=300)
@given(schedule=k8s_names, scheduled=moments, trigger=st.sampled_from(["Schedule", "CatchUp"]))
def test_scheduled_name_is_a_label_and_stable(
    schedule: str, scheduled: datetime, trigger: str
) -> None:
    name = job_name(schedule=schedule, scheduled=scheduled, trigger=trigger)
    assert len(name) <= MAX_NAME and LABEL.match(name)
    assert name == job_name(schedule=schedule, scheduled=scheduled, trigger=TRIGGER_SCHEDULE)


@settings(max_examples=200)
@given(schedule=st.text(max_size=300), token=st.text(min_size=1, max_size=300))
def test_any_input_gives_a_label(schedule: str, token: str) -> None:
    for trigger, tok in ((TRIGGER_SCHEDULE, None), (TRIGGER_MANUAL, token)):
        name = job_name(schedule=schedule, scheduled=T0, trigger=trigger, token=tok)
        assert is_dns_label(name), name
    assert LABEL_VALUE.match(schedule_label_value(schedule))
    assert len(schedule_label_value(schedule)) <= 63


# Lists of names are slow to generate on a busy machine; that is no finding.
@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    runs=st.lists(st.tuples(k8s_names, moments), min_size=2, max_size=40, unique=True),
)
def test_distinct_runs_get_distinct_names(runs: list[tuple[str, datetime]]) -> None:
    names = {job_name(schedule=s, scheduled=t, trigger=TRIGGER_SCHEDULE) for s, t in runs}
    assert len(names) == len(runs)


# Lists of names are slow to generate on a busy machine; that is no finding.
@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedules=st.lists(k8s_names, min_size=1, max_size=5, unique=True),
    tokens=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5, unique=True),
    times=st.lists(moments, min_size=1, max_size=5, unique=True),
)
def test_manual_and_scheduled_never_collide(
    schedules: list[str], tokens: list[str], times: list[datetime]
) -> None:
    manual = {
        job_name(schedule=s, scheduled=T0, trigger=TRIGGER_MANUAL, token=k)
        for s in schedules
        for k in tokens
    }
    scheduled = {
        job_name(schedule=s, scheduled=t, trigger=TRIGGER_SCHEDULE)
        for s in schedules
        for t in times
    }
    assert len(manual) == len(schedules) * len(tokens)
    assert len(scheduled) == len(schedules) * len(times)
    assert not manual & scheduled


def test_long_shared_beginnings_stay_apart() -> None:
    base = "team-data-platform-ingest-" * 9  # 234 characters
    names = {
        job_name(schedule=f"{base}{i}", scheduled=T0, trigger=TRIGGER_SCHEDULE) for i in range(500)
    }
    assert len(names) == 500


@settings(max_examples=200)
@given(
    schedule=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=253),
    seconds=st.integers(min_value=0, max_value=int(datetime(2999, 12, 31, tzinfo=UTC).timestamp())),
)
def test_an_after_run_is_named_from_its_time_as_a_label_apart_from_clock_runs(
    schedule: str, seconds: int
) -> None:
    when = datetime.fromtimestamp(seconds, tz=UTC)
    name = job_name(schedule=schedule, scheduled=when, trigger="After")
    assert is_dns_label(name), name
    assert name == job_name(schedule=schedule, scheduled=when, trigger="After")
    assert name.rsplit("-", 1)[1].startswith("a")
    assert name != job_name(schedule=schedule, scheduled=when, trigger="Schedule")
    other = job_name(
        schedule=schedule, scheduled=when.replace(second=(when.second + 1) % 60), trigger="After"
    )
    assert other != name
