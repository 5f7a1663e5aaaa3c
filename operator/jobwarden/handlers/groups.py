"""The namespace's concurrency groups (``spec.concurrencyGroup``), as the informers show them.

A member's plan needs what no single object holds: the group's runs in
progress (every member's unfinished Jobs with the group's label) and every
member's waiting runs (their ``status.queue``). This index keeps one record
per group, fed by the Job and schedule informers, so a relist or a restart
rebuilds it from the API alone; what it adds from memory is only what the
watch has not shown yet: the Jobs this process is creating (admitted, not
listed) and the queue a member's plan has just decided (not written yet).
Each is replaced by what the watch shows once it shows it.

When a run of a group ends (or a member's limit or queue changes) only the
members whose waiting runs may now start are woken (``wake``): no polling,
and no call for a schedule that has nothing to gain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobwarden import labels, metrics
from jobwarden.handlers.memory import Key
from jobwarden.reconcile import GroupView, Plan, Waiting
from jobwarden.reconcile.group import admit, group_of, queue_of
from jobwarden.runs.jobs import JobObservation

log = logging.getLogger(__name__)
GroupKey = tuple[str, str]  # (namespace, group name)


@dataclass
class GroupRecord:
    """Everything known of one group: its members, its runs in progress, its queue."""

    limits: dict[str, int] = field(default_factory=dict)  # member -> the limit it names
    running: dict[str, str] = field(default_factory=dict)  # unfinished Job -> its schedule
    creating: dict[str, str] = field(default_factory=dict)  # admitted here, not listed yet
    waiting: dict[str, tuple[Waiting, ...]] = field(default_factory=dict)  # by member

    def limit(self, *, without: str | None = None) -> int | None:
        named = [n for member, n in self.limits.items() if member != without]
        return min(named) if named else None

    def active(self) -> frozenset[str]:
        return frozenset(self.running) | frozenset(self.creating)

    def queued(self) -> list[Waiting]:
        return [w for runs in self.waiting.values() for w in runs]

    def empty(self) -> bool:
        return not (self.limits or self.running or self.creating or self.waiting)


class GroupIndex:
    """One record per (namespace, group), and the group each member names."""

    def __init__(self, *, wake: Callable[[Key], None] = lambda key: None) -> None:
        self._groups: dict[GroupKey, GroupRecord] = {}
        self._member: dict[Key, str] = {}  # a schedule -> the group its spec names
        self.wake = wake

    # --- fed by the informers ---------------------------------------------------------

    def schedule(self, key: Key, body: Mapping[str, Any] | None) -> None:
        """A member's spec and status as the watch shows them (None: deleted)."""
        namespace, name = key
        old = self._member.pop(key, None)
        if old is not None:
            record = self._groups[(namespace, old)]
            record.limits.pop(name, None)
            record.waiting.pop(name, None)
            self._settle((namespace, old))
        named = group_of(body) if body is not None else None
        if named is None or body is None:
            return
        group, limit = named
        self._member[key] = group
        record = self._groups.setdefault((namespace, group), GroupRecord())
        record.limits[name] = limit
        queue = queue_of(name, body)
        if queue:
            record.waiting[name] = queue
        self._settle((namespace, group))

    def job(self, old: JobObservation | None, new: JobObservation | None) -> None:
        """A Job's change: a run of its group starts, or ends (which makes room)."""
        if old is not None and old.group and (new is None or new.group != old.group):
            self._drop(old, (old.namespace, old.group))
        if new is None or not new.group:
            return
        gkey = (new.namespace, new.group)
        if new.finished:
            self._drop(new, gkey)
            return
        record = self._groups.setdefault(gkey, GroupRecord())
        record.creating.pop(new.name, None)
        if new.name not in record.running:
            record.running[new.name] = new.schedule or ""
            self._settle(gkey)

    def _drop(self, obs: JobObservation, gkey: GroupKey) -> None:
        record = self._groups.get(gkey)
        if record is None:
            return
        ran = record.running.pop(obs.name, None)
        made = record.creating.pop(obs.name, None)
        if ran is not None or made is not None:
            self._settle(gkey)

    # --- fed by the executor ----------------------------------------------------------

    def view(self, key: Key, *, complete: bool) -> GroupView:
        """What ``key``'s plan sees of its group; ``complete``: every Job is listed."""
        group = self._member.get(key)
        record = self._groups.get((key[0], group)) if group is not None else None
        if record is None:
            return GroupView(complete=complete)
        return GroupView(
            name=group,
            limit=record.limit(without=key[1]),
            active=record.active(),
            waiting=tuple(record.queued()),
            complete=complete,
        )

    def planned(self, key: Key, decision: Plan) -> None:
        """A plan about to be carried out: its group's Jobs are being created from now on
        (counted before the watch shows them), and its queue is the one it decided."""
        namespace, name = key
        for start in decision.starts:
            group = start.body["metadata"].get("labels", {}).get(labels.GROUP_LABEL)
            if group is not None:
                record = self._groups.setdefault((namespace, group), GroupRecord())
                record.creating[start.name] = name
        group = self._member.get(key)
        if group is not None:
            record = self._groups[(namespace, group)]
            if decision.queue:
                record.waiting[name] = decision.queue
            else:
                record.waiting.pop(name, None)
            self._settle((namespace, group))

    def abandoned(self, key: Key, job: str) -> None:
        """A create that failed or was refused: its room is free again."""
        for gkey, record in list(self._groups.items()):
            if gkey[0] == key[0] and record.creating.pop(job, None) is not None:
                self._settle(gkey)

    # --- deciding who is woken, and what is shown ------------------------------------

    def next_up(self, gkey: GroupKey) -> list[Key]:
        """The members whose waiting runs the group has room for now, oldest first."""
        record = self._groups.get(gkey)
        limit = record.limit() if record is not None else None
        if record is None or limit is None:
            return []
        chosen = admit(limit=limit, active=len(record.active()), waiting=record.queued())
        return list(dict.fromkeys((gkey[0], w.schedule) for w in chosen))

    def _settle(self, gkey: GroupKey) -> None:
        """After a change: wake who may start now, show the occupancy, drop an empty record."""
        record = self._groups.get(gkey)
        if record is None:
            return
        for key in self.next_up(gkey):
            self.wake(key)
        if record.empty():
            del self._groups[gkey]
            metrics.forget_group(*gkey)
            return
        metrics.show_group(
            *gkey,
            limit=record.limit() or 0,
            active=len(record.active()),
            queued=len(record.queued()),
        )
