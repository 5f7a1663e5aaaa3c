"""The due-soon list: the schedules a starting operator reads before its listing.

After a restart beside 50,000 schedules their listing takes a minute or more
(100 pages read from etcd, each up to a second at a loaded API server), and
a schedule is known only once its page comes: one due in that minute, on a
late page, ran late. So the leader keeps the keys of the schedules whose
next run is near (within ``HORIZON``, the ``LIMIT`` soonest) in a ConfigMap
of its own namespace, and a starting replica reads those schedules one GET
each, a few at a time, while its listing begins. It schedules them from
those copies until their pages come (see ``jobwarden.store.Store.hinted``).

The list is a hint, never the truth. A key whose schedule is gone, or no
longer selected, costs one GET and nothing else (the listing's end forgets
what it did not confirm); a schedule missing from it (created seconds
before a crash) waits for its page, as every schedule did before. Keys only,
sorted: the ConfigMap is written only when the set changes, at most every
``WRITE_EVERY``, so its cost does not grow with the runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from jobwarden.handlers.memory import Key
from jobwarden.kube import Kube

log = logging.getLogger(__name__)

# Beyond the longest listing measured (163 s for 50,000 at a load of 13).
HORIZON = timedelta(minutes=10)
# About 80 KB of keys at most, read in a few seconds at 8 GETs at once.
LIMIT = 1000
WRITE_EVERY = 15.0
READ_AT_ONCE = 8
DATA_KEY = "schedules"

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class DueSoon(Protocol):
    """What the list is made from: the scheduler's knowledge of every next run."""

    @property
    def leading(self) -> bool: ...

    def due_within(self, horizon: timedelta, *, limit: int) -> list[Key]: ...


def render(keys: Iterable[Key]) -> str:
    """One ``namespace/name`` per line, sorted: the same set always reads the same."""
    return "".join(f"{namespace}/{name}\n" for namespace, name in sorted(set(keys)))


def parse(text: object, *, limit: int = LIMIT) -> list[Key]:
    """The keys of a list as written by ``render``; lines that are not a key are skipped.

    The ConfigMap is the operator's own, but anyone with write access to its
    namespace could edit it: at worst it names ``limit`` objects to GET.
    """
    if not isinstance(text, str):
        return []
    keys: list[Key] = []
    for line in text.splitlines():
        namespace, _, name = line.strip().partition("/")
        if _NAMESPACE.match(namespace) and _NAME.match(name):
            keys.append((namespace, name))
            if len(keys) >= limit:
                break
    return keys


def selected(body: Mapping[str, Any], wanted: Mapping[str, str | None] | None) -> bool:
    """Whether ``body``'s labels match the operator's equality selector (None: all)."""
    if not wanted:
        return True
    meta = body.get("metadata")
    found = (meta.get("labels") if isinstance(meta, Mapping) else None) or {}
    if not isinstance(found, Mapping):
        return False
    return all(k in found and (v is None or found[k] == v) for k, v in wanted.items())


class DueSoonWriter:
    """Keeps the list current while this replica leads, once it knows every schedule.

    Not before ``ready`` (every schedule listed): a starting replica's view is
    empty or partial, and writing it would erase the list it is reading,
    and the one the next restart needs.
    """

    def __init__(
        self,
        *,
        kube: Kube,
        source: DueSoon,
        ready: Callable[[], bool],
        namespace: str,
        name: str,
        every: float = WRITE_EVERY,
    ) -> None:
        self._kube = kube
        self._source = source
        self._ready = ready
        self._namespace = namespace
        self._name = name
        self._every = every
        self._written: str | None = None
        self._failing = False
        self.last_beat: float | None = None

    async def run(self) -> None:
        while True:
            self.last_beat = time.monotonic()
            await self.tick()
            # Until a first write (a start, a takeover), look every second: the sooner
            # the list is current again, the less a crash meanwhile loses. No calls.
            await asyncio.sleep(self._every if self._written is not None else 1.0)

    async def tick(self) -> None:
        """Write the list if this replica leads, knows every schedule, and the set changed.

        A failure is logged once and tried at the next tick.
        """
        if not self._source.leading:
            self._written = None  # another leader writes meanwhile: write afresh on return
            return
        if not self._ready():
            return
        text = render(self._source.due_within(HORIZON, limit=LIMIT))
        if text == self._written:
            return
        try:
            await self._kube.write_config_map_data(
                namespace=self._namespace, name=self._name, data={DATA_KEY: text}
            )
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "cannot write the due-soon list to ConfigMap %s/%s (a restart will wait for "
                    "the listing): %s",
                    self._namespace,
                    self._name,
                    exc,
                )
            self._failing = True
            return
        if self._failing:
            log.info("the due-soon list is written again")
        self._written, self._failing = text, False


class DueSoonReader:
    """Reads the list once, and the schedules it names for each informer that asks."""

    def __init__(
        self,
        *,
        kube: Kube,
        namespace: str,
        name: str,
        selector: Mapping[str, str | None] | None,
        at_once: int = READ_AT_ONCE,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._name = name
        self._selector = selector
        self._at_once = at_once
        self._keys: asyncio.Task[list[Key]] | None = None

    async def keys(self) -> list[Key]:
        """The list's keys, read once whoever asks first; none when it cannot be read."""
        if self._keys is None:
            self._keys = asyncio.create_task(self._read())
        return await asyncio.shield(self._keys)

    async def _read(self) -> list[Key]:
        try:
            data = await self._kube.get_config_map_data(namespace=self._namespace, name=self._name)
        except Exception as exc:
            log.warning("cannot read the due-soon list %s/%s: %s", self._namespace, self._name, exc)
            return []
        keys = parse((data or {}).get(DATA_KEY))
        log.info("the due-soon list names %d schedules: read ahead of the listing", len(keys))
        return keys

    def bodies(self, namespace: str | None) -> AsyncIterator[Mapping[str, Any]]:
        """The listed schedules of ``namespace`` (None: all), as their GETs answer."""
        return self._bodies(namespace)

    async def _bodies(self, namespace: str | None) -> AsyncIterator[Mapping[str, Any]]:
        keys = [k for k in await self.keys() if namespace is None or k[0] == namespace]
        room = asyncio.Semaphore(self._at_once)

        async def one(key: Key) -> dict[str, Any] | None:
            async with room:
                return await self._kube.get_schedule(namespace=key[0], name=key[1])

        tasks = [asyncio.create_task(one(k)) for k in keys]
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    body = await next_done
                except Exception as exc:  # one schedule unread: its page brings it
                    log.debug("due-soon read: %s", exc)
                    continue
                if body is not None and selected(body, self._selector):
                    yield body
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
