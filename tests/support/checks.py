"""What a test waits for in a JobSchedule's status, named rather than spelled as a lambda.

Each function returns a check over the status dict (as ``wait_status`` and
:meth:`tests.support.schedules.Schedules.wait` take it), so that a wait reads
as what it waits for: ``phase("Suspended")``, ``counted("succeeded", 2)``.
A check compares exactly unless its name says otherwise: a wait for one
success must not pass over a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.support.schedules import executions, history, rfc3339

Check = Callable[[dict[str, Any]], bool]


def entry(status: dict[str, Any], job: str) -> dict[str, Any] | None:
    """The history entry of the run whose Job is ``job``, if recorded."""
    return next((e for e in history(status) if e.get("job") == job), None)


def phase(name: str) -> Check:
    return lambda s: s.get("phase") == name


def generation_seen(generation: int) -> Check:
    """The operator has reconciled spec generation ``generation``."""
    return lambda s: s.get("observedGeneration") == generation


def counted(key: str, value: int) -> Check:
    """The ``executions`` counter ``key`` is exactly ``value``."""
    return lambda s: executions(s).get(key, 0) == value


def counted_at_least(key: str, value: int) -> Check:
    return lambda s: executions(s).get(key, 0) >= value


def active_count(count: int) -> Check:
    """Exactly ``count`` runs are active."""
    return lambda s: s.get("activeCount") == count


def next_run(moment: datetime) -> Check:
    """``nextRunTime`` is ``moment``, as the operator writes it (RFC 3339, whole seconds)."""
    return lambda s: s.get("nextRunTime") == rfc3339(moment)


def has_next_run(status: dict[str, Any]) -> bool:
    return "nextRunTime" in status


def recorded(status: dict[str, Any]) -> bool:
    """At least one run is in the history."""
    return bool(history(status))


def run_result(job: str, result: str) -> Check:
    """The run of Job ``job`` is recorded with ``result`` (Stale, Terminated, ...)."""
    return lambda s: (entry(s, job) or {}).get("result") == result


def run_reason(job: str, reason: str) -> Check:
    return lambda s: (entry(s, job) or {}).get("reason") == reason


def completed(*, succeeded: int) -> Check:
    """Phase Completed with at least ``succeeded`` runs succeeded."""
    return all_of(phase("Completed"), counted_at_least("succeeded", succeeded))


def all_of(*checks: Check) -> Check:
    return lambda s: all(check(s) for check in checks)
