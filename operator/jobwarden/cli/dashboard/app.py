"""The dashboard's web server: pages, their JSON, the live stream, and the actions.

aiohttp (already here through kopf) serves three HTML pages and their static
scripts from the package, JSON built by :mod:`.views` and :mod:`.compose`,
and one server-sent-events stream per open page fed by the :class:`.Hub`.
Every API call is the user's own, made with the plugin's client in a worker
thread (the Kubernetes client blocks), so the dashboard can do exactly what
``kubectl`` could and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Final, Protocol

from aiohttp import web

from jobwarden.cli.actions import ACTIONS, Refused, Schedules, take_action
from jobwarden.cli.dashboard.compose import build_manifest, compose
from jobwarden.cli.dashboard.hub import Hub
from jobwarden.cli.dashboard.security import SECURITY_HEADERS, Session, security_middleware
from jobwarden.cli.dashboard.views import overview, schedule_page
from jobwarden.cli.errors import CliError, Forbidden

__all__ = ["DASHBOARD", "RUNNER_OPTIONS", "Dashboard", "DashboardClient", "build_app"]

# Each page: its ``<main>`` (pages/NAME.html, with static/NAME.js) and its title.
PAGES: Final = {"overview": "overview", "schedule": "schedule", "compose": "compose a schedule"}
CONTENT_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# A comment line on an idle stream, so that proxies and the browser keep it open.
KEEPALIVE_SECONDS: Final = 15.0
MAX_BODY: Final = 256 * 1024
# How the server runs: no access log (request lines carry the token on the first
# visit and schedule names after it), and Ctrl-C left to the command line.
RUNNER_OPTIONS: Final[dict[str, Any]] = {
    "access_log": None,
    "handle_signals": False,
    "shutdown_timeout": 1.0,
}


class DashboardClient(Schedules, Protocol):
    """The user's API calls the dashboard makes beyond the actions'."""

    namespace: str

    def list_events(self, *, namespace: str, name: str, uid: str) -> list[dict[str, Any]]: ...

    def apply_schedule(self, *, manifest: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class Dashboard:
    """Everything one server needs, in one record."""

    session: Session
    hub: Hub
    client: DashboardClient
    clock: Callable[[], datetime]
    namespace: str | None  # the one watched, or None for all


DASHBOARD: Final = web.AppKey("dashboard", Dashboard)


@cache
def _asset(folder: str, name: str) -> bytes:
    return (resources.files(__package__) / folder / name).read_bytes()


def _static_names() -> frozenset[str]:
    folder = resources.files(__package__) / "static"
    return frozenset(f.name for f in folder.iterdir() if f.is_file())


def _json(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data, default=str), content_type="application/json"
    )


def _page(name: str) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        board = request.app[DASHBOARD]
        html = (
            _asset("pages", "layout.html")
            .decode()
            .replace("{{main}}", _asset("pages", f"{name}.html").decode())
            .replace("{{page}}", name)
            .replace("{{title}}", PAGES[name])
            .replace("{{csrf}}", board.session.csrf)
        )
        return web.Response(text=html, content_type="text/html")

    return handler


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    if name not in _static_names():
        raise web.HTTPNotFound()
    suffix = name[name.rfind(".") :]
    return web.Response(body=_asset("static", name), content_type=CONTENT_TYPES[suffix])


def _overview(board: Dashboard, namespace: str | None) -> dict[str, Any]:
    data = overview(board.hub.items(), now=board.clock(), namespace=namespace)
    return {**data, "synced": board.hub.synced, "error": board.hub.error}


async def _schedule(board: Dashboard, namespace: str, name: str) -> dict[str, Any]:
    obj = board.hub.objects.get((namespace, name))
    if obj is None:
        obj = await asyncio.to_thread(board.client.get_schedule, namespace=namespace, name=name)
    meta = obj.get("metadata") or {}
    events: list[dict[str, Any]] | None = None
    note: str | None = None
    try:
        events = await asyncio.to_thread(
            board.client.list_events, namespace=namespace, name=name, uid=str(meta.get("uid"))
        )
    except CliError as exc:
        note = f"unavailable: {exc.message}"
    return schedule_page(obj, now=board.clock(), events=events, events_note=note)


async def _api_overview(request: web.Request) -> web.Response:
    return _json(_overview(request.app[DASHBOARD], request.query.get("namespace") or None))


async def _api_schedule(request: web.Request) -> web.Response:
    info = request.match_info
    try:
        data = await _schedule(request.app[DASHBOARD], info["namespace"], info["name"])
    except CliError as exc:
        return _json({"error": exc.message}, status=404)
    return _json(data)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def _api_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the page's whole view again whenever the schedules move."""
    board = request.app[DASHBOARD]
    namespace = request.query.get("namespace") or None
    name = request.query.get("name")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # the page went away: nothing left to send
        await _follow(board, response, namespace=namespace, name=name)
    return response


