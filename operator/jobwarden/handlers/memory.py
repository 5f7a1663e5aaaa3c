"""What the operator remembers about one schedule between reconciles: one record each.

Everything the wake loop knows of a schedule lives in its ``ScheduleMemory``,
held in one map: forgetting a schedule is one pop, and the executor's error
boundary has one place to look at and repair. Kept bodies are packed JSON
(see ``pack``) because a parsed one costs several times as much.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from jobwarden import metrics
from jobwarden.api.status import ScheduleStatus, parse_time
from jobwarden.handlers.gate import Rank
from jobwarden.reconcile import Observed, Plan, Refusal

Key = tuple[str, str]  # (namespace, name)

NOTHING: Mapping[str, Refusal] = MappingProxyType({})
# Retries of a failing schedule: doubling from the first to the cap, jittered.
BACKOFF_FIRST = timedelta(seconds=1)
BACKOFF_CAP = timedelta(minutes=5)
# The status field the operator writes a schedule's next run to (``nextRunTime``).
NEXT_RUN_FIELD = ScheduleStatus.model_fields["next_run_time"].alias or "nextRunTime"


def utcnow() -> datetime:
    return datetime.now(UTC)


def observed(body: dict[str, Any]) -> Observed:
    meta = body.get("metadata", {})
    return Observed(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        created=parse_time(meta.get("creationTimestamp")) or utcnow(),
        annotations=meta.get("annotations") or {},
        spec=body.get("spec") or {},
        status=body.get("status") or {},
        deleting=_deletion_time(meta.get("deletionTimestamp")),
    )


def _deletion_time(value: object) -> datetime | None:
    """metadata.deletionTimestamp; one that cannot be read still means deleted (now)."""
    if not value:
        return None
    try:
        return parse_time(value) or utcnow()
    except (ValueError, TypeError, OverflowError):
        return utcnow()


# What ``observed`` reads from metadata; the rest (managedFields above all) is not kept.
_KEPT_METADATA = (
    "namespace",
    "name",
    "uid",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "annotations",
    "resourceVersion",
)


def pack(body: dict[str, Any]) -> bytes:
    """A schedule body as kept between reconciles: the fields it is planned from, as JSON.

    One bytes object instead of a tree of dicts: a fresh schedule keeps about
    a kilobyte, one with a full history a few. Not compressed: zlib releases
    the interpreter lock, and getting it back from 32 busy API threads cost
    the event loop more than the compression saved.
    """
    meta = body.get("metadata") or {}
    slim = {
        "metadata": {k: meta[k] for k in _KEPT_METADATA if k in meta},
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }
    return json.dumps(slim, separators=(",", ":")).encode()


def unpack(packed: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(packed)
    return body


def change_mark(body: dict[str, Any]) -> int:
    """What a user changes to fix a schedule (its spec generation and annotations), hashed."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return hash((str(meta.get("generation")), tuple(sorted(map(str, annotations.items())))))


@dataclass(frozen=True)
class Ahead:
    """A plan made ahead for the wake-up at ``at``, from the body at ``resource_version``."""

    at: datetime
    resource_version: str
    obj: Observed
    plan: Plan


