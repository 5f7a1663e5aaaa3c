"""The reconciles owed to every schedule after the listing or a takeover: fed a few at a time.

After a restart beside 50,000 schedules, waking all of them when the Jobs
were listed put 50,000 reconciles in flight at once, and a schedule created
meanwhile waited 27 s behind them. The backlog hands them out lowest rank
first, at most ``_feed`` in flight, so a due run always finds room.
Driven through the real Scheduler over ``FakeKube``, with every idle
reconcile held in flight until the test lets it go.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwarden.handlers.backlog import Backlog
from jobwarden.handlers.memory import ScheduleMemory
from jobwarden.handlers.scheduler import Key, Scheduler
from tests.unit.test_executor import one_time, scheduler
from tests.unit.test_unlisted_start import ListingKube, _idle, _see, _unlisted, _until

IDLE = 120


def test_the_backlog_hands_out_lowest_rank_first_and_each_key_once() -> None:
    backlog: Backlog[str] = Backlog()
    backlog.owe("late", (1.0, 300.0))
    backlog.owe("soon", (1.0, 100.0))
    backlog.owe("urgent", (0.0, 900.0))
    backlog.owe("later", (1.0, 200.0))
    backlog.owe("late", (1.0, 50.0))  # owed again: re-ranked, still once
    backlog.settle("later")  # reconciled meanwhile: owed nothing
    assert len(backlog) == 3
    assert backlog.take(2) == ["urgent", "late"]
    assert backlog.take(5) == ["soon"]
    assert not backlog and "soon" not in backlog


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 3)), max_size=30))
def test_whatever_is_owed_comes_out_once_in_rank_order(owed: list[tuple[int, int]]) -> None:
    backlog: Backlog[int] = Backlog()
    rank: dict[int, float] = {}
    for key, value in owed:
        backlog.owe(key, (1.0, float(value)))
        rank[key] = value
    taken = [k for batch in iter(lambda: backlog.take(3), []) for k in batch]
    assert sorted(taken) == sorted(rank)
    assert [rank[k] for k in taken] == sorted(rank[k] for k in taken)


class Held:
    """Wraps the executor: counts reconciles in flight; idle ones wait for ``release``."""

    def __init__(self, sched: Scheduler) -> None:
        self.release = asyncio.Event()
        self.flying = 0
        self.most = 0
        self.order: list[str] = []
        self._run = sched._executor.run
        sched._executor.run = self  # type: ignore[method-assign]

    async def __call__(self, key: Key, memory: ScheduleMemory, **kwargs: Any) -> Any:
        self.order.append(key[1])
        self.flying += 1
        self.most = max(self.most, self.flying)
        try:
            if key[1].startswith("idle"):
                await self.release.wait()
            return await self._run(key, memory, **kwargs)
        finally:
            self.flying -= 1


@pytest.mark.parametrize("jobs_listed_first", [False, True])
def test_after_the_listing_a_fresh_schedule_runs_while_the_bookkeeping_waits(
    *, jobs_listed_first: bool
) -> None:
    """120 idle schedules are owed a reconcile, whether the Jobs' listing ends before or
    after theirs; they are held in flight. At most ``_feed`` are in flight at once, and
    a schedule created then is reconciled and its run created before the rest of them;
    then all are done."""
    kube = ListingKube(*[_idle(f"idle-{i:03d}") for i in range(IDLE)], one_time("fresh"))
    sched = _unlisted(kube)
    held = Held(sched)

    async def scenario() -> None:
        loop = asyncio.create_task(sched.run())
        if jobs_listed_first:
            sched.listed()
        for i in range(IDLE):
            _see(sched, _idle(f"idle-{i:03d}"))
        sched.listed()
        await _until(lambda: held.flying == sched._feed, "the first idle ones in flight")
        _see(sched, one_time("fresh"))
        await _until(lambda: kube.created(), "the fresh schedule's run")
        assert held.flying == sched._feed, "the held bookkeeping was not fed more"
        held.release.set()
        await _until(lambda: len(held.order) == IDLE + 1, "every schedule reconciled")
        loop.cancel()
        await sched.close()

    asyncio.run(scenario())
    assert sched._feed < IDLE
    assert held.most <= sched._feed + 1, f"{held.most} reconciles in flight at once"
    assert held.order.index("fresh") == sched._feed, "fresh right after those in flight"
    assert sorted(held.order) == sorted([*(f"idle-{i:03d}" for i in range(IDLE)), "fresh"])


def test_the_backlog_goes_soonest_next_run_first() -> None:
    """Owed reconciles come in the order of the schedules' next runs, not of their names."""
    bodies = [_idle(f"idle-{i:03d}") for i in range(IDLE)]
    for i, body in enumerate(bodies):  # the last named runs first
        when = f"{2099 - i // 12}-01-01T00:{i % 12:02d}:00Z"
        body["status"]["nextRunTime"] = body["spec"]["runAt"] = when
    expected = [b["metadata"]["name"] for b in sorted(bodies, key=lambda b: b["spec"]["runAt"])]
    kube = ListingKube(*bodies)
    sched = _unlisted(kube)
    held = Held(sched)
    held.release.set()

    async def scenario() -> None:
        loop = asyncio.create_task(sched.run())
        for body in bodies:
            _see(sched, body)
        sched.listed()
        await _until(lambda: len(held.order) == IDLE, "every schedule reconciled")
        loop.cancel()
        await sched.close()

    asyncio.run(scenario())
    assert held.order == expected


def test_a_takeover_reconciles_what_is_due_first_and_the_rest_a_few_at_a_time() -> None:
    """A standby that knows 120 idle schedules and one whose run is due takes the lease:
    the due one is reconciled first and its run created while the idle ones, held in
    flight, are at most ``_feed`` at once; then every one of them is reconciled."""
    kube = ListingKube(*[_idle(f"idle-{i:03d}") for i in range(IDLE)], one_time("due"))
    sched = scheduler(kube)
    held = Held(sched)

    async def scenario() -> None:
        sched.pause()
        loop = asyncio.create_task(sched.run())
        for i in range(IDLE):
            _see(sched, _idle(f"idle-{i:03d}"))
        _see(sched, one_time("due"))
        await asyncio.sleep(0.1)
        assert held.order == [], "a standby acts on nothing"
        sched.resume()
        await _until(lambda: kube.created(), "the due run")
        await _until(lambda: held.flying == sched._feed, "idle ones in flight")
        held.release.set()
        await _until(lambda: len(held.order) == IDLE + 1, "every schedule reconciled")
        loop.cancel()
        await sched.close()

    asyncio.run(scenario())
    assert held.order[0] == "due"
    assert held.most <= sched._feed + 1, f"{held.most} reconciles in flight at once"
