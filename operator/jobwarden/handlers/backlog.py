"""Reconciles owed to every schedule at once, handed out a few at a time, least urgent last.

After the Jobs' first listing (or a takeover) every known schedule is owed a
reconcile. Waking all of them at once made 50,000 tasks that queued before
the slot gate and filled the event loop, and a schedule created or due
meanwhile waited behind their planning. The backlog holds the debt instead:
the wake loop takes from it only while few reconciles are in flight, lowest
rank first, so whatever the wake queue brings (a due run, someone's change)
always finds a slot nearly free. A reconcile done for any other reason
settles the key's debt.

A heap of ``(rank, order, key)`` with a map of the entry that counts per
key, like the wake queue's: an entry no longer in the map is skipped.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

from jobwarden.handlers.gate import Rank

K = TypeVar("K", bound=Hashable)


class Backlog(Generic[K]):
    """Keys owed a reconcile, taken lowest rank first (first owed among equals)."""

    def __init__(self) -> None:
        self._heap: list[tuple[Rank, int, K]] = []
        self._owed: dict[K, int] = {}
        self._order = itertools.count()

    def owe(self, key: K, rank: Rank) -> None:
        """``key`` is owed a reconcile, ranked ``rank`` (a key owed again is re-ranked)."""
        order = next(self._order)
        self._owed[key] = order
        heapq.heappush(self._heap, (rank, order, key))

    def settle(self, key: K) -> None:
        """``key`` was reconciled (or is gone): it is owed nothing."""
        self._owed.pop(key, None)

    def take(self, count: int) -> list[K]:
        """Up to ``count`` owed keys, lowest rank first, each settled."""
        taken: list[K] = []
        while self._heap and len(taken) < count:
            _, order, key = heapq.heappop(self._heap)
            if self._owed.get(key) == order:
                del self._owed[key]
                taken.append(key)
        return taken

    def __len__(self) -> int:
        return len(self._owed)

    def __contains__(self, key: object) -> bool:
        return key in self._owed