async def _follow(
    board: Dashboard, response: web.StreamResponse, *, namespace: str | None, name: str | None
) -> None:
    seen, shown_version = -1, None
    while True:
        if board.hub.version > seen:
            seen = board.hub.version
            if name is None:
                await response.write(_sse("overview", _overview(board, namespace)))
            else:
                obj = board.hub.objects.get((namespace or "", name))
                version = (obj or {}).get("metadata", {}).get("resourceVersion")
                if obj is not None and version != shown_version:
                    shown_version = version
                    data = await _schedule(board, namespace or "", name)
                    await response.write(_sse("schedule", data))
                elif obj is None and board.hub.synced and shown_version is not None:
                    shown_version = None
                    await response.write(_sse("gone", {"name": name}))
        elif not await board.hub.wait(after=seen, timeout=KEEPALIVE_SECONDS):
            await response.write(b": keepalive\n\n")


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="the body is not JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="the body is not a JSON object")
    return data


async def _api_action(request: web.Request) -> web.Response:
    board = request.app[DASHBOARD]
    info = request.match_info
    if info["action"] not in ACTIONS:
        return _json({"error": f"unknown action {info['action']!r}"}, status=404)
    try:
        result = await asyncio.to_thread(
            take_action,
            board.client,
            info["action"],
            namespace=info["namespace"],
            name=info["name"],
            now=board.clock(),
        )
    except Refused as exc:
        return _json({"error": exc.message, "server": exc.server}, status=403)
    except CliError as exc:
        return _json({"error": exc.message}, status=409)
    return _json({"message": result.message})


async def _api_compose(request: web.Request) -> web.Response:
    board = request.app[DASHBOARD]
    form = await _body(request)
    default = board.namespace or board.client.namespace
    return _json(compose(form, now=board.clock(), default_namespace=default).to_api())


async def _api_apply(request: web.Request) -> web.Response:
    """Server-side apply of the composed schedule, as the user: the explicit second step."""
    board = request.app[DASHBOARD]
    form = await _body(request)
    composed = compose(form, now=board.clock(), default_namespace=board.client.namespace)
    if composed.error:
        return _json({"error": composed.error}, status=422)
    manifest = build_manifest(form)
    manifest["metadata"].setdefault("namespace", board.namespace or board.client.namespace)
    try:
        obj = await asyncio.to_thread(board.client.apply_schedule, manifest=manifest)
    except Forbidden as exc:
        return _json({"error": exc.message, "server": exc.message}, status=403)
    except CliError as exc:
        return _json({"error": exc.message}, status=422)
    meta = obj.get("metadata") or {}
    return _json(
        {
            "message": f"applied {meta.get('namespace')}/{meta.get('name')}",
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
        }
    )


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    """Security headers on every response, streams and errors included."""
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)


def build_app(board: Dashboard) -> web.Application:
    """The aiohttp application of one dashboard server."""
    app = web.Application(
        middlewares=[security_middleware(board.session)], client_max_size=MAX_BODY
    )
    app[DASHBOARD] = board
    app.on_response_prepare.append(_headers)
    app.router.add_get("/", _page("overview"))
    app.router.add_get("/schedules/{namespace}/{name}", _page("schedule"))
    app.router.add_get("/compose", _page("compose"))
    app.router.add_get("/static/{file}", _static)
    app.router.add_get("/api/overview", _api_overview)
    app.router.add_get("/api/schedules/{namespace}/{name}", _api_schedule)
    app.router.add_get("/api/stream", _api_stream)
    app.router.add_post("/api/schedules/{namespace}/{name}/actions/{action}", _api_action)
    app.router.add_post("/api/compose", _api_compose)
    app.router.add_post("/api/apply", _api_apply)
    return app
