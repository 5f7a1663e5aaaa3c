"""Leader election: the pure decision table, the Lease spec written, the safety margin,
the scheduler's pause/resume, and electors sharing one Lease.

The electors here talk to an in-memory Lease store that keeps the API
server's one rule that matters for election (a write must name the
resourceVersion it read, else 409); tests/cluster/test_ha.py runs the same
code against a real API server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwarden.handlers import leader as leader_mod
from jobwarden.handlers.leader import Elector, identity
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.handlers.sweep import Sweep
from jobwarden.kube import Kube, LeaseConflict
from jobwarden.leadership import (
    LEASE_DURATION,
    MARGIN,
    RENEW_EVERY,
    LeaseView,
    decide,
    leading_until,
    lease_spec,
    micro_time,
    released_spec,
    send_window,
)
from jobwarden.reconcile import Policy
from jobwarden.safety.stale import StaleCandidate
from jobwarden.settings import SettingsError, parse_settings

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
D = timedelta(seconds=15)
EVERY = timedelta(seconds=5)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def view(holder: str | None, observed_ago: float, duration: float = 15) -> LeaseView:
    return LeaseView(holder=holder, observed=T0 - s(observed_ago), duration=s(duration))


# --- decide -------------------------------------------------------------------------------

DECIDE_TABLE = [
    # (name, lease, action, holder, check again after)
    ("no lease: create it", None, "acquire", "me", EVERY),
    ("released lease: take it", view(None, 0), "acquire", "me", EVERY),
    ("empty holder string: take it", view("", 3), "acquire", "me", EVERY),
    ("ours: renew", view("me", 2), "renew", "me", EVERY),
    ("ours, even lapsed: renew", view("me", 60), "renew", "me", EVERY),
    (
        "other, fresh: follow, poll at the renew interval",
        view("other", 0),
        "follow",
        "other",
        EVERY,
    ),
    (
        "other, about to lapse: follow until the exact expiry",
        view("other", 12),
        "follow",
        "other",
        s(3),
    ),
    ("other, lapsed exactly now: take over", view("other", 15), "acquire", "me", EVERY),
    ("other, long lapsed: take over", view("other", 600), "acquire", "me", EVERY),
    (
        "other with a longer lease of its own: its duration binds",
        view("other", 20, 60),
        "follow",
        "other",
        EVERY,
    ),
    (
        "other with a shorter lease of its own: lapses sooner",
        view("other", 6, 5),
        "acquire",
        "me",
        EVERY,
    ),
]


@pytest.mark.parametrize(
    ("lease", "action", "holder", "after"),
    [row[1:] for row in DECIDE_TABLE],
    ids=[r[0] for r in DECIDE_TABLE],
)
def test_decide_table(lease: LeaseView | None, action: str, holder: str, after: timedelta) -> None:
    d = decide(lease=lease, me="me", now=T0, duration=D, renew_every=EVERY)
    assert (d.action, d.holder, d.check_at - T0) == (action, holder, after)


def test_decide_renew_interval_defaults_to_a_third_of_the_duration() -> None:
    assert decide(lease=None, me="me", now=T0, duration=D).check_at == T0 + s(5)


def test_defaults_are_the_designed_ones() -> None:
    """15 s Lease, renewed every 5 s, standing down 5 s before it could lapse."""
    assert (s(15), s(5), s(5)) == (LEASE_DURATION, RENEW_EVERY, MARGIN)
    assert leading_until(renewed=T0, duration=LEASE_DURATION, margin=MARGIN) == T0 + s(10)


def test_leading_until_never_before_the_renewal() -> None:
    assert leading_until(renewed=T0, duration=s(3), margin=s(5)) == T0


@given(
    write_delay=st.floats(min_value=0, max_value=30),
    read_delay=st.floats(min_value=0, max_value=30),
    polls=st.lists(st.floats(min_value=0, max_value=120), max_size=20),
)
def test_old_leader_stops_a_margin_before_anyone_may_take_over(
    write_delay: float, read_delay: float, polls: list[float]
) -> None:
    """The safety argument, exhaustively: whenever a follower's polls happen, its first
    ``acquire`` comes at least MARGIN after the leader's stop time for the same record.

    The leader takes ``renewed`` before sending; the record becomes visible
    ``write_delay`` later and a follower first reads it ``read_delay`` after that.
    """
    renewed = T0
    stop = leading_until(renewed=renewed, duration=LEASE_DURATION, margin=MARGIN)
    observed = renewed + s(write_delay + read_delay)
    lease = LeaseView(holder="leader", observed=observed, duration=LEASE_DURATION)
    for at in sorted(observed + s(p) for p in polls):
        d = decide(lease=lease, me="follower", now=at, duration=LEASE_DURATION)
        if d.action == "acquire":
            assert at - stop >= MARGIN
            break
        assert d.action == "follow"


# --- the send window of acting calls ------------------------------------------------------

UNTIL = leading_until(renewed=T0, duration=LEASE_DURATION, margin=MARGIN)  # T0 + 10 s

SEND_WINDOW_TABLE = [
    # (name, now, until, seconds the request may take or None: not sent)
    ("just renewed: until the lease could pass", T0, UNTIL, 15.0),
    ("mid-term", T0 + s(6), UNTIL, 9.0),
    ("the last instant of the term: a margin left", T0 + s(9.999), UNTIL, 5.001),
    ("the term's end: not sent", UNTIL, UNTIL, None),
    ("after the term: not sent", T0 + s(12), UNTIL, None),
    ("not leading: not sent", T0, None, None),
]


@pytest.mark.parametrize(("name", "now", "until", "window"), SEND_WINDOW_TABLE)
def test_send_window_table(
    name: str, now: datetime, until: datetime | None, window: float | None
) -> None:
    got = send_window(now=now, until=until, margin=MARGIN)
    assert got == (None if window is None else pytest.approx(window)), name


@given(
    sent_after=st.floats(min_value=0, max_value=60),
    write_delay=st.floats(min_value=0, max_value=30),
)
def test_an_acting_request_is_over_before_any_follower_may_take_over(
    sent_after: float, write_delay: float
) -> None:
    """A request sent ``sent_after`` s into the term is sent only before the term ends,
    and its timeouts end it no later than the earliest takeover (``observed + duration``,
    ``observed`` coming after the renewal was sent)."""
    until = leading_until(renewed=T0, duration=LEASE_DURATION, margin=MARGIN)
    sent = T0 + s(sent_after)
    window = send_window(now=sent, until=until, margin=MARGIN)
    if window is None:
        assert sent >= until
        return
    assert sent < until
    takeover = T0 + s(write_delay) + LEASE_DURATION
    assert sent + s(window) <= takeover


def test_the_term_closes_on_the_clock_not_on_the_timer() -> None:
    """The gate of acting calls reads the clock: it closes at the term's end even
    while the event loop has not yet run the timer that pauses the scheduler."""

    async def scenario() -> None:
        clock, store = FakeClock(), LeaseStore()
        a = elector(store, Switch(), "a", clock)
        assert a.term.window() is None, "not leading yet: nothing acting is sent"
        await a.step()
        assert a.term.window() == pytest.approx(15.0)
        clock.now = T0 + s(9.5)
        assert a.term.window() == pytest.approx(5.5)
        clock.now = T0 + s(10)
        assert a.leading, "the timer (on the real loop clock) has not fired yet"
        assert a.term.window() is None
        # Renewed: a new term from the renewal's start.
        await a.step()
        assert a.term.window() == pytest.approx(15.0)
        store.down = True
        await a.release()
        assert a.term.window() is None

    asyncio.run(scenario())


# --- the Lease spec -----------------------------------------------------------------------


def test_lease_spec_create() -> None:
    spec = lease_spec(previous=None, action="acquire", me="a", wall_now=T0, duration=D)
    assert spec == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "acquireTime": "2030-01-01T12:00:00.000000Z",
        "renewTime": "2030-01-01T12:00:00.000000Z",
        "leaseTransitions": 0,
    }


def test_lease_spec_renew_keeps_acquire_time_and_transitions() -> None:
    first = lease_spec(previous=None, action="acquire", me="a", wall_now=T0, duration=D)
    again = lease_spec(previous=first, action="renew", me="a", wall_now=T0 + s(5), duration=D)
    assert again["acquireTime"] == first["acquireTime"]
    assert again["renewTime"] == micro_time(T0 + s(5))
    assert again["leaseTransitions"] == 0


def test_lease_spec_takeover_counts_a_transition() -> None:
    first = lease_spec(previous=None, action="acquire", me="a", wall_now=T0, duration=D)
    taken = lease_spec(previous=first, action="acquire", me="b", wall_now=T0 + s(20), duration=D)
    assert taken["holderIdentity"] == "b"
    assert taken["acquireTime"] == micro_time(T0 + s(20))
    assert taken["leaseTransitions"] == 1
    released = released_spec(previous=taken, wall_now=T0 + s(30))
    assert released["holderIdentity"] is None
    assert released["leaseTransitions"] == 1
    back = lease_spec(previous=released, action="acquire", me="a", wall_now=T0 + s(31), duration=D)
    assert back["leaseTransitions"] == 2


def test_follower_writes_nothing() -> None:
    with pytest.raises(ValueError):
        lease_spec(previous=None, action="follow", me="a", wall_now=T0, duration=D)


def test_micro_time_is_utc_with_microseconds() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2030, 1, 1, 13, 0, 0, 5, tzinfo=ZoneInfo("Europe/Paris"))
    assert micro_time(local) == "2030-01-01T12:00:00.000005Z"


# --- identity and settings ----------------------------------------------------------------


def test_identity_is_the_pod_name_or_unique_per_process() -> None:
    assert identity({"POD_NAME": "jobwarden-7d9-abcde"}) == "jobwarden-7d9-abcde"
    a, b = identity({}), identity({"POD_NAME": "  "})
    assert a != b, "two processes on one host must not share an identity"


def test_settings_lease(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    plain = parse_settings(argv=[], env={}, namespace_file=missing)
    assert (plain.lease, plain.lease_namespace) == (None, "default")
    by_env = parse_settings(
        argv=[],
        env={"JOBWARDEN_LEASE": "jobwarden", "JOBWARDEN_LEASE_NAMESPACE": "ops"},
        namespace_file=missing,
    )
    assert (by_env.lease, by_env.lease_namespace) == ("jobwarden", "ops")
    by_flag = parse_settings(
        argv=["--lease", "jw.a", "--lease-namespace", "x"],
        env={"JOBWARDEN_LEASE": "ignored"},
        namespace_file=missing,
    )
    assert (by_flag.lease, by_flag.lease_namespace) == ("jw.a", "x")
    assert (
        parse_settings(argv=[], env={"JOBWARDEN_LEASE": " "}, namespace_file=missing).lease is None
    )


def test_settings_lease_namespace_defaults_to_the_pods_own(tmp_path: Path) -> None:
    file = tmp_path / "namespace"
    file.write_text("jobwarden-system\n")
    assert parse_settings(argv=[], env={}, namespace_file=file).lease_namespace == (
        "jobwarden-system"
    )


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"JOBWARDEN_LEASE": "Not_A_Name"}, "lease"),
        ({"JOBWARDEN_LEASE": "x" * 254}, "lease"),
        ({"JOBWARDEN_LEASE_NAMESPACE": "a.b"}, "lease-namespace"),
    ],
)
def test_settings_lease_refuses_bad_names(
    env: dict[str, str], setting: str, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings(argv=[], env=env, namespace_file=tmp_path / "none")
    assert err.value.setting == setting


def test_settings_have_no_peering_any_more(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parse_settings(argv=["--peering", "x"], env={}, namespace_file=tmp_path / "none")


# --- the scheduler's switch ---------------------------------------------------------------


class RecordingKube:
    """Counts schedule reads; a schedule that is gone ends its reconcile at once."""

    def __init__(self, *, block: asyncio.Event | None = None) -> None:
        self.reads: list[tuple[str, str]] = []
        self.block = block

    async def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((namespace, name))
        if self.block is not None:
            await self.block.wait()
        return None


def scheduler(kube: RecordingKube) -> Scheduler:
    return Scheduler(kube=kube, policy=Policy(), jobs_of=lambda key: [])  # type: ignore[arg-type]


async def settle(predicate: Any, *, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_paused_scheduler_reconciles_nothing_and_resume_touches_every_schedule() -> None:
    async def scenario() -> None:
        kube = RecordingKube()
        sched = scheduler(kube)
        sched.pause()
        assert not sched.leading
        loop = asyncio.create_task(sched.run())
        for name in ("a", "b", "c"):
            sched.seen(("ns", name), resource_version=None)
        await asyncio.sleep(0.1)
        assert kube.reads == [], "a standby must not reconcile"
        sched.resume()
        await settle(lambda: len(kube.reads) == 3)
        assert sorted(kube.reads) == [("ns", "a"), ("ns", "b"), ("ns", "c")]
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())


def test_resume_reconciles_schedules_whose_wake_was_far_ahead() -> None:
    """A standby's heap may say 'next week'; the new leader looks at everything now."""

    async def scenario() -> None:
        kube = RecordingKube()
        sched = scheduler(kube)
        sched.pause()
        loop = asyncio.create_task(sched.run())
        sched.seen(("ns", "later"), resource_version=None)
        # Pretend an earlier leader's plan woke it in a week: drop the 'now' entry.
        sched._queue.clear()
        sched.touch(("ns", "later"), datetime.now(UTC) + timedelta(days=7))
        sched.resume()
        await settle(lambda: kube.reads == [("ns", "later")])
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())


