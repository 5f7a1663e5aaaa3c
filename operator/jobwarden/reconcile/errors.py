"""How an internal failure is shown on the schedule it happened to: pure, no API calls.

A spec problem is the plan's to report (``Valid=False``). Anything else that
went wrong while reconciling one schedule (a bug, an API refusal, a value the
arithmetic cannot hold) is reported by the executor as ``Ready=False`` with
reason ``InternalError`` and a message naming the step, through the merge
patch rendered here. Only ``conditions`` is written: the rest of the status
stays as the last good plan left it, and the next good plan puts ``Ready``
back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jobwarden.api.status import format_time

INTERNAL_ERROR = "InternalError"
# Kubernetes caps a condition message at 32 KiB; an exception may quote anything.
MESSAGE_LIMIT = 1024


def describe_error(step: str, error: BaseException) -> str:
    """One line naming the step and the error, short enough for a condition and a log."""
    text = " ".join(str(error).split()) or "no details"
    message = f"reconcile step {step!r} failed: {type(error).__name__}: {text}"
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    return message


def internal_error_patch(
    *, status: object, message: str, now: datetime, generation: int | None
) -> dict[str, Any]:
    """The status merge patch that sets ``Ready=False`` (``InternalError``) and keeps the rest.

    ``status`` is the schedule's status as last read, whatever its shape: a
    merge patch replaces a list whole, so the other conditions are carried
    over, in their order, and anything that is not a condition is dropped.
    """
    raw = status.get("conditions") if isinstance(status, Mapping) else None
    conditions = (
        [dict(c) for c in raw if isinstance(c, Mapping) and isinstance(c.get("type"), str)]
        if isinstance(raw, list)
        else []
    )
    old = next((c for c in conditions if c["type"] == "Ready"), None)
    since = (
        old.get("lastTransitionTime")
        if old is not None
        and old.get("status") == "False"
        and isinstance(old.get("lastTransitionTime"), str)
        else format_time(now)
    )
    ready: dict[str, Any] = {
        "type": "Ready",
        "status": "False",
        "reason": INTERNAL_ERROR,
        "message": message,
        "lastTransitionTime": since,
    }
    if generation is not None and generation >= 0:
        ready["observedGeneration"] = generation
    if old is None:
        conditions.append(ready)
    else:
        conditions[conditions.index(old)] = ready
    return {"conditions": conditions}
