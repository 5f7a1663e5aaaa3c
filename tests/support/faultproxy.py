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
serves a self-signed certificate for 127.0.0.1 (which the kubeconfig it
writes trusts) and reaches the API server with the identity of the
kubeconfig it fronts (its client certificate; a bearer token is forwarded
as sent), so the requests it forwards are authorized as that user's. Any
cluster works, the local control plane or one given by ``KUBECONFIG``.
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
from urllib.parse import urlsplit

import yaml
from kubernetes import client, config

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


@dataclass(frozen=True)
class Upstream:
    """The API server and the identity the proxy reaches it with, from a kubeconfig."""

    host: str
    port: int
    ca_cert: str | None
    client_cert: str | None
    client_key: str | None
    token: str | None

    @classmethod
    def of(cls, kubeconfig: Path) -> Upstream:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
        url = urlsplit(configuration.host)
        keys = configuration.api_key or {}
        auth = keys.get("BearerToken") or keys.get("authorization")
        return cls(
            host=url.hostname or "127.0.0.1",
            port=url.port or 443,
            ca_cert=configuration.ssl_ca_cert,
            client_cert=configuration.cert_file,
            client_key=configuration.key_file,
            token=auth.removeprefix("Bearer ").strip() if auth else None,
        )

    def tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_cert)
        if self.client_cert and self.client_key:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def _serving_cert(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl, once per workdir)."""
    cert, key = workdir / "faultproxy.crt", workdir / "faultproxy.key"
    if not (cert.exists() and key.exists()):
        x509 = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        names = ["-subj", "/CN=faultproxy", "-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run(
            [*x509, *names, "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return cert, key


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy
    tls: ssl.SSLContext
    upstream_tls: ssl.SSLContext

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
        path = self.path.split("?", 1)[0]  # rules and records name the path, not the query
        rule = proxy.take(self.command, path)
        fault = rule.fault if rule is not None else None
        proxy.record(Seen(time.monotonic(), self.command, path, fault))
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
            upstream = self.server.proxy.upstream
            self._upstream = http.client.HTTPSConnection(
                upstream.host, upstream.port, context=self.server.upstream_tls, timeout=60
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

    upstream: Upstream
    workdir: Path
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: _Server | None = None

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
        cert, key = _serving_cert(self.workdir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        server = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        server.tls = context
        server.upstream_tls = self.upstream.tls()
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
        """A kubeconfig for the proxy: its certificate, and the fronted kubeconfig's user."""
        cert, _ = _serving_cert(self.workdir)
        user: dict[str, str] = {}
        if self.upstream.token:
            user["token"] = self.upstream.token
        elif self.upstream.client_cert and self.upstream.client_key:
            # Sent to the proxy, which asks for no certificate: the user stays the same.
            user = {
                "client-certificate": self.upstream.client_cert,
                "client-key": self.upstream.client_key,
            }
        cluster = {"server": self.url, "certificate-authority": str(cert)}
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "faultproxy", "cluster": cluster}],
            "users": [{"name": "user", "user": user}],
            "contexts": [
                {"name": "faultproxy", "context": {"cluster": "faultproxy", "user": "user"}}
            ],
            "current-context": "faultproxy",
        }
        path.write_text(yaml.safe_dump(kubeconfig))
        return path

    def api(self, path: Path) -> client.ApiClient:
        """An API client that talks through the proxy (its kubeconfig written to ``path``)."""
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig(path)), client_configuration=configuration
        )
        return client.ApiClient(configuration)
