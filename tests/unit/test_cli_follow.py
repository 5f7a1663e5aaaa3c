"""``-w``: the list-then-watch loop, re-opened after server timeouts and 410 Gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jobwarden.cli.client import Gone
from jobwarden.cli.follow import follow


def _obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}}


class ScriptedClient:
    """Each watch call plays the next script entry: a list of events, or Gone."""

    def __init__(self, scripts: list[list[tuple[str, dict[str, Any]]] | type[Gone]]) -> None:
        self.scripts = scripts
        self.watch_calls: list[tuple[str, int, str | None]] = []
        self.lists = 0
        self.clock = 0.0

    def list_schedules(self, *, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        self.lists += 1
        return [_obj("a", f"{self.lists}0"), _obj("b", f"{self.lists}0")], f"{self.lists}0"

    def watch_schedules(
        self,
        *,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        name: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        self.watch_calls.append((resource_version, timeout_seconds, name))
        self.clock += 1  # each watch request takes a second of the follow's time
        script = self.scripts.pop(0) if self.scripts else []
        if script is Gone:
            raise Gone()
        assert isinstance(script, list)
        yield from script


def test_watch_resumes_from_the_last_version_seen_including_bookmarks() -> None:
    client = ScriptedClient(
        [
            [("MODIFIED", _obj("a", "11")), ("BOOKMARK", _obj("", "12"))],
            [("ADDED", _obj("c", "13"))],
        ]
    )
    changes = list(follow(client, namespace="ns", timeout=3, clock=lambda: client.clock))  # type: ignore[arg-type]
    assert [c.type for c in changes] == ["SYNC", "MODIFIED", "ADDED"]
    assert [c[0] for c in client.watch_calls] == ["10", "12", "13"]
    assert client.lists == 1


def test_gone_lists_again_and_reports_a_sync() -> None:
    client = ScriptedClient([Gone, [("MODIFIED", _obj("a", "21"))]])
    changes = list(follow(client, namespace="ns", timeout=2, clock=lambda: client.clock))  # type: ignore[arg-type]
    assert [c.type for c in changes] == ["SYNC", "SYNC", "MODIFIED"]
    assert client.lists == 2
    assert [c[0] for c in client.watch_calls] == ["10", "20"]


def test_following_one_name_filters_the_list_and_the_watch() -> None:
    client = ScriptedClient([])
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
    client = ScriptedClient([])
    client.clock = 0.0
    list(follow(client, namespace=None, timeout=2.5, clock=lambda: client.clock))  # type: ignore[arg-type]
    assert [c[1] for c in client.watch_calls] == [3, 2, 1]
