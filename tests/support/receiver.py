"""A local HTTP receiver of CloudEvents, as a notification sink run by a test or a bench.

It answers on 127.0.0.1 from its own threads (a hanging answer holds only its
own thread), parses each request with the CloudEvents SDK (structured or
binary mode), and keeps every attempt. ``unique`` deduplicates by the
CloudEvent identity, ``source`` + ``id``, as a real receiver would: what a
retry or a restart sent again counts once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

from tests.support.kube import PATIENCE


@dataclass(frozen=True)
class Received:
    """One request: the event it carried, what it was answered, and when it arrived."""

    id: str
    source: str
    type: str
    subject: str | None
    data: dict[str, Any]
    headers: dict[str, str]
    status: int  # 0 while a hanging receiver holds it
    at: float  # time.time() on arrival


# (attempt number of this id, starting at 1) -> the status to answer
Answer = Callable[[int], int]


@dataclass
class Receiver:
    """``answer``: the status per attempt of an id; ``hang``: hold every answer until
    ``release`` (or the receiver stops); ``token``: the bearer token required (401 else)."""

    answer: Answer = lambda attempt: 200
    hang: bool = False
    token: str | None = None
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _attempts: dict[str, int] = field(default_factory=dict)
    _released: threading.Event = field(default_factory=threading.Event)
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    hanging: int = 0  # requests being held right now
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/events"

    def release(self) -> None:
        self._released.set()

    def unique(self) -> dict[str, Received]:
        """The events accepted (2xx), once per ``source`` + ``id``, first arrival kept."""
        out: dict[str, Received] = {}
        for r in self.snapshot():
            if 200 <= r.status < 300:
                out.setdefault(f"{r.source} {r.id}", r)
        return out

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def wait(self, check: Callable[[Receiver], bool], *, timeout: float, what: str) -> None:
        """Until ``check`` holds, woken by each request; raises AssertionError after
        ``timeout`` times PATIENCE seconds."""
        deadline = time.monotonic() + timeout * PATIENCE
        with self._arrived:
            while not check(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver: {what} (got {len(self.requests)} requests)")
                self._arrived.wait(min(left, 1.0))

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        event = from_http(HTTPMessage(headers=headers, body=body), JSONFormat())
        attributes = event.get_attributes()
        with self._lock:
            attempt = self._attempts[event.get_id()] = self._attempts.get(event.get_id(), 0) + 1
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            status = 401
        else:
            status = self.answer(attempt)
        data = event.get_data()
        record = Received(
            id=event.get_id(),
            source=event.get_source(),
            type=event.get_type(),
            subject=attributes.get("subject"),
            data=data if isinstance(data, dict) else {},
            headers=headers,
            status=0 if self.hang else status,  # 0: held, not answered yet
            at=time.time(),
        )
        with self._lock:
            index = len(self.requests)
            self.requests.append(record)
        if self.hang:
            with self._lock:
                self.hanging += 1
            self._notify()
            self._released.wait()
            with self._lock:
                self.hanging -= 1
                self.requests[index] = replace(record, status=status)
        return status

    def _notify(self) -> None:
        with self._arrived:
            self._arrived.notify_all()

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status = receiver._handle(headers, body)
                except Exception:
                    status = 400
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting
                receiver._notify()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._released.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
