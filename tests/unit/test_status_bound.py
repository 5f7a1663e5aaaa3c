"""The status object stays under a documented size, whatever the spec allows.

The worst case is computed from the CRD's own maxima (read from
``crds/``, so that a maximum raised there is seen here) and the operator's
limits: every list as long as it may get, every text cut to its limit and
made of four-byte characters, every number at its widest. It must fit
``STATUS_SIZE_BOUND``, the figure docs/api.md gives. A replay then drives a
schedule whose Jobs never start (a suspended or queued template, with
concurrencyPolicy Allow) and shows that the lists stop growing at the cap.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwarden import labels
from jobwarden.api.status import (
    CONDITION_MESSAGE_LIMIT,
    DESCRIPTION_LIMIT,
    FINGERPRINT_LENGTH,
    LOCAL_TIME_LENGTH,
    MESSAGE_LIMIT,
    REASON_LIMIT,
    STATUS_SIZE_BOUND,
    UPCOMING_LIMIT,
    ActiveRun,
    Condition,
    Executions,
    Health,
    HistoryEntry,
    ScheduleStatus,
    SuspendedByOperator,
    Timing,
    Upcoming,
)
from jobwarden.runs import history as hist
from jobwarden.runs.naming import MAX_NAME
from tests.unit.test_reconcile import World, at

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "jobschedules.jobwarden.io.yaml"
INT64_MAX = 2**63 - 1
WIDE = "\U0001f600"  # four bytes of UTF-8: the most one character costs
# The latest moment a timestamp can show: every one renders to 20 characters.
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    version = crd["spec"]["versions"][0]
    root: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]
    return root


def limit(schema: dict[str, Any], path: str, key: str) -> int:
    """The CRD's ``key`` (maximum, maxItems, maxLength) at ``path``, e.g. ``status.history[]``."""
    node: Any = {"properties": schema}
    for part in path.split("."):
        items = part.endswith("[]")
        node = node.get("properties", {}).get(part.removesuffix("[]"))
        if node is None:
            pytest.fail(f"{CRD.name}: no field {path}")
        if items:
            node = node["items"]
    if key not in node:
        pytest.fail(f"{CRD.name}: {path} has no {key}; the status size bound needs it")
    value: int = node[key]
    return value


def text(size: int) -> str:
    """Text longer than any limit, of the costliest characters."""
    return WIDE * size


def worst_status(schema: dict[str, Any]) -> ScheduleStatus:
    history_limit = limit(schema, "spec.historyLimit", "maximum")
    entries = min(
        history_limit + hist.ACTIVE_LIMIT,
        hist.HISTORY_MAX,
        limit(schema, "status.history", "maxItems"),
    )
    active = min(hist.ACTIVE_LIMIT, limit(schema, "status.active", "maxItems"))
    name = "j" * MAX_NAME
    entry = HistoryEntry(
        job=name,
        trigger="CatchUp",
        scheduled_time=LATEST,
        start_time=LATEST,
        completion_time=LATEST,
        duration_seconds=sys.float_info.max,
        result="Terminated",
        reason=text(10_000),
        message=text(10_000),
    )
    conditions = [
        Condition(
            type=kind,
            status="Unknown",
            reason=text(10_000),
            message=text(100_000),
            last_transition_time=LATEST,
            observed_generation=INT64_MAX,
        )
        # The conditions the operator writes: Valid, Ready, and Suspended once suspended.
        for kind in ("Valid", "Ready", "Suspended")
    ]
    return ScheduleStatus(
        observed_generation=INT64_MAX,
        phase="Suspended",
        schedule_description=text(100_000),
        next_run_time=LATEST,
        last_schedule_time=LATEST,
        last_successful_time=LATEST,
        last_failure_time=LATEST,
        last_result="Terminated",
        active_count=INT64_MAX,
        executions=Executions(**dict.fromkeys(Executions.model_fields, INT64_MAX)),
        active=[ActiveRun(name=name, scheduled_time=LATEST, start_time=LATEST)] * active,
        history=[entry] * entries,
        health=Health(
            state="Unhealthy",
            consecutive_failures=INT64_MAX,
            reason=text(10_000),
            message=text(10_000),
        ),
        conditions=conditions,
        # Only the action annotations are kept, each with a 16-character digest.
        handled_actions=dict.fromkeys(labels.ACTION_ANNOTATIONS, "f" * 16),
        suspended_by_operator=SuspendedByOperator(
            suspended=True,
            reason=text(10_000),
            message=text(10_000),
            since=LATEST,
            generation=INT64_MAX,
        ),
        timing=Timing(fingerprint="f" * FINGERPRINT_LENGTH, since=LATEST),
        upcoming=[Upcoming(time=LATEST, local="x" * LOCAL_TIME_LENGTH, note=text(10_000))]
        * UPCOMING_LIMIT,
    )


def size(status: dict[str, Any]) -> int:
    """Bytes of the status as the API server stores it (JSON, UTF-8, not escaped)."""
    return len(json.dumps(status, ensure_ascii=False, separators=(",", ":")).encode())


