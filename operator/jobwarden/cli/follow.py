"""``-w``: follow JobSchedules as they change, like ``kubectl get -w``.

A list, then a watch from the list's resourceVersion, re-opened whenever the
server ends it (watches are time-limited) and re-listed when the version has
expired (410 Gone). Nothing is missed between the list and the watch, and a
long-running follow survives the API server's watch timeouts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from jobwarden.cli.client import Client, Gone

__all__ = ["Change", "follow"]

# Longest single watch request; the server would end it sooner or later anyway.
MAX_WATCH_SECONDS: Final = 300


@dataclass(frozen=True, kw_only=True)
class Change:
    """One thing to show: ``SYNC`` (a full list) or a watch event with its object."""

    type: str
    objects: list[dict[str, Any]]


def follow(
    client: Client,
    *,
    namespace: str | None,
    name: str | None = None,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Change]:
    """Changes to the JobSchedules in ``namespace`` (or one, by ``name``) until ``timeout``.

    The first change is always a ``SYNC`` with the current objects. ``timeout``
    (seconds) bounds the whole follow; ``None`` follows until interrupted.
    """
    deadline = None if timeout is None else clock() + timeout

    def listed() -> tuple[list[dict[str, Any]], str]:
        items, version = client.list_schedules(namespace=namespace)
        if name is not None:
            items = [i for i in items if (i.get("metadata") or {}).get("name") == name]
        return items, version

    items, version = listed()
    yield Change(type="SYNC", objects=items)
    while True:
        remaining = MAX_WATCH_SECONDS if deadline is None else deadline - clock()
        if remaining <= 0:
            return
        seconds = max(1, min(MAX_WATCH_SECONDS, math.ceil(remaining)))
        try:
            for kind, obj in client.watch_schedules(
                namespace=namespace,
                resource_version=version,
                timeout_seconds=seconds,
                name=name,
            ):
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    yield Change(type=kind, objects=[obj])
                if deadline is not None and clock() >= deadline:
                    return
        except Gone:
            items, version = listed()
            yield Change(type="SYNC", objects=items)
