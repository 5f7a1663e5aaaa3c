"""The start guard: runs whose pods never started running, and why not.

A Job whose pod cannot pull its image, cannot be scheduled, or is held
suspended by a queue stays "active" for ever, and ``activeDeadlineSeconds``
says only that time ran out. The guard gives each run a deadline counted
from the Job's creation: a run none of whose pods has run by then is
reported with the reason the pods give (a container's waiting reason, the
scheduler's condition, or the Job's own).

Cheap first: whether a Job's pods ever ran is read from the Job's status
(``ready``, ``succeeded``, ``failed``), which the operator watches anyway.
Only a run past its deadline that the Job's status cannot clear has its pods
listed (by the Job's own label), and :func:`why_not_started` reads them: a
pod that is Running but not ready (a crash loop, a failing readiness probe)
has started, and is left to the stale threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from jobwarden.labels import START_DEADLINE_LABEL
from jobwarden.safety.stale import parse_duration_label, stale_deadline

# Waiting reasons every pod passes through on its way to running: not a cause.
_ON_THE_WAY: Final = frozenset({"ContainerCreating", "PodInitializing"})
_RAN: Final = frozenset({"Running", "Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class NotStarted:
    """Why a run's pods have not run: a short reason and the detail behind it."""

    reason: str
    message: str


def start_deadline_at(
    *, created: datetime | None, deadline: timedelta | None, started: bool
) -> datetime | None:
    """When a Job created at ``created`` must have a pod running by; None once one has
    (``started``: what the Job's status shows, or the Job ended), or with no deadline
    (a Job created before the guard, say)."""
    if started or deadline is None or created is None:
        return None
    return stale_deadline(start_time=created, threshold=deadline)


def needs_probe(
    *, created: datetime | None, deadline: timedelta | None, started: bool, now: datetime
) -> bool:
    """Whether a Job's pods must be listed to judge it: past its deadline, and its
    status does not show that a pod ran."""
    at = start_deadline_at(created=created, deadline=deadline, started=started)
    return at is not None and now >= at


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _waiting(pod: Mapping[str, Any]) -> NotStarted | None:
    """The first container (init containers first) waiting for a reason of its own."""
    status = _mapping(pod.get("status"))
    for key in ("initContainerStatuses", "containerStatuses"):
        statuses = status.get(key)
        for raw in statuses if isinstance(statuses, list) else []:
            container = _mapping(raw)
            waiting = _mapping(_mapping(container.get("state")).get("waiting"))
            reason = waiting.get("reason")
            if isinstance(reason, str) and reason and reason not in _ON_THE_WAY:
                detail = waiting.get("message") or "waiting"
                return NotStarted(reason, f"container {container.get('name')}: {detail}")
    return None


def _unscheduled(pod: Mapping[str, Any]) -> NotStarted | None:
    conditions = _mapping(pod.get("status")).get("conditions")
    for raw in conditions if isinstance(conditions, list) else []:
        cond = _mapping(raw)
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            reason = str(cond.get("reason") or "Unschedulable")
            return NotStarted(reason, str(cond.get("message") or "the pod is not scheduled"))
    return None


def why_not_started(*, pods: Sequence[Mapping[str, Any]], suspended: bool) -> NotStarted | None:
    """Why none of ``job``'s ``pods`` has run; None when one has (it started).

    In order: a container's waiting reason (``ErrImagePull``, ``ImagePullBackOff``,
    ``CreateContainerConfigError``...), the scheduler's (``Unschedulable``), a pod
    simply pending; with no pod at all, the Job's suspension or its missing pods.
    """
    if any(_mapping(p.get("status")).get("phase") in _RAN for p in pods):
        return None
    for find in (_waiting, _unscheduled):
        for pod in pods:
            found = find(pod)
            if found is not None:
                return found
    if pods:
        return NotStarted("PodPending", "the pod is pending without a reason given")
    if suspended:
        return NotStarted(
            "JobSuspended", "the Job is suspended (a queue such as Kueue may be holding it)"
        )
    return NotStarted(
        "NoPods",
        "no pod was created (a quota, a LimitRange or an admission webhook may refuse "
        "them; see the Job's events)",
    )


def describe(why: NotStarted, *, deadline: timedelta) -> str:
    """The history message of a run that did not start within ``deadline``."""
    return f"Not running {deadline} after its Job was created (start deadline): {why.message}"


def parse_start_label(value: str) -> timedelta:
    """The deadline in a ``jobwarden.io/start-deadline`` label (same grammar as staleAfter);
    ``ValueError`` naming the label for a malformed or out-of-range value."""
    return parse_duration_label(value, label=START_DEADLINE_LABEL)
