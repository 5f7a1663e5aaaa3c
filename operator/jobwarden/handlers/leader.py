"""The elector: holds the Lease while this replica leads, and switches the scheduler.

kopf's peering pauses kopf's own handlers, but jobwarden's work happens in
its scheduler loop, which peering knows nothing about. So replicas elect a
leader with a ``coordination.k8s.io`` Lease (the mechanism Kubernetes' own
controllers use): every replica keeps watching (warm caches, ready to take
over), and only the holder's scheduler acts.

The loop reads the Lease, asks :func:`jobwarden.leadership.decide`, and
writes the Lease with the resourceVersion it read: of two replicas that try
at once, the API server accepts one and answers 409 to the other, which then
follows. A timer, re-armed by each successful write, pauses the scheduler
``margin`` before the Lease could lapse, so a leader cut off from the API
server (or stuck behind it) stops acting before anyone else may start. The
elector's :class:`Term` is also the gate of the acting ``Kube``: each try of
a create, delete, status write or Event is sent only within the term, with
its timeouts cut to end before a follower may take over (the argument is in
:mod:`jobwarden.leadership`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from jobwarden import metrics
from jobwarden.kube import Kube, LeaseConflict
from jobwarden.leadership import (
    LEASE_DURATION,
    MARGIN,
    RENEW_EVERY,
    LeaseView,
    decide,
    leading_until,
    lease_spec,
    released_spec,
    send_window,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RETRY = timedelta(seconds=1)


def monotonic_now() -> datetime:
    """A clock that never jumps: lease timing needs elapsed time, not the date."""
    return _EPOCH + timedelta(seconds=time.monotonic())


def wall_now() -> datetime:
    return datetime.now(UTC)


def identity(env: Mapping[str, str]) -> str:
    """This replica's name in the Lease: the pod's name, else the host plus a random part.

    A pod name is unique among live pods, and a container restarted in the
    same pod may take its own Lease back at once (its predecessor is dead).
    Outside a pod, two processes on one host must not share a name, hence
    the suffix.
    """
    pod = env.get("POD_NAME", "").strip()
    if pod:
        return pod
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


class Switch(Protocol):
    """What the elector turns on and off: the scheduler."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class Term:
    """This replica's current lease term: the gate its acting calls are sent under.

    Read from the Kube's worker threads, written on the event loop: one
    attribute, replaced whole. The window is computed from the clock at each
    try, so it closes on time even when the event loop is late to run the
    timer that pauses the scheduler.
    """

    def __init__(self, *, margin: timedelta, clock: Clock = monotonic_now) -> None:
        self._margin = margin
        self._clock = clock
        self._until: datetime | None = None

    def grant(self, until: datetime) -> None:
        self._until = until

    def end(self) -> None:
        self._until = None

    def window(self) -> float | None:
        return send_window(now=self._clock(), until=self._until, margin=self._margin)


