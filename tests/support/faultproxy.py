"""A loopback TLS proxy in front of the test cluster's API server that injects faults.

Tests point a client at it (``kubeconfig()``), and by default every request
goes through to the real API server and back: storage, admission, 409s and
preconditions stay the server's own. A rule, matched by method and path
pattern, makes the proxy answer a number of matching requests itself:

- ``status``: an HTTP error of its own (429 with ``Retry-After``, 500, 503),
  without forwarding, as the API server's flow control or a failing
  apiserver/etcd would;
- ``reset``: close the connection with a TCP RST, nothing forwarded;
- ``hang``: read the request and never answer (until ``stop``), as a
  stopped or black-holed API server does;
- ``drop``: forward the request, let the API server apply it, then reset
  the connection instead of answering: a response lost on the way back.

Why a proxy rather than server-side faults (API Priority and Fairness
objects, a failing webhook): APF's 429s come only under real overload and
not on cue, and a webhook cannot lose a response after the write was
stored. Here each fault happens to the n-th matching request, exactly.

TLS on both sides, as the operator talks to a real API server: the proxy
serves a certificate the cluster's CA signed (kwok's ``pki/`` directory
holds the CA key) and reaches the API server as the cluster admin, so the
requests it forwards are authorized as the kubeconfig's user would be.
Request/response calls only: watches are not proxied.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Fault = Literal["status", "reset", "hang", "drop"]
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
_REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


@dataclass
class Rule:
    """Answer ``times`` requests matching ``method`` and ``path`` (a regex) with ``fault``."""

    fault: Fault
    path: str
    method: str | None = None
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.hits < self.times
            and (self.method is None or self.method == method)
            and re.search(self.path, path) is not None
        )


@dataclass(frozen=True)
class Seen:
    """A request as it reached the proxy, and what the proxy did with it."""

    at: float  # time.monotonic()
    method: str
    path: str
    fault: Fault | None  # None: forwarded and answered


@dataclass
class Pki:
    """The files the proxy needs: kwok's CA (to sign its own certificate) and admin identity."""

    ca_cert: Path
    ca_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def of_kwok(cls, pki: Path) -> Pki:
        return cls(pki / "ca.crt", pki / "ca.key", pki / "admin.crt", pki / "admin.key")


def _serving_cert(pki: Pki, workdir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, signed by the cluster's CA (openssl, once per workdir)."""
    cert, key = workdir / "faultproxy.crt", workdir / "faultproxy.key"
    if cert.exists() and key.exists():
        return cert, key
    csr, ext = workdir / "faultproxy.csr", workdir / "faultproxy.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    request = ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=proxy"]
    sign = ["openssl", "x509", "-req", "-CAcreateserial", "-days", "2", "-extfile", str(ext)]
    run = [
        [*request, "-keyout", str(key), "-out", str(csr)],
        [
            *sign,
            "-in",
            str(csr),
            "-CA",
            str(pki.ca_cert),
            "-CAkey",
            str(pki.ca_key),
            "-out",
            str(cert),
        ],
    ]
    for cmd in run:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return cert, key


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy
    tls: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake in the connection's own thread: a client that stalls in it
        # holds that thread only, never the accepting one.
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _upstream: http.client.HTTPSConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        return  # the proxy's record (``seen``) is what tests read

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rule = proxy.take(self.command, self.path)
        fault = rule.fault if rule is not None else None
        proxy.record(Seen(time.monotonic(), self.command, self.path, fault))
        if rule is None:
            self._answer(*self._forward(body))
        elif rule.fault == "status":
            self._status(rule)
        elif rule.fault == "drop":
            self._forward(body)
            self._reset()
        elif rule.fault == "hang":
            proxy.released.wait()
            self._reset()
        else:
            self._reset()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        if self._upstream is None:
            proxy = self.server.proxy
            self._upstream = http.client.HTTPSConnection(
                "127.0.0.1", proxy.upstream_port, context=proxy.upstream_tls, timeout=60
            )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        self._upstream.request(self.command, self.path, body=body or None, headers=headers)
        response = self._upstream.getresponse()
        data = response.read()
        return response.status, response.getheaders(), data

    def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, rule: Rule) -> None:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": f"injected by the fault proxy ({rule.status})",
            "reason": _REASONS.get(rule.status, "InternalError"),
            "code": rule.status,
        }
        headers = [("Content-Type", "application/json")]
        if rule.retry_after is not None:
            headers.append(("Retry-After", rule.retry_after))
        self._answer(rule.status, headers, json.dumps(status).encode())

    def _reset(self) -> None:
        """Close with RST (SO_LINGER 0): the client sees a reset, not an orderly end."""
        with suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def finish(self) -> None:
        with suppress(OSError, ValueError):  # the connection was reset on purpose
            super().finish()
        if self._upstream is not None:
            self._upstream.close()


@dataclass
class FaultProxy:
    """The proxy; ``with proxy.running(): ...`` serves on 127.0.0.1 at ``url``."""

    upstream: str  # the API server, https://127.0.0.1:PORT
    pki: Pki
    workdir: Path
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: _Server | None = None

    @property
    def upstream_port(self) -> int:
        match = re.fullmatch(r"https://(127\.0\.0\.1|localhost):(\d+)/?", self.upstream)
        if match is None:
            raise ValueError(f"the fault proxy fronts a loopback API server, not {self.upstream}")
        return int(match.group(2))

    @property
    def upstream_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        return context

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not running"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> Rule | None:
        """The first rule this request falls under, counted as used once more."""
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def requests(self, method: str, path: str) -> list[Seen]:
        """What reached the proxy for ``method`` on paths matching ``path``."""
        with self._lock:
            return [s for s in self.seen if s.method == method and re.search(path, s.path)]

    @contextmanager
    def running(self) -> Iterator[FaultProxy]:
        cert, key = _serving_cert(self.pki, self.workdir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        server = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        server.tls = context
        server.proxy = self
        self._server = server
        thread = threading.Thread(target=server.serve_forever, name="faultproxy", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.released.set()  # hung requests end (with a reset)
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            self._server = None

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for the proxy: its CA, and the admin identity (TLS ends at the proxy)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "faultproxy",
                    "cluster": {"server": self.url, "certificate-authority": str(self.pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.pki.client_cert),
                        "client-key": str(self.pki.client_key),
                    },
                }
            ],
            "contexts": [
                {"name": "faultproxy", "context": {"cluster": "faultproxy", "user": "admin"}}
            ],
            "current-context": "faultproxy",
        }
        path.write_text(yaml.safe_dump(config))
        return path
