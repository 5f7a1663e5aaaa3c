"""How one API call reaches the API server: worker threads, timeouts, retries, the lease gate.

The official client is synchronous; calls run on a pool of worker threads so
a burst of due runs is sent concurrently without blocking the event loop.
Every try has a connect and a read timeout, and every call a budget over all
its tries (:mod:`jobwarden.retrying`), so a hung connection holds one worker
for a bounded time and never the event loop: the coroutine that made the
call is released when the budget is spent, whatever the thread is doing.

Retries wait on the event loop, not in a worker, so a call backing off after
a 429 leaves its thread to others. urllib3's own retries are off: they would
repeat a timed-out GET inside one try, multiplying its timeout unseen.

A call that *acts* (creates, deletes, writes status, records an Event) may
be sent only within this replica's lease term: the gate is asked in the
worker thread right before each try, so a call that queued or backed off
past the end of the term is never sent, and a try's timeouts are cut so that
it is over before any other replica may take the lease (see
:func:`jobwarden.leadership.send_window`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobwarden.retrying import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    RETRYABLE_STATUS,
    RetryPolicy,
    Timeouts,
    attempt_timeouts,
    next_wait,
    retry_after_seconds,
)

log = logging.getLogger(__name__)


class NotLeading(Exception):
    """An acting call was not sent: this replica's lease term is over, or never began."""


class ApiUnavailable(Exception):
    """A call gave up on faults of the connection (timeouts, resets) or of the budget."""


class Gate(Protocol):
    """The lease term acting calls are sent under."""

    def window(self) -> float | None:
        """Seconds a request sent now may take; None: do not send it."""


def send(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    timeout: urllib3.Timeout | None = None,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
) -> Any:
    """One request through ``api``'s auth and connection pool; the raw response, read.

    The generated methods validate every argument with pydantic and walk the
    body to "sanitize" it before json.dumps walks it again. For the calls a
    burst of due runs makes (a Job, a status write, an Event per run) that
    was a quarter of the operator's CPU, all of it holding the interpreter
    lock the event loop needs. The bodies here are plain JSON already.

    The body is read here, in the worker thread: left to the event loop, that
    read (and its TLS decryption) blocked the loop, and the connection stayed
    checked out meanwhile, so the next calls opened new TLS connections that
    were then discarded as the pool overflowed.
    Non-2xx raises ApiException as the generated methods do.
    """
    _, url, headers, _, _ = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        auth_settings=["BearerToken"],
    )
    payload = None if body is None else json.dumps(body).encode()
    response = api.rest_client.pool_manager.request(
        method,
        url,
        body=payload,
        headers=headers,
        timeout=timeout
        or urllib3.Timeout(connect=DEFAULT_TIMEOUTS.connect, read=DEFAULT_TIMEOUTS.read),
        retries=False,
        preload_content=False,
    )
    response.data  # noqa: B018 - reads, caches and releases the connection
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    return response


def _transient(exc: BaseException) -> bool:
    """A fault of the connection, not an answer: worth another try if the call is safe."""
    if isinstance(exc, urllib3.exceptions.SSLError):
        # A reset during the handshake is transient; a certificate that does not
        # verify will not verify on the next try either.
        return not isinstance(exc.__context__, ssl.SSLCertVerificationError)
    return isinstance(
        exc, urllib3.exceptions.TimeoutError | urllib3.exceptions.ProtocolError | ConnectionError
    )


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    kwargs: dict[str, Any]
    acting: bool
    deadline: float  # time.monotonic() by which the call is over


