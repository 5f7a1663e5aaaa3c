"""A bounded gate that lets the most urgent waiter in first.

``asyncio.Semaphore`` admits waiters first come, first served. After a
restart beside tens of thousands of schedules, every one of them waits for a
slot at once, and a run due in twenty seconds waited behind all of them. Here
each waiter brings a rank and the lowest goes next (first come among equals),
so the reconciles and status writes that matter soonest are done first.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

Rank = tuple[float, float]


class PriorityGate:
    """At most ``limit`` holders; a freed place goes to the waiter of lowest rank."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a gate needs at least one place")
        self._free = limit
        self._waiting: list[tuple[Rank, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Waiters not yet let in (cancelled ones may still be counted until passed over)."""
        return len(self._waiting)

    @asynccontextmanager
    async def slot(self, rank: Rank) -> AsyncIterator[None]:
        await self._enter(rank)
        try:
            yield
        finally:
            self._leave()

    async def _enter(self, rank: Rank) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (rank, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._leave()  # let in just as it was cancelled: pass the place on
            raise

    def _leave(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)  # the place moves to it directly
                return
        self._free += 1