def test_the_operators_limits_fit_the_crds_maxima(schema: dict[str, Any]) -> None:
    assert limit(schema, "status.active", "maxItems") >= hist.ACTIVE_LIMIT
    assert limit(schema, "status.history", "maxItems") >= hist.HISTORY_MAX
    assert limit(schema, "status.upcoming", "maxItems") >= UPCOMING_LIMIT
    assert hist.ACTIVE_LIMIT < hist.HISTORY_MAX  # trim can always keep every Running entry
    # Bytes are never fewer than characters, so a cut in bytes fits a maxLength in characters.
    for path, clip_to in [
        ("status.history[].reason", REASON_LIMIT),
        ("status.history[].message", MESSAGE_LIMIT),
        ("status.health.reason", REASON_LIMIT),
        ("status.health.message", MESSAGE_LIMIT),
        ("status.suspendedByOperator.reason", REASON_LIMIT),
        ("status.suspendedByOperator.message", MESSAGE_LIMIT),
        ("status.conditions[].reason", REASON_LIMIT),
        ("status.conditions[].message", CONDITION_MESSAGE_LIMIT),
        ("status.scheduleDescription", DESCRIPTION_LIMIT),
        ("status.upcoming[].note", MESSAGE_LIMIT),
        ("status.upcoming[].local", LOCAL_TIME_LENGTH),
        ("status.timing.fingerprint", FINGERPRINT_LENGTH),
    ]:
        assert clip_to <= limit(schema, path, "maxLength"), path


def test_every_free_text_is_cut_to_its_limit_in_bytes(schema: dict[str, Any]) -> None:
    status = worst_status(schema)
    entry = (status.history or [])[0]
    assert len((entry.reason or "").encode()) == REASON_LIMIT
    assert len((entry.message or "").encode()) == MESSAGE_LIMIT
    condition = (status.conditions or [])[0]
    assert len(condition.message.encode()) == CONDITION_MESSAGE_LIMIT
    assert len((status.schedule_description or "").encode()) == DESCRIPTION_LIMIT
    # A cut never splits a character: what is kept decodes and re-encodes unchanged.
    assert set(entry.message or "") == {WIDE}


def test_the_worst_case_status_fits_the_documented_bound(schema: dict[str, Any]) -> None:
    rendered = worst_status(schema).to_api()
    worst = size(rendered)
    print(f"worst-case status: {worst:,} bytes; bound {STATUS_SIZE_BOUND:,}")
    assert worst <= STATUS_SIZE_BOUND, f"{worst:,} bytes > {STATUS_SIZE_BOUND:,}"
    assert len(rendered["history"]) == hist.HISTORY_MAX  # the worst case is really full
    assert len(rendered["active"]) == hist.ACTIVE_LIMIT


def test_the_bound_is_the_one_docs_api_md_gives() -> None:
    docs = (ROOT / "docs" / "api.md").read_text()
    assert f"{STATUS_SIZE_BOUND // 1024:,} KiB" in docs
    assert f"{hist.ACTIVE_LIMIT} runs" in docs


def test_runs_that_never_start_stop_growing_the_status_at_the_cap() -> None:
    """Every minute a run is due, its Job never starts, and run-now is asked each time."""
    world = World.of(schedule="* * * * *", concurrencyPolicy="Allow", historyLimit=1000)
    minutes = hist.ACTIVE_LIMIT + 30
    for minute in range(minutes):
        world.annotations[labels.RUN_NOW_ANNOTATION] = f"token-{minute}"
        world.step(at("01:00:01") + timedelta(minutes=minute))
    assert len(world.jobs) == hist.ACTIVE_LIMIT  # no Job beyond the cap was created
    assert len(world.status["active"]) == world.status["activeCount"] == hist.ACTIVE_LIMIT
    running = [e for e in world.history if e["result"] == "Running"]
    assert len(running) == hist.ACTIVE_LIMIT
    skipped = [e for e in world.history if e["result"] == "Skipped"]
    assert {e["reason"] for e in skipped} == {hist.ACTIVE_LIMIT_REASON}
    assert len(skipped) == 2 * minutes - hist.ACTIVE_LIMIT
    assert world.counters["skipped"] == len(skipped)
    assert size(world.status) <= STATUS_SIZE_BOUND
    # One run ending makes room for exactly one more.
    oldest = running[-1]["job"]
    world.finish(oldest, at("01:00:01") + timedelta(minutes=minutes))
    result = world.step(at("01:00:01") + timedelta(minutes=minutes))
    assert len(result.starts) == 1  # the run due now (the run-now token is spent)
    assert world.entry(oldest)["result"] == "Succeeded"
    assert world.status["activeCount"] == hist.ACTIVE_LIMIT


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history_limit=st.integers(min_value=0, max_value=1000),
    policy=st.sampled_from(["Allow", "Forbid", "Replace"]),
    events=st.lists(
        st.tuples(
            st.sampled_from(["minute", "run-now", "finish", "terminate"]), st.integers(0, 99)
        ),
        min_size=1,
        max_size=140,
    ),
)
def test_no_stream_of_runs_grows_the_lists_past_their_caps(
    history_limit: int, policy: str, events: list[tuple[str, int]]
) -> None:
    world = World.of(schedule="* * * * *", concurrencyPolicy=policy, historyLimit=history_limit)
    now = at("01:00:01")
    for serial, (kind, pick) in enumerate(events):
        if kind == "minute":
            now += timedelta(minutes=1)
        elif kind == "run-now":
            world.annotations[labels.RUN_NOW_ANNOTATION] = f"token-{serial}"
        elif kind == "terminate":
            world.annotations[labels.TERMINATE_ANNOTATION] = f"token-{serial}"
        else:
            unfinished = sorted(
                n for n, j in world.jobs.items() if "conditions" not in j.get("status", {})
            )
            if unfinished:
                world.finish(unfinished[pick % len(unfinished)], now)
        world.step(now)
        running = [e for e in world.history if e["result"] == "Running"]
        assert len(running) <= hist.ACTIVE_LIMIT
        assert len(world.status.get("active", [])) == len(running)
        assert len(world.history) <= min(hist.HISTORY_MAX, history_limit + len(running))
    assert size(world.status) <= STATUS_SIZE_BOUND
