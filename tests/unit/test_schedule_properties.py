"""Properties of every timeline, and a minute-by-minute oracle around DST transitions."""

from __future__ import annotations

import calendar
import itertools
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jobwarden.api.spec import WEEKDAYS, parse_spec
from jobwarden.schedule.cron import CronSource, normalize
from jobwarden.schedule.planning import jitter_delay
from jobwarden.schedule.timeline import Timeline, build_timeline
from jobwarden.schedule.walltime import wall_of

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TICK = timedelta(microseconds=1)
CREATED = datetime(2024, 1, 1, 12, tzinfo=UTC)
# Santiago moves its clocks at midnight, Lord Howe by half an hour.
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
# Transition instants of 2024 in those zones, to start searches close to them.
TRANSITIONS = [
    datetime(2024, 3, 31, 1, tzinfo=UTC),
    datetime(2024, 10, 27, 1, tzinfo=UTC),
    datetime(2024, 3, 10, 7, tzinfo=UTC),
    datetime(2024, 11, 3, 6, tzinfo=UTC),
    datetime(2024, 4, 6, 15, tzinfo=UTC),
    datetime(2024, 10, 5, 15, 30, tzinfo=UTC),
    datetime(2024, 4, 7, 3, tzinfo=UTC),
    datetime(2024, 9, 8, 4, tzinfo=UTC),
]

minutes = st.sampled_from(["0", "30", "*/15", "*/7", "5,35", "59", "H", "*"])
hours = st.sampled_from(["*", "0", "1", "2", "3", "0-3", "*/2", "23", "H"])
doms = st.sampled_from(["*", "*", "1", "*/2", "15", "31"])
dows = st.sampled_from(["*", "*", "0", "1-5", "6"])
crons = st.builds(lambda *f: " ".join(f), minutes, hours, doms, st.just("*"), dows)
clock = st.sampled_from(["00:00", "00:30", "01:30", "02:00", "02:30", "03:00", "12:15", "23:30"])
everies = st.one_of(
    st.fixed_dictionaries(
        {
            "period": st.just("Day"),
            "interval": st.integers(1, 4),
            "times": st.lists(clock, min_size=1, max_size=4),
        }
    ),
    st.fixed_dictionaries(
        {
            "period": st.just("Week"),
            "interval": st.integers(1, 3),
            "times": st.lists(clock, min_size=1, max_size=3),
            "weekdays": st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "period": st.just("Month"),
            "interval": st.integers(1, 3),
            "times": st.lists(clock, min_size=1, max_size=3),
            "monthDays": st.lists(
                st.sampled_from([1, 3, 6, 10, 29, 30, 31, -1]), min_size=1, max_size=3
            ),
        }
    ),
)
forms = st.one_of(
    crons.map(lambda c: {"schedule": c}),
    everies.map(lambda e: {"every": e}),
)
instants = st.builds(
    lambda base, offset: base + timedelta(minutes=offset),
    st.sampled_from(TRANSITIONS),
    st.integers(-4000, 4000),
)


