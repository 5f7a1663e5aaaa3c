"""The loop of the operator's periodic passes (the stale sweep, the start guard).

One loop for both, so that they beat, sleep and survive a failed pass alike:
liveness reads the beat, and a pass that raises is logged and the next one
comes after the interval as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

log = logging.getLogger(__name__)


async def pass_forever(
    *,
    interval: timedelta,
    one_pass: Callable[[], Awaitable[float]],
    beat: Callable[[], None],
    what: str,
) -> None:
    """Forever: ``beat``, sleep, run ``one_pass``. The pass returns in how many seconds it
    wants the next one (``inf``: after the interval); never later than the interval."""
    delay = interval.total_seconds()
    while True:
        beat()
        await asyncio.sleep(delay)
        delay = interval.total_seconds()
        try:
            delay = min(delay, await one_pass())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; next one in %s", what, interval)
