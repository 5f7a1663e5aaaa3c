"""What a run's pods are told about their run: the environment variables of its Job.

A batch job that processes "the data since last time" needs to know which
interval it stands for, not only when it was due; one started by hand or by a
catch-up must be able to tell. The facts are fixed when the Job is built and
never change afterwards, so a retried pod sees the same values as the first.

Every variable is always set (empty when a fact does not apply), so that a
template holding one of the same name (copied from an old run, say) never
leaks a wrong value into a run: ours replace it.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobwarden.api.status import format_time
from jobwarden.labels import RUN_ENV_NAMES


@dataclass(frozen=True, kw_only=True, slots=True)
class RunContext:
    """The facts of one run that its pods receive.

    ``previous`` is the schedule's scheduled instant before ``scheduled`` (the
    start of the data interval that ends at ``scheduled``), None for a first
    run or a one-time schedule.
    """

    schedule: str
    scheduled: datetime
    trigger: str
    previous: datetime | None = None
    upstreams: tuple[tuple[str, str], ...] = ()
    """(Job, result) of each upstream run that started it (trigger After), in
    ``spec.after`` order; their scheduled time is this run's."""

    def env(self) -> list[dict[str, str]]:
        """The env entries, in ``RUN_ENV_NAMES`` order, as a container spec holds them."""
        values = (
            self.schedule,
            format_time(self.scheduled),
            format_time(self.previous) if self.previous is not None else "",
            self.trigger,
            ",".join(job for job, _ in self.upstreams),
            ",".join(result for _, result in self.upstreams),
            format_time(self.scheduled) if self.upstreams else "",
        )
        return [{"name": n, "value": v} for n, v in zip(RUN_ENV_NAMES, values, strict=True)]


def _named(entry: object) -> object:
    return entry.get("name") if isinstance(entry, Mapping) else None


def set_run_env(container: MutableMapping[str, Any], context: RunContext) -> None:
    """Give ``container`` the run's env vars, replacing any of the same names.

    Put before the template's own entries, so that a template variable that
    refers to ours (``value: $(JOBWARDEN_SCHEDULED_TIME)``) is expanded:
    Kubernetes expands only references to entries listed before.
    """
    ours = context.env()
    names = {e["name"] for e in ours}
    kept = [e for e in container.get("env") or [] if _named(e) not in names]
    container["env"] = ours + kept