class _Lanes:
    """Worker threads that take urgent calls before deferrable ones.

    When a thousand runs come due at once, each reconcile makes one urgent
    call (create the Job) and two that can wait (its status write and its
    Event). In one first-come queue the Jobs were created at a third of the
    rate the API server allows; here every queued create goes before any
    queued bookkeeping, and bookkeeping still gets every thread when nothing
    is urgent. Order within a lane is first come, first served.
    """

    _STOP = 2

    def __init__(self, *, workers: int, name: str) -> None:
        self._queue: queue.PriorityQueue[
            tuple[int, int, Callable[[], Any] | None, Future[Any] | None]
        ] = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], Any], *, urgent: bool) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((0 if urgent else 1, next(self._order), fn, future))
        return future

    def _work(self) -> None:
        while True:
            _, _, fn, future = self._queue.get()
            if fn is None or future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue  # its awaiting task was cancelled before it started
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Drop what has not started and let the threads end after their current call."""
        while True:
            try:
                _, _, _, future = self._queue.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.cancel()
        for _ in self._threads:
            self._queue.put((self._STOP, next(self._order), None, None))


class Transport:
    """Sends requests on worker threads, each try timed out, each call bounded and retried."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        workers: int,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        gate: Gate | None = None,
    ) -> None:
        self._api = api
        self._pool = _Lanes(workers=workers, name="kube")
        self.timeouts = timeouts
        self.retry = retry
        self.gate = gate

    def close(self) -> None:
        self._pool.shutdown()

    async def call(
        self,
        method: str,
        path: str,
        *,
        urgent: bool = True,
        acting: bool = False,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send one request, retried per ``retry``; the read response, or what it raised.

        Raises the last ApiException when the server kept failing, ApiUnavailable
        when the connection did (or the budget ran out first), NotLeading when an
        acting call falls outside the lease term.
        """
        policy = retry or self.retry
        started = time.monotonic()
        request = _Request(method, path, kwargs, acting, started + policy.budget)
        fault: BaseException | None = None
        for attempt in itertools.count():
            future = self._pool.submit(partial(self._try, request), urgent=urgent)
            retry_after: float | None = None
            scope = asyncio.timeout_at(_loop_time(request.deadline))
            try:
                async with scope:
                    return await asyncio.wrap_future(future)
            except ApiException as exc:
                if exc.status not in RETRYABLE_STATUS:
                    raise
                retry_after = retry_after_seconds((exc.headers or {}).get("Retry-After"))
                fault = exc
            except TimeoutError as exc:
                if not scope.expired():
                    raise
                # The budget ran out before a worker answered (all of them busy, or
                # this try's socket still waiting): the thread ends on its own timeout.
                raise self._gave_up(request, attempt + 1, started, fault) from exc
            except Exception as exc:
                if not _transient(exc):
                    raise
                fault = exc
            wait = next_wait(
                retry=attempt,
                elapsed=time.monotonic() - started,
                retry_after=retry_after,
                policy=policy,
                draw=random.random(),  # jitter, not a secret
            )
            if wait is None:
                if isinstance(fault, ApiException):
                    log.warning(
                        "%s %s: giving up after %d tries: %s",
                        method,
                        path,
                        attempt + 1,
                        fault.status,
                    )
                    raise fault
                raise self._gave_up(request, attempt + 1, started, fault) from fault
            log.debug(
                "%s %s: try %d failed (%s); again in %.2fs", method, path, attempt + 1, fault, wait
            )
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _gave_up(
        request: _Request, tries: int, started: float, last: BaseException | None
    ) -> ApiUnavailable:
        elapsed = time.monotonic() - started
        why = f"{type(last).__name__}: {last}" if last is not None else "no worker free"
        return ApiUnavailable(
            f"{request.method} {request.path}: no answer after {tries} tries "
            f"in {elapsed:.1f}s ({why})"
        )

    def _try(self, request: _Request) -> Any:
        """One try, in a worker thread: ask the gate, cut the timeouts, send."""
        window = None
        if request.acting and self.gate is not None:
            window = self.gate.window()
            if window is None:
                raise NotLeading(f"{request.method} {request.path}: not sent, not leading")
        limits = attempt_timeouts(
            timeouts=self.timeouts, remaining=request.deadline - time.monotonic(), window=window
        )
        if limits is None:
            raise urllib3.exceptions.TimeoutError("no time left to send it")
        connect, read, total = limits
        timeout = urllib3.Timeout(connect=connect, read=read, total=total)
        return send(self._api, request.method, request.path, timeout=timeout, **request.kwargs)


def _loop_time(deadline: float) -> float:
    """A time.monotonic() instant on the running loop's clock (the same clock by default)."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())
