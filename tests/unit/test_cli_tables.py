"""The plugin's table rendering: kubectl's ages, padding and ``<none>``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobwarden.cli.tables import (
    Table,
    age,
    human_duration,
    list_table,
    relative,
    render_table,
    schedule_row,
    schedule_text,
    truncate,
)

NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (9 * 60 + 59, "9m59s"),
        (10 * 60 + 30, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (8 * 86400 + 5 * 3600, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400 + 40 * 86400, "8y"),
    ],
)
def test_human_duration_matches_kubectl_precision(seconds: int, expected: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == expected


def test_age_of_a_timestamp_string_and_of_nothing() -> None:
    assert age("2026-03-10T11:55:00Z", now=NOW) == "5m"
    assert age(NOW - timedelta(days=2, hours=3), now=NOW) == "2d3h"
    assert age(None, now=NOW) == "<none>"
    assert age("not a time", now=NOW) == "<none>"


def test_relative_says_which_direction() -> None:
    assert relative("2026-03-10T12:05:00Z", now=NOW) == "in 5m"
    assert relative("2026-03-10T11:55:00Z", now=NOW) == "5m ago"
    assert relative(None, now=NOW) == "<none>"


def test_table_pads_columns_with_three_spaces_and_upper_cases_headers() -> None:
    text = render_table(headers=["name", "Result"], rows=[["a", "Succeeded"], ["longer", None]])
    assert text.splitlines() == [
        "NAME     RESULT",
        "a        Succeeded",
        "longer   <none>",
    ]


def test_table_prints_none_for_blank_cells_and_leaves_no_trailing_spaces() -> None:
    lines = Table(headers=["A", "B", "C"], rows=[["", "x", ""], [None, "yyyy", "z"]]).lines()
    assert lines[1] == "<none>   x      <none>"
    assert all(line == line.rstrip() for line in lines)


def test_table_can_keep_the_widths_of_an_earlier_table() -> None:
    first = Table(headers=["NAME", "AGE"], rows=[["a-long-name", "5m"]])
    later = Table(headers=["NAME", "AGE"], rows=[["b", "6m"]])
    line = later.lines(widths=first.widths(), header=False)[0]
    assert line == "b" + " " * (len("a-long-name") - 1) + "   6m"


def test_truncate_keeps_one_line_within_width() -> None:
    assert truncate("a\nb  c", width=10) == "a b c"
    cut = truncate("x" * 50, width=10)
    assert len(cut) == 10 and cut.endswith("...")


def _schedule(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "nightly",
            "namespace": "team-a",
            "creationTimestamp": "2026-03-08T09:00:00Z",
        },
        "spec": {
            "every": {"period": "Day", "times": ["09:00"]},
            "suspend": True,
            "jobTemplate": {},
        },
        "status": status,
    }


def test_schedule_row_reads_status_and_spec() -> None:
    obj = _schedule(
        phase="Active",
        activeCount=2,
        lastScheduleTime="2026-03-10T11:00:00Z",
        lastResult="Failed",
        nextRunTime="2026-03-11T09:00:00Z",
        health={"state": "Degraded"},
        scheduleDescription="daily at 09:00",
    )
    row = schedule_row(obj, now=NOW, with_namespace=True)
    assert row == [
        "team-a",
        "nightly",
        "daily at 09:00",
        "Active",
        "true",
        2,
        "60m",
        "Failed",
        "in 21h",
        "Degraded",
        "2d3h",
    ]


def test_schedule_row_before_the_operator_reconciled_it() -> None:
    row = schedule_row(_schedule(), now=NOW, with_namespace=False)
    # The schedule in words is computed from the spec; the rest is empty.
    assert row[:5] == ["nightly", "daily at 09:00", None, "true", 0]
    assert "<none>" in Table(headers=["X"] * len(row), rows=[row]).lines()[1]


def test_schedule_text_of_an_invalid_spec() -> None:
    obj = _schedule()
    obj["spec"]["every"]["period"] = "Week"  # weekdays missing
    assert schedule_text(obj) == "<invalid>"


def test_active_count_falls_back_to_the_active_list() -> None:
    row = schedule_row(
        _schedule(active=[{"name": "a"}, {"name": "b"}]), now=NOW, with_namespace=False
    )
    assert row[4] == 2


def test_list_table_sorts_by_namespace_then_name_and_adds_namespace_column() -> None:
    def obj(ns: str, name: str) -> dict[str, Any]:
        o = _schedule()
        o["metadata"] = {**o["metadata"], "namespace": ns, "name": name}
        return o

    table = list_table([obj("b", "x"), obj("a", "z"), obj("a", "y")], now=NOW, with_namespace=True)
    assert table.headers[0] == "NAMESPACE"
    assert [(r[0], r[1]) for r in table.rows] == [("a", "y"), ("a", "z"), ("b", "x")]
    narrow = list_table([obj("a", "y")], now=NOW, with_namespace=False)
    assert narrow.headers[0] == "NAME"
