"""Informers: a paged LIST and a WATCH from its resourceVersion, into a store.

kopf's watches served the operator until thousands of objects: its index
readiness toggles made the initial listing cost time quadratic (and worse)
in the objects listed. An informer here costs one pass per listed object:
each is decoded, projected to the slim value the operator keeps, compared
with the stored one, and handed to a sink only when that value changed.

The loop of one informer: LIST in pages (one snapshot resourceVersion),
and as soon as the first page gives that version, WATCH from it (with
bookmarks and a server timeout, and again from the last version seen) while
the other pages are read: after a restart beside 50,000 objects the pages
take a minute, and what changed meanwhile is not held behind them (the
store keeps the newer of a page and the watch). A 410 Gone (the version fell out of the API server's
window) relists, and the store is diffed against the new listing so that an
object deleted in the gap gets a DELETED change like any other. Other
errors back off with jitter. A bad object (one that will not decode, or
whose projection raises) is logged and skipped; it never ends the stream.

An informer may be primed: objects read ahead of its first listing (by
GET, from a list its last run left), taken while the pages are read and
given way to by them (see ``Store.hinted``).

The streams go through ``jobwarden.apisession``; what is kept, and which of
a page and a watch event is newer, is ``jobwarden.store``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, TypeVar

from jobwarden.apisession import ApiError, Connection, Gone
from jobwarden.store import Change, ObjectKey, Store

__all__ = ["ApiError", "Change", "Connection", "Gone", "Informer", "ObjectKey", "Store", "paths"]

log = logging.getLogger(__name__)

V = TypeVar("V")

# A watch ends after this many seconds and is opened again from the last version:
# even a resource that never changes shows a live stream at this pace.
WATCH_TIMEOUT_SECONDS = 60
# No beat for this long means the stream stopped or fell behind: the server timeout,
# plus the longest back-off, plus slack for a busy event loop.
STALE_AFTER_SECONDS = 180.0
PAGE_SIZE = 500
BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0

_NAME = re.compile(rb'(?<!\\)"name"\s*:\s*"([^"\\]{1,253})"')
_CONTINUE = re.compile(rb'(?<!\\)"continue"\s*:\s*"([^"\\]*)"')


class Backoff:
    """Exponential delays with equal jitter: replicas that lost the API server together
    do not all come back at the same instant."""

    def __init__(self, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> None:
        self._base, self._cap, self._failures = base, cap, 0

    def reset(self) -> None:
        self._failures = 0

    def next(self) -> float:
        ceiling = min(self._cap, self._base * 2.0 ** min(self._failures, 30))
        self._failures += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def object_key(body: Mapping[str, Any]) -> ObjectKey:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _named(raw: bytes) -> str:
    """The first ``"name"`` in raw JSON, for a log line about an object that will not decode."""
    found = _NAME.search(raw)
    return found.group(1).decode(errors="replace") if found else "?"


Project = Callable[[Mapping[str, Any]], V | None]
Sink = Callable[[Change[V]], None]
# Objects to take ahead of the first listing's pages (see Store.hinted).
Prime = Callable[[], AsyncIterator[Mapping[str, Any]]]


class Informer(Generic[V]):
    """LIST then WATCH one resource path (optionally a label selector) into a ``Store``.

    ``project`` turns a body into the value kept (``None``: not kept); ``sink``
    hears every change of a kept value, including deletions found by a relist.
    """

    def __init__(
        self,
        *,
        connection: Connection,
        path: str,
        project: Project[V],
        sink: Sink[V],
        selector: str | None = None,
        name: str = "",
        page_size: int = PAGE_SIZE,
        watch_timeout: int = WATCH_TIMEOUT_SECONDS,
        prime: Prime | None = None,
    ) -> None:
        self._conn = connection
        self._path = path
        self._project = project
        self._sink = sink
        self._selector = selector
        self.name = name or (f"{path}?labelSelector={selector}" if selector else path)
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self._prime = prime
        self._priming: asyncio.Task[None] | None = None
        self.store: Store[V] = Store()
        self.synced = asyncio.Event()  # the first listing is complete
        self.last_beat = time.monotonic()
        self.listings = 0
        self._version = ""  # the last resourceVersion seen: the listing's, then the watch's

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def _query(self, **extra: str) -> dict[str, str]:
        query = {"labelSelector": self._selector} if self._selector else {}
        query.update(extra)
        return query

    @property
    def path(self) -> str:
        return self._path

    async def run(self) -> None:
        """Forever: list while watching; relist on 410; back off on errors.

        What is read ahead (``prime``) is taken until the first listing is
        complete, however many tries that listing takes: a listing the API
        server keeps failing must not hold back a run due meanwhile.
        """
        backoff = Backoff()
        if self._prime is not None:
            self.store.begin_relist()
            self._priming = asyncio.create_task(self._read_ahead(self._prime))
        try:
            await self._cycles(backoff)
        finally:
            await self._stop_reading_ahead()

    async def _cycles(self, backoff: Backoff) -> None:
        while True:
            try:
                await self._cycle(backoff)
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("%s: resourceVersion %s expired; listing again", self.name, self._version)
            except Exception as exc:
                delay = backoff.next()
                log.warning("%s: %s; retrying in %.1f s", self.name, _describe(exc), delay)
                await asyncio.sleep(delay)

    async def _cycle(self, backoff: Backoff) -> None:
        """One listing and the watch from its version, until the watch's 410.

        The watch opens as soon as the first page gives the listing's version,
        not after the last page: beside 50,000 objects the pages take a minute,
        and a schedule created or changed meanwhile must not wait for them. The
        store decides which of the two told newer (see ``jobwarden.store``).
        A 410 of the watch ends the listing too (it restarts from scratch).

        A listing slow enough that its continue token expires (the API server
        compacts its history every 5 minutes; a loaded start beside 50,000
        took longer) would start over, and could do so forever. Once the
        watch is open it reads on with the token the 410 offers instead: the
        rest is then as of now, not of the snapshot, which the watch covers
        (it sends everything since the snapshot, so the store ends at the
        newest state whatever order the two arrive in).
        """
        self.store.begin_relist()
        began = time.monotonic()
        watching: asyncio.Task[None] | None = None
        try:
            token = ""
            while True:
                try:
                    version, token = await self._next_page(token)
                except Gone as gone:
                    if watching is None or not gone.resume:
                        raise
                    log.info("%s: the listing's snapshot expired; reading on", self.name)
                    version, token = "", gone.resume
                    continue
                if watching is None and version:
                    self._version = version
                    watching = asyncio.create_task(self._watching(backoff))
                elif watching is not None and watching.done():
                    watching.result()  # its 410 (or a bug): list again
                self.beat()
                if not token:
                    break
            await self._stop_reading_ahead()  # listed: what is not read by now need not be
            for change in self.store.end_relist():
                self._deliver(change)
            self.listings += 1
            # When a start beside many objects is slow, the log says which listing took it.
            log.info(
                "%s: listed (%d kept) in %.1f s",
                self.name,
                len(self.store),
                time.monotonic() - began,
            )
            self.synced.set()
            if watching is None:
                raise ApiError(0, "the listing carried no resourceVersion")
            await watching
        finally:
            if watching is not None and not watching.done():
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching

    async def _stop_reading_ahead(self) -> None:
        task, self._priming = self._priming, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read_ahead(self, prime: Prime) -> None:
        """Take the objects read ahead; a failure costs only the head start."""
        taken = 0
        try:
            async for body in prime():
                self._receive(body, how=self.store.hinted)
                taken += 1
        except Exception as exc:
            log.warning("%s: reading ahead of the listing: %s", self.name, _describe(exc))
        if taken:
            log.info("%s: %d read ahead of the listing", self.name, taken)

    async def _watching(self, backoff: Backoff) -> None:
        """Watch from the last version seen, again and again; only a 410 ends it."""
        while True:
            try:
                await self._watch()
                backoff.reset()
            except (asyncio.CancelledError, Gone):
                raise
            except Exception as exc:
                delay = backoff.next()
                log.warning("%s: %s; retrying in %.1f s", self.name, _describe(exc), delay)
                await asyncio.sleep(delay)

    # --- listing ----------------------------------------------------------------------

    async def _next_page(self, token: str) -> tuple[str, str]:
        """Take the page at ``token`` into the store: the listing's version and the next token."""
        page = await self._page(token, self._page_size)
        if page is None:
            # A page that will not decode: one object at a time, skipping the bad one.
            return await self._pick_through(token)
        return self._take_page(page)

    async def _page(self, token: str, limit: int) -> dict[str, Any] | None:
        raw = await self._fetch(token, limit)
        try:
            page: dict[str, Any] = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        return page

    async def _fetch(self, token: str, limit: int) -> bytes:
        extra = {"limit": str(limit)}
        if token:
            extra["continue"] = token
        response = await self._conn.get(self._path, self._query(**extra), read_timeout=120)
        async with response:
            return await response.read()

    def _take_page(self, page: Mapping[str, Any]) -> tuple[str, str]:
        for body in page.get("items") or []:
            self._receive(body, how=self.store.listed)
        meta = page.get("metadata") or {}
        return str(meta.get("resourceVersion") or ""), str(meta.get("continue") or "")

    async def _pick_through(self, token: str) -> tuple[str, str]:
        """The page at ``token`` read one object per page: (version, the token after it)."""
        version = ""
        for _ in range(self._page_size):
            raw = await self._fetch(token, 1)
            try:
                page = json.loads(raw)
            except (ValueError, RecursionError):
                log.error("%s: object %s cannot be decoded; skipped", self.name, _named(raw))
                found = _CONTINUE.search(raw)
                if found is None:
                    raise ApiError(0, "a listed object cannot be decoded") from None
                token = found.group(1).decode()
            else:
                found_version, token = self._take_page(page)
                version = version or found_version
            if not token:
                break
        return version, token

    # --- watching ---------------------------------------------------------------------

    async def _watch(self) -> None:
        """One watch from the last version seen until the server ends it."""
        query = self._query(
            watch="1",
            resourceVersion=self._version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(self._watch_timeout),
        )
        response = await self._conn.get(self._path, query, read_timeout=self._watch_timeout + 30.0)
        self.beat()
        async with response:
            pending = b""
            async for chunk in response.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._version = self._event(line) or self._version
                        self.beat()

    def _event(self, line: bytes) -> str | None:
        """Apply one watch event; the resourceVersion it carries, if any."""
        try:
            event = json.loads(line)
            kind, body = event["type"], event["object"]
        except (ValueError, RecursionError, KeyError, TypeError):
            log.error("%s: watch event for %s cannot be decoded; skipped", self.name, _named(line))
            return None
        if kind == "ERROR":
            if body.get("code") == 410:
                raise Gone(str(body.get("message", "")))
            raise ApiError(int(body.get("code") or 0), str(body.get("message", "")))
        version = (body.get("metadata") or {}).get("resourceVersion")
        if kind == "DELETED":
            change = self.store.watched(object_key(body), None, None)
            if change is not None:
                self._deliver(change)
        elif kind in ("ADDED", "MODIFIED"):
            self._receive(body, how=self.store.watched)
        return str(version) if version else None

    # --- one object -------------------------------------------------------------------

    def _receive(
        self,
        body: Mapping[str, Any],
        *,
        how: Callable[[ObjectKey, V | None, Mapping[str, Any]], Change[V] | None],
    ) -> None:
        """Project ``body`` and hand it to the store by ``how`` (listed, watched, hinted)."""
        key = object_key(body)
        try:
            value = self._project(body)
        except Exception:
            log.exception("%s: object %s/%s skipped", self.name, *key)
            return
        change = how(key, value, body)
        if change is not None:
            self._deliver(change)

    def _deliver(self, change: Change[V]) -> None:
        try:
            self._sink(change)
        except Exception:
            log.exception("%s: handling a change of %s/%s failed", self.name, *change.key)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def paths(*, collection: str, namespaces: tuple[str, ...]) -> list[str]:
    """One path per watched namespace, or the cluster-wide one.

    ``collection`` is like ``/apis/batch/v1/{ns}jobs``; ``{ns}`` becomes
    ``namespaces/<name>/`` or nothing.
    """
    if not namespaces:
        return [collection.format(ns="")]
    return [collection.format(ns=f"namespaces/{n}/") for n in namespaces]
