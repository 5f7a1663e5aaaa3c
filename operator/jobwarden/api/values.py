"""The bounds of every value a spec holds, and the parsers of its scalar values.

The bounds are the CRD's own maxima (tests/unit/test_crd.py compares them):
within them the schedule engine's date arithmetic cannot overflow, so a
schedule the API server admits can always be planned. The parsers are
shared by the spec and by the labels the operator reads from Jobs, which
no schema guards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# The maxima, the same as the CRD's (tests/unit/test_crd.py compares them).
# Date-times: a year in this range plus any offset, duration or interval
# below stays far inside datetime's year 9999 and inside Job names' year 3870.
MIN_YEAR: Final = 2000
MAX_YEAR: Final = 2999
# Durations (staleAfter, startDeadline, startingDeadlineSeconds): ten years.
MAX_DURATION_SECONDS: Final = 3650 * 86400
MAX_INTERVAL: Final = 1000
MAX_EXECUTIONS: Final = 100_000_000
MAX_JITTER_SECONDS: Final = 86400
MAX_LIMIT: Final = 1000  # history limits, suspendAfterFailures
MAX_TIMES: Final = 1440
MAX_MONTH_DAYS: Final = 32
MAX_WEEKDAYS_OF_MONTH: Final = 42  # six ranks of seven weekdays
MAX_BUSINESS_DAY: Final = 23  # a month has at most 23 weekdays
MAX_EXCLUDE: Final = 1000
MAX_RECURRENCES: Final = 16
MAX_SCHEDULE_LENGTH: Final = 256
MAX_ZONE_LENGTH: Final = 64
MAX_DATE_TIME_LENGTH: Final = 64
MAX_DURATION_LENGTH: Final = 64
MAX_UPSTREAMS: Final = 10  # entries in spec.after
MAX_CALENDARS: Final = 8  # entries in spec.calendars
MAX_NAME_LENGTH: Final = 253  # a JobSchedule's name (a DNS subdomain)
MAX_NAMESPACE_LENGTH: Final = 63
DEFAULT_AFTER_DEADLINE: Final = "1h"
MAX_GROUP_NAME_LENGTH: Final = 63  # a label value: the Jobs carry it
MAX_GROUP_LIMIT: Final = 1000  # runs of one concurrency group at once
MAX_QUEUE: Final = 100  # runs of one schedule waiting in its group (status.queue)
GROUP_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# The CRD types jobTemplate down to its last field, about 20 levels; an object
# stored before that schema (or by a client that bypassed it) may nest deeper,
# and deep copies and JSON encoders recurse.
MAX_TEMPLATE_DEPTH: Final = 64

_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
# Files in the tz database that are not zones a schedule could mean.
_NOT_ZONES = frozenset({"local", "localtime", "posixrules", "factory"})
_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def nesting_depth(value: object) -> int:
    """How deeply lists and mappings nest in ``value`` (a scalar is 0), without recursion.

    Stops counting past ``MAX_TEMPLATE_DEPTH``, so its cost is bounded by the
    size of the value however deep it goes.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children: Any = item.values() if isinstance(item, Mapping) else item
        if isinstance(item, (Mapping, list)):
            depth += 1
            deepest = max(deepest, depth)
            if depth <= MAX_TEMPLATE_DEPTH:
                stack.extend((child, depth) for child in children)
    return deepest


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=512)
def load_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name; ``ValueError`` when the tz database lacks it.

    Names are checked against the installed database so that file paths or
    ``localtime`` never pass for a zone.
    """
    known = _known_zones()
    if name.lower() in _NOT_ZONES or (known and name not in known):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)"
        ) from exc


def parse_duration(text: str) -> timedelta:
    """A positive Go-style duration: ``90m``, ``6h``, ``1h30m``, ``45s``, ``2d``, ``1.5h``.

    At most ten years: a longer threshold means "never" and would overflow
    the date arithmetic it feeds (a start time plus the threshold).
    """
    stripped = text.strip()
    parts = _DURATION_PART.findall(stripped)
    if not stripped or "".join(n + u for n, u in parts) != stripped:
        raise ValueError(
            f"invalid duration {text!r}: use numbers with units d, h, m, s (e.g. 90m, 1h30m)"
        )
    # A float sum: digits beyond a float's range give inf, which the bound refuses.
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"invalid duration {text!r}: must be at most 3650d (ten years)")
    return timedelta(seconds=seconds)


def parse_date_time(text: str) -> datetime:
    """An RFC 3339 date-time as written: aware UTC with an offset, naive (wall-clock) without.

    Seconds may be omitted. The year must lie in ``MIN_YEAR..MAX_YEAR``;
    resolving a naive one in a zone (the DST rule) is the schedule engine's
    job (:func:`jobwarden.schedule.walltime.parse_instant`).
    """
    match = _INSTANT.match(text.strip())
    if not match:
        raise ValueError(
            f"invalid date-time {text!r}: use RFC 3339, e.g. 2027-01-01T09:00:00Z "
            "or 2027-01-01T09:00:00 for wall-clock time in timeZone"
        )
    normalized = text.strip().replace("z", "Z").replace("t", "T").replace(" ", "T")
    _check_year(int(normalized[:4]), text)
    try:
        parsed = datetime.fromisoformat(normalized)
    except ValueError as exc:
        raise ValueError(f"invalid date-time {text!r}: {exc}") from exc
    return parsed if match.group("offset") is None else parsed.astimezone(UTC)


def _check_year(year: int, text: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(
            f"{text!r} is out of range: the year must be {MIN_YEAR} to {MAX_YEAR}"
            " (leave the field unset for no bound)"
        )
