"""What the operator makes of its sink workers beyond the deliveries: an event a sink
did not take is a Warning Event on its schedule (naming the sink, never its address) and
a metric; a worker that stops beating fails liveness; a tenant can name a sink, never
give an address."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from jobwarden import labels, liveness
from jobwarden.handlers.notifications import FAILED_REASON, reporter
from jobwarden.kube import NotLeading, ObjectRef
from jobwarden.notify.delivery import GivenUp
from jobwarden.notify.events import Delivery
from jobwarden.notify.notifier import Notifier
from jobwarden.notify.sinks import Sink
from tests.support.receiver import Receiver
from tests.unit.test_notify_delivery import REF, counted, failed

CRD = Path(__file__).parents[2] / "crds" / "jobschedules.jobwarden.io.yaml"


class EventSink:
    """The one Kube call a reporter makes: ``post_event``, recorded."""

    def __init__(self, *, leading: bool = True) -> None:
        self.leading = leading
        self.posted: list[tuple[ObjectRef, str, str, str]] = []

    async def post_event(
        self, *, regarding: ObjectRef, type_: str, reason: str, message: str
    ) -> None:
        if not self.leading:
            raise NotLeading()
        self.posted.append((regarding, type_, reason, message))


def test_an_event_a_sink_refuses_is_a_warning_event_on_its_schedule_and_a_metric() -> None:
    """The worker gives the refused event up; the reporter posts a Warning Event on the
    schedule it is about, naming the event, its CloudEvent id, the sink and the answer,
    and not the sink's URL, which is the operator owner's."""
    kube = EventSink()
    notification = failed("nightly-1")
    with Receiver(answer=lambda attempt: 403).running() as receiver:
        sink = Sink(name="pager", url=receiver.url)
        notifier = Notifier(sinks=[sink], given_up=reporter(kube))  # type: ignore[arg-type]
        before = counted("pager", "Failed")

        async def go() -> None:
            (worker,) = notifier.workers
            task = asyncio.create_task(worker.run())
            try:
                notifier.submit([Delivery(sink="pager", notification=notification)])
                while not kube.posted:  # woken by the worker's own progress, bounded below
                    await asyncio.sleep(0.01)
            finally:
                task.cancel()

        asyncio.run(asyncio.wait_for(go(), 30))
        url = receiver.url
    (posted,) = kube.posted
    regarding, type_, reason, message = posted
    assert regarding == ObjectRef(labels.API_VERSION, labels.KIND, REF.namespace, REF.name, REF.uid)
    assert (type_, reason) == ("Warning", FAILED_REASON)
    assert "Failed" in message and "nightly-1" in message and notification.id in message
    assert "'pager'" in message and "HTTP 403" in message and "1 attempt(s)" in message
    assert url not in message and "127.0.0.1" not in message
    assert counted("pager", "Failed") == before + 1


def test_a_standby_reports_no_event_and_does_not_fail() -> None:
    kube = EventSink(leading=False)
    report = reporter(kube)  # type: ignore[arg-type]
    failure = GivenUp(sink="pager", notification=failed("a"), attempts=1, error="HTTP 400")
    asyncio.run(report(failure))
    assert kube.posted == []


def test_a_worker_that_stops_beating_fails_liveness() -> None:
    """Judged once it has started; alive while it beats; late once its last beat is older
    than its bound, which leaves room for one whole call to a slow sink."""
    sink = Sink(name="slow", url="http://sink.invalid/", timeout_seconds=120)
    notifier = Notifier(sinks=[sink], given_up=_ignore)
    (component,) = notifier.components()
    (worker,) = notifier.workers
    assert component.name == "notify slow"
    assert liveness.judge([component], now=1000.0).ages == {}  # not started: not judged
    assert component.bound > sink.timeout_seconds

    worker.last_beat = 1000.0
    assert liveness.judge([component], now=1000.0 + sink.timeout_seconds).alive
    verdict = liveness.judge([component], now=1000.0 + component.bound + 1)
    assert verdict.late == ("notify slow",)
    assert "notify slow: no beat" in verdict.message()


def test_a_running_worker_beats_while_idle() -> None:
    with Receiver().running() as receiver:
        notifier = Notifier(sinks=[Sink(name="idle", url=receiver.url)], given_up=_ignore)
        (worker,) = notifier.workers

        async def go() -> float | None:
            task = asyncio.create_task(worker.run())
            try:
                while worker.last_beat is None:
                    await asyncio.sleep(0.01)
                return worker.last_beat
            finally:
                task.cancel()

        beat = asyncio.run(asyncio.wait_for(go(), 10))
    assert beat is not None
    assert liveness.judge(notifier.components(), now=beat).alive


def test_a_schedule_names_a_sink_and_can_give_no_address() -> None:
    """The CRD admits only a sink's name (a DNS label: no scheme, no host, no path) and
    the event kinds; anything else in an entry is pruned by the API server."""
    crd = yaml.safe_load(CRD.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    entry: dict[str, Any] = spec["properties"]["notify"]["items"]
    assert set(entry["properties"]) == {"sink", "events"}
    assert "x-kubernetes-preserve-unknown-fields" not in entry
    sink = entry["properties"]["sink"]
    assert sink["pattern"] == "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" and sink["maxLength"] == 63
    assert entry["properties"]["events"]["items"]["enum"]


async def _ignore(failure: GivenUp) -> None:
    del failure
