"""The health verdict and the suspend-after-failures rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden.api.status import RUN_RESULTS
from jobwarden.safety.health import Outcome, consecutive_failures, should_suspend, verdict

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("results", "state", "reason", "failures"),
    [
        ([], "Healthy", "NoRuns", 0),
        (["Running"], "Healthy", "NoRuns", 0),
        (["Succeeded"], "Healthy", "RunsSucceeding", 0),
        (["Succeeded", "Failed", "Failed"], "Healthy", "RunsSucceeding", 0),
        (["Failed"], "Degraded", "LastRunFailed", 1),
        (["Stale", "Succeeded"], "Degraded", "LastRunStale", 1),
        (["Running", "Failed", "Succeeded"], "Degraded", "LastRunFailed", 1),
        (["Failed", "Failed"], "Degraded", "LastRunFailed", 2),
        (["Failed", "Failed", "Failed"], "Unhealthy", "ConsecutiveFailures", 3),
        (["Failed", "Stale", "Failed", "Succeeded"], "Unhealthy", "ConsecutiveFailures", 3),
        # Terminated, Missed and Skipped neither count nor break a streak.
        (
            ["Failed", "Terminated", "Failed", "Missed", "Skipped", "Failed"],
            "Unhealthy",
            "ConsecutiveFailures",
            3,
        ),
        (["Terminated", "Terminated", "Terminated"], "Healthy", "NoRuns", 0),
        (["Terminated", "Succeeded"], "Healthy", "RunsSucceeding", 0),
        (["Missed", "Skipped", "Succeeded"], "Healthy", "RunsSucceeding", 0),
    ],
)
def test_verdict_table(results: list[str], state: str, reason: str, failures: int) -> None:
    health = verdict(results_newest_first=results, now=NOW)
    assert (health.state, health.reason, health.consecutive_failures) == (state, reason, failures)
    assert health.message


def test_invalid_wins() -> None:
    health = verdict(results_newest_first=["Succeeded"], invalid=True, now=NOW)
    assert (health.state, health.reason) == ("Unhealthy", "InvalidSpec")


@pytest.mark.parametrize(("after", "state"), [(1, "Unhealthy"), (2, "Degraded"), (0, "Unhealthy")])
def test_unhealthy_after(after: int, state: str) -> None:
    assert verdict(results_newest_first=["Failed"], unhealthy_after=after, now=NOW).state == state


@pytest.mark.parametrize(
    ("entries", "state", "reason"),
    [
        ([Outcome("Succeeded", NOW), Outcome("Stale", NOW - 2 * H)], "Degraded", "RecentStaleRun"),
        (
            [Outcome("Succeeded", NOW), Outcome("Terminated", NOW - H)],
            "Degraded",
            "RecentTerminatedRun",
        ),
        ([Outcome("Succeeded", NOW), Outcome("Stale", NOW - 25 * H)], "Healthy", "RunsSucceeding"),
        ([Outcome("Succeeded", NOW), Outcome("Terminated", None)], "Healthy", "RunsSucceeding"),
        (["Succeeded", "Stale"], "Healthy", "RunsSucceeding"),
        ([Outcome("Terminated", NOW - H)], "Degraded", "RecentTerminatedRun"),
        ([Outcome("Stale", NOW)], "Degraded", "LastRunStale"),
    ],
)
def test_recent(entries: Sequence[str | Outcome], state: str, reason: str) -> None:
    health = verdict(results_newest_first=entries, now=NOW, recent=24 * H)
    assert (health.state, health.reason) == (state, reason)


def test_health_serialises_as_status() -> None:
    health = verdict(results_newest_first=["Failed"], now=NOW)
    assert health.to_api() == {
        "state": "Degraded",
        "consecutiveFailures": 1,
        "reason": "LastRunFailed",
        "message": "The last run failed.",
    }


@pytest.mark.parametrize(
    ("failures", "limit", "suspend"),
    [(0, None, False), (10, None, False), (2, 3, False), (3, 3, True), (4, 3, True), (5, 0, False)],
)
def test_should_suspend(failures: int, limit: int | None, suspend: bool) -> None:
    assert should_suspend(consecutive_failures=failures, suspend_after_failures=limit) is suspend


@settings(max_examples=300)
@given(
    results=st.lists(st.sampled_from(RUN_RESULTS), max_size=30),
    after=st.integers(min_value=1, max_value=6),
)
def test_verdict_properties(results: list[str], after: int) -> None:
    health = verdict(results_newest_first=results, unhealthy_after=after, now=NOW)
    failures = consecutive_failures(results)
    assert health.consecutive_failures == failures
    assert (health.state == "Unhealthy") is (failures >= after)
    if failures == 0:
        assert health.state == "Healthy"  # bare strings carry no time: never "recent"
    else:
        assert health.state in ("Degraded", "Unhealthy")
    # Appending older history never lowers the streak.
    assert consecutive_failures([*results, "Failed"]) >= failures
    # A success on top resets everything.
    top = verdict(results_newest_first=["Succeeded", *results], unhealthy_after=after, now=NOW)
    assert top.state == "Healthy" and top.consecutive_failures == 0
