"""One watch of JobSchedules per server, fanned out to every open page.

A single background thread follows the schedules (list, then watch, re-listed
on expiry: :func:`jobwarden.cli.follow.follow`, the same loop as ``list -w``)
and hands each change to the :class:`Hub` on the event loop. Pages never
poll per schedule: each server-sent-events stream waits for the hub's version
to move and then renders once from the hub's copy, so a burst of changes
while a page is being sent costs one render, not one per change.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from jobwarden.cli.errors import CliError
from jobwarden.cli.follow import Change

__all__ = ["Hub", "start_watch"]

# How long the watch thread waits before trying again after the API refused or failed.
RETRY_SECONDS: Final = 5.0


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


@dataclass
class Hub:
    """The schedules as last seen, a version that moves on every change, and the last error.

    Lives on the event loop; the watch thread reaches it only through
    ``loop.call_soon_threadsafe``.
    """

    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    synced: bool = False
    error: str | None = None
    _tick: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, change: Change) -> None:
        """Take one change: a full list (``SYNC``) or one watch event."""
        if change.type == "SYNC":
            self.objects = {_key(o): o for o in change.objects}
            self.synced = True
        for obj in change.objects if change.type != "SYNC" else ():
            if change.type == "DELETED":
                self.objects.pop(_key(obj), None)
            else:
                self.objects[_key(obj)] = obj
        self.error = None
        self._moved()

    def fail(self, message: str) -> None:
        """The watch failed (refused, unreachable): pages show why until it recovers."""
        self.error = message
        self._moved()

    def _moved(self) -> None:
        self.version += 1
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def wait(self, *, after: int, timeout: float) -> bool:
        """Until the version moves past ``after`` (True) or ``timeout`` seconds pass (False)."""
        while self.version <= after:
            try:
                await asyncio.wait_for(self._tick.wait(), timeout=timeout)
            except TimeoutError:
                return False
        return True

    def items(self) -> list[dict[str, Any]]:
        return list(self.objects.values())


def start_watch(
    hub: Hub,
    *,
    loop: asyncio.AbstractEventLoop,
    changes: Callable[[], Iterable[Change]],
    stop: threading.Event,
) -> threading.Thread:
    """Follow ``changes()`` in a daemon thread, feeding the hub, until ``stop`` is set.

    A failure (a refused list, a lost API server, anything unexpected) is
    shown on the pages and the follow starts again after :data:`RETRY_SECONDS`.
    """

    def run() -> None:
        while not stop.is_set():
            try:
                stream: Iterator[Change] = iter(changes())
                for change in stream:
                    loop.call_soon_threadsafe(hub.apply, change)
                    if stop.is_set():
                        return
            except CliError as exc:
                loop.call_soon_threadsafe(hub.fail, exc.message)
            except Exception as exc:  # the thread must outlive any one failure, or pages go stale
                message = f"the watch failed ({type(exc).__name__}); trying again"
                loop.call_soon_threadsafe(hub.fail, message)
            stop.wait(RETRY_SECONDS)

    thread = threading.Thread(target=run, name="jobwarden-dashboard-watch", daemon=True)
    thread.start()
    return thread
