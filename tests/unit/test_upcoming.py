"""``status.upcoming`` and the notes that explain a run DST moves or repeats."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobwarden.schedule import load_spec
from jobwarden.schedule.timeline import build_timeline
from jobwarden.schedule.upcoming import upcoming_runs
from tests.unit.test_dst_policy import CASES
from tests.unit.test_reconcile import World, at


def _repeated(zone: str, day: datetime, at_: time) -> bool:
    """Whether the wall time occurs twice that day: its two readings are two instants
    that both read back as that wall time."""
    tz = ZoneInfo(zone)
    wall = datetime.combine(day.date(), at_)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return first != second and all(
        i.astimezone(tz).replace(tzinfo=None) == wall for i in (first, second)
    )


@pytest.mark.parametrize(("zone", "change", "at_", "missing", "repeated"), CASES[::7])
def test_a_note_exactly_when_the_run_is_not_plainly_its_wall_time(
    zone: str, change: datetime, at_: time, missing: str, repeated: str
) -> None:
    spec = load_spec(
        {
            "jobTemplate": {},
            "every": {"period": "Day", "times": [at_.strftime("%H:%M")]},
            "timeZone": zone,
            "dst": {"missingTime": missing, "repeatedTime": repeated},
        }
    )
    timeline = build_timeline(spec, key="ns/a", created=change - timedelta(days=9))
    tz = ZoneInfo(zone)
    for run in upcoming_runs(timeline, after=change - timedelta(days=2), count=5):
        local = run.time.astimezone(tz)
        assert run.local == local.isoformat(timespec="seconds")
        moved = local.time().replace(tzinfo=None) != at_
        twice = _repeated(zone, local.replace(tzinfo=None), at_) and not moved
        assert (run.note is not None) == (moved or twice), (run, at_)
        if moved:
            assert "does not exist" in (run.note or "")
        if twice:
            assert "occurs twice" in (run.note or "")


def test_status_upcoming_holds_the_next_five_with_the_dst_note() -> None:
    world = World.of(every={"period": "Day", "times": ["02:30"]}, timeZone="Europe/Berlin")
    world.created = datetime(2027, 3, 25, tzinfo=UTC)
    world.step(datetime(2027, 3, 25, 12, tzinfo=UTC))
    upcoming = world.status["upcoming"]
    assert [u["time"] for u in upcoming] == [
        "2027-03-26T01:30:00Z", "2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z",
        "2027-03-29T00:30:00Z", "2027-03-30T00:30:00Z",
    ]  # fmt: skip
    assert upcoming[0]["time"] == world.status["nextRunTime"]
    assert upcoming[2]["local"] == "2027-03-28T03:00:00+02:00"
    assert upcoming[2]["note"] == "02:30 does not exist on 2027-03-28 (DST): runs at 03:00"
    assert [u.get("note") for i, u in enumerate(upcoming) if i != 2] == [None] * 4


def test_a_plan_with_nothing_new_writes_nothing() -> None:
    world = World.of(schedule="0 * * * *")
    world.step(at("00:10:00"))
    assert len(world.status["upcoming"]) == 5
    assert world.step(at("00:20:00")).status is None  # the kept list: no patch
    world.step(at("01:00:02"))
    assert world.status["upcoming"][0]["time"] == "2024-01-01T02:00:00Z"


def test_upcoming_is_capped_by_the_executions_left_and_gone_when_suspended() -> None:
    world = World.of(schedule="0 * * * *", maxExecutions=3)
    world.step(at("01:00:02"))
    assert [u["time"] for u in world.status["upcoming"]] == [
        "2024-01-01T02:00:00Z",
        "2024-01-01T03:00:00Z",
    ]
    world.edit(suspend=True)
    world.step(at("01:10:00"))
    assert "upcoming" not in world.status
