"""Start a dashboard: bind loopback, print the signed URL, follow the schedules, serve.

The socket is bound before anything else so that the port (a free one by
default) is known for the URL and the session's cookie name. The server's
access log is off (:data:`~jobwarden.cli.dashboard.app.RUNNER_OPTIONS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import webbrowser
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from jobwarden.cli.client import Client
from jobwarden.cli.dashboard.app import RUNNER_OPTIONS, Dashboard, build_app
from jobwarden.cli.dashboard.hub import Hub, start_watch
from jobwarden.cli.dashboard.security import Session
from jobwarden.cli.errors import CliError
from jobwarden.cli.follow import follow
from jobwarden.cli.output import Console

__all__ = ["bind", "serve"]

ADDRESS = "127.0.0.1"


def bind(port: int) -> socket.socket:
    """A listening socket on loopback; ``port`` 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ADDRESS, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {ADDRESS}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


async def _serve(
    *,
    client: Client,
    namespace: str | None,
    port: int,
    open_browser: bool,
    console: Console,
    clock: Callable[[], datetime],
) -> None:
    sock = bind(port)
    session = Session(port=sock.getsockname()[1])
    hub = Hub()
    board = Dashboard(session=session, hub=hub, client=client, clock=clock, namespace=namespace)
    runner = web.AppRunner(build_app(board), **RUNNER_OPTIONS)
    await runner.setup()
    stop = threading.Event()
    try:
        await web.SockSite(runner, sock, shutdown_timeout=1.0).start()
        start_watch(
            hub,
            loop=asyncio.get_running_loop(),
            changes=lambda: follow(client, namespace=namespace),
            stop=stop,
        )
        url = session.url()
        scope = f'namespace "{namespace}"' if namespace else "all namespaces"
        console.print(f"Serving the jobwarden dashboard for {scope} at {url}")
        console.print("Press Ctrl-C to stop.")
        if open_browser:
            await asyncio.to_thread(webbrowser.open, url)
        await asyncio.Event().wait()
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await runner.cleanup()


def serve(
    *,
    client: Client,
    namespace: str | None,
    port: int,
    open_browser: bool,
    console: Console,
    clock: Callable[[], datetime],
) -> int:
    """Serve until interrupted (Ctrl-C ends the command with status 130)."""
    asyncio.run(
        _serve(
            client=client,
            namespace=namespace,
            port=port,
            open_browser=open_browser,
            console=console,
            clock=clock,
        )
    )
    return 0
