"""Next-run computations per second through ``Timeline.next_after``, beside raw croniter,
and the cost of one ``plan()`` in a burst.

Run with ``.venv/bin/python bench/engine.py [--seconds N]``. Each figure is
the best of three timed rounds, chaining each lookup from the previous
result the way the scheduler loop does. The burst row plans 1,000 schedules
of one cron expression at the minute they are all due, each with a full
history (20 entries), as the wake loop does at that minute.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from jobwarden.api.calendar import parse_calendar
from jobwarden.api.spec import parse_spec
from jobwarden.api.status import format_time
from jobwarden.reconcile import Observed, Policy, plan
from jobwarden.schedule.holidays import expand
from jobwarden.schedule.timeline import build_timeline

CRON = "*/15 9-17 * * 1-5"
ZONE = "Europe/Berlin"
START = datetime(2024, 1, 1, tzinfo=UTC)


def rate(step: Callable[[int], object], *, seconds: float) -> float:
    """Best calls-per-second over three rounds of about ``seconds`` each."""
    best = 0.0
    for _ in range(3):
        calls, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds:
            for _ in range(200):
                step(calls)
                calls += 1
        best = max(best, calls / elapsed)
    return best


def chained(next_after: Callable[[datetime], datetime | None]) -> Callable[[int], object]:
    state = {"t": START}

    def step(_: int) -> object:
        result = next_after(state["t"])
        state["t"] = result if result is not None else START
        return result

    return step


BURST = 1000
TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "m", "image": "busybox"}]}}}}


def burst_schedules(n: int) -> list[Observed]:
    """``n`` schedules due every minute, each with a full history of finished runs."""
    history = [
        {
            "job": f"old-{i}",
            "trigger": "Schedule",
            "scheduledTime": format_time(START.replace(minute=59 - i, hour=0)),
            "completionTime": format_time(START.replace(minute=59 - i, hour=0)),
            "durationSeconds": 3.0,
            "result": "Succeeded",
            "reason": "Completed",
        }
        for i in range(20)
    ]
    status: dict[str, Any] = {
        "phase": "Active",
        "lastScheduleTime": format_time(START.replace(hour=0, minute=59)),
        "executions": {"scheduled": 20, "succeeded": 20},
        "history": history,
    }
    objs = [
        Observed(
            namespace="bench",
            name=f"s{i:05d}",
            uid=f"uid-{i}",
            generation=1,
            created=START,
            annotations={},
            spec={"schedule": "* * * * *", "jobTemplate": TEMPLATE},
            status=status,
        )
        for i in range(n)
    ]
    # The status as the operator last wrote it (so that a plan with nothing due changes nothing).
    first = plan(
        obj=objs[0], jobs=(), pending=frozenset(), now=START.replace(minute=59), policy=Policy()
    )
    written = merged(status, first.status or {})
    return [replace(obj, status=written) for obj in objs]


def merged(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A merge patch (RFC 7386) applied, as the API server does."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def plan_ms(*, seconds: float, due: bool = True) -> float:
    """Best mean CPU milliseconds of one ``plan()`` over rounds of a 1,000-schedule burst.

    ``due``: each schedule has a run due (a Job to render, a status to write);
    otherwise each is planned half a minute before it, when nothing changes.
    """
    schedules = burst_schedules(BURST)
    policy = Policy()
    now = START.replace(hour=1) if due else START.replace(minute=59, second=30)
    best = float("inf")
    for _ in range(5):
        planned, began = 0, time.process_time()
        while (elapsed := time.process_time() - began) < seconds:
            for obj in schedules:
                plan(obj=obj, jobs=(), pending=frozenset(), now=now, policy=policy)
            planned += len(schedules)
        best = min(best, elapsed * 1000 / planned)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    args = parser.parse_args()

    holidays = expand(
        name="de-by",
        spec=parse_calendar(
            {"holidays": {"country": "DE", "subdivision": "BY"}, "yearly": ["12-24", "12-31"]}
        ),
    )

    def timeline(**fields: object) -> Callable[[datetime], datetime | None]:
        spec = parse_spec({"jobTemplate": {}, "timeZone": ZONE, **fields})
        return build_timeline(
            spec, key="bench/engine", created=START, calendars={"de-by": holidays}
        ).next_after

    def expansion(i: int) -> object:
        # One calendar parsed and one year of holidays computed, as a calendar's change costs.
        days = expand(name="x", spec=holidays.spec)
        return days.year(2024 + i % 50)

    raw = croniter(CRON, START.replace(tzinfo=None), ret_type=datetime)
    wall = {"t": START.replace(tzinfo=None)}

    def croniter_step(_: int) -> object:
        wall["t"] = raw.get_next(datetime, start_time=wall["t"])
        return wall["t"]

    once = timeline(runAt="2030-01-01T09:00:00")
    cases = [
        (f"croniter get_next  {CRON!r} (naive)", croniter_step),
        (f"next_after cron    {CRON!r} ({ZONE})", chained(timeline(schedule=CRON))),
        (
            "next_after every   Week Mon,Wed,Fri 09:00,17:00",
            chained(
                timeline(
                    every={
                        "period": "Week",
                        "weekdays": ["Mon", "Wed", "Fri"],
                        "times": ["09:00", "17:00"],
                    }
                )
            ),
        ),
        (
            "next_after every   Month 3rd Mon,last Fri 09:00",
            chained(
                timeline(
                    every={
                        "period": "Month",
                        "weekdaysOfMonth": ["3rd Mon", "last Fri"],
                        "times": ["09:00"],
                    }
                )
            ),
        ),
        (
            "next_after every   Month businessDays 1,-1 09:00",
            chained(
                timeline(every={"period": "Month", "businessDays": [1, -1], "times": ["09:00"]})
            ),
        ),
        ("next_after cron    '0 17 * * 5L' (Quartz)", chained(timeline(schedule="0 17 * * 5L"))),
        ("next_after cron    '0 9 15W * *' (Quartz)", chained(timeline(schedule="0 9 15W * *"))),
        (
            "next_after cron    '0 9 * * 1-5' calendar DE-BY, Skip",
            chained(timeline(schedule="0 9 * * 1-5", calendars=["de-by"])),
        ),
        (
            "next_after every   Month monthDays 1,25, DE-BY, NextBusinessDay",
            chained(
                timeline(
                    every={"period": "Month", "monthDays": [1, 25], "times": ["09:00"]},
                    calendars=["de-by"],
                    calendarPolicy="NextBusinessDay",
                )
            ),
        ),
        (
            "next_after cron    '0 9 * * *' DE-BY, PreviousBusinessDay",
            chained(
                timeline(
                    schedule="0 9 * * *",
                    calendars=["de-by"],
                    calendarPolicy="PreviousBusinessDay",
                )
            ),
        ),
        (
            "next_after every   Month businessDays 1,-1, DE-BY",
            chained(
                timeline(
                    every={"period": "Month", "businessDays": [1, -1], "times": ["09:00"]},
                    calendars=["de-by"],
                )
            ),
        ),
        ("JobCalendar DE-BY parsed + one year expanded", expansion),
        ("next_after runAt   2030-01-01T09:00:00", lambda _: once(START)),
    ]
    results = [(name, rate(step, seconds=args.seconds)) for name, step in cases]
    base = results[0][1]
    print(f"{'computation':66} {'per second':>12} {'vs croniter':>12}")
    for name, value in results:
        print(f"{name:66} {value:12,.0f} {value / base:11.2f}x")
    print(f"engine overhead on cron: {base / results[1][1]:.2f}x the time of raw croniter")
    print(f"plan() in a burst of {BURST:,} due schedules: {plan_ms(seconds=args.seconds):.3f} ms")
    quiet = plan_ms(seconds=args.seconds, due=False)
    print(f"plan() of {BURST:,} schedules with nothing due: {quiet:.3f} ms")


if __name__ == "__main__":
    main()
