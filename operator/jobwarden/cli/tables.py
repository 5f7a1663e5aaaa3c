"""Text output in kubectl's style: padded tables, short ages, ``<none>`` for nothing.

Users read ``kubectl jobwarden`` output next to ``kubectl get`` output, so the
two must look alike: upper-case headers, columns separated by three spaces,
ages cut to the two most significant units exactly as kubectl cuts them
(``45s``, ``5m30s``, ``2d3h``), and ``<none>`` where there is no value. All
functions here are pure; the clock is always passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from jobwarden.api.spec import SpecError
from jobwarden.api.status import format_time, parse_time
from jobwarden.schedule.checks import load_spec
from jobwarden.schedule.describe import describe

__all__ = [
    "NONE",
    "Table",
    "age",
    "by_namespace_and_name",
    "human_duration",
    "relative",
    "render_table",
    "schedule_row",
    "schedule_text",
    "timestamp",
    "truncate",
]

M = TypeVar("M", bound=Mapping[str, Any])

NONE = "<none>"
GAP = "   "


_MINUTE, _HOUR, _DAY = 60, 3600, 86400
_YEAR = 365 * _DAY

# kubectl's age ladder, finest first: below ``limit`` seconds an age is shown
# in ``unit`` (of ``size`` seconds), followed by the remainder in ``finer``
# where a finer unit is named (and the remainder is not zero).
_LADDER: tuple[tuple[int, str, int, tuple[str, int] | None], ...] = (
    (2 * _MINUTE, "s", 1, None),
    (10 * _MINUTE, "m", _MINUTE, ("s", 1)),
    (3 * _HOUR, "m", _MINUTE, None),
    (8 * _HOUR, "h", _HOUR, ("m", _MINUTE)),
    (2 * _DAY, "h", _HOUR, None),
    (8 * _DAY, "d", _DAY, ("h", _HOUR)),
    (2 * _YEAR, "d", _DAY, None),
    (8 * _YEAR, "y", _YEAR, ("d", _DAY)),
)


def human_duration(delta: timedelta) -> str:
    """A duration the way kubectl prints ages.

    Precision falls as the duration grows, so a column of ages stays narrow:
    seconds up to two minutes, minutes and seconds below ten minutes, hours
    and minutes below eight hours, days and hours below eight days, and so on.
    A slightly negative value (clock skew between machines) reads as ``0s``.
    """
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    step = next((s for s in _LADDER if seconds < s[0]), None)
    if step is None:
        return f"{seconds // _YEAR}y"
    _, unit, size, finer = step
    whole = f"{seconds // size}{unit}"
    if finer is None:
        return whole
    finer_unit, finer_size = finer
    rest = (seconds % size) // finer_size
    return f"{whole}{rest}{finer_unit}" if rest else whole


def age(moment: object, *, now: datetime) -> str:
    """How long ago ``moment`` (a timestamp string or datetime) was; ``<none>`` if unset."""
    parsed = parse_time(moment)
    if parsed is None:
        return NONE
    return human_duration(now - parsed)


def relative(moment: object, *, now: datetime) -> str:
    """``in 5m`` for a future moment, ``5m ago`` for a past one, ``<none>`` if unset.

    Next-run times are in the future and last-run times in the past; one
    wording for both keeps the direction unmistakable.
    """
    parsed = parse_time(moment)
    if parsed is None:
        return NONE
    if parsed >= now:
        return f"in {human_duration(parsed - now)}"
    return f"{human_duration(now - parsed)} ago"


def timestamp(moment: object) -> str:
    """RFC 3339 UTC to the second, or ``<none>``."""
    parsed = parse_time(moment)
    return NONE if parsed is None else format_time(parsed)


def truncate(text: str, *, width: int) -> str:
    """One line of at most ``width`` characters: a table cell must not wrap the row."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: max(0, width - 3)] + "..."


def _cell(value: object) -> str:
    if value is None:
        return NONE
    text = str(value)
    return text if text.strip() else NONE


