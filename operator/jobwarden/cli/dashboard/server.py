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
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from jobwarden.cli.client import Client
from jobwarden.cli.dashboard.app import RUNNER_OPTIONS, Dashboard, build_app
from jobwarden.cli.dashboard.hub import Hub, start_watch
from jobwarden.cli.dashboard.security import Session
from jobwarden.cli.errors import CliError
from jobwarden.cli.follow import follow
from jobwarden.cli.output import Console

__all__ = ["Serve", "bind", "serve"]

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


@dataclass(frozen=True, kw_only=True)
class Serve:
    """One ``dashboard`` command: whom it acts as, what it shows, where it listens."""

    client: Client
    namespace: str | None  # None: every namespace
    port: int
    open_browser: bool
    console: Console
    clock: Callable[[], datetime]

    async def run(self) -> None:
        """Bind, print the URL, follow the schedules and serve until cancelled."""
        sock = bind(self.port)
        session = Session(port=sock.getsockname()[1])
        hub = Hub()
        board = Dashboard(
            session=session, hub=hub, client=self.client, clock=self.clock, namespace=self.namespace
        )
        runner = web.AppRunner(build_app(board), **RUNNER_OPTIONS)
        await runner.setup()
        stop = threading.Event()
        try:
            await web.SockSite(runner, sock).start()
            start_watch(
                hub,
                loop=asyncio.get_running_loop(),
                changes=lambda: follow(self.client, namespace=self.namespace),
                stop=stop,
            )
            url = session.url()
            scope = f'namespace "{self.namespace}"' if self.namespace else "all namespaces"
            self.console.print(f"Serving the jobwarden dashboard for {scope} at {url}")
            self.console.print("Press Ctrl-C to stop.")
            if self.open_browser:
                await asyncio.to_thread(webbrowser.open, url)
            await asyncio.Event().wait()
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await runner.cleanup()


def serve(command: Serve) -> int:
    """Serve until interrupted (Ctrl-C ends the command with status 130)."""
    asyncio.run(command.run())
    return 0
