"""What only the operator can judge of ``spec.notify``: that each sink named is configured.

A sink the operator does not know makes the schedule ``Valid=False`` naming
``spec.notify[i].sink`` (as an upstream that does not exist does): a schedule
whose owner believes failures page someone must not run on while nobody is
told. The message lists the configured names, never their addresses.
"""

from __future__ import annotations

from collections.abc import Set

from jobwarden.api.notify import RUN_EVENTS
from jobwarden.api.spec import JobScheduleSpec, SpecError

_SHOWN = 10  # configured names listed in the message at most


def check_notify(spec: JobScheduleSpec, *, sinks: Set[str]) -> None:
    """Raise ``SpecError`` for the first subscription the operator cannot honour."""
    seen: set[str] = set()
    for i, subscription in enumerate(spec.notify or ()):
        name = subscription.sink
        if name not in sinks:
            known = ", ".join(sorted(sinks)[:_SHOWN]) or "none"
            raise SpecError(
                f"spec.notify[{i}].sink",
                f"no notification sink {name!r} is configured in this operator "
                f"(configured: {known})",
            )
        if name in seen:
            raise SpecError(f"spec.notify[{i}].sink", f"{name!r} is listed twice")
        seen.add(name)
        if spec.history_limit == 0 and RUN_EVENTS.intersection(subscription.events):
            raise SpecError(
                f"spec.notify[{i}].events",
                "run events (Failed, Stale, NeverStarted, Missed) are read from status.history, "
                "which historyLimit 0 does not keep: set historyLimit to 1 or more",
            )
