"""One schedule's memory: the kept body, the backoff of a failing schedule, the gauges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from jobwarden.handlers.memory import (
    BACKOFF_CAP,
    BACKOFF_FIRST,
    Gauges,
    ScheduleMemory,
    change_mark,
    unpack,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def body(*, generation: int = 1, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "ns", "name": "s", "generation": generation}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"schedule": "* * * * *"}, "status": {}}


def test_the_retry_doubles_from_the_first_delay_to_the_cap_with_jitter() -> None:
    memory = ScheduleMemory()
    delays = []
    for _ in range(14):
        memory.failed(error="boom", now=T0)
        assert memory.retry_at is not None
        delays.append(memory.retry_at - T0)
    for n, delay in enumerate(delays):
        nominal = min(BACKOFF_CAP, BACKOFF_FIRST * 2**n)
        assert nominal / 2 <= delay <= nominal, (n, delay)
    assert delays[-1] <= BACKOFF_CAP
    assert delays[-1] >= BACKOFF_CAP / 2, "capped, not grown back to nothing"


def test_jitter_spreads_schedules_that_fail_together() -> None:
    retries = set()
    for _ in range(20):
        memory = ScheduleMemory()
        memory.failed(error="boom", now=T0)
        retries.add(memory.retry_at)
    assert len(retries) > 1


def test_a_repeated_error_is_new_only_once() -> None:
    memory = ScheduleMemory()
    assert memory.failed(error="a", now=T0)
    assert not memory.failed(error="a", now=T0)
    assert memory.failed(error="b", now=T0), "a different error is reported"
    assert memory.failures == 3


def test_success_clears_the_failure_state() -> None:
    memory = ScheduleMemory()
    assert not memory.recovered(), "nothing to recover from"
    memory.failed(error="a", now=T0)
    memory.reported = True
    assert memory.recovered()
    assert (memory.failures, memory.retry_at, memory.error, memory.reported) == (
        0,
        None,
        None,
        False,
    )
    assert memory.failed(error="a", now=T0), "after a success, the same error is news again"


@pytest.mark.parametrize(
    "edited",
    [body(generation=2), body(annotations={"jobwarden.io/run-now": "t"})],
    ids=["generation", "annotations"],
)
def test_a_change_by_the_user_lifts_the_backoff(edited: dict[str, Any]) -> None:
    memory = ScheduleMemory()
    memory.changed(change_mark(body()))
    memory.failed(error="a", now=T0)
    memory.changed(change_mark(body()))
    assert memory.failures == 1, "the same object again (a status write): still backing off"
    memory.changed(change_mark(edited))
    assert memory.failures == 0 and memory.retry_at is None


def test_a_body_that_cannot_be_kept_is_read_afresh_instead() -> None:
    memory = ScheduleMemory()
    memory.keep("1", body())
    assert memory.version == "1" and memory.body is not None
    assert unpack(memory.body)["spec"] == {"schedule": "* * * * *"}
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100_000):  # a template the schema let through, nested past any recursion limit
        node["x"] = {}
        node = node["x"]
    hostile = body()
    hostile["spec"]["jobTemplate"] = deep
    memory.keep("2", hostile)
    assert memory.body is None and memory.version is None


def gauge(name: str, labels: dict[str, str] | None = None) -> float | None:
    return REGISTRY.get_sample_value(name, labels or {})


def test_gauges_are_running_totals_over_the_schedules_counted() -> None:
    # The gauges are the process's: this instance sets them to its own totals.
    gauges = Gauges()
    a, b = ScheduleMemory(), ScheduleMemory()
    gauges.count(a, health="Healthy", active=2)
    gauges.count(b, health="Healthy", active=1)
    gauges.count(a, health="Unhealthy", active=0)
    assert gauge("jobwarden_active_runs") == 1
    assert (a.health, a.active) == ("Unhealthy", 0)
    gauges.count(b, health=None, active=0)  # forgotten
    assert gauge("jobwarden_active_runs") == 0
    assert gauge("jobwarden_schedules", {"health": "Unhealthy"}) == 1
