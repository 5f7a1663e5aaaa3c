"""The retry schedule and timeouts of one API call: tables of cases, and properties."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwarden.retrying import (
    RETRYABLE_STATUS,
    RetryPolicy,
    Timeouts,
    attempt_timeouts,
    backoff_cap,
    next_wait,
    retry_after_seconds,
)

P = RetryPolicy(attempts=6, budget=30.0, base=0.25, cap=4.0)


@pytest.mark.parametrize(
    ("retry", "cap"),
    [(0, 0.25), (1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (10_000, 4.0)],
)
def test_backoff_doubles_up_to_its_cap(retry: int, cap: float) -> None:
    assert backoff_cap(retry=retry, policy=P) == cap


@pytest.mark.parametrize(
    ("name", "retry", "elapsed", "retry_after", "draw", "wait"),
    [
        ("first retry, jitter drawn at the top", 0, 0.0, None, 0.999, 0.24975),
        ("first retry, jitter drawn at zero: at once", 0, 0.0, None, 0.0, 0.0),
        ("third retry: half of 1 s", 2, 1.0, None, 0.5, 0.5),
        ("late retry: capped at 4 s", 4, 5.0, None, 0.5, 2.0),
        ("429 Retry-After 1: one second at least", 0, 0.1, 1.0, 0.0, 1.0),
        ("429 Retry-After 1, jitter on top", 1, 1.2, 1.0, 0.5, 1.25),
        ("Retry-After 0 is the backoff alone", 1, 0.1, 0.0, 0.5, 0.25),
        ("a negative Retry-After counts as none", 1, 0.1, -5.0, 0.5, 0.25),
        ("last attempt used: give up", 5, 3.0, None, 0.5, None),
        ("wait would end past the budget: give up now", 3, 29.5, None, 0.5, None),
        ("Retry-After past the budget: give up now", 0, 1.0, 60.0, 0.0, None),
        ("wait ending exactly at the budget: no try could start", 0, 29.0, 1.0, 0.0, None),
    ],
)
def test_next_wait_table(
    name: str,
    retry: int,
    elapsed: float,
    retry_after: float | None,
    draw: float,
    wait: float | None,
) -> None:
    got = next_wait(retry=retry, elapsed=elapsed, retry_after=retry_after, policy=P, draw=draw)
    assert got == (None if wait is None else pytest.approx(wait)), name


@given(
    policy=st.builds(
        RetryPolicy,
        attempts=st.integers(1, 20),
        budget=st.floats(0.1, 120),
        base=st.floats(0, 2),
        cap=st.floats(2, 30),
    ),
    tries=st.lists(st.floats(0, 20), min_size=20, max_size=20),
    draws=st.lists(st.floats(0, 1, exclude_max=True), min_size=20, max_size=20),
    retry_afters=st.lists(st.none() | st.floats(0, 20), min_size=20, max_size=20),
)
def test_a_whole_schedule_stays_within_its_attempts_and_budget(
    policy: RetryPolicy,
    tries: list[float],
    draws: list[float],
    retry_afters: list[float | None],
) -> None:
    """Play a call through: every try fails after ``tries[n]`` s; count tries and time.

    Each try is cut to the budget left (as ``attempt_timeouts`` does), so
    the call is over within its budget, whatever the waits and answers.
    """
    elapsed, made = 0.0, 0
    for n in range(policy.attempts + 1):
        limits = attempt_timeouts(
            timeouts=Timeouts(), remaining=policy.budget - elapsed, window=None
        )
        assert limits is not None, "a try is only started with time left"
        elapsed += min(tries[n], limits[2])
        made += 1
        wait = next_wait(
            retry=n, elapsed=elapsed, retry_after=retry_afters[n], policy=policy, draw=draws[n]
        )
        if wait is None:
            break
        assert wait >= max(0.0, retry_afters[n] or 0.0), "Retry-After is honoured"
        assert wait <= (retry_afters[n] or 0.0) + policy.cap, "the backoff is capped"
        elapsed += wait
    assert made <= policy.attempts
    # Summing floats may pass the budget by a rounding error (1e-15 s), never more.
    assert elapsed <= policy.budget + 1e-9


NOW = datetime(2026, 12, 2, 15, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("1", 1.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("99999999999999999999", 999999999.0),
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("Wed, 02 Dec 2026 15:00:30 GMT", 30.0),
        ("Wed, 02 Dec 2026 14:00:00 GMT", 0.0),
    ],
)
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


ATTEMPT_CASES = [
    ("a fresh call: the configured timeouts", 30.0, None, (5.0, 15.0, 30.0)),
    ("little budget left: everything cut to it", 2.0, None, (2.0, 2.0, 2.0)),
    ("a short lease window cuts harder than the budget", 30.0, 3.0, (3.0, 3.0, 3.0)),
    ("a window between connect and read timeouts", 30.0, 8.0, (5.0, 8.0, 8.0)),
    ("the budget cuts harder than the window", 1.0, 12.0, (1.0, 1.0, 1.0)),
    ("no budget left: not sent", 0.0, None, None),
    ("budget overspent: not sent", -0.5, 10.0, None),
]


@pytest.mark.parametrize(("name", "remaining", "window", "limits"), ATTEMPT_CASES)
def test_attempt_timeouts(
    name: str,
    remaining: float,
    window: float | None,
    limits: tuple[float, float, float] | None,
) -> None:
    got = attempt_timeouts(timeouts=Timeouts(), remaining=remaining, window=window)
    assert got == limits, name


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"budget": 0.0}, {"base": -1.0}, {"base": 5.0, "cap": 1.0}],
)
def test_an_unusable_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_only_throttling_and_server_faults_are_retried() -> None:
    assert {429, 500, 502, 503, 504} == RETRYABLE_STATUS
    for answer in (400, 401, 403, 404, 409, 410, 422, 501):
        assert answer not in RETRYABLE_STATUS
