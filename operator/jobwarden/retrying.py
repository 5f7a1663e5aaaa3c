"""How long one API call may take, and when to try it again: the numbers, without I/O.

Every call the operator makes has a connect and a read timeout, and a budget
of time and attempts over all its tries. A call is tried again only for
faults that say nothing about the request itself: the API server asked us to
slow down (429), failed or was unavailable (5xx), or the connection was
reset or timed out. Everything else (403, 404, 409, 422, ...) is an answer,
returned at once.

A retry waits with exponential backoff and full jitter: a uniform draw from
``[0, min(cap, base * 2**n))`` before try ``n + 2``, so that replicas and
workers hit by the same fault do not come back in step. A ``Retry-After``
the server sent (APF's 429s carry one) is honoured: the wait is that long at
least, plus the jittered backoff. A wait that would end past the budget is
not waited: the call gives up at once and raises, so the caller's own error
boundary (which backs off per object) takes over instead of a worker that
sleeps past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# The statuses worth another try: throttled, or the server (or something in front
# of it) failed. A 501 is an answer ("not implemented"), not a fault.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Seconds to wait for a TCP/TLS connection, and for each read from the socket."""

    connect: float = 5.0
    read: float = 15.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """The bound on one call: ``attempts`` tries in all, none started after ``budget`` s.

    Each try's timeouts are also cut to what is left of the budget, so a call
    returns or raises within ``budget`` seconds of being made (plus the
    scheduling delay of the event loop).
    """

    attempts: int = 6
    budget: float = 30.0
    base: float = 0.25
    cap: float = 4.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.budget <= 0 or self.base < 0 or self.cap < self.base:
            raise ValueError(f"not a usable retry policy: {self}")


# The default for every call; the Lease calls use ONCE (the elector retries itself,
# on its own clock).
DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_RETRY = RetryPolicy()
ONCE = RetryPolicy(attempts=1, budget=DEFAULT_TIMEOUTS.connect + DEFAULT_TIMEOUTS.read)


def backoff_cap(*, retry: int, policy: RetryPolicy) -> float:
    """The longest backoff before retry number ``retry`` (0 for the first retry)."""
    # min() before the power would overflow: 2**1100 is fine for ints, not floats.
    return min(policy.cap, policy.base * 2.0 ** min(retry, 64))


def next_wait(
    *,
    retry: int,
    elapsed: float,
    retry_after: float | None,
    policy: RetryPolicy,
    draw: float,
) -> float | None:
    """Seconds to wait before retry number ``retry``; None when the call must give up.

    ``elapsed`` is the time since the call was made, ``draw`` a uniform random
    number in ``[0, 1)`` (passed in so that the schedule is a pure function).
    Gives up when the attempts are used up, or when the wait would end at or
    past the budget (no try could start then).
    """
    if retry + 1 >= policy.attempts:
        return None
    wait = draw * backoff_cap(retry=retry, policy=policy)
    if retry_after is not None:
        wait += max(0.0, retry_after)
    if elapsed + wait >= policy.budget:
        return None
    return wait


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delta-seconds or an HTTP-date.

    None when absent or unreadable (then the backoff alone decides); a date in
    the past is 0.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text[:9]))  # more than 30 years is as good as never
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def attempt_timeouts(
    *, timeouts: Timeouts, remaining: float, window: float | None
) -> tuple[float, float, float] | None:
    """(connect, read, total) seconds for one try, or None when it must not be sent.

    ``remaining`` is what is left of the call's budget; ``window`` how long a
    request sent now may take for the lease term it acts under (None: the call
    does not act for a lease, see :func:`jobwarden.leadership.send_window`).
    """
    limit = remaining if window is None else min(remaining, window)
    if limit <= 0:
        return None
    return min(timeouts.connect, limit), min(timeouts.read, limit), limit
