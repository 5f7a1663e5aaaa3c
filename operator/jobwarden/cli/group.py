"""The concurrency group a schedule names, as ``describe`` shows it.

Read from the members' objects alone (what ``describe`` already lists): the
group's limit is the smallest its members name, its runs in progress are the
members' ``status.active``, its queue their ``status.queue``, FIFO by
scheduled time as the operator admits them. The plugin reads no Job for it,
so a user who may only read JobSchedules sees the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobwarden.reconcile import Waiting
from jobwarden.reconcile.group import group_of, queue_of

__all__ = ["GroupSummary", "group_summary"]


@dataclass(frozen=True, kw_only=True)
class GroupSummary:
    name: str
    limit: int
    members: list[str]
    active: int
    queue: list[Waiting]

    def text(self) -> str:
        """``etl: 1 of limit 1 active, 2 queued (members a, b, c)``."""
        return (
            f"{self.name}: {self.active} of limit {self.limit} active, "
            f"{len(self.queue)} queued (members {', '.join(self.members)})"
        )


def group_summary(
    obj: Mapping[str, Any], schedules: Sequence[Mapping[str, Any]]
) -> GroupSummary | None:
    """The group ``obj`` names, from ``schedules`` (its namespace's, itself included or
    not); None when it names none."""
    named = group_of(obj)
    if named is None:
        return None
    group, _ = named
    name = str((obj.get("metadata") or {}).get("name"))
    members: dict[str, Mapping[str, Any]] = {name: obj}
    for other in schedules:
        other_name = str((other.get("metadata") or {}).get("name"))
        if other_name != name and (group_of(other) or ("", 0))[0] == group:
            members[other_name] = other
    limits = [found[1] for body in members.values() if (found := group_of(body)) is not None]
    active = sum(len((body.get("status") or {}).get("active") or []) for body in members.values())
    queue = sorted(w for member, body in members.items() for w in queue_of(member, body))
    return GroupSummary(
        name=group, limit=min(limits), members=sorted(members), active=active, queue=queue
    )
