"""The health verdict of a schedule, from the results of its recent runs.

Which results count as failures:

* ``Failed``, ``Stale`` and ``NeverStarted`` count: the work did not finish as it
  should (or never began).
* ``Terminated`` does not: it is what a user asked for (the terminate action,
  or ``concurrencyPolicy: Replace``), not a fault of the work. It neither adds
  to nor breaks a run of failures, but a recent one degrades the verdict so
  that someone looks.
* ``Running``, ``Missed`` and ``Skipped`` are not finished executions of the
  work and are passed over.

States, first match wins:

* ``Unhealthy``: the spec is invalid, or the last ``unhealthy_after`` counted
  runs all failed;
* ``Degraded``: the newest counted run failed, or a run finished within
  ``recent`` of now as Stale or Terminated;
* ``Healthy`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from jobwarden.api.status import Health, format_time

FAILURES = frozenset({"Failed", "Stale", "NeverStarted"})
COUNTED = FAILURES | {"Succeeded"}
ATTENTION = frozenset({"Stale", "Terminated"})

_LAST = {
    "Failed": ("LastRunFailed", "The last run failed."),
    "Stale": ("LastRunStale", "The last run went stale."),
    "NeverStarted": ("LastRunNeverStarted", "The last run's pods never started."),
}

DEFAULT_UNHEALTHY_AFTER = 3
DEFAULT_RECENT = timedelta(hours=24)


class Outcome(NamedTuple):
    """A result with the time it was reached, for the "recent" rule.

    A bare result string has no time and is never judged recent.
    """

    result: str
    at: datetime | None


def _result(entry: str | Outcome) -> str:
    return entry if isinstance(entry, str) else entry.result


def consecutive_failures(results_newest_first: Sequence[str | Outcome]) -> int:
    """Failed/Stale runs in a row, newest first, up to the latest success."""
    count = 0
    for entry in results_newest_first:
        result = _result(entry)
        if result == "Succeeded":
            break
        if result in FAILURES:
            count += 1
    return count


def verdict(
    *,
    results_newest_first: Sequence[str | Outcome],
    unhealthy_after: int = DEFAULT_UNHEALTHY_AFTER,
    invalid: bool = False,
    now: datetime,
    recent: timedelta = DEFAULT_RECENT,
) -> Health:
    """The health of one schedule (rules in the module docstring)."""
    failures = consecutive_failures(results_newest_first)
    if invalid:
        return Health(
            state="Unhealthy",
            consecutive_failures=failures,
            reason="InvalidSpec",
            message="The spec is invalid; no runs are scheduled until it is fixed.",
        )
    threshold = max(1, unhealthy_after)
    if failures >= threshold:
        return Health(
            state="Unhealthy",
            consecutive_failures=failures,
            reason="ConsecutiveFailures",
            message=f"The last {failures} runs failed.",
        )
    newest = next((_result(e) for e in results_newest_first if _result(e) in COUNTED), None)
    if newest in FAILURES:
        reason, message = _LAST.get(newest, _LAST["Failed"])
        return Health(
            state="Degraded", consecutive_failures=failures, reason=reason, message=message
        )
    for entry in results_newest_first:
        if (
            isinstance(entry, Outcome)
            and entry.result in ATTENTION
            and entry.at is not None
            and now - entry.at <= recent
        ):
            return Health(
                state="Degraded",
                consecutive_failures=failures,
                reason=f"Recent{entry.result}Run",
                message=f"A run was {entry.result.lower()} at {format_time(entry.at)}.",
            )
    if newest is None:
        return Health(
            state="Healthy", consecutive_failures=0, reason="NoRuns", message="No runs yet."
        )
    return Health(
        state="Healthy",
        consecutive_failures=0,
        reason="RunsSucceeding",
        message="The last run succeeded.",
    )


def should_suspend(*, consecutive_failures: int, suspend_after_failures: int | None) -> bool:
    """Whether ``suspendAfterFailures`` now calls for suspending the schedule.

    Unset or non-positive means never: suspension is opt-in.
    """
    if suspend_after_failures is None or suspend_after_failures < 1:
        return False
    return consecutive_failures >= suspend_after_failures