class Elector:
    """Acquires, renews and hands back one Lease; pauses ``switch`` when not leading."""

    def __init__(
        self,
        *,
        kube: Kube,
        switch: Switch,
        name: str,
        namespace: str,
        me: str,
        duration: timedelta = LEASE_DURATION,
        renew_every: timedelta = RENEW_EVERY,
        margin: timedelta = MARGIN,
        clock: Clock = monotonic_now,
        wall_clock: Clock = wall_now,
    ) -> None:
        self._kube = kube
        self._switch = switch
        self.name = name
        self.namespace = namespace
        self.me = me
        self._duration = duration
        self._renew_every = renew_every
        self._margin = margin
        self._clock = clock
        self._wall_clock = wall_clock
        # An API call may take at most this long, so a step ends before the deadline.
        self._timeout = max(1.0, min(renew_every, margin).total_seconds())
        self.term = Term(margin=margin, clock=clock)
        self._seen: tuple[str, datetime] | None = None  # (resourceVersion, first read)
        self._leading = False
        self._deadline: asyncio.TimerHandle | None = None
        self.holder: str | None = None
        metrics.LEADER.set(0)

    @property
    def leading(self) -> bool:
        return self._leading

    async def run(self) -> None:
        """Elect forever; the deadline timer, not this loop, enforces standing down."""
        log.info("leader election: lease %s/%s, identity %s", self.namespace, self.name, self.me)
        while True:
            check_at = await self.step()
            await asyncio.sleep(max(0.0, (check_at - self._clock()).total_seconds()))

    async def step(self) -> datetime:
        """One read-decide-write round; returns when to run the next one."""
        now = self._clock()  # before any call: a conservative start of our term
        try:
            raw = await self._kube.get_lease(
                namespace=self.namespace, name=self.name, timeout=self._timeout
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not read lease %s/%s: %s", self.namespace, self.name, exc)
            return now + RETRY
        decision = decide(
            lease=self._view(raw, now),
            me=self.me,
            now=now,
            duration=self._duration,
            renew_every=self._renew_every,
        )
        if decision.action == "follow":
            self._follow(decision.holder)
            return decision.check_at
        previous = (raw or {}).get("spec")
        version = (raw or {}).get("metadata", {}).get("resourceVersion")
        spec = lease_spec(
            previous=previous,
            action=decision.action,
            me=self.me,
            wall_now=self._wall_clock(),
            duration=self._duration,
        )
        try:
            written = await self._kube.write_lease(
                namespace=self.namespace,
                name=self.name,
                resource_version=version,
                spec=spec,
                timeout=self._timeout,
            )
        except asyncio.CancelledError:
            raise
        except LeaseConflict:
            log.info("lease %s/%s was written by another replica first", self.namespace, self.name)
            self._follow(None)
            return self._clock()
        except Exception as exc:
            log.warning(
                "could not %s lease %s/%s: %s", decision.action, self.namespace, self.name, exc
            )
            return now + RETRY
        self._won(written, renewed=now)
        return decision.check_at

    def _view(self, raw: dict[str, Any] | None, now: datetime) -> LeaseView | None:
        if raw is None:
            self._seen = None
            return None
        version = str(raw.get("metadata", {}).get("resourceVersion", ""))
        if self._seen is None or self._seen[0] != version:
            self._seen = (version, now)
        spec = raw.get("spec") or {}
        seconds = spec.get("leaseDurationSeconds")
        duration = timedelta(seconds=int(seconds)) if seconds else self._duration
        return LeaseView(
            holder=spec.get("holderIdentity") or None, observed=self._seen[1], duration=duration
        )

    def _won(self, written: dict[str, Any], *, renewed: datetime) -> None:
        version = str(written.get("metadata", {}).get("resourceVersion", ""))
        self._seen = (version, renewed)
        self.holder = self.me
        until = leading_until(renewed=renewed, duration=self._duration, margin=self._margin)
        delay = (until - self._clock()).total_seconds()
        if delay <= 0:
            # The write took so long that the term is already over: do not act on it.
            self._follow(self.me)
            return
        self.term.grant(until)
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = asyncio.get_running_loop().call_later(delay, self._expired)
        if not self._leading:
            self._leading = True
            metrics.LEADER.set(1)
            log.info("leading: lease %s/%s acquired by %s", self.namespace, self.name, self.me)
            self._switch.resume()

    def _expired(self) -> None:
        self._deadline = None
        if self._leading:
            log.warning("lease %s/%s not renewed in time: standing down", self.namespace, self.name)
            self._follow(None)

    def _follow(self, holder: str | None) -> None:
        self.term.end()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if holder is not None and holder != self.holder:
            log.info("standing by: lease %s/%s held by %s", self.namespace, self.name, holder)
        self.holder = holder
        if self._leading:
            self._leading = False
            metrics.LEADER.set(0)
            self._switch.pause()

    async def release(self) -> None:
        """Stop acting, then hand the Lease back so a standby takes over at its next check.

        Called on a clean shutdown only after the scheduler's work is cancelled;
        a crashed leader's Lease simply lapses.
        """
        was_leading = self._leading
        self._follow(None)
        if not was_leading:
            return
        try:
            raw = await self._kube.get_lease(
                namespace=self.namespace, name=self.name, timeout=self._timeout
            )
            spec = (raw or {}).get("spec") or {}
            if raw is None or spec.get("holderIdentity") != self.me:
                return
            await self._kube.write_lease(
                namespace=self.namespace,
                name=self.name,
                resource_version=raw["metadata"]["resourceVersion"],
                spec=released_spec(previous=spec, wall_now=self._wall_clock()),
                timeout=self._timeout,
            )
            log.info("lease %s/%s released", self.namespace, self.name)
        except Exception as exc:
            log.warning(
                "could not release lease %s/%s (it will lapse): %s", self.namespace, self.name, exc
            )