@st.composite
def specs(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    fields: dict[str, Any] = {"jobTemplate": {}, "timeZone": draw(st.sampled_from(ZONES))}
    fields |= draw(forms)
    t = draw(instants)
    if draw(st.booleans()):
        fields["startAt"] = (t + timedelta(minutes=draw(st.integers(-600, 3000)))).isoformat()
    if draw(st.booleans()):
        fields["endAt"] = (t + timedelta(days=draw(st.integers(4, 60)))).isoformat()
    near = t.date()
    fields["exclude"] = [
        (near + timedelta(days=d)).isoformat()
        for d in draw(st.lists(st.integers(-1, 20), max_size=6, unique=True))
    ]
    return fields, t


def timeline_of(fields: dict[str, Any]) -> Timeline:
    return build_timeline(parse_spec(fields), key="ns/prop", created=CREATED)


@SETTINGS
@given(specs())
def test_runs_obey_every_rule(case: tuple[dict[str, Any], datetime]) -> None:
    fields, t = case
    line = timeline_of(fields)
    tz = ZoneInfo(fields["timeZone"])
    runs = line.upcoming(t, count=25)
    assert all(b > a for a, b in itertools.pairwise(runs)), "strictly increasing"
    assert all(run > t for run in runs)
    excluded = {date.fromisoformat(d) for d in fields["exclude"]}
    walls: set[datetime] = set()
    for run in runs:
        assert run.tzinfo is UTC
        if "startAt" in fields:
            assert run >= datetime.fromisoformat(fields["startAt"])
        if "endAt" in fields:
            assert run <= datetime.fromisoformat(fields["endAt"])
        assert run.astimezone(tz).date() not in excluded
        wall = wall_of(run, tz)
        assert wall not in walls, "a wall-clock time ran twice"
        walls.add(wall)


@SETTINGS
@given(specs())
def test_next_after_and_between_agree(case: tuple[dict[str, Any], datetime]) -> None:
    fields, t = case
    line = timeline_of(fields)
    runs = line.upcoming(t, count=15)
    if not runs:
        return
    assert line.between(t, runs[-1], limit=100) == runs
    assert line.between(t, runs[-1], limit=4) == runs[-4:]
    assert line.count_between(t, runs[-1], cap=1000) == len(runs)
    previous = line.last_at_or_before(t)
    if previous is not None:
        assert previous <= t
        assert line.next_after(previous) == runs[0]
    for index, run in enumerate(runs):
        assert line.next_after(run - TICK) == run
        assert line.last_at_or_before(run) == run
        if index:
            assert line.last_at_or_before(run - TICK) == runs[index - 1]
            assert line.next_after(runs[index - 1]) == run


def first_instants(
    walls: list[datetime], tz: ZoneInfo, lo: datetime, hi: datetime
) -> set[datetime]:
    """The DST rule by brute force: a wall time runs at the first UTC minute whose wall >= it."""
    result: set[datetime] = set()
    pending = sorted(walls)
    reached: datetime | None = None
    u = lo
    while u <= hi and pending:
        wall = wall_of(u, tz)
        reached = wall if reached is None or wall > reached else reached
        while pending and pending[0] <= reached:
            result.add(u)
            pending.pop(0)
        u += timedelta(minutes=1)
    return result


def matches_every(every: dict[str, Any], anchor: date, wall: datetime) -> bool:
    """The every rule restated plainly, one wall-clock minute at a time."""
    if wall.strftime("%H:%M") not in every.get("times", ["00:00"]):
        return False
    day, n = wall.date(), every.get("interval", 1)
    if every["period"] == "Day":
        return (day - anchor).days % n == 0
    if every["period"] == "Week":
        weeks = (
            (day - timedelta(days=day.weekday())) - (anchor - timedelta(days=anchor.weekday()))
        ).days // 7
        return weeks % n == 0 and WEEKDAYS[day.weekday()] in every["weekdays"]
    months = (day.year - anchor.year) * 12 + day.month - anchor.month
    last = calendar.monthrange(day.year, day.month)[1]
    listed = every["monthDays"]
    return months % n == 0 and (day.day in listed or (day.day == last and -1 in listed))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
    ),
    st.sampled_from(TRANSITIONS),
    forms,
)
def test_dst_windows_match_a_brute_force_oracle(
    zone: str, around: datetime, form: dict[str, Any]
) -> None:
    # H depends on the seed; the cron table tests cover it.
    assume("H" not in form.get("schedule", ""))
    tz = ZoneInfo(zone)
    lo, hi = around - timedelta(hours=30), around + timedelta(hours=30)
    line = timeline_of({"jobTemplate": {}, "timeZone": zone, **form})
    anchor = CREATED.astimezone(tz).date()
    walls: list[datetime] = []
    wall = wall_of(lo, tz) - timedelta(hours=3)
    while wall <= wall_of(hi, tz) + timedelta(hours=3):
        if "schedule" in form:
            hit = bool(croniter.match(form["schedule"], wall))
        else:
            hit = matches_every(form["every"], anchor, wall)
        if hit:
            walls.append(wall)
        wall += timedelta(minutes=1)
    margin = timedelta(hours=6)
    oracle = first_instants(walls, tz, lo - margin, hi + margin)
    assert line.between(lo, hi, limit=5000) == sorted(r for r in oracle if lo < r <= hi)


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(min_size=1, max_size=40),
    scheduled=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    gap=st.one_of(st.none(), st.floats(min_value=1e-6, max_value=1e6)),
    jitter=st.one_of(st.none(), st.integers(0, 100_000)),
)
def test_jitter_stays_in_bounds(
    key: str, scheduled: datetime, gap: float | None, jitter: int | None
) -> None:
    next_run = None if gap is None else scheduled + timedelta(seconds=gap)
    delay = jitter_delay(key=key, scheduled=scheduled, next_run=next_run, jitter_seconds=jitter)
    assert 0.0 <= delay <= (jitter or 0)
    if next_run is not None and jitter and next_run > scheduled:
        assert delay < (next_run - scheduled).total_seconds()
    assert delay == jitter_delay(
        key=key, scheduled=scheduled, next_run=next_run, jitter_seconds=jitter
    )


# Steps between questions: exact repeats, a microsecond, within a minute, across
# one, and far; so questions land inside remembered spans, on their edges and past them.
_STEPS = [0, 1, 10**6, 30 * 10**6, 60 * 10**6, 61 * 10**6, 3600 * 10**6, 86400 * 10**6]


@settings(max_examples=200, deadline=None)
@given(
    expression=crons,
    base=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31)),
    seed=st.integers(0, 2**32),
)
def test_shared_cron_answers_equal_a_fresh_search(
    expression: str, base: datetime, seed: int
) -> None:
    """Remembered spans never change an answer: every question matches a fresh croniter's."""
    rng = random.Random(seed)
    shared = CronSource(expression, hash_id="ns/a")
    t = base
    answer: datetime | None = None
    for _ in range(60):
        if answer is not None and rng.random() < 0.3:
            t = answer  # the edge of a remembered span, exactly or a microsecond off it
            t += timedelta(microseconds=rng.choice([-1, 0, 1]))
        else:
            t += timedelta(microseconds=rng.choice(_STEPS) * rng.choice([-1, 1]))
        fresh = croniter(normalize(expression), t, ret_type=datetime, hash_id="ns/a")
        if rng.random() < 0.5:
            answer = fresh.get_next(datetime, start_time=t)
            assert shared.next_wall(t) == answer, t
        else:
            answer = fresh.get_prev(datetime, start_time=t + timedelta(microseconds=1))
            assert shared.prev_wall(t) == answer, t
