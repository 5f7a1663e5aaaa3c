"""Several recurrences as one source of wall-clock times: ``spec.recurrences``.

The union of the entries' wall times, searched entry by entry: the next is the
earliest of their next ones, the previous the latest of their previous ones.
A wall time two entries share is one time, so it runs once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

__all__ = ["UnionSource"]


class _Source(Protocol):
    def next_wall(self, after: datetime) -> datetime | None: ...

    def prev_wall(self, at_or_before: datetime) -> datetime | None: ...


class UnionSource:
    """The wall times of any of ``sources`` (each a ``WallSource``)."""

    def __init__(self, sources: Sequence[_Source]) -> None:
        if not sources:
            raise ValueError("a union needs at least one source")
        self._sources = tuple(sources)

    def next_wall(self, after: datetime) -> datetime | None:
        found = [w for s in self._sources if (w := s.next_wall(after)) is not None]
        return min(found, default=None)

    def prev_wall(self, at_or_before: datetime) -> datetime | None:
        found = [w for s in self._sources if (w := s.prev_wall(at_or_before)) is not None]
        return max(found, default=None)
