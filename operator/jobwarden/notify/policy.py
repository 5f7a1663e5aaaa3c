"""When a delivery is tried again: the numbers, without I/O (as ``jobwarden.retrying``).

A delivery is retried for faults that say nothing about the event itself:
no answer (refused, reset, timed out), a 408 or 429, or a 5xx but 501. Any
other answer that is not 2xx (a 400, 401, 404, a redirect, which is never
followed) will not change by sending again: the event is given up at once.
Waits are exponential with full jitter, capped, honouring ``Retry-After``,
from ``jobwarden.retrying`` (one backoff rule for the whole operator), and
bounded by the sink's attempts and a budget of time per event.
"""

from __future__ import annotations

from typing import Final, Literal

from jobwarden.notify.sinks import Sink
from jobwarden.retrying import RETRYABLE_STATUS, RetryPolicy

Verdict = Literal["delivered", "retry", "reject"]
RETRYABLE: Final = RETRYABLE_STATUS | {408}
# One event's wait for a sink: past this it is given up whatever attempts are left.
BUDGET_SECONDS: Final = 600.0
BASE_SECONDS: Final = 0.5
CAP_SECONDS: Final = 60.0


def retry_policy(sink: Sink) -> RetryPolicy:
    """The sink's attempts, within the operator's budget and backoff cap."""
    return RetryPolicy(
        attempts=sink.max_attempts, budget=BUDGET_SECONDS, base=BASE_SECONDS, cap=CAP_SECONDS
    )


def verdict(status: int | None) -> Verdict:
    """What an attempt's HTTP status (None: no answer at all) means for the event."""
    if status is None or status in RETRYABLE:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    return "reject"
