"""The dashboard's server: its door (token to cookie, Host, CSRF, headers), stream and endpoints.

Driven through aiohttp's own test server and client (real HTTP on loopback),
against a fake API client: these rules are the server's, not the cluster's.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import webbrowser
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from jobwarden.cli.dashboard.app import RUNNER_OPTIONS, Dashboard, build_app
from jobwarden.cli.dashboard.hub import Hub
from jobwarden.cli.dashboard.security import CSRF_HEADER, SECURITY_HEADERS, Session, host_allowed
from jobwarden.cli.dashboard.server import Serve
from jobwarden.cli.errors import Forbidden
from jobwarden.cli.follow import Change
from jobwarden.cli.output import Console
from tests.support.operator import free_port
from tests.support.plugin import FakeClient

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)


def _schedule(name: str = "nightly") -> dict[str, Any]:
    return {
        "apiVersion": "jobwarden.io/v1alpha1",
        "kind": "JobSchedule",
        "metadata": {"name": name, "namespace": "team", "uid": "u1", "resourceVersion": "7"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {}},
        "status": {},
    }


Scenario = Callable[[ClientSession, str, Session, Hub], Awaitable[None]]


def _drive(scenario: Scenario, *, fake: FakeClient | None = None) -> FakeClient:
    """Run ``scenario`` against a dashboard server holding one schedule; the fake after."""
    client = fake or FakeClient(objects=[_schedule()])
    session = Session(port=free_port())

    async def main() -> None:
        hub = Hub()
        hub.apply(Change(type="SYNC", objects=list(client.objects)))
        board = Dashboard(
            session=session, hub=hub, client=client, clock=lambda: NOW, namespace=None
        )
        server = TestServer(build_app(board), host="127.0.0.1", port=session.port)
        await server.start_server(**RUNNER_OPTIONS)  # as the command runs it
        try:
            # unsafe=True: accept cookies from an IP address, as browsers do.
            async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
                await scenario(http, f"http://127.0.0.1:{session.port}", session, hub)
        finally:
            await server.close()

    asyncio.run(main())
    return client


async def _signed_in(http: ClientSession, base: str, session: Session) -> None:
    async with http.get(f"{base}/?token={session.token}", allow_redirects=False) as r:
        assert r.status == 302


def test_the_token_becomes_a_strict_httponly_cookie_and_leaves_the_url() -> None:
    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        url = f"{base}/compose?token={session.token}&x=1"
        async with http.get(url, allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"] == "/compose?x=1"
            cookie = r.headers["Set-Cookie"]
            assert cookie.startswith(f"{session.cookie}={session.token};")
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with http.get(f"{base}/compose") as r:
            assert r.status == 200
            assert session.token not in await r.text()

    _drive(scenario)


@pytest.mark.parametrize("path", ["/", "/compose", "/api/overview", "/static/common.js"])
def test_without_the_cookie_nothing_is_served(path: str) -> None:
    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        async with http.get(f"{base}{path}") as r:
            assert r.status == 403
            assert "printed" in await r.text()

    _drive(scenario)


def test_a_wrong_token_or_cookie_is_refused() -> None:
    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        async with http.get(f"{base}/?token=guess", allow_redirects=False) as r:
            assert r.status == 403
            assert "Set-Cookie" not in r.headers
        http.cookie_jar.update_cookies({session.cookie: "guess"})
        async with http.get(f"{base}/api/overview") as r:
            assert r.status == 403

    _drive(scenario)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8080", True),
        ("localhost:1", True),
        ("[::1]:80", True),
        ("LOCALHOST", True),
        ("evil.example:8080", False),
        ("127.0.0.1.evil.example", False),
        ("", False),
        (None, False),
    ],
)
def test_host_header_must_name_loopback(host: str | None, allowed: bool) -> None:
    assert host_allowed(host) is allowed


def test_a_rebound_host_is_refused_even_with_the_cookie() -> None:
    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        async with http.get(f"{base}/api/overview", headers={"Host": "attacker.example"}) as r:
            assert r.status == 421

    _drive(scenario)


def test_actions_need_the_csrf_header_of_this_session() -> None:
    path = "/api/schedules/team/nightly/actions/run"

    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        async with http.post(f"{base}{path}", json={}) as r:
            assert r.status == 403
        async with http.post(f"{base}{path}", json={}, headers={CSRF_HEADER: "guess"}) as r:
            assert r.status == 403
        async with http.post(f"{base}{path}", json={}, headers={CSRF_HEADER: session.csrf}) as r:
            assert r.status == 200
            assert "run requested" in (await r.json())["message"]

    fake = _drive(scenario)
    assert len(fake.patches) == 1  # only the request with the header acted


def test_the_page_holds_the_csrf_value_and_no_inline_script() -> None:
    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        for page in ("/", "/compose", "/schedules/team/nightly"):
            async with http.get(f"{base}{page}") as r:
                html = await r.text()
                assert f'name="jobwarden-csrf" content="{session.csrf}"' in html
                assert "<script>" not in html and " on" + "click=" not in html
                assert session.token not in html

    _drive(scenario)


@pytest.mark.parametrize(
    "path", ["/", "/api/overview", "/static/dashboard.css", "/nowhere", "/?token=bad"]
)
def test_every_response_carries_the_security_headers(path: str) -> None:
    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        async with http.get(f"{base}{path}") as r:
            for name, value in SECURITY_HEADERS.items():
                assert r.headers.get(name) == value, name
            csp = r.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp

    _drive(scenario)


def test_a_refused_action_returns_the_api_servers_reason() -> None:
    fake = FakeClient(objects=[_schedule()], refuse_patches=True, denied=frozenset())

    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        path = f"{base}/api/schedules/team/nightly/actions/suspend"
        async with http.post(path, json={}, headers={CSRF_HEADER: session.csrf}) as r:
            assert r.status == 403
            body = await r.json()
            assert body["server"].startswith("forbidden: cannot patch jobschedules.jobwarden.io")

    _drive(scenario, fake=fake)


def test_nothing_secret_or_user_named_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        async with http.get(f"{base}/schedules/team/nightly") as r:
            assert r.status == 200
        secrets_seen = [session.token, session.csrf, "nightly"]
        assert not [
            rec for rec in caplog.records if any(s in rec.getMessage() for s in secrets_seen)
        ]

    _drive(scenario)


# --- the live stream and the endpoints -----------------------------------------------------


async def _next_event(lines: Any) -> tuple[str, dict[str, Any]]:
    """The next server-sent event (skipping keepalive comments)."""
    event, data = "", ""
    async for raw in lines:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and event:
            return event, json.loads(data)
    raise AssertionError("the stream ended")


def test_the_stream_sends_the_overview_again_when_a_schedule_changes() -> None:
    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        async with http.get(f"{base}/api/stream") as r:
            assert r.headers["Content-Type"] == "text/event-stream"
            event, first = await _next_event(r.content)
            assert event == "overview" and first["schedules"][0]["lastResult"] is None
            changed = _schedule()
            changed["status"] = {"history": [{"job": "j1", "result": "Failed"}]}
            hub.apply(Change(type="MODIFIED", objects=[changed]))
            event, second = await _next_event(r.content)
            assert second["schedules"][0]["lastResult"] == "Failed"

    _drive(scenario)


def test_a_schedule_stream_sends_only_when_its_object_changes() -> None:
    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        async with http.get(f"{base}/api/stream?namespace=team&name=nightly") as r:
            event, page = await _next_event(r.content)
            assert event == "schedule" and page["name"] == "nightly"
            other = _schedule("other")
            hub.apply(Change(type="ADDED", objects=[other]))  # not this page's schedule
            changed = _schedule()
            changed["metadata"]["resourceVersion"] = "8"
            changed["spec"]["suspend"] = True
            hub.apply(Change(type="MODIFIED", objects=[changed]))
            event, page = await _next_event(r.content)
            assert event == "schedule" and page["row"]["suspended"] is True
            hub.apply(Change(type="DELETED", objects=[changed]))
            assert (await _next_event(r.content))[0] == "gone"

    _drive(scenario)


def test_compose_previews_and_apply_is_a_separate_request() -> None:
    form = {"name": "made", "namespace": "team", "preset": "cron", "schedule": "0 6 * * *"}

    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        headers = {CSRF_HEADER: session.csrf}
        async with http.post(f"{base}/api/compose", json=form, headers=headers) as r:
            body = await r.json()
            assert body["runs"][0]["utc"] == "2027-01-02T06:00:00Z" and body["error"] is None
            assert "name: made" in body["yaml"]
        async with http.post(f"{base}/api/apply", json=form, headers=headers) as r:
            assert r.status == 200 and (await r.json())["name"] == "made"

    fake = _drive(scenario)
    (applied,) = fake.applied
    assert applied["spec"]["schedule"] == "0 6 * * *"


def test_an_apply_the_api_server_refuses_says_so() -> None:
    fake = FakeClient(objects=[_schedule()], refuse_patches=True)
    form = {"name": "made", "preset": "daily"}

    async def scenario(http: ClientSession, base: str, session: Session, hub: Hub) -> None:
        await _signed_in(http, base, session)
        headers = {CSRF_HEADER: session.csrf}
        async with http.post(f"{base}/api/apply", json=form, headers=headers) as r:
            assert r.status == 403
            assert "forbidden: cannot patch" in (await r.json())["error"]

    _drive(scenario, fake=fake)
    assert fake.applied == []


# --- the command's server ------------------------------------------------------------------


class _RefusingList(FakeClient):
    """A user who may not list schedules: the watch fails and the page must say why."""

    def list_schedules(self, *, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        raise Forbidden('forbidden: cannot list jobschedules.jobwarden.io in namespace "team"')


def test_serve_binds_loopback_prints_the_signed_url_and_opens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    out = io.StringIO()
    command = Serve(
        client=_RefusingList(),  # type: ignore[arg-type]
        namespace="team",
        port=0,
        open_browser=True,
        console=Console(out=out, err=io.StringIO()),
        clock=lambda: NOW,
    )

    async def main() -> str:
        server = asyncio.create_task(command.run())
        deadline = asyncio.get_running_loop().time() + 10
        while "http://" not in out.getvalue():
            assert asyncio.get_running_loop().time() < deadline, "no URL printed"
            await asyncio.sleep(0.02)  # polling the printed output, bounded by the deadline
        url = out.getvalue().split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        base = url.split("/?", 1)[0]
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
            async with http.get(url) as r:
                assert r.status == 200 and "jobwarden-csrf" in await r.text()
            while True:  # the watch thread reports the refusal to the pages
                async with http.get(f"{base}/api/overview") as r:
                    error = (await r.json())["error"]
                if error:
                    break
                assert asyncio.get_running_loop().time() < deadline, "no error shown"
                await asyncio.sleep(0.02)
            assert error.startswith("forbidden: cannot list jobschedules")
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        return url

    url = asyncio.run(main())
    assert opened == [url]
    assert 'dashboard for namespace "team"' in out.getvalue()