@dataclass(slots=True, eq=False)
class ScheduleMemory:
    """One schedule as this process knows it."""

    # The newest body known for sure (see Scheduler.seen), packed, and its resourceVersion.
    body: bytes | None = None
    version: str | None = None
    # The resourceVersion our own last status write produced.
    written: str | None = None
    # The next three are replaced, never changed in place: an idle schedule shares the
    # empty ones (a set or dict of its own each would cost half a kilobyte per schedule).
    # Jobs created (or adopted) whose watch event has not come yet.
    pending: frozenset[str] = frozenset()
    # Creates the API refused, fed to the next plans until a status write records them.
    refused: Mapping[str, Refusal] = field(default_factory=lambda: NOTHING)
    # Names this process created, until a status write has recorded them: never created again.
    created: frozenset[str] = frozenset()
    # Jobs under this schedule's label it does not own, reported already (once each).
    foreign: frozenset[str] = frozenset()
    ahead: Ahead | None = None
    # The error boundary: consecutive failures, when to retry, the error last logged
    # (so a repeated failure is not logged again), whether it was reported on the object.
    failures: int = 0
    retry_at: datetime | None = None
    error: str | None = None
    reported: bool = False
    mark: int | None = None  # change_mark of the last body seen
    # For the gauges: the health and active runs last counted.
    health: str | None = None
    active: int = 0
    # A reconcile is running; another one was asked for meanwhile.
    busy: bool = False
    again: bool = False
    # From when this schedule's reconcile is urgent (the wake-up its plan asked for:
    # a run or a deadline due then; or a change someone made to it), and the
    # status.nextRunTime of the newest body seen (epoch seconds): what ``rank`` orders by.
    urgent_at: datetime | None = None
    next_run: float | None = None

    def rank(self, now: datetime) -> Rank:
        """How soon this schedule's reconcile matters; lowest goes first.

        Urgent ones first (runs or a deadline due, a user's change such as
        run-now), in order of time; then the rest, the bookkeeping a start or
        a takeover brings, by their next run, one whose next run is not known
        (never reconciled, or nothing read) counting as due now.
        """
        if self.urgent_at is not None and self.urgent_at <= now:
            return (0.0, self.urgent_at.timestamp())
        return (1.0, self.next_run if self.next_run is not None else now.timestamp())

    def due_after(self, now: datetime, *, ahead: timedelta) -> datetime | None:
        """When this schedule's next run is due, if it is known and more than ``ahead`` away.

        None: it may be due now (a change someone made, a wake-up a plan set,
        a next run passed or not known).
        """
        if self.next_run is None:
            return None
        when = datetime.fromtimestamp(self.next_run, tz=UTC)
        if self.urgent_at is not None:
            when = min(when, self.urgent_at)
        return when if when > now + ahead else None

    def saw_next_run(self, body: Mapping[str, Any]) -> None:
        """Note ``status.nextRunTime`` of a body seen; anything unreadable means not known.

        The field is named by the status model that writes it: read under another
        name, every listed schedule looked due, and a restart beside 50,000
        reconciled them all before a run due meanwhile.
        """
        status = body.get("status")
        try:
            when = parse_time(status.get(NEXT_RUN_FIELD)) if isinstance(status, Mapping) else None
            self.next_run = when.timestamp() if when is not None else None
        except (ValueError, TypeError, OverflowError):
            self.next_run = None

    def keep(self, version: str, body: dict[str, Any]) -> None:
        """Keep ``body`` as the newest state; one that cannot be packed is read afresh later."""
        try:
            self.body, self.version = pack(body), version
        except (ValueError, TypeError, RecursionError):
            self.drop_body()

    def drop_body(self) -> None:
        self.body = self.version = None

    def failed(self, *, error: str, now: datetime) -> bool:
        """Count a failure and set the retry; True when ``error`` is new (log and report it)."""
        self.failures += 1
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(self.failures - 1, 30))
        # Jittered over the upper half, so schedules failing together spread out.
        self.retry_at = now + delay * random.uniform(0.5, 1.0)
        fresh = error != self.error
        if fresh:
            self.error, self.reported = error, False
        return fresh

    def recovered(self) -> bool:
        """Clear the failure state; True if there was one."""
        had = self.failures > 0
        self.failures, self.retry_at, self.error, self.reported = 0, None, None, False
        return had

    def changed(self, mark: int) -> None:
        """A new generation or annotations: a failing schedule is retried at once."""
        if self.mark is not None and mark != self.mark:
            self.recovered()
        self.mark = mark


class Gauges:
    """The schedules-by-health and active-runs gauges, kept as running totals (O(1) each)."""

    def __init__(self) -> None:
        self._by_health: Counter[str] = Counter()
        self._active = 0

    def count(self, memory: ScheduleMemory, *, health: str | None, active: int) -> None:
        old = memory.health
        if old is not None:
            self._by_health[old] -= 1
            metrics.SCHEDULES.labels(old).set(self._by_health[old])
        if health is not None:
            self._by_health[health] += 1
            metrics.SCHEDULES.labels(health).set(self._by_health[health])
        self._active += active - memory.active
        memory.health, memory.active = health, active
        metrics.ACTIVE_RUNS.set(self._active)
