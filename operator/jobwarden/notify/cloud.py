"""A notification as a CloudEvent (v1.0) over HTTP, in structured or binary mode.

The event's ``source`` is the schedule's API path (a receiver can link to it
or ``kubectl get --raw`` it), its ``subject`` the run's Job, its ``id`` the
deterministic id of :mod:`jobwarden.notify.events`: ``source`` + ``id`` is the
pair a receiver deduplicates on. The data carries the schedule (namespace,
name, uid), the run (Job, trigger, times), the result and the reason.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from cloudevents.core.bindings.http import HTTPMessage, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from jobwarden.api.status import format_time
from jobwarden.labels import API_VERSION
from jobwarden.notify.events import Notification

TYPE_PREFIX: Final = "io.jobwarden."
_RUN_TYPES: Final = {"Failed", "Stale", "NeverStarted", "Missed"}
_FORMAT = JSONFormat()


def event_type(event: str) -> str:
    """``io.jobwarden.run.failed``, ``io.jobwarden.schedule.suspended``, ..."""
    scope = "run" if event in _RUN_TYPES else "schedule"
    return f"{TYPE_PREFIX}{scope}.{event.lower()}"


def source(notification: Notification) -> str:
    ref = notification.schedule
    return f"/apis/{API_VERSION}/namespaces/{ref.namespace}/jobschedules/{ref.name}"


def _time(value: Any) -> str | None:
    return format_time(value) if value is not None else None


def data(notification: Notification) -> dict[str, Any]:
    """The event's data: plain JSON, the same in both modes."""
    n = notification
    run = None
    if n.job is not None or n.scheduled_time is not None:
        run = {
            "job": n.job,
            "trigger": n.trigger,
            "scheduledTime": _time(n.scheduled_time),
            "startTime": _time(n.start_time),
            "completionTime": _time(n.completion_time),
        }
    return {
        "event": n.event,
        "schedule": {
            "namespace": n.schedule.namespace,
            "name": n.schedule.name,
            "uid": n.schedule.uid,
        },
        "run": run,
        "result": n.result,
        "reason": n.reason,
        "message": n.message,
        "scheduledTime": _time(n.scheduled_time),
    }


def cloud_event(notification: Notification) -> CloudEvent:
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": notification.id,
        "source": source(notification),
        "type": event_type(notification.event),
        "time": notification.time,
        "datacontenttype": "application/json",
    }
    if notification.job:
        attributes["subject"] = notification.job
    return CloudEvent(attributes, data(notification))


def encode(notification: Notification, *, mode: Literal["structured", "binary"]) -> HTTPMessage:
    """The HTTP headers and body that carry ``notification``."""
    event = cloud_event(notification)
    return to_binary(event, _FORMAT) if mode == "binary" else to_structured(event, _FORMAT)
