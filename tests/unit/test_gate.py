"""The priority gate: bounded, lowest rank first, first come among equals, cancellation-safe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from jobwarden.handlers.gate import PriorityGate, Rank
from jobwarden.handlers.memory import ScheduleMemory
from tests.unit.test_executor import FakeKube, one_time, reconcile, scheduler

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _admission_order(limit: int, ranks: list[Rank]) -> tuple[list[int], int]:
    """Queue one waiter per rank behind ``limit`` holders; the order they got in, and the peak."""
    gate = PriorityGate(limit)
    order: list[int] = []
    inside = peak = 0
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.slot((0.0, 0.0)):
            await release.wait()

    async def waiter(i: int, rank: Rank) -> None:
        nonlocal inside, peak
        async with gate.slot(rank):
            inside += 1
            peak = max(peak, inside)
            order.append(i)
            await asyncio.sleep(0)
            inside -= 1

    holders = [asyncio.create_task(holder()) for _ in range(limit)]
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(waiter(i, r)) for i, r in enumerate(ranks)]
    await asyncio.sleep(0)
    assert gate.waiting == len(ranks)
    release.set()
    await asyncio.gather(*holders, *waiters)
    return order, peak


def test_waiters_go_in_lowest_rank_first_and_first_come_among_equals() -> None:
    ranks: list[Rank] = [(1.0, 50.0), (1.0, 10.0), (0.0, 99.0), (1.0, 10.0), (1.0, 5.0)]
    order, _ = asyncio.run(_admission_order(1, ranks))
    assert order == [2, 4, 1, 3, 0]


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_never_more_holders_than_the_limit(limit: int) -> None:
    ranks: list[Rank] = [(float(i % 3), float(-i)) for i in range(20)]
    order, peak = asyncio.run(_admission_order(limit, ranks))
    assert sorted(order) == list(range(20))
    assert 1 <= peak <= limit


def test_a_cancelled_waiter_passes_its_place_on() -> None:
    async def scenario() -> list[str]:
        gate = PriorityGate(1)
        got: list[str] = []
        release = asyncio.Event()

        async def holder() -> None:
            async with gate.slot((0.0, 0.0)):
                await release.wait()

        async def waiter(name: str, rank: Rank) -> None:
            async with gate.slot(rank):
                got.append(name)

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        doomed = asyncio.create_task(waiter("doomed", (0.0, 1.0)))
        later = asyncio.create_task(waiter("later", (5.0, 0.0)))
        await asyncio.sleep(0)
        doomed.cancel()
        release.set()
        await asyncio.gather(first, later)
        with pytest.raises(asyncio.CancelledError):
            await doomed
        # The place is free again: a new holder gets in at once.
        await asyncio.wait_for(waiter("after", (9.0, 9.0)), 1)
        return got

    assert asyncio.run(scenario()) == ["later", "after"]


def test_a_waiter_cancelled_just_as_it_was_let_in_hands_the_place_on() -> None:
    async def scenario() -> list[str]:
        gate = PriorityGate(1)
        got: list[str] = []

        async def waiter(name: str) -> None:
            async with gate.slot((1.0, 0.0)):
                got.append(name)

        held = gate.slot((0.0, 0.0))
        await held.__aenter__()
        racing = asyncio.create_task(waiter("racing"))
        other = asyncio.create_task(waiter("other"))
        await asyncio.sleep(0)
        await held.__aexit__(None, None, None)  # lets "racing" in, without yielding to it
        racing.cancel()
        await asyncio.wait_for(other, 1)
        return got

    assert asyncio.run(scenario()) == ["other"]


def test_a_gate_needs_a_place() -> None:
    with pytest.raises(ValueError):
        PriorityGate(0)


# --- what a schedule's reconcile is ranked by --------------------------------------------


def test_a_planned_wake_up_that_has_come_goes_before_any_bookkeeping() -> None:
    due = ScheduleMemory(urgent_at=T0 - timedelta(seconds=1))
    fresh = ScheduleMemory()  # nothing known: counts as due now
    idle = ScheduleMemory(next_run=(T0 + timedelta(days=300)).timestamp())
    ranks = {name: m.rank(T0) for name, m in {"due": due, "fresh": fresh, "idle": idle}.items()}
    assert sorted(ranks, key=ranks.__getitem__) == ["due", "fresh", "idle"]


def test_a_planned_wake_up_still_ahead_ranks_by_the_next_run() -> None:
    memory = ScheduleMemory(urgent_at=T0 + timedelta(minutes=5), next_run=T0.timestamp() + 60)
    assert memory.rank(T0) == (1.0, T0.timestamp() + 60)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"nextRunTime": "2026-01-01T00:01:00Z"}, T0.timestamp() + 60),
        ({}, None),
        ({"nextRunTime": "not a time"}, None),
        ({"nextRunTime": 12}, None),
        ("a string", None),
        (None, None),
    ],
)
def test_the_next_run_is_read_from_status_and_anything_unreadable_is_not_known(
    status: object, expected: float | None
) -> None:
    memory = ScheduleMemory(next_run=1.0)
    memory.saw_next_run({"status": status})
    assert memory.next_run == expected


def test_the_next_run_is_read_from_the_status_the_operator_writes() -> None:
    """Read from the field the reconcile writes: under any other name every listed
    schedule looks due, and a restart reconciles them all before a run due meanwhile."""
    run_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=200)
    kube = FakeKube(one_time(runAt=run_at.strftime("%Y-%m-%dT%H:%M:%SZ")))
    reconcile(scheduler(kube))
    memory = ScheduleMemory()
    memory.saw_next_run({"status": kube.patches[-1]})
    assert memory.next_run == run_at.timestamp()
    assert memory.due_after(datetime.now(UTC), ahead=timedelta(seconds=2)) == run_at


def test_a_change_to_a_known_schedule_is_urgent_and_a_first_sighting_is_not() -> None:
    """A listing after a start brings every schedule (bookkeeping, by next run); a later
    change someone made (run-now, an edit) is acted on before that bookkeeping."""
    sched = scheduler(FakeKube())
    body = {"metadata": {"namespace": "ns", "name": "s", "generation": 1}, "status": {}}
    sched.seen(("ns", "s"), resource_version="1", body=body)
    first = sched._memory[("ns", "s")]
    assert first.urgent_at is None
    assert first.rank(datetime.now(UTC))[0] == 1.0
    sched.seen(("ns", "s"), resource_version="2", body=body)
    assert first.rank(datetime.now(UTC) + timedelta(seconds=1))[0] == 0.0
