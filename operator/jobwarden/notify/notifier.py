"""The operator's sinks, one worker each: where a reconcile hands its deliveries.

Built once at start from the owner's sinks file. ``submit`` is what the
executor calls after a status write: it returns at once, whatever the sinks
do. ``workers`` are run as the operator's background tasks (one that ends
stops the operator) and judged by liveness (one that stops beating fails
``/healthz``), so notifying never stops silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from jobwarden import liveness, metrics
from jobwarden.notify.delivery import GivenUpHandler, SinkWorker
from jobwarden.notify.events import Delivery
from jobwarden.notify.sinks import Sink

log = logging.getLogger(__name__)


class Notifier:
    """A ``SinkWorker`` per configured sink, by name."""

    def __init__(self, *, sinks: Sequence[Sink], given_up: GivenUpHandler) -> None:
        self._workers = {s.name: SinkWorker(sink=s, given_up=given_up) for s in sinks}

    @property
    def names(self) -> frozenset[str]:
        """The configured sinks' names: what ``spec.notify[].sink`` may name."""
        return frozenset(self._workers)

    @property
    def workers(self) -> tuple[SinkWorker, ...]:
        return tuple(self._workers.values())

    def components(self) -> list[liveness.Component]:
        """What liveness judges: each sink's worker, by the owner's sink name.

        A worker that stops beating (a delivery loop stuck past its call's
        timeout) fails ``/healthz``; one that ended stops the operator (its task is
        one of the operator's background tasks).
        """
        return [
            liveness.Component(f"notify {w.sink.name}", _beat_of(w), w.bound)
            for w in self._workers.values()
        ]

    def submit(self, deliveries: Iterable[Delivery]) -> None:
        """Queue each delivery with its sink's worker; never waits."""
        for delivery in deliveries:
            worker = self._workers.get(delivery.sink)
            if worker is None:
                # A plan names only configured sinks (Valid=False otherwise): not reached.
                metrics.NOTIFICATIONS.labels(delivery.sink, "Dropped").inc()
                log.error("notification for unknown sink %r dropped", delivery.sink)
                continue
            worker.submit(delivery.notification)


def _beat_of(worker: SinkWorker) -> Callable[[], float | None]:
    return lambda: worker.last_beat
