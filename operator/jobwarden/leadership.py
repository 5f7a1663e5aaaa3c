"""Leader election over a ``coordination.k8s.io`` Lease: the decisions, without I/O.

Deterministic Job names already make a doubled *create* impossible, but two
replicas that both reconcile a schedule would both count its runs and race on
its status. So exactly one replica acts (the holder of a Lease) and the
others keep their caches warm and wait. This module decides, from the Lease
as last read and the clock, whether this replica should take the Lease,
renew it, or follow its holder; :mod:`jobwarden.handlers.leader` does the
reading and writing.

Time here is the *local* clock of the deciding replica, never the
``renewTime`` another replica wrote: a follower judges a Lease expired when
it has seen the same record for a whole lease duration, which holds however
far apart the replicas' wall clocks are. Only elapsed time matters, so the
caller may use a monotonic clock.

Safety rests on one inequality. The leader stops acting at
``until = renewed + duration - margin`` (``renewed`` taken before its write
was sent) unless it renewed again; a follower can take over no earlier than
``observed + duration``, where ``observed`` is when it first read the
renewed record, which is after the write was sent. So the old leader stands
down at least ``margin`` before anyone else may start.

Standing down must hold for calls already on their way, too, and whatever
the API server does (answers slowly, resets, or black-holes every packet):

1. No acting call is *sent* at or after ``until``. The gate is asked in the
   worker thread right before each try (:func:`send_window`), so a call that
   queued behind hung ones, or backed off after a 429, is refused there
   (``NotLeading``), even if the event loop is too busy to run the timer
   that pauses the scheduler. The timer (in ``handlers/leader.py``) then
   stops new work; the gate does not depend on it firing on time.
2. A try sent at ``t < until`` has its connect, read and total timeouts cut
   to ``until + margin - t``, so by ``renewed + duration``, before any
   follower may act, the old leader has its answer or has given up on it.
3. Giving up on an answer does not unsend a request: a request the API
   server held (stopped, or black-holed and later delivered) may still be
   applied after the new leader started. The writes where that would matter
   carry a precondition, so that a late one fails instead of overwriting: the
   status patch carries the resourceVersion it was planned from (409 once
   the new leader wrote), a delete the uid of the object it means, the Lease
   write its resourceVersion. A late Job create is harmless by construction:
   the name is the run's, so it meets the new leader's Job (409) or is the
   very Job the new leader would create and adopts.

With the defaults: a 15 s Lease, renewed every 5 s, each Lease call bounded
by 5 s; a leader whose renewals all hang or fail stops sending acting calls
10 s after its last successful renewal began, and its last try is over at
15 s, when a follower may first take the Lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

LEASE_DURATION = timedelta(seconds=15)
RENEW_EVERY = timedelta(seconds=5)
# The old leader stops acting this long before a follower could take over;
# it bounds how late an in-flight API call of the old leader may land.
MARGIN = timedelta(seconds=5)

Action = Literal["acquire", "renew", "follow"]


@dataclass(frozen=True, kw_only=True)
class LeaseView:
    """A Lease as this replica sees it.

    ``observed`` is the local time at which this replica first read the
    current record (its resourceVersion); ``duration`` is the record's own
    ``leaseDurationSeconds``, which binds the holder, whatever ours is.
    """

    holder: str | None
    observed: datetime
    duration: timedelta

    @property
    def free(self) -> bool:
        return not self.holder

    @property
    def expires(self) -> datetime:
        return self.observed + self.duration


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What to do now, who holds the Lease after it, and when to look again."""

    action: Action
    holder: str | None
    check_at: datetime


def decide(
    *,
    lease: LeaseView | None,
    me: str,
    now: datetime,
    duration: timedelta,
    renew_every: timedelta | None = None,
) -> Decision:
    """Take a free or expired Lease, renew our own, otherwise follow its holder.

    A follower checks again at the renewal interval, or at the moment the
    holder's Lease would expire if that is sooner: the earliest instant it
    could take over.
    """
    every = renew_every if renew_every is not None else duration / 3
    if lease is None or lease.free:
        return Decision(action="acquire", holder=me, check_at=now + every)
    if lease.holder == me:
        # Ours, even if it lapsed meanwhile: nobody else has written it since.
        return Decision(action="renew", holder=me, check_at=now + every)
    if now >= lease.expires:
        return Decision(action="acquire", holder=me, check_at=now + every)
    return Decision(action="follow", holder=lease.holder, check_at=min(now + every, lease.expires))


def leading_until(*, renewed: datetime, duration: timedelta, margin: timedelta) -> datetime:
    """The local time at which a leader that last renewed at ``renewed`` must stop acting."""
    return renewed + max(timedelta(0), duration - margin)


def send_window(*, now: datetime, until: datetime | None, margin: timedelta) -> float | None:
    """Seconds an acting request sent at ``now`` may take; None: it must not be sent.

    ``until`` is the end of this replica's term (:func:`leading_until`), None
    when it is not leading. A request sent before ``until`` is over by
    ``until + margin`` (``renewed + duration``), the earliest any follower may
    take over; none is sent from ``until`` on.
    """
    if until is None or now >= until:
        return None
    return (until + margin - now).total_seconds()


def micro_time(moment: datetime) -> str:
    """A Lease's MicroTime: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(
    *,
    previous: Mapping[str, Any] | None,
    action: Action,
    me: str,
    wall_now: datetime,
    duration: timedelta,
) -> dict[str, Any]:
    """The Lease spec to write for ``action`` (acquire or renew), from the previous spec.

    ``acquireTime`` changes only when the Lease changes hands, and
    ``leaseTransitions`` counts those changes (a released Lease taken up
    again included), so ``kubectl get lease -o yaml``
    tells operators how often leadership moved.
    """
    if action == "follow":
        raise ValueError("a follower writes no Lease")
    old = dict(previous or {})
    stamp = micro_time(wall_now)
    transitions = int(old.get("leaseTransitions") or 0)
    changed_hands = old.get("holderIdentity") != me
    if changed_hands and previous is not None:
        transitions += 1
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": max(1, int(duration.total_seconds())),
        "acquireTime": stamp if changed_hands or not old.get("acquireTime") else old["acquireTime"],
        "renewTime": stamp,
        "leaseTransitions": transitions,
    }


def released_spec(*, previous: Mapping[str, Any] | None, wall_now: datetime) -> dict[str, Any]:
    """The spec that hands the Lease back on a clean shutdown: no holder, so a follower
    acquires it at its next check instead of waiting a whole lease duration."""
    old = dict(previous or {})
    stamp = micro_time(wall_now)
    return {
        "holderIdentity": None,
        "leaseDurationSeconds": int(old.get("leaseDurationSeconds") or 1),
        "acquireTime": old.get("acquireTime"),
        "renewTime": stamp,
        "leaseTransitions": int(old.get("leaseTransitions") or 0),
    }
