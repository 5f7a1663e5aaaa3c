"""Watch and index handlers run on the event loop, never in kopf's thread pool.

kopf calls a plain function in a worker thread. The schedule and Job
handlers push onto the scheduler's heap and wake its loop; from a worker
thread that races the loop popping the same heap (a wake-up can be lost)
and ``asyncio.Event.set`` is not thread-safe. So every one of them must be
a coroutine function.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import kopf
import pytest

from jobwarden.handlers import schedules, sweep


@pytest.fixture
def registry() -> Iterator[kopf.OperatorRegistry]:
    previous = kopf.get_default_registry()
    fresh = kopf.OperatorRegistry()
    kopf.set_default_registry(fresh)
    try:
        yield fresh
    finally:
        kopf.set_default_registry(previous)


def test_every_watch_and_index_handler_is_a_coroutine_function(
    registry: kopf.OperatorRegistry,
) -> None:
    schedules.register(scheduler_of=lambda memo: None, selector=None)
    sweep.register(dry_run=False)
    handlers = [
        *registry._watching.get_all_handlers(),
        *registry._indexing.get_all_handlers(),
    ]
    ids = {str(h.id) for h in handlers}
    assert {"schedule_event", "job_event", "schedule_jobs", "stale_candidates"} <= ids
    on_threads = [str(h.id) for h in handlers if not asyncio.iscoroutinefunction(h.fn)]
    assert on_threads == [], f"handlers kopf would run in its thread pool: {on_threads}"
