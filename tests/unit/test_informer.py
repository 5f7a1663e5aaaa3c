"""The informer against a small HTTP server speaking the API's list and watch protocol.

The cluster tests run it against a real API server; here the server is
scripted, so that each fault arrives exactly when the test says: a watch
event that will not decode, a listed object that will not decode, a 410
in the middle of a watch with an object deleted in the gap, a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from kubernetes import client

from jobwarden.watching import Change, Connection, Informer, Prime

UNDECODABLE = b"[" * 100_000  # nests deeper than any decoder's recursion allows


class FakeApi:
    """Objects by name, listed in pages; each watch request plays the next script."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.raw: dict[str, bytes] = {}  # objects that are listed as these bytes
        self.version = 100
        self.scripts: list[list[bytes | dict[str, Any] | int | asyncio.Event]] = []
        self.requests: list[dict[str, str]] = []
        self.watching = asyncio.Event()
        # Pages after the first wait for this, when set (a slow listing).
        self.later_pages: asyncio.Event | None = None
        # The next continued page answers 410 with a token for the rest as of now, once.
        self.expire_next_page = False
        # While set, every listing request answers 500 (an API server that cannot list).
        self.failing_lists = False
        # The listing in progress: every page is of the first page's snapshot, as the API's.
        self._snapshot: tuple[int, dict[str, bytes]] = (0, {})

    def put(self, name: str) -> dict[str, Any]:
        self.version += 1
        body = {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(self.version)}}
        self.objects[name] = body
        return body

    def delete(self, name: str) -> dict[str, Any]:
        """Delete ``name``: the body its DELETED event carries."""
        self.version += 1
        gone = self.objects.pop(name)
        return {"metadata": {**gone["metadata"], "resourceVersion": str(self.version)}}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append(query)
        if query.get("watch"):
            return await self._watch(request)
        token = query.get("continue") or ""
        if self.failing_lists:
            return web.Response(status=500, text="scripted listing failure")
        if token and self.expire_next_page:
            self.expire_next_page = False
            status = {"kind": "Status", "code": 410, "reason": "Expired"}
            status["metadata"] = {"continue": f"now:{token}"}
            return web.json_response(status, status=410)
        if token.startswith("now:"):  # the rest of an expired listing, as of now
            token = token.removeprefix("now:")
            listed = {n: json.dumps(body).encode() for n, body in self.objects.items()}
            self._snapshot = (self.version, {**listed, **self.raw})
        start = int(token or 0)
        if not start:
            listed = {n: json.dumps(body).encode() for n, body in self.objects.items()}
            self._snapshot = (self.version, {**listed, **self.raw})
        elif self.later_pages is not None:
            await self.later_pages.wait()
        version, snapshot = self._snapshot
        names = sorted(snapshot)
        limit = int(query.get("limit") or len(names))
        chunk = names[start : start + limit]
        more = str(start + limit) if start + limit < len(names) else ""
        meta = json.dumps({"resourceVersion": str(version), "continue": more}).encode()
        items = [snapshot[n] for n in chunk]
        body = b'{"metadata":' + meta + b',"items":[' + b",".join(items) + b"]}"
        return web.Response(body=body, content_type="application/json")

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        script = self.scripts.pop(0) if self.scripts else []
        if script and isinstance(script[0], int):
            return web.Response(status=script[0], text="scripted failure")
        response = web.StreamResponse()
        await response.prepare(request)
        self.watching.set()
        for step in script:
            if isinstance(step, asyncio.Event):
                await step.wait()
            elif isinstance(step, bytes):
                await response.write(step + b"\n")
            elif isinstance(step, dict):
                await response.write(json.dumps(step).encode() + b"\n")
        if not self.scripts:
            await asyncio.sleep(3600)  # the last script: an open, quiet stream
        return response


