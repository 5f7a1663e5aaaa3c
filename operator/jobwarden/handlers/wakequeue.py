"""When each schedule wakes next, and when its wake-up is planned ahead.

Two heaps of ``(time, key)`` with a map of the entry that counts per key:
an entry whose time no longer matches the map was superseded and is skipped
when popped, so moving a wake-up is one push, never a search of the heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class _Timed(Generic[K]):
    """A heap plus the one time that counts per key."""

    __slots__ = ("at", "heap")

    def __init__(self) -> None:
        self.heap: list[tuple[datetime, K]] = []
        self.at: dict[K, datetime] = {}

    def set(self, key: K, at: datetime) -> None:
        self.at[key] = at
        heapq.heappush(self.heap, (at, key))

    def pop_until(self, until: datetime) -> list[tuple[K, datetime]]:
        """Remove and return the current entries at or before ``until``, soonest first."""
        popped: list[tuple[K, datetime]] = []
        while self.heap and self.heap[0][0] <= until:
            at, key = heapq.heappop(self.heap)
            if self.at.get(key) == at:
                del self.at[key]
                popped.append((key, at))
        return popped

    def soonest(self) -> datetime | None:
        # Superseded entries may sit on top: waking for one early is harmless (nothing pops).
        return self.heap[0][0] if self.heap else None

    def clear(self) -> None:
        self.heap.clear()
        self.at.clear()


class WakeQueue(Generic[K]):
    """Wake-ups (earliest wins) and plan-ahead marks (``ahead`` before their wake-up)."""

    def __init__(self, *, ahead: timedelta) -> None:
        self._ahead = ahead
        self._wake: _Timed[K] = _Timed()
        self._prepare: _Timed[K] = _Timed()

    def wake(self, key: K, at: datetime) -> bool:
        """Wake ``key`` at ``at`` unless it already wakes no later; True if it moved."""
        current = self._wake.at.get(key)
        if current is not None and current <= at:
            return False
        self._wake.set(key, at)
        return True

    def due(self, key: K) -> datetime | None:
        """The wake-up set for ``key``, if any."""
        return self._wake.at.get(key)

    def prepare(self, key: K, at: datetime) -> bool:
        """Plan the wake-up at ``at`` ahead of time, once per key and wake-up."""
        if self._prepare.at.get(key) == at:
            return False
        self._prepare.set(key, at)
        return True

    def pop_due(self, now: datetime) -> list[K]:
        """The keys whose wake-up has come, each once, soonest first."""
        return [key for key, _ in self._wake.pop_until(now)]

    def pop_prepare(self, now: datetime) -> list[tuple[K, datetime]]:
        """(key, wake-up) of the plans ahead to make now."""
        return self._prepare.pop_until(now + self._ahead)

    def soonest(self) -> datetime | None:
        """When the loop next has something to do."""
        times = [self._wake.soonest()]
        prepare = self._prepare.soonest()
        if prepare is not None:
            times.append(prepare - self._ahead)
        return min((t for t in times if t is not None), default=None)

    def drop(self, key: K) -> None:
        """Forget ``key``: its heap entries are skipped when they come up."""
        self._wake.at.pop(key, None)
        self._prepare.at.pop(key, None)

    def clear(self) -> None:
        self._wake.clear()
        self._prepare.clear()

    def __len__(self) -> int:
        return len(self._wake.at)