def test_pause_cancels_reconciles_in_flight() -> None:
    async def scenario() -> None:
        block = asyncio.Event()
        kube = RecordingKube(block=block)
        sched = scheduler(kube)
        loop = asyncio.create_task(sched.run())
        sched.seen(("ns", "a"), resource_version=None)
        await settle(lambda: kube.reads == [("ns", "a")])
        assert sched._tasks, "the reconcile is in flight"
        sched.pause()
        await settle(lambda: not sched._tasks)
        block.set()
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())


class DeletingKube:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.events: list[str] = []

    async def delete_job(self, *, namespace: str, name: str, grace_seconds: int | None) -> bool:
        self.deleted.append(name)
        return True

    async def post_event(self, **kwargs: Any) -> None:
        self.events.append(kwargs["reason"])


def test_standby_sweep_terminates_nothing_and_the_leader_does() -> None:
    async def scenario() -> None:
        kube = DeletingKube()
        sched = scheduler(RecordingKube())
        warden = Sweep(kube=kube, scheduler=sched, interval=s(1))  # type: ignore[arg-type]
        stale = [
            StaleCandidate(
                key=("ns", "opt-in", ""),
                start_time=T0 - s(120),
                threshold=s(60),
                action="Terminate",
            )
        ]
        sched.pause()
        assert await warden.sweep_once(stale, now=T0) == 1, "found, even on standby"
        assert kube.deleted == []
        sched.resume()
        await warden.sweep_once(stale, now=T0)
        assert kube.deleted == ["opt-in"]

    asyncio.run(scenario())


