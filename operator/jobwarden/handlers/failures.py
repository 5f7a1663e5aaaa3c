"""What a failed reconcile leaves: a log line once per distinct error, and a report.

The executor's boundary catches everything about one schedule; this says
so on the schedule (a Warning Event and ``Ready=False``, reason
``InternalError``, naming the step) and gives the backoff's next try.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from jobwarden import labels
from jobwarden.handlers.memory import Key, ScheduleMemory, utcnow
from jobwarden.kube import Kube, ObjectRef
from jobwarden.reconcile import Observed
from jobwarden.reconcile.errors import INTERNAL_ERROR, describe_error, internal_error_patch

log = logging.getLogger(__name__)


class Progress:
    """How far a reconcile got: the step an error is reported against, and what was read."""

    __slots__ = ("body", "obj", "step")

    def __init__(self) -> None:
        self.step = "read schedule"
        self.body: dict[str, Any] | None = None
        self.obj: Observed | None = None


async def report_failure(
    *, kube: Kube, key: Key, memory: ScheduleMemory, progress: Progress, exc: Exception
) -> datetime:
    """Log (once per distinct error) and report a failed reconcile; when to retry it."""
    memory.drop_body()  # what happened is unknown: read afresh
    memory.ahead = None
    inner = getattr(exc, "step", None)  # reconcile.PlanStepError names the plan's step
    step = f"{progress.step}: {inner}" if inner else progress.step
    cause = getattr(exc, "cause", None)
    message = describe_error(step, cause if isinstance(cause, BaseException) else exc)
    now = utcnow()
    fresh = memory.failed(error=message, now=now)
    retry = memory.retry_at or now
    if fresh:
        log.error(
            "%s/%s: %s; retrying with backoff (next in %.1fs)",
            *key,
            message,
            (retry - now).total_seconds(),
            exc_info=exc,
        )
    if fresh or not memory.reported:
        await _report(kube, key, memory, progress, message, event=fresh)
    return retry


async def _report(
    kube: Kube, key: Key, memory: ScheduleMemory, progress: Progress, message: str, *, event: bool
) -> None:
    """Ready=False and a Warning Event on the schedule; a failure here is only logged."""
    namespace, name = key
    obj = progress.obj
    body = progress.body or {}
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    uid = obj.uid if obj is not None else str((meta or {}).get("uid") or "")
    ref = ObjectRef(labels.API_VERSION, labels.KIND, namespace, name, uid)
    try:
        if event:
            await kube.post_event(
                regarding=ref, type_="Warning", reason=INTERNAL_ERROR, message=message
            )
        if obj is None and not body:
            return  # nothing read: the other conditions are unknown, leave them be
        status = obj.status if obj is not None else body.get("status")
        generation = obj.generation if obj is not None else None
        patch = internal_error_patch(
            status=status, message=message, now=utcnow(), generation=generation
        )
        rv = await kube.patch_status(namespace=namespace, name=name, status=patch)
        if rv is not None:
            memory.written = rv  # its watch event is ours: no reconcile, no backoff skip
        memory.reported = True
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.debug("%s/%s: could not report the error: %s", *key, exc)
