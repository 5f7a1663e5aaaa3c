"""Informers: a paged LIST, then a WATCH from its resourceVersion, into a store.

kopf's watches served the operator until thousands of objects: its index
readiness toggles made the initial listing cost time quadratic (and worse)
in the objects listed. An informer here costs one pass per listed object:
each is decoded, projected to the slim value the operator keeps, compared
with the stored one, and handed to a sink only when that value changed.

The loop of one informer: LIST in pages (one snapshot resourceVersion),
then WATCH from it with bookmarks and a server timeout, and again from the
last version seen. A 410 Gone (the version fell out of the API server's
window) relists, and the store is diffed against the new listing so that an
object deleted in the gap gets a DELETED change like any other. Other
errors back off with jitter. A bad object (one that will not decode, or
whose projection raises) is logged and skipped; it never ends the stream.

aiohttp (which kopf brings) carries the streams rather than the kubernetes
client's ``ApiClient``: that client is synchronous, so each open watch would
hold a thread for as long as it streams, one per resource and namespace.
The credentials and TLS settings still come from the client's
``Configuration``, so a bearer token it refreshes is refreshed here too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import aiohttp
from kubernetes import client

log = logging.getLogger(__name__)

V = TypeVar("V")
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

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


class Gone(Exception):
    """410: the resourceVersion is older than the API server keeps; relist."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


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
    """The kept value of every object of one informer, and the diff of a relist.

    Pure: no I/O. A relist is ``begin_relist``, then ``apply`` per listed
    object, then ``end_relist``, which returns a deletion for every kept
    object the listing did not contain (deleted while no watch was open).
    """

    def __init__(self) -> None:
        self._items: dict[ObjectKey, V] = {}
        self._unlisted: set[ObjectKey] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: ObjectKey) -> V | None:
        return self._items.get(key)

    def values(self) -> Iterator[V]:
        return iter(list(self._items.values()))

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

    def begin_relist(self) -> None:
        self._unlisted = set(self._items)

    def end_relist(self) -> list[Change[V]]:
        gone, self._unlisted = self._unlisted or set(), None
        return [Change(key=k, old=self._items.pop(k), new=None) for k in sorted(gone)]


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


class Connection:
    """One aiohttp session to the API server, with the kubernetes client's credentials."""

    def __init__(self, configuration: client.Configuration, *, user_agent: str = "") -> None:
        self._config = configuration
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        cfg = self._config
        if not cfg.host.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file)
        if not cfg.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _headers(self) -> dict[str, str]:
        # auth_settings() asks the client's refresh hook first: rotated tokens apply.
        headers = {"Accept": "application/json"}
        if self._user_agent:
            headers["User-Agent"] = self._user_agent
        settings: Mapping[str, Any] = self._config.auth_settings()
        for auth in settings.values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[str(auth["key"])] = str(auth["value"])
        return headers

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def get(
        self, path: str, query: Mapping[str, str], *, read_timeout: float
    ) -> aiohttp.ClientResponse:
        """An open response to ``GET path?query``; raises ``Gone`` or ``ApiError`` for non-2xx."""
        url = f"{self._config.host}{path}?{urlencode(query)}"
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=read_timeout)
        response = await self.session().get(url, headers=self._headers(), timeout=timeout)
        if response.status == 200:
            return response
        text = await response.text()
        response.release()
        if response.status == 410:
            raise Gone(text[:200])
        raise ApiError(response.status, text[:500])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


Project = Callable[[Mapping[str, Any]], V | None]
Sink = Callable[[Change[V]], None]


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
    ) -> None:
        self._conn = connection
        self._path = path
        self._project = project
        self._sink = sink
        self._selector = selector
        self.name = name or (f"{path}?labelSelector={selector}" if selector else path)
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self.store: Store[V] = Store()
        self.synced = asyncio.Event()  # the first listing is complete
        self.last_beat = time.monotonic()
        self.listings = 0

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
        """Forever: list, watch, watch again; relist on 410; back off on errors."""
        backoff = Backoff()
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._relist()
                    self.synced.set()
                version = await self._watch(version)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("%s: resourceVersion %s expired; listing again", self.name, version)
                version = None
            except Exception as exc:
                delay = backoff.next()
                log.warning("%s: %s; retrying in %.1f s", self.name, _describe(exc), delay)
                await asyncio.sleep(delay)

    # --- listing ----------------------------------------------------------------------

    async def _relist(self) -> str:
        """List every object into the store; deletions for those no longer there."""
        self.store.begin_relist()
        version = ""
        token = ""
        while True:
            page = await self._page(token, self._page_size)
            if page is None:
                # A page that will not decode: one object at a time, skipping the bad one.
                token = await self._pick_through(token)
            else:
                version, token = self._take_page(page)
            self.beat()
            if not token:
                break
        for change in self.store.end_relist():
            self._deliver(change)
        self.listings += 1
        return version

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
            self._receive(body)
        meta = page.get("metadata") or {}
        return str(meta.get("resourceVersion") or ""), str(meta.get("continue") or "")

    async def _pick_through(self, token: str) -> str:
        """The continue token after the page at ``token``, read one object per page."""
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
                _, token = self._take_page(page)
            if not token:
                break
        return token

    # --- watching ---------------------------------------------------------------------

    async def _watch(self, version: str) -> str:
        """One watch from ``version`` until the server ends it; the last version seen."""
        query = self._query(
            watch="1",
            resourceVersion=version,
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
                        version = self._event(line) or version
                        self.beat()
        return version

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
            change = self.store.apply(object_key(body), None, None)
            if change is not None:
                self._deliver(change)
        elif kind in ("ADDED", "MODIFIED"):
            self._receive(body)
        return str(version) if version else None

    # --- one object -------------------------------------------------------------------

    def _receive(self, body: Mapping[str, Any]) -> None:
        key = object_key(body)
        try:
            value = self._project(body)
        except Exception:
            log.exception("%s: object %s/%s skipped", self.name, *key)
            return
        change = self.store.apply(key, value, body)
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
