"""The /metrics listener: HTTPS with a bearer-token gate, or plain HTTP when told.

One thread per connection (a scrape never waits on the operator's event
loop), a cap on connections at once, an I/O timeout on each, and the TLS
handshake done in the connection's own thread so that a client that stalls
mid-handshake holds up nobody else. Request lines and headers are never
logged: the Authorization header is a credential.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from jobwarden.metrics_auth import METRICS_PATH, Gate, Verdict

log = logging.getLogger("jobwarden.metrics")

IO_TIMEOUT = 10.0
MAX_CONNECTIONS = 16


def self_signed(*, hosts: tuple[str, ...], days: int = 365) -> tuple[bytes, bytes]:
    """A certificate and key (PEM) for these host names and addresses, made now.

    As controller-runtime does when no certificate is mounted: the traffic is
    encrypted, and a scraper that needs to verify the server mounts a real
    certificate instead (--metrics-cert-file).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobwarden-metrics")])
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class TLS:
    """The server's TLS context: a mounted certificate (reloaded when its files
    change, so a rotation needs no restart) or one made at start."""

    def __init__(self, *, cert_file: Path | None, key_file: Path | None) -> None:
        self._files = (cert_file, key_file) if cert_file and key_file else None
        self._lock = threading.Lock()
        self._stamp: tuple[float, float] | None = None
        if self._files is None:
            self._ctx = self._generated()
        else:
            self._stamp = self._mtimes()
            self._ctx = self._load()

    @staticmethod
    def _generated() -> ssl.SSLContext:
        # The pod's name is its host name; one that cannot be a DNS name is left out.
        local = tuple(h for h in (socket.gethostname(),) if h.isascii() and h)
        cert, key = self_signed(hosts=("localhost", *local, "127.0.0.1"))
        ctx = _context()
        # load_cert_chain reads only files: a private directory, removed at once.
        with tempfile.TemporaryDirectory(prefix="jobwarden-tls-") as tmp:
            cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            for path, data in ((cert_path, cert), (key_path, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            ctx.load_cert_chain(cert_path, key_path)
        return ctx

    def _mtimes(self) -> tuple[float, float]:
        assert self._files is not None
        cert, key = self._files
        return (cert.stat().st_mtime, key.stat().st_mtime)

    def _load(self) -> ssl.SSLContext:
        assert self._files is not None
        ctx = _context()
        ctx.load_cert_chain(*self._files)
        return ctx

    def context(self) -> ssl.SSLContext:
        if self._files is None:
            return self._ctx
        with self._lock:
            try:
                stamp = self._mtimes()
                if stamp != self._stamp:
                    self._ctx, self._stamp = self._load(), stamp
                    log.info("metrics TLS certificate reloaded")
            except (OSError, ssl.SSLError) as exc:
                # Mid-rotation (one file new, one old): keep serving the last good pair.
                log.warning("metrics TLS certificate not reloaded: %s", exc)
            return self._ctx


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], *, gate: Gate | None, tls: TLS | None, family: int
    ) -> None:
        self.address_family = family
        self.gate = gate
        self.tls = tls
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: drop, never queue unboundedly
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(IO_TIMEOUT)
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            conn = self.tls.context().wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a failed or stalled handshake: nothing to answer
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "jobwarden"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if urlsplit(self.path).path != METRICS_PATH:
            self._reply(Verdict(status=404, message="Not Found"))
            return
        if self.server.gate is not None:
            verdict = self.server.gate.decide(self.headers.get("Authorization"))
            if not verdict.allowed:
                self._reply(verdict)
                return
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        body = encoder(REGISTRY)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reply(self, verdict: Verdict) -> None:
        body = (verdict.message + "\n").encode()
        self.send_response(verdict.status)
        if verdict.status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="jobwarden metrics"')
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: an access log line would be noise at every scrape."""


def start(*, host: str, port: int, gate: Gate | None, tls: TLS | None) -> ThreadingHTTPServer:
    """Listen and serve in a daemon thread; returns the server (``shutdown()`` stops it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = _Server((host, port), gate=gate, tls=tls, family=family)
    thread = threading.Thread(target=server.serve_forever, name="jobwarden metrics", daemon=True)
    thread.start()
    return server