@contextlib.asynccontextmanager
async def _serving(fake: FakeApi) -> AsyncIterator[Connection]:
    app = web.Application()
    app.router.add_get("/apis/x/v1/things", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = client.Configuration(host=f"http://127.0.0.1:{port}")
    connection = Connection(config)
    try:
        yield connection
    finally:
        await connection.close()
        await runner.cleanup()


Scenario = Callable[[FakeApi, Connection], Awaitable[None]]


def _run(scenario: Scenario) -> None:
    async def main() -> None:
        fake = FakeApi()
        async with _serving(fake) as connection:
            await scenario(fake, connection)

    asyncio.run(main())


def _informer(
    connection: Connection, changes: list[Change[str]], *, prime: Prime | None = None
) -> Informer[str]:
    def project(body: Any) -> str:
        if body["metadata"]["name"] == "explodes":
            raise RuntimeError("projection failed")
        return str(body["metadata"]["resourceVersion"])

    return Informer(
        connection=connection,
        path="/apis/x/v1/things",
        project=project,
        sink=changes.append,
        page_size=2,
        prime=prime,
    )


async def _until(condition: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def _event(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": body}


def test_a_bad_event_is_skipped_and_a_410_relists_with_deletions_from_the_gap() -> None:
    _run(_bad_event_then_410)


async def _bad_event_then_410(fake: FakeApi, connection: Connection) -> None:
    for name in ("a", "b", "c", "d", "e"):
        fake.put(name)
    late = fake.put("f")
    gap = asyncio.Event()
    fake.scripts = [
        [
            b'{"type":"ADDED","object":{"metadata":{"name":"bad"' + UNDECODABLE,
            _event("ADDED", late),
            gap,
            _event("ERROR", {"kind": "Status", "code": 410, "message": "too old"}),
        ],
        [],
    ]
    changes: list[Change[str]] = []
    informer = _informer(connection, changes)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        assert len(informer.store) == 6, "six objects listed over three pages"
        await _until(lambda: informer.store.get(("ns", "f")) == "106")
        # Events the watch will never send: "b" and "f" deleted, "c" changed; then the 410.
        del fake.objects["b"]
        del fake.objects["f"]
        fake.put("c")
        gap.set()
        await _until(lambda: informer.listings == 2)
    finally:
        task.cancel()
    gone = [c for c in changes if c.new is None]
    assert {c.key for c in gone} == {("ns", "b"), ("ns", "f")}
    assert informer.store.get(("ns", "b")) is None
    assert informer.store.get(("ns", "c")) == str(fake.version)
    watches = [r for r in fake.requests if r.get("watch")]
    assert watches[0]["allowWatchBookmarks"] == "true"
    assert watches[0]["resourceVersion"] == "106", "watched from the listing's version"


def test_an_object_that_will_not_decode_or_project_skips_only_itself() -> None:
    _run(_bad_objects_in_a_listing)


async def _bad_objects_in_a_listing(fake: FakeApi, connection: Connection) -> None:
    for name in ("a", "b", "explodes", "z"):
        fake.put(name)
    fake.raw["c"] = b'{"metadata":{"name":"c","deep":' + UNDECODABLE + b"}"
    changes: list[Change[str]] = []
    informer = _informer(connection, changes)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
    finally:
        task.cancel()
    kept = {key[1] for key in [c.key for c in changes]}
    assert kept == {"a", "b", "z"}


def test_an_error_backs_off_and_watches_again_from_the_last_version() -> None:
    _run(_a_500_then_a_watch)


async def _a_500_then_a_watch(fake: FakeApi, connection: Connection) -> None:
    fake.put("a")
    fake.scripts = [[500], []]
    changes: list[Change[str]] = []
    informer = _informer(connection, changes)
    task = asyncio.create_task(informer.run())
    try:
        await _until(lambda: len([r for r in fake.requests if r.get("watch")]) == 2)
    finally:
        task.cancel()
    watches = [r for r in fake.requests if r.get("watch")]
    assert [w["resourceVersion"] for w in watches] == ["101", "101"]
    assert informer.listings == 1, "a 500 is retried, not relisted"


def _held_watch(fake: FakeApi, *kinds: str) -> tuple[asyncio.Event, list[dict[str, Any]]]:
    """Pages after the first held; the first watch sends one event of each kind once
    ``go`` is set, with the bodies the test fills in meanwhile (encoded only when sent)."""
    fake.later_pages = asyncio.Event()
    go = asyncio.Event()
    bodies: list[dict[str, Any]] = [{} for _ in kinds]
    fake.scripts = [[go, *(_event(k, b) for k, b in zip(kinds, bodies, strict=True))], []]
    return go, bodies


def test_the_watch_opens_at_the_first_page_and_a_later_page_never_undoes_it() -> None:
    """A listing beside 50,000 objects takes a minute: what changes meanwhile is seen
    from the watch at once, and the older snapshot in the later pages does not undo
    it (a deleted object stays deleted, a changed one keeps the watch's value)."""
    _run(_events_during_a_slow_listing)


async def _events_during_a_slow_listing(fake: FakeApi, connection: Connection) -> None:
    for name in ("a", "b", "c", "d", "e", "f"):
        fake.put(name)
    listed_at = fake.version
    go, (deleted, changed, created) = _held_watch(fake, "DELETED", "MODIFIED", "ADDED")
    changes: list[Change[str]] = []
    informer = _informer(connection, changes)
    task = asyncio.create_task(informer.run())
    try:
        # The later pages are held: only a watch opened beside the listing can see "g".
        await asyncio.wait_for(fake.watching.wait(), 10)
        deleted.update(fake.delete("e"))
        changed.update(fake.put("c"))
        created.update(fake.put("g"))
        go.set()
        await _until(
            lambda: informer.store.get(("ns", "g")) == created["metadata"]["resourceVersion"]
        )
        assert not informer.synced.is_set()
        fake.later_pages.set()
        await asyncio.wait_for(informer.synced.wait(), 10)
    finally:
        task.cancel()
    watches = [r for r in fake.requests if r.get("watch")]
    assert watches[0]["resourceVersion"] == str(listed_at), "watched from the listing's version"
    assert informer.store.get(("ns", "e")) is None, "a later page brought a deleted object back"
    assert informer.store.get(("ns", "c")) == changed["metadata"]["resourceVersion"]
    assert {c.key[1] for c in changes if c.new is not None} == set("abcdfg")
    assert "e" not in {c.key[1] for c in changes}, "deleted before its page: never told"


def test_an_expired_listing_reads_on_as_of_now_instead_of_starting_over() -> None:
    """A loaded start beside 50,000 objects listed for longer than the API server keeps
    its history: the continue token expired, and listing again from scratch could
    expire again, forever. With the watch open, the informer reads on with the token
    the 410 offers (the rest as of now), and ends with the newest state of each."""
    _run(_expired_listing)


async def _expired_listing(fake: FakeApi, connection: Connection) -> None:
    for name in ("a", "b", "c", "d", "e", "f"):
        fake.put(name)
    go, (deleted, changed) = _held_watch(fake, "DELETED", "MODIFIED")
    informer = _informer(connection, [])
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(fake.watching.wait(), 10)
        deleted.update(fake.delete("d"))
        changed.update(fake.put("e"))
        fake.expire_next_page = True
        fake.later_pages.set()
        await asyncio.wait_for(informer.synced.wait(), 10)
        go.set()  # the watch's events come after the rest was read as of now
        await _until(lambda: informer.store.get(("ns", "d")) is None)
    finally:
        task.cancel()
    firsts = [r for r in fake.requests if not r.get("watch") and not r.get("continue")]
    assert len(firsts) == 1, "listed again from scratch"
    assert informer.listings == 1
    assert {k: informer.store.get(("ns", k)) for k in "abcef"} == {
        k: fake.objects[k]["metadata"]["resourceVersion"] for k in "abcef"
    }


def test_objects_read_ahead_are_taken_before_their_page_and_give_way_to_it() -> None:
    """A schedule due soon, read ahead of a slow listing, is known before its page
    comes; its page replaces the copy; a copy of an object the listing does not hold
    (deleted since the list was written) is forgotten when the listing ends."""
    _run(_read_ahead)


async def _read_ahead(fake: FakeApi, connection: Connection) -> None:
    for name in ("a", "b", "c", "d", "e", "f"):
        fake.put(name)
    ahead = {"metadata": {"namespace": "ns", "name": "f", "resourceVersion": "ahead"}}
    stale = {"metadata": {"namespace": "ns", "name": "gone", "resourceVersion": "ahead"}}

    async def prime() -> AsyncIterator[dict[str, Any]]:
        for body in (ahead, stale):
            yield body

    fake.later_pages = asyncio.Event()  # "f" is on the last page, held
    changes: list[Change[str]] = []
    informer = _informer(connection, changes, prime=prime)
    task = asyncio.create_task(informer.run())
    try:
        await _until(lambda: informer.store.get(("ns", "f")) == "ahead")
        assert not informer.synced.is_set()
        fake.later_pages.set()
        await asyncio.wait_for(informer.synced.wait(), 10)
    finally:
        task.cancel()
    assert informer.store.get(("ns", "f")) == fake.objects["f"]["metadata"]["resourceVersion"]
    assert informer.store.get(("ns", "gone")) is None
    assert [c.new for c in changes if c.key == ("ns", "gone")] == ["ahead", None]


def test_objects_read_ahead_are_taken_while_the_listing_keeps_failing() -> None:
    """An API server that cannot list (it times the big LIST out) does not hold back
    what was read ahead; once a listing succeeds, it decides what is kept."""
    _run(_read_ahead_of_a_failing_listing)


async def _read_ahead_of_a_failing_listing(fake: FakeApi, connection: Connection) -> None:
    fake.put("a")
    ahead = {"metadata": {"namespace": "ns", "name": "a", "resourceVersion": "ahead"}}

    async def prime() -> AsyncIterator[dict[str, Any]]:
        while not fake.requests:
            await asyncio.sleep(0.01)  # after the first listing failed
        yield ahead

    fake.failing_lists = True
    informer = _informer(connection, [], prime=prime)
    task = asyncio.create_task(informer.run())
    try:
        await _until(lambda: informer.store.get(("ns", "a")) == "ahead")
        assert not informer.synced.is_set()
        fake.failing_lists = False
        await asyncio.wait_for(informer.synced.wait(), 30)
    finally:
        task.cancel()
    assert informer.store.get(("ns", "a")) == fake.objects["a"]["metadata"]["resourceVersion"]
