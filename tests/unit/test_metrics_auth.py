"""Who may read /metrics: the decision for each request, its cache, and the listener.

The reviewer here is a table (token -> subject, subject -> allowed) that counts
its calls: the decision and the cache are pure logic. The real TokenReview and
SubjectAccessReview are proven against the control plane in
tests/cluster/test_metrics_auth.py.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry, Counter, generate_latest

from jobwarden import metrics_http
from jobwarden.metrics import TenantLabelled
from jobwarden.metrics_auth import (
    UNAUTHENTICATED,
    UNAVAILABLE,
    Gate,
    Identity,
    ReviewError,
    TTLCache,
    Verdict,
    bearer_token,
)
from jobwarden.settings import SettingsError, parse_settings
from tests.support.operator import free_port

READER = "reader-token"
STRANGER = "stranger-token"


class Table:
    """TokenReview and SubjectAccessReview as two dicts, counting the calls made."""

    def __init__(self) -> None:
        self.users = {READER: "system:serviceaccount:mon:prometheus", STRANGER: "alice"}
        self.allowed = {"system:serviceaccount:mon:prometheus"}
        self.authentications = 0
        self.authorizations: list[tuple[str, str, str]] = []
        self.fail = False
        self.hold: threading.Event | None = None

    def authenticate(self, token: str) -> Identity | None:
        self.authentications += 1
        if self.hold is not None:
            self.hold.wait(5)
        if self.fail:
            raise ReviewError("TokenReview: ReadTimeoutError")
        name = self.users.get(token)
        return Identity(username=name) if name else None

    def authorize(self, identity: Identity, *, path: str, verb: str) -> bool:
        self.authorizations.append((identity.username, path, verb))
        return identity.username in self.allowed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table() -> Table:
    return Table()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def gate(table: Table, clock: Clock, **kwargs: float) -> Gate:
    return Gate(reviewer=table, allow_ttl=60, deny_ttl=10, clock=clock, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer two words", None),
        ("Bearer " + "x" * (16 * 1024 + 1), None),
        ("Bearer abc.def", "abc.def"),
        ("bearer abc", "abc"),
        ("  Bearer   abc  ", "abc"),
    ],
)
def test_only_a_bearer_token_is_a_credential(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_no_token_is_refused_without_asking_the_api_server(table: Table, clock: Clock) -> None:
    assert gate(table, clock).decide(None) == UNAUTHENTICATED
    assert gate(table, clock).decide("Basic abc") == UNAUTHENTICATED
    assert table.authentications == 0


def test_a_subject_allowed_get_on_metrics_is_let_in(table: Table, clock: Clock) -> None:
    verdict = gate(table, clock).decide(f"Bearer {READER}")
    assert verdict.allowed and verdict.status == 200
    # The SubjectAccessReview asks for the non-resource URL /metrics, verb get.
    assert table.authorizations == [("system:serviceaccount:mon:prometheus", "/metrics", "get")]


def test_an_unknown_token_is_401_and_a_known_subject_without_the_grant_403(
    table: Table, clock: Clock
) -> None:
    g = gate(table, clock)
    assert g.decide("Bearer forged") == UNAUTHENTICATED
    assert table.authorizations == []  # no SubjectAccessReview for nobody
    verdict = g.decide(f"Bearer {STRANGER}")
    assert verdict.status == 403 and "alice" in verdict.message


def test_an_allowed_answer_is_reused_until_it_expires(table: Table, clock: Clock) -> None:
    g = gate(table, clock)
    for _ in range(5):
        assert g.decide(f"Bearer {READER}").allowed
        clock.now += 10
    assert table.authentications == 1  # 40 s after the review: still cached
    clock.now += 20.5  # 60.5 s after the review
    table.allowed.clear()  # the binding was removed meanwhile
    assert g.decide(f"Bearer {READER}").status == 403
    assert table.authentications == 2


def test_a_denial_is_cached_more_briefly_than_an_allowance(table: Table, clock: Clock) -> None:
    g = gate(table, clock)
    assert g.decide(f"Bearer {STRANGER}").status == 403
    clock.now += 9
    assert g.decide(f"Bearer {STRANGER}").status == 403
    assert table.authentications == 1
    clock.now += 1.5
    table.allowed.add("alice")  # granted meanwhile: seen once the denial expired
    assert g.decide(f"Bearer {STRANGER}").allowed
    assert table.authentications == 2


def test_a_review_without_an_answer_is_503_and_not_cached(table: Table, clock: Clock) -> None:
    g = gate(table, clock)
    table.fail = True
    assert g.decide(f"Bearer {READER}") == UNAVAILABLE
    table.fail = False
    assert g.decide(f"Bearer {READER}").allowed
    assert table.authentications == 2


def test_a_flood_of_bad_tokens_never_evicts_the_scraper(table: Table, clock: Clock) -> None:
    g = Gate(reviewer=table, clock=clock, max_denied=8, max_allowed=2)
    assert g.decide(f"Bearer {READER}").allowed
    for i in range(100):
        assert g.decide(f"Bearer forged-{i}") == UNAUTHENTICATED
    reviews = table.authentications
    assert g.decide(f"Bearer {READER}").allowed
    assert table.authentications == reviews  # the scraper's answer was still cached


def test_reviews_at_once_are_bounded(table: Table, clock: Clock) -> None:
    """With every review slot held by a slow review, the next request waits a
    bounded time and is told to come back (503): no pile of calls to the API server."""
    table.hold = threading.Event()
    g = Gate(reviewer=table, clock=clock, concurrent_reviews=1, wait_for_slot=0.05)
    first = threading.Thread(target=g.decide, args=(f"Bearer {READER}",))
    first.start()
    try:
        while table.authentications == 0:
            threading.Event().wait(0.01)
        assert g.decide(f"Bearer {STRANGER}") == UNAVAILABLE
        assert table.authentications == 1
    finally:
        table.hold.set()
        first.join(5)


def test_tokens_are_never_logged(
    table: Table, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    g = gate(table, clock)
    g.decide(f"Bearer {STRANGER}")
    table.fail = True
    g.decide("Bearer another-secret")
    assert caplog.records  # the denial and the failed review are logged...
    for record in caplog.records:  # ...without the tokens
        assert STRANGER not in record.getMessage() and "another-secret" not in record.getMessage()


def test_cache_keeps_the_most_recently_used_within_its_bound(clock: Clock) -> None:
    cache = TTLCache(max_entries=2, ttl=5, clock=clock)
    a, b, c = (Verdict(status=200, message=x) for x in "abc")
    cache.put(b"a", a)
    cache.put(b"b", b)
    assert cache.get(b"a") == a  # a is now the most recently used
    cache.put(b"c", c)
    assert len(cache) == 2
    assert cache.get(b"b") is None and cache.get(b"a") == a and cache.get(b"c") == c
    clock.now += 5
    assert cache.get(b"a") is None and len(cache) == 1


# --- the schedule-labels switch ----------------------------------------------------


def test_without_tenant_labels_runs_are_counted_per_result_only() -> None:
    registry = CollectorRegistry()
    runs = TenantLabelled(
        lambda names: Counter("t_runs_total", "runs", names, registry=registry),
        tenant=("namespace", "schedule"),
        rest=("result",),
        registry=registry,
    )
    runs.labels("team-a", "backup", "Started").inc()
    assert b'schedule="backup"' in generate_latest(registry)
    runs.drop_tenant_labels()
    runs.labels("team-a", "backup", "Started").inc()
    runs.labels("team-b", "report", "Started").inc()
    runs.labels("team-b", "report", "Failed").inc()
    runs.remove("team-b", "report", "Failed")  # forgetting a schedule: nothing of its own
    text = generate_latest(registry).decode()
    assert 't_runs_total{result="Started"} 2.0' in text
    assert 't_runs_total{result="Failed"} 1.0' in text
    for name in ("team-a", "team-b", "backup", "report", "namespace", "schedule"):
        assert name not in text


# --- settings ---------------------------------------------------------------------


def test_metrics_are_secure_and_labelled_by_default(tmp_path: Path) -> None:
    settings = parse_settings(argv=[], env={}, namespace_file=tmp_path / "ns")
    assert settings.metrics_secure is True
    assert settings.metrics_schedule_labels is True
    assert settings.metrics_cert_file is None and settings.metrics_key_file is None
    off = parse_settings(
        argv=["--metrics-schedule-labels=false"],
        env={"JOBWARDEN_METRICS_SECURE": "false"},
        namespace_file=tmp_path / "ns",
    )
    assert off.metrics_secure is False and off.metrics_schedule_labels is False


@pytest.mark.parametrize(
    ("argv", "setting"),
    [
        (["--metrics-secure=maybe"], "metrics-secure"),
        (["--metrics-schedule-labels=some"], "metrics-schedule-labels"),
        (["--metrics-cert-file=/nonexistent/tls.crt"], "metrics-cert-file"),
        (["--metrics-cert-file={crt}"], "metrics-cert-file"),  # without its key
        (["--metrics-key-file={key}"], "metrics-key-file"),  # without its certificate
        (
            ["--metrics-cert-file={crt}", "--metrics-key-file={key}", "--metrics-secure=false"],
            "metrics-cert-file",
        ),
    ],
)
def test_bad_metrics_settings_are_refused_at_start(
    tmp_path: Path, argv: list[str], setting: str
) -> None:
    crt, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    crt.write_text("x")
    key.write_text("x")
    args = [a.format(crt=crt, key=key) for a in argv]
    with pytest.raises(SettingsError) as err:
        parse_settings(argv=args, env={}, namespace_file=tmp_path / "ns")
    assert err.value.setting == setting
    assert f"--{setting}" in str(err.value)


# --- the listener -----------------------------------------------------------------


def _unverified() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _get(url: str, *, token: str | None = None, ctx: ssl.SSLContext | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=5, context=ctx
        ) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def secure_server(table: Table) -> Iterator[str]:
    port = free_port()
    server = metrics_http.start(
        host="127.0.0.1",
        port=port,
        gate=Gate(reviewer=table),
        tls=metrics_http.TLS(cert_file=None, key_file=None),
    )
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_listener_serves_tls_and_asks_the_gate(secure_server: str) -> None:
    ctx = _unverified()
    assert _get(f"{secure_server}/metrics", ctx=ctx) == 401
    assert _get(f"{secure_server}/metrics", token=STRANGER, ctx=ctx) == 403
    assert _get(f"{secure_server}/metrics", token=READER, ctx=ctx) == 200
    assert _get(f"{secure_server}/other", token=READER, ctx=ctx) == 404
    with pytest.raises(OSError):  # plain HTTP on the TLS port gets nothing
        _get(secure_server.replace("https", "http") + "/metrics", token=READER)


def test_the_made_certificate_names_the_local_host() -> None:
    cert_pem, _ = metrics_http.self_signed(hosts=("localhost", "127.0.0.1"))
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def _served_certificate(port: int) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        _unverified().wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der


def test_a_mounted_certificate_is_served_and_reloaded_when_rotated(tmp_path: Path) -> None:
    crt, key = tmp_path / "tls.crt", tmp_path / "tls.key"

    def mount(stamp: int) -> bytes:
        cert_pem, key_pem = metrics_http.self_signed(hosts=("localhost",))
        crt.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        for path in (crt, key):
            os.utime(path, (stamp, stamp))
        return x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)

    first = mount(1_000_000)
    port = free_port()
    server = metrics_http.start(
        host="127.0.0.1",
        port=port,
        gate=None,
        tls=metrics_http.TLS(cert_file=crt, key_file=key),
    )
    try:
        assert _served_certificate(port) == first
        second = mount(2_000_000)
        assert _served_certificate(port) == second
        crt.write_text("half-written")  # mid-rotation: the last good pair stays
        assert _served_certificate(port) == second
    finally:
        server.shutdown()
        server.server_close()


def test_insecure_mode_is_plain_http_without_a_gate() -> None:
    port = free_port()
    server = metrics_http.start(host="127.0.0.1", port=port, gate=None, tls=None)
    try:
        assert _get(f"http://127.0.0.1:{port}/metrics") == 200
    finally:
        server.shutdown()
        server.server_close()
