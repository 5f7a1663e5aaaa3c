"""What one informer keeps: the slim value of every object, and the diff of a listing.

Pure: no I/O. An informer lists in pages and watches at the same time (see
``jobwarden.watching``), so the two streams interleave here, and which one
is newer must be decided without comparing resourceVersions by size (the API
allows only equal / not equal). The API's own guarantee decides instead:
every page of one listing is a snapshot at the first page's
resourceVersion, and a watch opened from that version sends only what
changed after it. So, while a listing is open, whatever the watch said
about an object is newer than any page can be: a listed object the watch
already told of is skipped, and a deletion the watch told of is kept as a
tombstone (the key in ``_watched``) until the listing ends, so that a later
page cannot bring the object back.

A third source may come before both: a copy read ahead of the listing (a
schedule due soon, named by the last leader; see
``jobwarden.handlers.duesoon``), to act on before its page comes. It gives
way to both (a page or the watch that mentions the object replaces it, and
a later copy read ahead is ignored), and is forgotten at the listing's end
when neither mentioned the object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


@dataclass(frozen=True, slots=True)
class Change(Generic[V]):
    """One object's kept value before and after; ``None`` is absent.

    ``body`` is the object as the API sent it (``None`` for a deletion), for
    a sink that needs more than the kept value at the moment of the change.
    """

    key: ObjectKey
    old: V | None
    new: V | None
    body: Mapping[str, Any] | None = None


class Store(Generic[V]):
    """The kept value of every object of one informer, and the diff of a (re)listing.

    A listing is ``begin_relist``, then ``listed`` per object of its pages and
    ``watched`` per watch event, in any interleaving, then ``end_relist``,
    which returns a deletion for every kept object that neither the listing
    nor the watch mentioned (deleted while no watch was open).
    """

    def __init__(self) -> None:
        self._items: dict[ObjectKey, V] = {}
        # Open listing only: keys kept before it and not mentioned since, and keys
        # the watch told of since it began (their tombstones when deleted).
        self._unlisted: set[ObjectKey] | None = None
        self._watched: set[ObjectKey] | None = None
        self._mentioned: set[ObjectKey] | None = None  # listed or watched, open listing only

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: ObjectKey) -> V | None:
        return self._items.get(key)

    def values(self) -> Iterator[V]:
        return iter(list(self._items.values()))

    @property
    def listing(self) -> bool:
        """Whether a listing is open (between ``begin_relist`` and ``end_relist``)."""
        return self._unlisted is not None

    def apply(
        self, key: ObjectKey, new: V | None, body: Mapping[str, Any] | None = None
    ) -> Change[V] | None:
        """Keep ``new`` for ``key`` (``None``: forget it); the change, if the value changed."""
        if self._unlisted is not None:
            self._unlisted.discard(key)
        old = self._items.get(key)
        if new is None:
            if old is None:
                return None
            del self._items[key]
        else:
            if old is not None and old == new:
                return None
            self._items[key] = new
        return Change(key=key, old=old, new=new, body=body)

    def listed(
        self, key: ObjectKey, new: V | None, body: Mapping[str, Any] | None = None
    ) -> Change[V] | None:
        """An object of a listing's page: kept unless the watch already told newer."""
        if self._mentioned is not None:
            self._mentioned.add(key)
        if self._watched is not None and key in self._watched:
            if self._unlisted is not None:
                self._unlisted.discard(key)
            return None
        return self.apply(key, new, body)

    def watched(
        self, key: ObjectKey, new: V | None, body: Mapping[str, Any] | None = None
    ) -> Change[V] | None:
        """A watch event (``new`` None: deleted); newer than every page of an open listing."""
        if self._watched is not None:
            self._watched.add(key)
        if self._mentioned is not None:
            self._mentioned.add(key)
        return self.apply(key, new, body)

    def hinted(
        self, key: ObjectKey, new: V | None, body: Mapping[str, Any] | None = None
    ) -> Change[V] | None:
        """A copy read ahead of an open listing: kept until a page or the watch tells.

        Ignored once either has mentioned the object (they are newer), and
        outside a listing. Until one does, the key counts as unlisted, so that
        the listing's end forgets an object read ahead but deleted since.
        """
        if self._unlisted is None or self._mentioned is None or key in self._mentioned:
            return None
        change = self.apply(key, new, body)
        self._unlisted.add(key)
        return change

    def begin_relist(self) -> None:
        self._unlisted = set(self._items)
        self._watched = set()
        self._mentioned = set()

    def end_relist(self) -> list[Change[V]]:
        gone, self._unlisted, self._watched = self._unlisted or set(), None, None
        self._mentioned = None
        return [Change(key=k, old=self._items.pop(k), new=None) for k in sorted(gone)]
