"""The inputs and the output of one reconcile decision, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from jobwarden.runs import history as hist


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The operator settings a decision depends on."""

    default_stale_after: timedelta = timedelta(hours=6)
    unhealthy_after: int = 3
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class Observed:
    """The JobSchedule as the API showed it."""

    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]
    status: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Deletion:
    job: str
    grace_seconds: int | None
    force_pods: bool
    reason: str


@dataclass(frozen=True)
class Note:
    """An Event to record on the JobSchedule."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Start:
    """A Job to create, and the moment it was due (for the lag metric)."""

    body: dict[str, Any]
    due: datetime


@dataclass
class Plan:
    starts: list[Start] = field(default_factory=list)
    deletes: list[Deletion] = field(default_factory=list)
    status: dict[str, Any] | None = None  # the new status, when it changed
    notes: list[Note] = field(default_factory=list)
    finished: list[hist.Transition] = field(default_factory=list)
    wake_at: datetime | None = None
    health: str = "Healthy"
    active: int = 0
    # A force terminate also clears the schedule's pods an earlier graceful
    # delete left Terminating (a lost node never confirms them).
    force_stuck_pods: bool = False

    def wake(self, at: datetime | None) -> None:
        if at is not None and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at


@dataclass(frozen=True, slots=True)
class Refusal:
    """A create the API server refused, as the next plan sees it.

    ``JobRejected``: the API refused the Job itself (a 4xx: admission, quota,
    an invalid template). ``NameTaken``: a 409 whose existing Job is not owned
    by this schedule (a squatter holds the run's name); it is never adopted.
    """

    reason: Literal["JobRejected", "NameTaken"]
    message: str

    @classmethod
    def of(cls, value: Refusal | str) -> Refusal:
        """A bare message is a ``JobRejected`` refusal."""
        return value if isinstance(value, Refusal) else cls("JobRejected", value)
