"""The wake queue: the earliest wake-up wins, superseded entries never fire, forgetting is final."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from jobwarden.handlers.wakequeue import WakeQueue

T0 = datetime(2024, 1, 1, tzinfo=UTC)
S = timedelta(seconds=1)
AHEAD = 2 * S


def queue() -> WakeQueue[str]:
    return WakeQueue(ahead=AHEAD)


def test_an_earlier_wake_up_replaces_a_later_one_and_a_later_one_is_ignored() -> None:
    q = queue()
    assert q.wake("a", T0 + 10 * S)
    assert q.wake("a", T0 + 5 * S), "earlier: moved"
    assert not q.wake("a", T0 + 7 * S), "later: the earlier one stands"
    assert q.due("a") == T0 + 5 * S
    assert q.pop_due(T0 + 6 * S) == ["a"]
    assert q.pop_due(T0 + 60 * S) == [], "the superseded entry at 10 s never fires"
    assert q.due("a") is None


def test_keys_come_due_soonest_first_and_only_once_their_time_has_come() -> None:
    q = queue()
    q.wake("late", T0 + 3 * S)
    q.wake("early", T0 + 1 * S)
    q.wake("later", T0 + 9 * S)
    assert q.soonest() == T0 + 1 * S
    assert q.pop_due(T0) == []
    assert q.pop_due(T0 + 3 * S) == ["early", "late"]
    assert len(q) == 1


def test_a_dropped_key_never_comes_due() -> None:
    q = queue()
    q.wake("gone", T0)
    q.prepare("gone", T0 + 10 * S)
    q.drop("gone")
    assert q.pop_due(T0 + 60 * S) == []
    assert q.pop_prepare(T0 + 60 * S) == []
    assert q.due("gone") is None


def test_a_plan_ahead_comes_up_ahead_of_its_wake_up_once() -> None:
    q = queue()
    wake = T0 + 10 * S
    assert q.prepare("a", wake)
    assert not q.prepare("a", wake), "once per key and wake-up"
    assert q.soonest() == wake - AHEAD
    assert q.pop_prepare(wake - AHEAD - S) == []
    assert q.pop_prepare(wake - AHEAD) == [("a", wake)]
    assert q.pop_prepare(wake) == []


def test_a_newer_plan_ahead_replaces_the_older_one() -> None:
    q = queue()
    q.prepare("a", T0 + 10 * S)
    q.prepare("a", T0 + 20 * S)
    assert q.pop_prepare(T0 + 60 * S) == [("a", T0 + 20 * S)]


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 100)), max_size=40))
def test_each_key_fires_once_at_its_earliest_wake_up(wakes: list[tuple[str, int]]) -> None:
    q = queue()
    for key, second in wakes:
        q.wake(key, T0 + second * S)
    earliest: dict[str, int] = {}
    for key, second in wakes:
        earliest[key] = min(second, earliest.get(key, second))
    fired: list[str] = []
    for second in range(0, 101):
        for key in q.pop_due(T0 + second * S):
            assert earliest[key] == second
            fired.append(key)
    assert sorted(fired) == sorted(earliest)
