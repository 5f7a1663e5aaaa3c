"""``-w``: the list-then-watch loop, re-opened after server timeouts and 410 Gone."""

from __future__ import annotations

from typing import Any

from jobwarden.cli.client import Gone
from jobwarden.cli.follow import follow
from tests.support.plugin import Event, FakeClient


def _obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": version}}


def _client(*watches: list[Event] | type[Gone]) -> FakeClient:
    """Two schedules, a and b, and a script of watches (see FakeClient)."""
    return FakeClient(namespace="ns", objects=[_obj("a", "1"), _obj("b", "1")], watches=watches)


def test_watch_resumes_from_the_last_version_seen_including_bookmarks() -> None:
    client = _client(
        [("MODIFIED", _obj("a", "11")), ("BOOKMARK", _obj("", "12"))],
        [("ADDED", _obj("c", "13"))],
    )
    changes = list(follow(client, namespace="ns", timeout=3, clock=lambda: client.clock))  # type: ignore[arg-type]
    assert [c.type for c in changes] == ["SYNC", "MODIFIED", "ADDED"]
    assert [c[0] for c in client.watch_calls] == ["10", "12", "13"]
    assert len(client.listed) == 1


def test_gone_lists_again_and_reports_a_sync() -> None:
    client = _client(Gone, [("MODIFIED", _obj("a", "21"))])
    changes = list(follow(client, namespace="ns", timeout=2, clock=lambda: client.clock))  # type: ignore[arg-type]
    assert [c.type for c in changes] == ["SYNC", "SYNC", "MODIFIED"]
    assert len(client.listed) == 2
    assert [c[0] for c in client.watch_calls] == ["10", "20"]


def test_following_one_name_filters_the_list_and_the_watch() -> None:
    client = _client()
    changes = list(
        follow(
            client,
            namespace="ns",
            name="b",
            timeout=1,  # type: ignore[arg-type]
            clock=lambda: client.clock,
        )
    )
    assert [o["metadata"]["name"] for o in changes[0].objects] == ["b"]
    assert client.watch_calls[0][2] == "b"


def test_each_watch_asks_only_for_the_time_left() -> None:
    client = _client()
    client.clock = 0.0
    list(follow(client, namespace=None, timeout=2.5, clock=lambda: client.clock))  # type: ignore[arg-type]
    assert [c[1] for c in client.watch_calls] == [3, 2, 1]
