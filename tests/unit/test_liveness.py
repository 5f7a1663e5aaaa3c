"""Liveness: a loop whose beat is older than its bound fails /healthz; a dead task stops
the operator; the sweep survives a bad Job and reports a bad label once per value."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from jobwarden import labels, liveness
from jobwarden.handlers.sweep import BadLabel, Sweep, opt_in
from jobwarden.kube import ObjectRef
from jobwarden.main import Background
from jobwarden.safety.stale import StaleCandidate
from jobwarden.watching import Change

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _component(name: str, beat: float | None, bound: float = 60.0) -> liveness.Component:
    return liveness.Component(name, lambda: beat, bound)


def test_a_beat_past_its_bound_is_late_and_a_component_not_started_is_not_judged() -> None:
    verdict = liveness.judge(
        [
            _component("scheduler", 1000.0 - 61),
            _component("sweep", 1000.0 - 10),
            _component("watch jobs", None),
        ],
        now=1000.0,
    )
    assert verdict.late == ("scheduler",)
    assert not verdict.alive
    assert verdict.ages == {"scheduler": 61.0, "sweep": 10.0}
    assert "scheduler: no beat for 61 s" in verdict.message()


def test_every_beat_within_bounds_is_alive() -> None:
    assert liveness.judge([_component("scheduler", 999.0)], now=1000.0).alive


def test_the_sweep_bound_covers_two_intervals() -> None:
    assert liveness.sweep_bound(60.0) > 120.0


def test_kopf_answers_500_when_the_probe_raises() -> None:
    """The probe raises kopf.PermanentError with errors=PERMANENT: kopf's health
    reporter turns that into an exception in its request handler (a 500), at once."""
    from kopf._core.engines import probing

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/healthz"

    async def main() -> int:
        registry = kopf.OperatorRegistry()

        @kopf.on.probe(id="late", errors=kopf.ErrorsMode.PERMANENT, registry=registry)
        async def late(**_: Any) -> None:
            raise kopf.PermanentError("scheduler: no beat for 61 s")

        import aiohttp

        ready = asyncio.Event()
        server = asyncio.create_task(
            probing.health_reporter(
                url,
                memo=kopf.Memo(),
                indices=None,  # type: ignore[arg-type]
                registry=registry,
                settings=kopf.OperatorSettings(),
                ready_flag=ready,
            )
        )
        await ready.wait()
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(url) as response,
            ):
                return response.status
        finally:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)

    assert asyncio.run(asyncio.wait_for(main(), 30)) == 500


# --- a background task that ends stops the operator ---------------------------------------


def test_a_task_that_dies_is_logged_and_stops_the_operator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> tuple[bool, list[str]]:
        stop = asyncio.Event()
        background = Background(stop)

        async def dies() -> None:
            raise RuntimeError("boom")

        async def runs() -> None:
            await asyncio.sleep(3600)

        background.start(runs(), name="jobwarden sweep")
        background.start(dies(), name="jobwarden scheduler")
        await asyncio.wait_for(stop.wait(), 5)
        background.cancel()
        await asyncio.sleep(0)
        return stop.is_set(), background.failed

    with caplog.at_level(logging.CRITICAL):
        stopped, failed = asyncio.run(main())
    assert stopped and failed == ["jobwarden scheduler"]
    record = next(r for r in caplog.records if "died" in r.getMessage())
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


def test_cancelled_tasks_at_cleanup_are_no_failure() -> None:
    async def main() -> list[str]:
        background = Background(asyncio.Event())
        background.start(asyncio.sleep(3600), name="jobwarden sweep")
        await asyncio.sleep(0)
        background.cancel()
        await asyncio.sleep(0.01)
        return background.failed

    assert asyncio.run(main()) == []


# --- the sweep's error boundary -----------------------------------------------------------


class _Scheduler:
    leading = True

    def touch(self, key: tuple[str, str]) -> None:
        pass


class _Kube:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.events: list[tuple[str, str]] = []

    async def delete_job(self, *, namespace: str, name: str, grace_seconds: int | None) -> bool:
        self.deleted.append(name)
        return True

    async def post_event(
        self, *, regarding: ObjectRef, type_: str, reason: str, message: str
    ) -> None:
        self.events.append((regarding.name, reason))


def _sweep(kube: _Kube) -> Sweep:
    return Sweep(kube=kube, scheduler=_Scheduler(), interval=timedelta(seconds=2))  # type: ignore[arg-type]


def _job(name: str, value: str, *, uid: str = "u1") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": uid,
            "labels": {labels.STALE_AFTER_LABEL: value},
        },
        "status": {"startTime": "2024-01-01T00:00:00Z"},
    }


def test_a_candidate_whose_arithmetic_overflows_does_not_stop_the_pass() -> None:
    kube = _Kube()
    sweep = _sweep(kube)
    huge = StaleCandidate(
        key=("ns", "huge", ""), start_time=T0, threshold=timedelta(days=999_999_999)
    )
    fine = StaleCandidate(key=("ns", "fine", ""), start_time=T0, threshold=timedelta(seconds=1))
    later = T0 + timedelta(seconds=5)
    assert asyncio.run(sweep.sweep_once([huge, fine], now=later)) == 1
    assert kube.deleted == ["fine"]
    assert Sweep.until_next_opt_in([huge, fine], now=later) == float("inf")


def test_a_bad_label_is_one_warning_event_per_value_and_is_otherwise_ignored() -> None:
    kube = _Kube()
    sweep = _sweep(kube)
    bad = opt_in(_job("odd", "soon"), dry_run=False)
    assert isinstance(bad, BadLabel)
    sweep.track(Change(key=("ns", "odd"), old=None, new=bad))
    good = opt_in(_job("fine", "1s", uid="u2"), dry_run=False)
    sweep.track(Change(key=("ns", "fine"), old=None, new=good))
    later = T0 + timedelta(seconds=5)
    for _ in range(3):
        asyncio.run(sweep.sweep_once(sweep.candidates(), now=later))
    assert kube.events.count(("odd", "BadStaleAfter")) == 1
    assert "odd" not in kube.deleted and "fine" in kube.deleted
    # A new bad value on the same Job is reported again.
    worse = opt_in(_job("odd", "forever"), dry_run=False)
    sweep.track(Change(key=("ns", "odd"), old=bad, new=worse))
    asyncio.run(sweep.sweep_once(sweep.candidates(), now=later))
    assert kube.events.count(("odd", "BadStaleAfter")) == 2


def test_a_finished_opt_in_job_is_no_candidate() -> None:
    body = _job("done", "1s")
    body["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert opt_in(body, dry_run=False) is None
