"""The delivery worker against a real local HTTP receiver (no mock of the HTTP layer):
retries on 500 with one id, a timeout on a receiver that never answers, no retry of a
refusal, the bounded queue, credentials and both CloudEvents modes, and a hanging sink
that holds up no other sink."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from jobwarden import metrics
from jobwarden.notify.delivery import GivenUp, SinkWorker
from jobwarden.notify.events import Delivery, Notification, ScheduleRef, event_id
from jobwarden.notify.notifier import Notifier
from jobwarden.notify.sinks import Sink
from tests.support.receiver import Receiver

T = TypeVar("T")
REF = ScheduleRef(namespace="ns", name="nightly", uid="uid-1")
WHEN = datetime(2026, 12, 1, 2, 0, 30, tzinfo=UTC)


def failed(job: str) -> Notification:
    return Notification(
        id=event_id(uid=REF.uid, event="Failed", about=job),
        event="Failed",
        schedule=REF,
        time=WHEN,
        result="Failed",
        reason="BackoffLimitExceeded",
        job=job,
        trigger="Schedule",
        scheduled_time=WHEN.replace(second=0),
    )


def counted(sink: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "jobwarden_notifications_total", {"sink": sink, "outcome": outcome}
    )
    return value or 0.0


class Recorder:
    def __init__(self) -> None:
        self.given_up: list[GivenUp] = []

    async def __call__(self, failure: GivenUp) -> None:
        self.given_up.append(failure)


def worker(sink: Sink, recorder: Recorder) -> SinkWorker:
    # draw 0: full jitter waits nothing, so retries follow at once.
    return SinkWorker(sink=sink, given_up=recorder, draw=lambda: 0.0)


def deliver(w: SinkWorker, notification: Notification) -> bool:
    async def go() -> bool:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=w.sink.timeout_seconds)
        ) as session:
            return await w.deliver(session, notification, queued_at=0.0)

    return asyncio.run(go())


def test_a_500_is_retried_with_the_same_id_until_delivered() -> None:
    recorder = Recorder()
    with Receiver(answer=lambda attempt: 500 if attempt <= 2 else 200).running() as receiver:
        sink = Sink(name="retries", url=receiver.url, max_attempts=5)
        before = counted("retries", "Delivered")
        assert deliver(worker(sink, recorder), failed("a")) is True
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert {r.id for r in receiver.requests} == {failed("a").id}
    assert len(receiver.unique()) == 1
    assert counted("retries", "Delivered") == before + 1
    assert recorder.given_up == []


def test_a_receiver_that_never_answers_times_out_and_is_given_up() -> None:
    recorder = Recorder()
    with Receiver(hang=True).running() as receiver:
        sink = Sink(name="hangs", url=receiver.url, timeout_seconds=0.5, max_attempts=2)
        assert deliver(worker(sink, recorder), failed("a")) is False
    assert len(receiver.requests) == 2  # both attempts reached it, neither was answered
    (failure,) = recorder.given_up
    assert failure.attempts == 2 and failure.error == "no answer within 0.5 s"


def test_a_refusal_is_not_retried() -> None:
    recorder = Recorder()
    with Receiver(answer=lambda attempt: 400).running() as receiver:
        sink = Sink(name="refuses", url=receiver.url, max_attempts=5)
        before = counted("refuses", "Failed")
        assert deliver(worker(sink, recorder), failed("a")) is False
    assert len(receiver.requests) == 1
    assert recorder.given_up[0].error == "HTTP 400"
    assert counted("refuses", "Failed") == before + 1


def test_a_refused_connection_is_retried_then_given_up() -> None:
    with Receiver().running() as receiver:
        url = receiver.url  # closed on leaving: nothing listens there any more
    recorder = Recorder()
    sink = Sink(name="gone", url=url, max_attempts=3)
    assert deliver(worker(sink, recorder), failed("a")) is False
    assert recorder.given_up[0].attempts == 3
    error = recorder.given_up[0].error
    assert error.startswith("ClientConnectorError") and "refused" in error.lower(), error
    # It goes into an Event on a tenant's schedule: the owner's address is not in it.
    assert url.split("//")[1].split("/")[0] not in error and "127.0.0.1" not in error


def test_an_event_sent_again_is_one_event_to_the_receiver() -> None:
    """A restart that derives and sends the same event again: the same id, deduplicated."""
    recorder = Recorder()
    with Receiver().running() as receiver:
        sink = Sink(name="again", url=receiver.url)
        assert deliver(worker(sink, recorder), failed("a"))
        assert deliver(worker(sink, recorder), failed("a"))
        assert deliver(worker(sink, recorder), failed("b"))
    assert len(receiver.requests) == 3
    assert sorted(r.subject or "" for r in receiver.unique().values()) == ["a", "b"]


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_both_modes_carry_the_event_and_the_bearer_token(mode: str, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    recorder = Recorder()
    with Receiver(token="s3cret").running() as receiver:
        sink = Sink(name=f"mode-{mode}", url=receiver.url, token_file=token, mode=mode)  # type: ignore[arg-type]
        assert deliver(worker(sink, recorder), failed("a"))
    (got,) = receiver.requests
    assert got.status == 200
    assert got.type == "io.jobwarden.run.failed"
    assert got.source == "/apis/jobwarden.io/v1alpha1/namespaces/ns/jobschedules/nightly"
    assert got.data["schedule"] == {"namespace": "ns", "name": "nightly", "uid": "uid-1"}
    assert got.data["run"]["job"] == "a" and got.data["reason"] == "BackoffLimitExceeded"
    assert got.data["scheduledTime"] == "2026-12-01T02:00:00Z"
    content_type = got.headers["content-type"]
    if mode == "binary":
        assert got.headers["ce-id"] == failed("a").id and content_type == "application/json"
    else:
        assert "ce-id" not in got.headers
        assert content_type.startswith("application/cloudevents+json")


def test_a_wrong_token_is_a_refusal(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("old")
    recorder = Recorder()
    with Receiver(token="new").running() as receiver:
        sink = Sink(name="badtoken", url=receiver.url, token_file=token)
        assert deliver(worker(sink, recorder), failed("a")) is False
    assert recorder.given_up[0].error == "HTTP 401"


def test_a_full_queue_drops_its_oldest_event_and_counts_it() -> None:
    recorder = Recorder()
    with Receiver().running() as receiver:
        sink = Sink(name="small", url=receiver.url, queue_size=2)
        before = counted("small", "Dropped")

        async def go() -> None:
            w = worker(sink, recorder)
            for job in ("a", "b", "c"):
                w.submit(failed(job))  # before the worker runs: the queue holds two
            task = asyncio.create_task(w.run())
            try:
                await asyncio.to_thread(
                    receiver.wait, lambda r: len(r.unique()) == 2, timeout=30, what="2 events"
                )
            finally:
                task.cancel()

        asyncio.run(go())
    assert sorted(r.subject or "" for r in receiver.unique().values()) == ["b", "c"]
    assert counted("small", "Dropped") == before + 1


def test_a_hanging_sink_holds_up_no_other_sink() -> None:
    """Each sink has its own worker: while one sink's receiver holds its request, the
    other sink's events arrive, all of them."""
    recorder = Recorder()
    with (
        Receiver(hang=True).running() as stuck,
        Receiver().running() as fine,
    ):
        notifier = Notifier(
            sinks=[
                Sink(name="stuck", url=stuck.url, timeout_seconds=300),
                Sink(name="fine", url=fine.url),
            ],
            given_up=recorder,
        )

        async def go() -> None:
            tasks = [asyncio.create_task(w.run()) for w in notifier.workers]
            try:
                notifier.submit([Delivery(sink="stuck", notification=failed("a"))])
                await asyncio.to_thread(
                    stuck.wait, lambda r: r.hanging == 1, timeout=30, what="held"
                )
                notifier.submit(
                    [Delivery(sink="fine", notification=failed(j)) for j in ("a", "b", "c")]
                )
                await asyncio.to_thread(
                    fine.wait, lambda r: len(r.unique()) == 3, timeout=30, what="3 events"
                )
                assert stuck.hanging == 1 and stuck.unique() == {}  # still held meanwhile
            finally:
                for task in tasks:
                    task.cancel()

        asyncio.run(go())
    assert recorder.given_up == []
