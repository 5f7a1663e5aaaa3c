"""Stale thresholds: when a run is stale, and the sweep's view of many runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden.safety.stale import (
    StaleCandidate,
    due_for_stale,
    is_stale,
    next_stale_deadline,
    parse_deadline_seconds,
    parse_stale_label,
    stale_deadline,
)

T0 = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("elapsed", "threshold", "stale"),
    [
        (timedelta(0), H, False),
        (H - timedelta(seconds=1), H, False),
        (H, H, True),
        (H + timedelta(seconds=1), H, True),
        (timedelta(days=3), 6 * H, True),
        (-H, H, False),  # clock skew: start in the future
    ],
)
def test_is_stale(elapsed: timedelta, threshold: timedelta, stale: bool) -> None:
    assert is_stale(start_time=T0, now=T0 + elapsed, threshold=threshold) is stale


def test_stale_deadline() -> None:
    assert stale_deadline(start_time=T0, threshold=90 * timedelta(minutes=1)) == T0 + 1.5 * H


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("6h", 6 * H),
        ("1h30m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2d", timedelta(days=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 10m ", timedelta(minutes=10)),
    ],
)
def test_parse_stale_label(value: str, expected: timedelta) -> None:
    assert parse_stale_label(value) == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "invalid duration"),
        ("abc", "invalid duration"),
        ("10", "invalid duration"),
        ("0s", "positive"),
        ("0m0s", "positive"),
        ("-5m", "invalid duration"),
        ("5 m", "invalid duration"),
        ("1w", "invalid duration"),
        ("3651d", "at most 3650d"),
        ("3650d1s", "at most 3650d"),
        ("9" * 62 + "d", "at most 3650d"),  # a label value's 63 characters, past any calendar
        ("1" * 80 + "s", "longer than 64"),
    ],
)
def test_parse_stale_label_rejects_naming_the_label(value: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_stale_label(value)
    assert str(caught.value).startswith("jobwarden.io/stale-after: ")
    assert words in str(caught.value)


def test_parse_stale_label_takes_the_maximum() -> None:
    assert parse_stale_label("3650d") == timedelta(days=3650)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", timedelta(seconds=1)), (" 21600 ", 6 * H), ("315360000", timedelta(days=3650))],
)
def test_parse_deadline_seconds(value: str, expected: timedelta) -> None:
    assert parse_deadline_seconds(value) == expected


@pytest.mark.parametrize("value", ["", "0", "-5", "1.5", "6h", "315360001", "9" * 40, "\u0661"])
def test_parse_deadline_seconds_rejects_naming_the_annotation(value: str) -> None:
    with pytest.raises(ValueError, match=r"^jobwarden\.io/stale-deadline-seconds: "):
        parse_deadline_seconds(value)


def test_a_start_at_the_end_of_the_calendar_never_overflows() -> None:
    end = datetime.max.replace(tzinfo=UTC) - H
    runs = [StaleCandidate(key="far", start_time=end, threshold=timedelta(days=3650))]
    assert due_for_stale(runs, now=T0) == []
    assert next_stale_deadline(runs) == datetime.max.replace(tzinfo=UTC)
    assert not is_stale(start_time=end, now=T0, threshold=timedelta(days=3650))


def test_due_for_stale_keeps_order_and_skips_unstarted() -> None:
    runs = [
        StaleCandidate(key=("ns", "a"), start_time=T0, threshold=H),
        StaleCandidate(key=("ns", "b"), start_time=None, threshold=H),
        StaleCandidate(key=("ns", "c"), start_time=T0 + H, threshold=H, action="Report"),
        StaleCandidate(key=("ns", "d"), start_time=T0 - H, threshold=H),
    ]
    due = due_for_stale(runs, now=T0 + H)
    assert [r.key for r in due] == [("ns", "a"), ("ns", "d")]
    later = due_for_stale(iter(runs), now=T0 + 2 * H)
    assert [r.key for r in later] == [("ns", "a"), ("ns", "c"), ("ns", "d")]
    assert later[1].action == "Report"
    assert due_for_stale([], now=T0) == []


def test_next_stale_deadline() -> None:
    runs = [
        StaleCandidate(key=1, start_time=T0, threshold=3 * H),
        StaleCandidate(key=2, start_time=None, threshold=H),
        StaleCandidate(key=3, start_time=T0 + H, threshold=H),
    ]
    assert next_stale_deadline(runs) == T0 + 2 * H
    assert next_stale_deadline(runs[1:2]) is None


runs_strategy = st.lists(
    st.builds(
        StaleCandidate,
        key=st.integers(),
        start_time=st.one_of(
            st.none(),
            st.integers(min_value=-(10**6), max_value=10**6).map(
                lambda s: T0 + timedelta(seconds=s)
            ),
        ),
        threshold=st.integers(min_value=1, max_value=10**6).map(lambda s: timedelta(seconds=s)),
        action=st.sampled_from(["Terminate", "Report"]),
    ),
    max_size=30,
)


@settings(max_examples=200)
@given(runs=runs_strategy, offset=st.integers(min_value=-(10**6), max_value=2 * 10**6))
def test_due_is_exactly_the_started_runs_past_deadline(
    runs: list[StaleCandidate], offset: int
) -> None:
    now = T0 + timedelta(seconds=offset)
    due = due_for_stale(runs, now=now)
    expected = [r for r in runs if r.start_time is not None and now - r.start_time >= r.threshold]
    assert due == expected
    deadline = next_stale_deadline(runs)
    # Nothing is due before the earliest deadline, and something is due at it.
    if deadline is None:
        assert due == []
    else:
        assert due_for_stale(runs, now=deadline)
        assert due_for_stale(runs, now=deadline - timedelta(microseconds=1)) == []
