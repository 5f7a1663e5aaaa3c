"""The DST rule on its own: wall-clock time to instant, in both transition directions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobwarden.schedule.walltime import exists, resolve, upper_wall

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # moves by 30 minutes


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Berlin 2024: 02:00 CET -> 03:00 CEST on 31 March (01:00Z); 03:00 CEST -> 02:00 CET
# on 27 October (01:00Z). New York 2024: 02:00 EST -> 03:00 EDT on 10 March (07:00Z);
# 02:00 EDT -> 01:00 EST on 3 November (06:00Z).
RESOLVE = [
    (BERLIN, "2024-03-31T01:59", "2024-03-31T00:59", True),
    (BERLIN, "2024-03-31T02:00", "2024-03-31T01:00", False),
    (BERLIN, "2024-03-31T02:30", "2024-03-31T01:00", False),
    (BERLIN, "2024-03-31T02:59:59", "2024-03-31T01:00", False),
    (BERLIN, "2024-03-31T03:00", "2024-03-31T01:00", True),
    (BERLIN, "2024-03-31T03:01", "2024-03-31T01:01", True),
    (BERLIN, "2024-10-27T01:59", "2024-10-26T23:59", True),
    (BERLIN, "2024-10-27T02:00", "2024-10-27T00:00", True),
    (BERLIN, "2024-10-27T02:30", "2024-10-27T00:30", True),
    (BERLIN, "2024-10-27T03:00", "2024-10-27T02:00", True),
    (NEW_YORK, "2024-03-10T01:59", "2024-03-10T06:59", True),
    (NEW_YORK, "2024-03-10T02:00", "2024-03-10T07:00", False),
    (NEW_YORK, "2024-03-10T02:45", "2024-03-10T07:00", False),
    (NEW_YORK, "2024-03-10T03:00", "2024-03-10T07:00", True),
    (NEW_YORK, "2024-11-03T00:59", "2024-11-03T04:59", True),
    (NEW_YORK, "2024-11-03T01:00", "2024-11-03T05:00", True),
    (NEW_YORK, "2024-11-03T01:30", "2024-11-03T05:30", True),
    (NEW_YORK, "2024-11-03T02:00", "2024-11-03T07:00", True),
    (LORD_HOWE, "2024-10-06T02:15", "2024-10-05T15:30", False),
    (LORD_HOWE, "2024-10-06T02:30", "2024-10-05T15:30", True),
    (ZoneInfo("UTC"), "2024-03-31T02:30", "2024-03-31T02:30", True),
]


@pytest.mark.parametrize(("tz", "wall", "expected", "real"), RESOLVE)
def test_resolve(tz: ZoneInfo, wall: str, expected: str, real: bool) -> None:
    naive = datetime.fromisoformat(wall)
    assert resolve(naive, tz) == utc(expected)
    assert exists(naive, tz) is real


# The largest wall time resolving at or before the instant: during the second pass
# through a repeated hour, that is the end of the repeat, not the clock reading.
UPPER = [
    (BERLIN, "2024-10-27T00:30", "2024-10-27T02:30"),  # 02:30 CEST, first pass
    (BERLIN, "2024-10-27T01:30", "2024-10-27T02:59:59.999999"),  # 02:30 CET, second pass
    (BERLIN, "2024-10-27T01:00", "2024-10-27T02:59:59.999999"),
    (BERLIN, "2024-10-27T01:59:59", "2024-10-27T02:59:59.999999"),
    (BERLIN, "2024-10-27T02:00", "2024-10-27T03:00"),
    (BERLIN, "2024-03-31T01:00", "2024-03-31T03:00"),
    (NEW_YORK, "2024-11-03T06:10", "2024-11-03T01:59:59.999999"),
    (NEW_YORK, "2024-11-03T05:10", "2024-11-03T01:10"),
]


@pytest.mark.parametrize(("tz", "instant", "expected"), UPPER)
def test_upper_wall(tz: ZoneInfo, instant: str, expected: str) -> None:
    wall = upper_wall(utc(instant), tz)
    assert wall == datetime.fromisoformat(expected)
    # It resolves at or before the instant, and the wall time a minute later after it.
    assert resolve(wall, tz) <= utc(instant)
    assert resolve(wall + timedelta(minutes=1), tz) > utc(instant)
