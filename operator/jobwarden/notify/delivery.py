"""One worker per sink: a bounded queue, and deliveries at least once with backoff.

Scheduling never waits for a sink: ``submit`` only appends to the sink's
queue (dropping the oldest waiting event when it is full, counted in
``jobwarden_notifications_total{outcome="Dropped"}``) and returns. Each sink
has its own task, HTTP session and queue, so a sink that hangs or refuses
delays only its own events; every call has the sink's timeout.

An event is retried on faults that may pass (see ``jobwarden.notify.policy``)
with the same CloudEvent id each time, so a receiver that got it before
drops the copy. One that is refused, or still failing after its attempts, is
counted ``Failed`` and handed to ``given_up`` (the operator records a Warning
Event on the schedule). The worker beats (``last_beat``) while idle, between
attempts and while it waits to retry, so liveness sees a worker that died
or hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import aiohttp

from jobwarden import metrics
from jobwarden.notify.cloud import encode
from jobwarden.notify.events import Notification
from jobwarden.notify.policy import retry_policy, verdict
from jobwarden.notify.sinks import Sink, read_token
from jobwarden.retrying import next_wait, retry_after_seconds

log = logging.getLogger(__name__)

# The worker beats at least this often while idle or waiting to retry.
BEAT_SECONDS: Final = 5.0
# Liveness allows one call's timeout on top of a beat, and a busy event loop.
SLACK_SECONDS: Final = 60.0


@dataclass(frozen=True, kw_only=True, slots=True)
class GivenUp:
    """An event a sink did not take: what the schedule's Warning Event says."""

    sink: str
    notification: Notification
    attempts: int
    error: str


GivenUpHandler = Callable[[GivenUp], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Queued:
    notification: Notification
    at: float  # time.monotonic() of the submit


@dataclass(frozen=True, slots=True)
class _Attempt:
    status: int | None
    error: str
    retry_after: float | None = None


class SinkWorker:
    """The queue and the delivery loop of one sink."""

    def __init__(
        self,
        *,
        sink: Sink,
        given_up: GivenUpHandler,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.sink = sink
        self._given_up = given_up
        self._draw = draw
        self._policy = retry_policy(sink)
        self._queue: deque[_Queued] = deque()
        self._ready = asyncio.Event()
        self.last_beat: float | None = None
        metrics.NOTIFICATION_QUEUE.labels(sink.name).set_function(lambda: len(self._queue))

    @property
    def bound(self) -> float:
        """Seconds without a beat after which liveness judges the worker stuck."""
        return self.sink.timeout_seconds + BEAT_SECONDS + SLACK_SECONDS

    def submit(self, notification: Notification) -> None:
        """Queue ``notification``; never waits. A full queue drops its oldest event."""
        if len(self._queue) >= self.sink.queue_size:
            dropped = self._queue.popleft()
            metrics.NOTIFICATIONS.labels(self.sink.name, "Dropped").inc()
            log.warning(
                "notification sink %s: queue full (%d), dropped %s of %s",
                self.sink.name,
                self.sink.queue_size,
                dropped.notification.event,
                _about(dropped.notification),
            )
        self._queue.append(_Queued(notification, time.monotonic()))
        self._ready.set()

    async def run(self) -> None:
        """Deliver forever, one event at a time in the order queued."""
        timeout = aiohttp.ClientTimeout(total=self.sink.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                self.last_beat = time.monotonic()
                if not self._queue:
                    self._ready.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._ready.wait(), BEAT_SECONDS)
                    continue
                queued = self._queue.popleft()
                await self.deliver(session, queued.notification, queued_at=queued.at)

    async def deliver(
        self, session: aiohttp.ClientSession, notification: Notification, *, queued_at: float
    ) -> bool:
        """Send until delivered or given up; True when delivered."""
        started = time.monotonic()
        retry = 0
        while True:
            attempt = await self._attempt(session, notification)
            self.last_beat = time.monotonic()
            judged = verdict(attempt.status)
            if judged == "delivered":
                metrics.NOTIFICATIONS.labels(self.sink.name, "Delivered").inc()
                metrics.NOTIFICATION_DELAY.labels(self.sink.name).observe(
                    time.monotonic() - queued_at
                )
                return True
            wait = None
            if judged == "retry":
                wait = next_wait(
                    retry=retry,
                    elapsed=time.monotonic() - started,
                    retry_after=attempt.retry_after,
                    policy=self._policy,
                    draw=self._draw(),
                )
            if wait is None:
                await self._give_up(notification, attempts=retry + 1, error=attempt.error)
                return False
            metrics.NOTIFICATION_RETRIES.labels(self.sink.name).inc()
            await self._sleep(wait)
            retry += 1

    async def _attempt(
        self, session: aiohttp.ClientSession, notification: Notification
    ) -> _Attempt:
        """One POST; whatever happens is an ``_Attempt``, never an exception."""
        try:
            message = encode(notification, mode=self.sink.mode)
            headers = dict(message.headers)
            token = read_token(self.sink)
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            async with session.post(
                self.sink.url, data=message.body, headers=headers, allow_redirects=False
            ) as response:
                # The body is not read: only the status counts, and a sink's answer
                # must not cost the operator memory it did not plan for.
                return _Attempt(
                    response.status,
                    f"HTTP {response.status}",
                    retry_after_seconds(response.headers.get("Retry-After")),
                )
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return _Attempt(None, f"no answer within {self.sink.timeout_seconds:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            log.info("notification sink %s: %s", self.sink.name, exc)
            return _Attempt(None, _fault(exc))
        except Exception as exc:  # a bug here must cost one event, never the worker
            log.exception("notification sink %s: could not send", self.sink.name)
            return _Attempt(500, type(exc).__name__)

    async def _sleep(self, seconds: float) -> None:
        """Wait to retry, beating meanwhile: a long backoff is not a dead worker."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, BEAT_SECONDS))
            self.last_beat = time.monotonic()

    async def _give_up(self, notification: Notification, *, attempts: int, error: str) -> None:
        metrics.NOTIFICATIONS.labels(self.sink.name, "Failed").inc()
        log.warning(
            "notification sink %s: gave up %s of %s after %d attempt(s): %s",
            self.sink.name,
            notification.event,
            _about(notification),
            attempts,
            error,
        )
        try:
            await self._given_up(
                GivenUp(
                    sink=self.sink.name,
                    notification=notification,
                    attempts=attempts,
                    error=error,
                )
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification sink %s: reporting a failure failed", self.sink.name)


def _fault(exc: BaseException) -> str:
    """What failed, without the sink's address: the error goes into an Event on a
    tenant's schedule, and the address is the operator owner's (the log has it all)."""
    cause = getattr(exc, "os_error", None) or (exc if isinstance(exc, OSError) else None)
    number = getattr(cause, "errno", None)
    # The errno's own text: an OSError's strerror may carry the address it failed on.
    return (
        f"{type(exc).__name__} ({os.strerror(number)})"
        if isinstance(number, int)
        else (type(exc).__name__)
    )


def _about(notification: Notification) -> str:
    ref = notification.schedule
    return f"{ref.namespace}/{ref.name}" + (
        f" (Job {notification.job})" if notification.job else ""
    )
