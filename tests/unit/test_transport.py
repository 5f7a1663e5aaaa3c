"""The transport against a scripted HTTP server on loopback: reads in the worker,
the lease gate, which answers are tried again and which are final.

A real socket and the real client stack (urllib3, the ApiClient's auth and
serialization); only the server is a script. tests/cluster/test_api_faults.py
does the same against the real API server through the fault proxy.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobwarden.retrying import RetryPolicy, Timeouts
from jobwarden.transport import NotLeading, Transport, send

FAST = RetryPolicy(attempts=4, budget=5.0, base=0.01, cap=0.05)


@dataclass
class Script:
    """Answers in order (status, headers); after the last, 200 with the request's path."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self) -> None:
        script = self.server.script
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        script.seen.append(f"{self.command} {self.path}")
        status, headers = script.answers.pop(0) if script.answers else (200, {})
        body = json.dumps({"code": status, "path": self.path}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    script: Script


@pytest.fixture
def server() -> Iterator[tuple[Script, client.ApiClient]]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.script = Script()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{httpd.server_address[1]}")
    try:
        yield httpd.script, client.ApiClient(configuration)
    finally:
        httpd.shutdown()
        httpd.server_close()


def transport(api: client.ApiClient, **kwargs: object) -> Transport:
    return Transport(api, workers=2, timeouts=Timeouts(connect=1, read=1), retry=FAST, **kwargs)  # type: ignore[arg-type]


def test_send_reads_the_body_where_it_runs(server: tuple[Script, client.ApiClient]) -> None:
    """Read in the worker thread that sent it: the event loop never touches the socket,
    and the connection goes back to the pool at once."""
    _, api = server
    response = send(api, "GET", "/api/v1/namespaces/x")
    assert response._body is not None, "the body was read and cached"
    assert response.connection is None, "the connection went back to the pool"
    assert json.loads(response.data)["path"] == "/api/v1/namespaces/x"


class Closed:
    def window(self) -> float | None:
        return None


def test_an_acting_call_outside_the_term_is_never_sent(
    server: tuple[Script, client.ApiClient],
) -> None:
    script, api = server
    t = transport(api, gate=Closed())
    try:
        with pytest.raises(NotLeading):
            asyncio.run(t.call("POST", "/apis/batch/v1/namespaces/x/jobs", acting=True, body={}))
        # Reads are not acts: they go out whatever the term.
        asyncio.run(t.call("GET", "/apis/batch/v1/namespaces/x/jobs/a"))
    finally:
        t.close()
    assert script.seen == ["GET /apis/batch/v1/namespaces/x/jobs/a"]


@pytest.mark.parametrize(
    ("answers", "tries"),
    [
        ([(503, {}), (500, {})], 3),
        ([(429, {"Retry-After": "0"}), (502, {}), (504, {})], 4),
    ],
)
def test_server_faults_are_tried_again(
    server: tuple[Script, client.ApiClient],
    answers: list[tuple[int, dict[str, str]]],
    tries: int,
) -> None:
    script, api = server
    script.answers = list(answers)
    t = transport(api)
    try:
        response = asyncio.run(t.call("GET", "/api/v1/namespaces/x"))
    finally:
        t.close()
    assert response.status == 200
    assert len(script.seen) == tries


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 501])
def test_answers_are_final_at_once(server: tuple[Script, client.ApiClient], status: int) -> None:
    script, api = server
    script.answers = [(status, {})]
    t = transport(api)
    try:
        with pytest.raises(ApiException) as raised:
            asyncio.run(t.call("POST", "/api/v1/namespaces/x/events", body={}))
    finally:
        t.close()
    assert raised.value.status == status
    assert len(script.seen) == 1


def test_a_fault_that_outlasts_the_attempts_raises_the_last_answer(
    server: tuple[Script, client.ApiClient],
) -> None:
    script, api = server
    script.answers = [(503, {})] * FAST.attempts + [(200, {})]
    t = transport(api)
    try:
        with pytest.raises(ApiException) as raised:
            asyncio.run(t.call("GET", "/api/v1/namespaces/x"))
    finally:
        t.close()
    assert raised.value.status == 503
    assert len(script.seen) == FAST.attempts


def test_a_retry_after_longer_than_the_budget_gives_up_without_waiting(
    server: tuple[Script, client.ApiClient],
) -> None:
    script, api = server
    script.answers = [(429, {"Retry-After": "60"})]
    t = transport(api)
    try:
        with pytest.raises(ApiException) as raised:
            asyncio.run(asyncio.wait_for(t.call("GET", "/api/v1/namespaces/x"), timeout=2))
    finally:
        t.close()
    assert raised.value.status == 429
    assert len(script.seen) == 1
