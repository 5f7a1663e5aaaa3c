"""The due-soon list: what the leader writes, and what a starting replica reads first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from jobwarden.handlers.duesoon import (
    DATA_KEY,
    DueSoonReader,
    DueSoonWriter,
    parse,
    render,
    selected,
)
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.reconcile import Policy

_LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
_KEY = st.tuples(_LABEL, st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,40}[a-z0-9])?", fullmatch=True))


@given(keys=st.lists(_KEY, max_size=30))
def test_the_list_reads_back_as_the_set_written_in_one_order(keys: list[tuple[str, str]]) -> None:
    text = render(keys)
    assert sorted(set(keys)) == parse(text)
    assert render(reversed(keys)) == text, "the same set must read the same: no needless write"


def test_a_list_someone_edited_yields_only_keys_and_at_most_the_limit() -> None:
    text = "ns/a\n\nnot a key\nNS/upper\n/nameless\nns/\nns/b/c\nns/" + "x" * 300 + "\nns/b\nns/c\n"
    assert parse(text) == [("ns", "a"), ("ns", "b"), ("ns", "c")]
    assert parse(text, limit=2) == [("ns", "a"), ("ns", "b")]
    assert parse(None) == [] and parse({"a": 1}) == []


def test_a_schedule_read_ahead_must_match_the_operators_selector() -> None:
    body = {"metadata": {"labels": {"shard": "a", "tier": "x"}}}
    assert selected(body, None)
    assert selected(body, {"shard": "a", "tier": None})
    assert not selected(body, {"shard": "b"})
    assert not selected(body, {"zone": None})
    assert not selected({"metadata": {"labels": "junk"}}, {"shard": "a"})


def _seen(sched: Scheduler, name: str, next_run: datetime | None) -> None:
    status = {"nextRunTime": next_run.strftime("%Y-%m-%dT%H:%M:%SZ")} if next_run else {}
    body = {"metadata": {"namespace": "ns", "name": name, "resourceVersion": "1"}}
    sched.seen(("ns", name), resource_version="1", body={**body, "status": status})


def test_the_list_holds_the_soonest_next_runs_within_the_horizon() -> None:
    sched = Scheduler(kube=None, policy=Policy(), jobs_of=lambda key: [])  # type: ignore[arg-type]
    now = datetime.now(UTC)
    _seen(sched, "in-a-minute", now + timedelta(minutes=1))
    _seen(sched, "overdue", now - timedelta(minutes=3))
    _seen(sched, "in-five", now + timedelta(minutes=5))
    _seen(sched, "next-hour", now + timedelta(hours=1))
    _seen(sched, "suspended", None)
    horizon = timedelta(minutes=10)
    assert sched.due_within(horizon, limit=10) == [
        ("ns", "overdue"),
        ("ns", "in-a-minute"),
        ("ns", "in-five"),
    ]
    assert sched.due_within(horizon, limit=2) == [("ns", "overdue"), ("ns", "in-a-minute")]


class _Kube:
    """Records ConfigMap writes; fails the next ``failures`` of them; serves reads."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.writes: list[dict[str, str]] = []
        self.failures = 0
        self.data = data
        self.schedules: dict[tuple[str, str], dict[str, Any]] = {}
        self.read: list[tuple[str, str]] = []

    async def write_config_map_data(self, *, namespace: str, name: str, data: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("403 Forbidden")
        self.writes.append(dict(data))

    async def get_config_map_data(self, *, namespace: str, name: str) -> dict[str, str] | None:
        if self.data is None:
            raise RuntimeError("403 Forbidden")
        return self.data

    async def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        self.read.append((namespace, name))
        return self.schedules.get((namespace, name))


class _Source:
    leading = True

    def __init__(self) -> None:
        self.keys = [("ns", "b"), ("ns", "a")]

    def due_within(self, horizon: timedelta, *, limit: int) -> list[tuple[str, str]]:
        return list(self.keys)


def test_the_leader_writes_the_list_when_it_changes_and_again_after_a_failure() -> None:
    kube, source = _Kube(), _Source()
    writer = DueSoonWriter(kube=kube, source=source, ready=lambda: True, namespace="op", name="due")  # type: ignore[arg-type]

    async def scenario() -> None:
        await writer.tick()
        await writer.tick()
        assert kube.writes == [{DATA_KEY: "ns/a\nns/b\n"}], "unchanged: written once"
        source.keys.append(("ns", "c"))
        kube.failures = 1
        await writer.tick()
        assert len(kube.writes) == 1
        await writer.tick()
        assert kube.writes[-1] == {DATA_KEY: "ns/a\nns/b\nns/c\n"}, "retried after the failure"

    asyncio.run(scenario())


def test_nothing_is_written_before_every_schedule_is_listed_nor_by_a_standby() -> None:
    """A starting replica knows few schedules or none: writing then would erase the list
    it is reading ahead from, and the one the next restart needs."""
    kube, source = _Kube(), _Source()
    listed: list[bool] = []
    writer = DueSoonWriter(
        kube=kube, source=source, ready=lambda: bool(listed), namespace="op", name="due"
    )  # type: ignore[arg-type]

    async def scenario() -> None:
        await writer.tick()
        assert kube.writes == []
        source.leading = False
        listed.append(True)
        await writer.tick()
        assert kube.writes == [], "a standby wrote"
        source.leading = True
        await writer.tick()
        assert len(kube.writes) == 1

    asyncio.run(scenario())


def test_a_starting_replica_reads_its_namespaces_schedules_that_exist_and_are_selected() -> None:
    kube = _Kube({DATA_KEY: "a/one\na/gone\na/other-shard\nb/two\n"})
    kube.schedules = {
        ("a", "one"): {"metadata": {"name": "one", "labels": {"shard": "x"}}},
        ("a", "other-shard"): {"metadata": {"name": "other-shard", "labels": {"shard": "y"}}},
        ("b", "two"): {"metadata": {"name": "two", "labels": {"shard": "x"}}},
    }
    reader = DueSoonReader(kube=kube, namespace="op", name="due", selector={"shard": "x"})  # type: ignore[arg-type]

    async def names(namespace: str | None) -> list[str]:
        return sorted([b["metadata"]["name"] async for b in reader.bodies(namespace)])

    async def scenario() -> None:
        assert await names("a") == ["one"]
        assert await names("b") == ["two"]
        assert await names(None) == ["one", "two"]

    asyncio.run(scenario())
    assert sorted(set(kube.read)) == [
        ("a", "gone"),
        ("a", "one"),
        ("a", "other-shard"),
        ("b", "two"),
    ]


def test_an_unreadable_list_reads_nothing_ahead() -> None:
    reader = DueSoonReader(kube=_Kube(None), namespace="op", name="due", selector=None)  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        return [b async for b in reader.bodies(None)]

    assert asyncio.run(scenario()) == []