@dataclass(frozen=True, kw_only=True)
class Table:
    """A header and rows of cells; ``None`` and blank cells print as ``<none>``."""

    headers: Sequence[str]
    rows: Sequence[Sequence[object]]

    def widths(self) -> list[int]:
        """Each column's width: the widest of its header and cells."""
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            for i, value in enumerate(row):
                widths[i] = max(widths[i], len(_cell(value)))
        return widths

    def lines(self, *, widths: Sequence[int] | None = None, header: bool = True) -> list[str]:
        """The printed lines. ``widths`` lets a watch keep the columns of its first table."""
        use = list(widths) if widths is not None else self.widths()
        out = [format_row([h.upper() for h in self.headers], widths=use)] if header else []
        out.extend(format_row([_cell(v) for v in row], widths=use) for row in self.rows)
        return out


def format_row(cells: Sequence[str], *, widths: Sequence[int]) -> str:
    """Cells padded to ``widths`` and joined by three spaces; the last cell is not padded."""
    parts = [
        cell if i == len(cells) - 1 else cell.ljust(widths[i] if i < len(widths) else len(cell))
        for i, cell in enumerate(cells)
    ]
    return GAP.join(parts).rstrip()


def render_table(*, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A whole table as text, without a trailing newline."""
    return "\n".join(Table(headers=headers, rows=rows).lines())


# --- the JobSchedule list -----------------------------------------------------------------

LIST_HEADERS = (
    "NAME",
    "SCHEDULE",
    "PHASE",
    "SUSPEND",
    "ACTIVE",
    "LAST RUN",
    "LAST RESULT",
    "NEXT RUN",
    "HEALTH",
    "AGE",
)


def schedule_text(obj: Mapping[str, Any]) -> str:
    """The schedule in words: the operator's wording from status, else computed from spec.

    A schedule the operator has not reconciled yet still gets a readable
    column; a spec that does not parse reads ``<invalid>`` (describe says why).
    """
    status = obj.get("status") or {}
    text = status.get("scheduleDescription")
    if isinstance(text, str) and text:
        return text
    try:
        return describe(load_spec(obj.get("spec") or {}))
    except SpecError:
        return "<invalid>"


def _active_count(status: Mapping[str, Any]) -> int:
    count = status.get("activeCount")
    if isinstance(count, int):
        return count
    active = status.get("active")
    return len(active) if isinstance(active, list) else 0


def schedule_row(obj: Mapping[str, Any], *, now: datetime, with_namespace: bool) -> list[object]:
    """One row of ``list`` for a JobSchedule object as the API returns it."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    health = status.get("health") or {}
    suspend = spec.get("suspend")
    row: list[object] = [
        meta.get("name"),
        schedule_text(obj),
        status.get("phase"),
        "true" if suspend is True else "false",
        _active_count(status),
        age(status.get("lastScheduleTime"), now=now),
        status.get("lastResult"),
        relative(status.get("nextRunTime"), now=now),
        health.get("state"),
        age(meta.get("creationTimestamp"), now=now),
    ]
    return [meta.get("namespace"), *row] if with_namespace else row


def list_headers(*, with_namespace: bool) -> list[str]:
    """The ``list`` header, with NAMESPACE first under ``-A`` as kubectl does."""
    return ["NAMESPACE", *LIST_HEADERS] if with_namespace else list(LIST_HEADERS)


def by_namespace_and_name(items: Iterable[M]) -> list[M]:
    """Objects in kubectl's order: by namespace, then name."""
    return sorted(
        items,
        key=lambda o: (
            (o.get("metadata") or {}).get("namespace") or "",
            (o.get("metadata") or {}).get("name") or "",
        ),
    )


def list_table(items: Sequence[Mapping[str, Any]], *, now: datetime, with_namespace: bool) -> Table:
    """The ``list`` table, sorted by namespace then name like kubectl."""
    rows = [
        schedule_row(o, now=now, with_namespace=with_namespace)
        for o in by_namespace_and_name(items)
    ]
    return Table(headers=list_headers(with_namespace=with_namespace), rows=rows)


def utc_now() -> datetime:
    """The clock, in one place so that callers pass it down rather than read it twice."""
    return datetime.now(UTC)
