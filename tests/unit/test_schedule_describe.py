"""The schedule in words."""

from __future__ import annotations

from typing import Any

import pytest

from jobwarden.api.spec import parse_spec
from jobwarden.schedule.describe import describe

DESCRIPTIONS = [
    ({"schedule": "0 9 * * 1-5"}, "0 9 * * 1-5"),
    ({"schedule": "0  9 * *   1-5", "timeZone": "Europe/Paris"}, "0 9 * * 1-5 (Europe/Paris)"),
    ({"schedule": "@daily"}, "@daily"),
    ({"every": {"period": "Day"}}, "daily at 00:00"),
    ({"every": {"period": "Day", "interval": 2, "times": ["17:00", "09:00"]}},
     "every 2 days at 09:00,17:00"),
    ({"every": {"period": "Week", "weekdays": ["Fri", "Mon"], "times": ["08:30"]}},
     "weekly Mon,Fri at 08:30"),
    ({"every": {"period": "Week", "interval": 3, "weekdays": ["Sun"]}, "timeZone": "Asia/Tokyo"},
     "every 3 weeks Sun at 00:00 (Asia/Tokyo)"),
    ({"every": {"period": "Month", "monthDays": [-1, 15, 1]}}, "monthly on 1,15,-1 at 00:00"),
    ({"every": {"period": "Month", "interval": 6, "monthDays": [1], "times": ["06:00", "06:00"]}},
     "every 6 months on 1 at 06:00"),
    ({"runAt": "2027-01-01T09:00:00Z"}, "once at 2027-01-01T09:00:00Z"),
    ({"runAt": "2027-01-01T10:00:00", "timeZone": "Europe/Berlin"}, "once at 2027-01-01T09:00:00Z"),
    ({"runAt": "2027-01-01T10:00:00.5+01:00"}, "once at 2027-01-01T09:00:00.500000Z"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "expected"), DESCRIPTIONS)
def test_describe(fields: dict[str, Any], expected: str) -> None:
    assert describe(parse_spec({"jobTemplate": {}, **fields})) == expected
