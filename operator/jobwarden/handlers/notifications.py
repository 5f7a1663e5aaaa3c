"""Wiring of notifications: the sinks file to a ``Notifier``, a given-up event to an Event.

The decisions live in ``jobwarden.notify``; this module only connects them
to the API: an event a sink did not take becomes a Warning Event
``NotificationFailed`` on its schedule, so the schedule's owner sees that
nobody was told (the sink's address is never in it: it is the operator
owner's, not the tenant's).
"""

from __future__ import annotations

import logging

from jobwarden import labels
from jobwarden.kube import Kube, NotLeading, ObjectRef
from jobwarden.notify.delivery import GivenUp, GivenUpHandler
from jobwarden.notify.notifier import Notifier
from jobwarden.notify.sinks import Sink

log = logging.getLogger(__name__)

FAILED_REASON = "NotificationFailed"


def message(failure: GivenUp) -> str:
    n = failure.notification
    run = f" of Job {n.job}" if n.job else ""
    return (
        f"Notification {n.event}{run} (CloudEvent id {n.id}) was not delivered to sink "
        f"{failure.sink!r} after {failure.attempts} attempt(s): {failure.error}"
    )


def reporter(kube: Kube) -> GivenUpHandler:
    """What a worker calls for an event it gave up: a Warning Event on the schedule."""

    async def report(failure: GivenUp) -> None:
        ref = failure.notification.schedule
        try:
            await kube.post_event(
                regarding=ObjectRef(
                    labels.API_VERSION, labels.KIND, ref.namespace, ref.name, ref.uid
                ),
                type_="Warning",
                reason=FAILED_REASON,
                message=message(failure),
            )
        except NotLeading:
            log.info("not leading: no Event for the failed notification of %s", ref.name)

    return report


def build(*, sinks: tuple[Sink, ...], kube: Kube) -> Notifier:
    return Notifier(sinks=sinks, given_up=reporter(kube))