# --- electors sharing one Lease -----------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class LeaseStore:
    """One Lease with the API server's optimistic concurrency; can be made unreachable."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False
        self.writes: list[str | None] = []

    async def get_lease(
        self, *, namespace: str, name: str, timeout: float
    ) -> dict[str, Any] | None:
        if self.down:
            raise ConnectionError("API server unreachable")
        return (
            None
            if self.lease is None
            else {"metadata": {"resourceVersion": str(self.version)}, "spec": dict(self.lease)}
        )

    async def write_lease(
        self,
        *,
        namespace: str,
        name: str,
        resource_version: str | None,
        spec: Mapping[str, Any],
        timeout: float,
    ) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("API server unreachable")
        if resource_version is None and self.lease is not None:
            raise LeaseConflict("already exists")
        if resource_version is not None and resource_version != str(self.version):
            raise LeaseConflict("the object has been modified")
        self.version += 1
        self.lease = dict(spec)
        self.writes.append(spec.get("holderIdentity"))
        return {"metadata": {"resourceVersion": str(self.version)}, "spec": dict(spec)}


def as_kube(fake: object) -> Kube:
    """A fake standing in for Kube: only the methods the code under test calls."""
    return fake  # type: ignore[return-value]


class Switch:
    def __init__(self) -> None:
        self.on = False
        self.flips: list[bool] = []

    def pause(self) -> None:
        self.on = False
        self.flips.append(False)

    def resume(self) -> None:
        self.on = True
        self.flips.append(True)


def elector(store: LeaseStore, switch: Switch, me: str, clock: FakeClock) -> Elector:
    return Elector(
        kube=as_kube(store),
        switch=switch,
        name="jw",
        namespace="ops",
        me=me,
        clock=clock,
        wall_clock=clock,
    )


def test_two_electors_elect_exactly_one_and_the_other_takes_over_after_expiry() -> None:
    async def scenario() -> None:
        clock, store = FakeClock(), LeaseStore()
        sa, sb = Switch(), Switch()
        a, b = elector(store, sa, "a", clock), elector(store, sb, "b", clock)
        await a.step()
        await b.step()
        assert (a.leading, b.leading) == (True, False)
        assert (sa.on, sb.on) == (True, False)
        assert b.holder == "a"
        # a renews; b keeps following however often it looks.
        for _ in range(6):
            clock.now += s(5)
            await a.step()
            await b.step()
            assert (sa.on, sb.on) == (True, False)
        # a dies: b takes over once it has seen the same record for a whole lease.
        died = clock.now
        while not b.leading:
            clock.now += s(1)
            await b.step()
            assert clock.now - died <= s(25)
        assert clock.now - died >= LEASE_DURATION
        assert store.lease is not None and store.lease["holderIdentity"] == "b"
        assert store.lease["leaseTransitions"] == 1

    asyncio.run(scenario())


def test_a_racing_write_loses_with_409_and_follows() -> None:
    async def scenario() -> None:
        clock, store = FakeClock(), LeaseStore()
        a = elector(store, Switch(), "a", clock)
        b = elector(store, Switch(), "b", clock)
        original = store.get_lease

        async def stale_read(**kw: Any) -> dict[str, Any] | None:
            return None  # both saw no Lease, both try to create it

        store.get_lease = stale_read  # type: ignore[method-assign]
        await a.step()
        await b.step()
        store.get_lease = original  # type: ignore[method-assign]
        assert (a.leading, b.leading) == (True, False)
        assert store.writes == ["a"]

    asyncio.run(scenario())


def test_leader_cut_off_from_the_api_stands_down_before_the_lease_lapses() -> None:
    """The deadline timer fires with no API answer at all: the stop needs no call."""

    async def scenario() -> None:
        clock, store = FakeClock(), LeaseStore()
        switch = Switch()
        a = Elector(
            kube=as_kube(store),
            switch=switch,
            name="jw",
            namespace="ops",
            me="a",
            duration=s(0.6),
            renew_every=s(0.2),
            margin=s(0.2),
            clock=leader_mod.monotonic_now,
            wall_clock=clock,
        )
        await a.step()
        assert switch.on
        renewed = leader_mod.monotonic_now()
        store.down = True
        await settle(lambda: not switch.on, timeout=3)
        stood_down = leader_mod.monotonic_now()
        assert stood_down - renewed <= s(0.6) - s(0.2) + s(0.1)
        assert not a.leading
        # Back on line: our own Lease is renewed and acting resumes.
        store.down = False
        await a.step()
        assert switch.on and switch.flips == [True, False, True]

    asyncio.run(scenario())


def test_release_hands_over_at_the_next_check() -> None:
    async def scenario() -> None:
        clock, store = FakeClock(), LeaseStore()
        sa = Switch()
        a = elector(store, sa, "a", clock)
        b = elector(store, Switch(), "b", clock)
        await a.step()
        await b.step()
        await a.release()
        assert not sa.on
        assert store.lease is not None and store.lease["holderIdentity"] is None
        await b.step()
        assert b.leading, "a released Lease needs no waiting for expiry"

    asyncio.run(scenario())


def test_release_leaves_another_holders_lease_alone() -> None:
    async def scenario() -> None:
        clock, store = FakeClock(), LeaseStore()
        a = elector(store, Switch(), "a", clock)
        await a.step()
        store.lease = {**(store.lease or {}), "holderIdentity": "b"}
        store.version += 1
        await a.release()
        assert store.lease["holderIdentity"] == "b"

    asyncio.run(scenario())
