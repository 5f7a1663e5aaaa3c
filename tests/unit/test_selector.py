"""--selector: equality selectors become the JobSchedule watch's labelSelector; anything
else stops the start.

A set-based or negated selector must fail loudly: read as a label key it
would make a filter that matches nothing, and the operator would idle.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobwarden.handlers.schedules import selector_labels, selector_query


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("shard=a", {"shard": "a"}),
        ("shard==a, tier", {"shard": "a", "tier": None}),
        ("example.com/shard=a,env=", {"example.com/shard": "a", "env": ""}),
        ("", None),
    ],
)
def test_equality_selectors(text: str, labels: dict[str, Any] | None) -> None:
    assert selector_labels(text) == labels


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("shard==a, tier", "shard=a,tier"),
        ("example.com/shard=a,env=", "example.com/shard=a,env="),
        ("", None),
    ],
)
def test_the_watch_asks_the_api_server_for_the_same_selector(text: str, query: str | None) -> None:
    assert selector_query(text) == query


@pytest.mark.parametrize(
    "text",
    ["shard!=a", "!shard", "tier in (a,b)", "tier notin (a)", "tier in(a)", "a=b c", "a=(b)"],
)
def test_other_selectors_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="only equality selectors"):
        selector_labels(text)
