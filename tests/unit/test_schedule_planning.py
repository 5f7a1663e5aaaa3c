"""Catch-up plans, jitter and completion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobwarden.api.spec import JobScheduleSpec, parse_spec
from jobwarden.schedule.planning import CatchUpPlan, is_complete, jitter_delay, plan_catch_up
from jobwarden.schedule.timeline import Timeline, build_timeline

CREATED = datetime(2024, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make(**fields: Any) -> tuple[JobScheduleSpec, Timeline]:
    spec = parse_spec({"jobTemplate": {}, **fields})
    return spec, build_timeline(spec, key="ns/x", created=CREATED)


HOURLY = make(schedule="0 * * * *")[1]
SCHEDULED = utc("2024-01-01T10:00")

# Hourly runs, last scheduled at 00:00; the operator wakes at 05:00:30, so 01:00..05:00 are due.
# (case, policy, deadline seconds, now, started, missed)
CATCH_UP = [
    ("latest", "Latest", None, "05:00:30", ["05"], ["01", "02", "03", "04"]),
    ("latest within deadline", "Latest", 60, "05:00:30", ["05"], ["01", "02", "03", "04"]),
    ("latest past deadline", "Latest", 10, "05:00:30", [], ["01", "02", "03", "04", "05"]),
    ("latest exactly at deadline", "Latest", 30, "05:00:30", ["05"], ["01", "02", "03", "04"]),
    ("all", "All", None, "05:00:30", ["01", "02", "03", "04", "05"], []),
    ("all within deadline", "All", 7200, "05:00:30", ["04", "05"], ["01", "02", "03"]),
    ("all past deadline", "All", 10, "05:00:30", [], ["01", "02", "03", "04", "05"]),
    ("none on time", "None", None, "05:00:30", ["05"], ["01", "02", "03", "04"]),
    ("none late", "None", None, "05:02:00", [], ["01", "02", "03", "04", "05"]),
    ("none on time past deadline", "None", 10, "05:00:30", [], ["01", "02", "03", "04", "05"]),
    ("on time only", "Latest", None, "01:00:05", ["01"], []),
    ("none due", "All", None, "00:59:59", [], []),
]


@pytest.mark.parametrize(
    ("case", "policy", "deadline", "now", "started", "missed"),
    CATCH_UP,
    ids=[c[0] for c in CATCH_UP],
)
def test_catch_up(
    case: str,
    policy: str,
    deadline: int | None,
    now: str,
    started: list[str],
    missed: list[str],
) -> None:
    plan = plan_catch_up(
        HOURLY,
        policy=policy,
        last_scheduled=utc("2024-01-01T00:00"),
        anchor=CREATED,
        now=utc(f"2024-01-01T{now}"),
        starting_deadline_seconds=deadline,
    )
    assert plan.start == [utc(f"2024-01-01T{h}:00") for h in started]
    assert plan.missed == [utc(f"2024-01-01T{h}:00") for h in missed]
    assert plan.missed_count == len(missed)


def test_catch_up_from_the_anchor_when_never_scheduled() -> None:
    plan = plan_catch_up(
        HOURLY,
        policy="All",
        last_scheduled=None,
        anchor=utc("2024-01-01T02:30"),
        now=utc("2024-01-01T04:10"),
        starting_deadline_seconds=None,
    )
    assert plan == CatchUpPlan(start=[utc("2024-01-01T03:00"), utc("2024-01-01T04:00")])


def test_long_outage_caps_the_lists_and_counts_all() -> None:
    minutely = make(schedule="* * * * *")[1]
    last = utc("2024-01-01T00:00")
    now = utc("2024-01-02T00:00:10")

    def after_a_day_down(policy: str) -> CatchUpPlan:
        return plan_catch_up(
            minutely,
            policy=policy,
            last_scheduled=last,
            anchor=CREATED,
            now=now,
            starting_deadline_seconds=None,
            limit=10,
        )

    latest = after_a_day_down("Latest")
    assert latest.start == [utc("2024-01-02T00:00")]
    assert latest.missed == [utc("2024-01-01T23:50") + timedelta(minutes=m) for m in range(10)]
    assert latest.missed_count == 1439
    every = after_a_day_down("All")
    assert every.start == [utc("2024-01-01T23:51") + timedelta(minutes=m) for m in range(10)]
    assert every.missed == [utc("2024-01-01T23:41") + timedelta(minutes=m) for m in range(10)]
    assert every.missed_count == 1430


def test_catch_up_rejects_unknown_policy() -> None:
    with pytest.raises(ValueError, match="policy"):
        plan_catch_up(
            HOURLY,
            policy="Some",
            last_scheduled=None,
            anchor=CREATED,
            now=CREATED,
            starting_deadline_seconds=None,
        )


@pytest.mark.parametrize(
    ("jitter", "next_run"),
    [
        (None, None),
        (0, utc("2024-01-01T11:00")),
        (300, None),
        (300, utc("2024-01-01T11:00")),
        (3600, utc("2024-01-01T10:00:01")),
        (10, utc("2024-01-01T10:00:00.000001")),
        (10, SCHEDULED),
    ],
)
def test_jitter_bounds(jitter: int | None, next_run: datetime | None) -> None:
    for n in range(50):
        delay = jitter_delay(
            key=f"ns/job-{n}", scheduled=SCHEDULED, next_run=next_run, jitter_seconds=jitter
        )
        assert 0.0 <= delay <= (jitter or 0)
        if next_run is not None and jitter:
            gap = (next_run - SCHEDULED).total_seconds()
            assert delay < gap or delay == gap == 0.0


def test_jitter_is_stable_and_spread() -> None:
    def delay(key: str, at: datetime) -> float:
        return jitter_delay(key=key, scheduled=at, next_run=None, jitter_seconds=600)

    assert delay("ns/a", SCHEDULED) == delay("ns/a", SCHEDULED)
    # The same instant written in another offset is the same run.
    same = SCHEDULED.astimezone(datetime(2024, 1, 1, tzinfo=UTC).astimezone().tzinfo)
    assert delay("ns/a", same) == delay("ns/a", SCHEDULED)
    keys = {round(delay(f"ns/{n}", SCHEDULED)) for n in range(40)}
    times = {round(delay("ns/a", SCHEDULED + timedelta(hours=n))) for n in range(40)}
    assert len(keys) > 20 and len(times) > 20
    assert max(keys) > 300 > min(keys)


# (case, spec fields, scheduled count, last scheduled, now, complete?)
COMPLETION = [
    ("running", {"schedule": "0 * * * *"}, 5, "2024-06-01T10:00", "2024-06-01T10:30", False),
    ("executions used up", {"schedule": "0 * * * *", "maxExecutions": 5}, 5,
     "2024-06-01T10:00", "2024-06-01T10:30", True),
    ("executions left", {"schedule": "0 * * * *", "maxExecutions": 6}, 5,
     "2024-06-01T10:00", "2024-06-01T10:30", False),
    ("end reached", {"schedule": "0 * * * *", "endAt": "2024-06-01T10:00:00Z"}, 3,
     "2024-06-01T10:00", "2024-06-01T10:30", True),
    ("last run at end still ahead", {"schedule": "0 * * * *", "endAt": "2024-06-01T11:00:00Z"}, 3,
     "2024-06-01T10:00", "2024-06-01T10:30", False),
    ("run at done", {"runAt": "2024-06-01T10:00:00Z"}, 1,
     "2024-06-01T10:00", "2024-06-01T10:00:05", True),
    ("run at ahead", {"runAt": "2024-06-01T10:00:00Z"}, 0, None, "2024-06-01T09:00", False),
    ("never fires", {"every": {"period": "Month", "interval": 12, "monthDays": [31]},
                     "startAt": "2024-02-01T00:00:00Z"}, 0, None, "2024-01-01T00:00", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "fields", "count", "last", "now", "complete"),
    COMPLETION,
    ids=[c[0] for c in COMPLETION],
)
def test_is_complete(
    case: str, fields: dict[str, Any], count: int, last: str | None, now: str, complete: bool
) -> None:
    spec, line = make(**fields)
    result = is_complete(
        line,
        spec,
        scheduled_count=count,
        last_scheduled=utc(last) if last else None,
        now=utc(now),
    )
    assert result is complete
