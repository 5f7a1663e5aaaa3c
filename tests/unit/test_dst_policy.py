"""``spec.dst`` against a naive oracle that walks every minute around real DST changes.

The oracle reads each UTC minute's wall clock in the zone and applies the policy as
worded: a wall time found once runs then; found twice, at the first, the second or
both; never found that day (skipped by the change), at the first instant after it or
not at all. Zones with 30- and 45-minute offsets and a 30-minute shift are the point.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden.api.spec import SpecError
from jobwarden.schedule import load_spec
from jobwarden.schedule.timeline import build_timeline

MINUTE = timedelta(minutes=1)
CREATED = datetime(2020, 1, 1, tzinfo=UTC)
ZONES = ["Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kathmandu", "Europe/Berlin",
         "America/St_Johns"]  # fmt: skip
MISSING = ["RunAfter", "Skip"]
REPEATED = ["First", "Second", "Both"]


def transitions(zone: str, year: int) -> list[datetime]:
    """UTC instants (to the minute) where the zone's offset changes in ``year``, by walking."""
    tz = ZoneInfo(zone)
    found, t = [], datetime(year, 1, 1, tzinfo=UTC)
    while t.year == year:
        nxt = t + timedelta(hours=1)
        if t.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            m = t
            while m.astimezone(tz).utcoffset() == t.astimezone(tz).utcoffset():
                m += MINUTE
            found.append(m)
        t = nxt
    return found


def oracle(
    zone: str, at: time, start: datetime, end: datetime, *, missing: str, repeated: str
) -> list[datetime]:
    """Runs of "every day at ``at``" in (start, end], by reading every minute's wall clock."""
    tz = ZoneInfo(zone)
    by_day: dict[date, list[datetime]] = {}
    after: dict[date, datetime] = {}
    t = start.replace(second=0, microsecond=0) - timedelta(days=1)
    while t <= end + timedelta(days=1):
        local = t.astimezone(tz)
        day = local.date()
        if local.time().replace(tzinfo=None) == at:
            by_day.setdefault(day, []).append(t)
        if local.time().replace(tzinfo=None) > at and day not in after:
            after[day] = t
        t += MINUTE
    runs: list[datetime] = []
    for day in sorted(set(by_day) | set(after)):
        seen = by_day.get(day, [])
        if len(seen) == 1:
            runs += seen
        elif len(seen) == 2:
            runs += {"First": seen[:1], "Second": seen[1:], "Both": seen}[repeated]
        elif missing == "RunAfter" and day in after:
            runs.append(after[day])
    return [r for r in runs if start < r <= end]


def engine(
    zone: str, at: time, start: datetime, end: datetime, *, missing: str, repeated: str
) -> list[datetime]:
    spec = load_spec(
        {
            "jobTemplate": {},
            "every": {"period": "Day", "times": [at.strftime("%H:%M")]},
            "timeZone": zone,
            "dst": {"missingTime": missing, "repeatedTime": repeated},
        }
    )
    timeline = build_timeline(spec, key="ns/a", created=CREATED)
    return [r for r in timeline.upcoming(start, count=10) if r <= end]


def _times_near(zone: str, change: datetime) -> list[time]:
    """Wall times around a change: in the gap or the repeat, at its edges, and away."""
    tz = ZoneInfo(zone)
    before, after = (change - MINUTE).astimezone(tz), change.astimezone(tz)
    marks = {before + MINUTE, after, before, after + timedelta(minutes=15)}
    marks |= {after - timedelta(minutes=m) for m in (1, 15, 29, 30, 44, 59)}
    marks |= {before + timedelta(minutes=m) for m in (15, 29, 30, 44)}
    return sorted({m.time().replace(tzinfo=None, second=0, microsecond=0) for m in marks})


CASES = [
    (zone, change, at, missing, repeated)
    for zone in ("Australia/Lord_Howe", "Pacific/Chatham", "Europe/Berlin")
    for change in transitions(zone, 2025)
    for at in _times_near(zone, change)
    for missing in MISSING
    for repeated in REPEATED
]


@pytest.mark.parametrize(("zone", "change", "at", "missing", "repeated"), CASES)
def test_policy_around_real_changes(
    zone: str, change: datetime, at: time, missing: str, repeated: str
) -> None:
    start, end = change - timedelta(days=2), change + timedelta(days=2)
    want = oracle(zone, at, start, end, missing=missing, repeated=repeated)
    assert engine(zone, at, start, end, missing=missing, repeated=repeated) == want


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    year=st.integers(2024, 2035),
    which=st.integers(0, 1),
    minute=st.integers(0, 1439),
    missing=st.sampled_from(MISSING),
    repeated=st.sampled_from(REPEATED),
)
def test_policy_at_any_time_of_day(
    zone: str, year: int, which: int, minute: int, missing: str, repeated: str
) -> None:
    changes = transitions(zone, year) or [datetime(year, 6, 1, tzinfo=UTC)]  # Kathmandu: none
    change = changes[which % len(changes)]
    at = time(minute // 60, minute % 60)
    start, end = change - timedelta(days=1), change + timedelta(days=1)
    want = oracle(zone, at, start, end, missing=missing, repeated=repeated)
    assert engine(zone, at, start, end, missing=missing, repeated=repeated) == want


def test_lord_howe_half_hour_shift_by_hand() -> None:
    """2025-04-06: 02:00 LHDT becomes 01:30 LHST, 01:45 occurs twice; 2025-10-05: 02:00
    becomes 02:30, 02:15 never occurs."""
    back = datetime(2025, 4, 5, 12, tzinfo=UTC)
    both = engine("Australia/Lord_Howe", time(1, 45), back, back + timedelta(hours=12),
                  missing="RunAfter", repeated="Both")  # fmt: skip
    assert [r.strftime("%H:%M") for r in both] == ["14:45", "15:15"]  # +11:00 then +10:30
    forward = datetime(2025, 10, 4, 12, tzinfo=UTC)
    run_after = engine("Australia/Lord_Howe", time(2, 15), forward, forward + timedelta(hours=12),
                       missing="RunAfter", repeated="First")  # fmt: skip
    assert [r.strftime("%H:%M") for r in run_after] == ["15:30"]  # 02:30 LHDT, the change
    skipped = engine("Australia/Lord_Howe", time(2, 15), forward, forward + timedelta(hours=12),
                     missing="Skip", repeated="First")  # fmt: skip
    assert skipped == []


@pytest.mark.parametrize(
    ("dst", "field"),
    [
        ({"missingTime": "Later"}, "spec.dst.missingTime"),
        ({"repeatedTime": "Third"}, "spec.dst.repeatedTime"),
    ],
)
def test_bad_policy_names_the_field(dst: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec({"jobTemplate": {}, "schedule": "0 2 * * *", "dst": dst})
    assert caught.value.field == field
