"""The inputs and the output of one reconcile decision, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from jobwarden.api.spec import JobScheduleSpec, SpecError
from jobwarden.api.status import ScheduleStatus
from jobwarden.notify.events import Delivery
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation
from jobwarden.safety.start import NotStarted
from jobwarden.schedule.moves import NamedDays
from jobwarden.schedule.timeline import Timeline


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The operator settings a decision depends on."""

    default_stale_after: timedelta = timedelta(hours=6)
    default_start_deadline: timedelta = timedelta(hours=1)
    unhealthy_after: int = 3
    dry_run: bool = False
    # The notification sinks configured (names only): what spec.notify may name.
    sinks: frozenset[str] = frozenset()


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
    # metadata.deletionTimestamp: deleted, and held by a finalizer meanwhile.
    # From then on no run starts (as CronJob's controller), runs going still end.
    deleting: datetime | None = None

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
    """A Job to create, and the moment it was due (for the lag metric); ``upstreams``:
    the (Job, result) of the upstream runs that started it (kept if it has to wait)."""

    body: dict[str, Any]
    due: datetime
    upstreams: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


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
    # The foreign Jobs this plan saw (see ``Inputs.foreign``), to be warned of only once.
    foreign: frozenset[str] = frozenset()
    # The runs of this schedule waiting in its concurrency group after this plan.
    queue: tuple[Waiting, ...] = ()
    # The events its status write makes, per subscribed sink (sent once it is written).
    notifications: list[Delivery] = field(default_factory=list)

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


class PlanStepError(Exception):
    """A step of ``plan`` failed unexpectedly (a bug, or input no rule foresaw).

    A spec the operator cannot schedule is not this: it is ``Valid=False`` in
    the plan's status. ``step`` names the pipeline step, for the report.
    """

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"plan step {step!r} failed: {type(cause).__name__}: {cause}")
        self.step = step
        self.cause = cause


@dataclass(frozen=True, kw_only=True, slots=True)
class ChainView:
    """What the namespace shows a chained schedule (``spec.after``) of its upstreams.

    ``graph``: every JobSchedule of the namespace reachable upstream from this
    one, with the names in its own ``after`` (a name missing: no such
    schedule). ``jobs``: the Jobs of each upstream, as the operator indexes them.
    """

    graph: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    jobs: Mapping[str, tuple[JobObservation, ...]] = field(default_factory=dict)


NO_CHAIN = ChainView()


@dataclass(frozen=True, order=True, slots=True)
class Waiting:
    """A run waiting in a concurrency group: first come (by scheduled time), first served,
    ties broken by the Job name it will get (deterministic, unique)."""

    scheduled: datetime
    job: str
    schedule: str = field(compare=False)

    @classmethod
    def of(cls, scheduled: datetime, job: str, schedule: str) -> Waiting:
        """In whole seconds, as status holds it: every replica and restart orders alike."""
        return cls(scheduled.replace(microsecond=0), job, schedule)


@dataclass(frozen=True, kw_only=True, slots=True)
class GroupView:
    """What the namespace shows a schedule of the concurrency group its spec names.

    ``active``: the group's runs not finished (every member's Jobs with the group's
    label, and the ones being created); ``waiting``: every member's queued runs as
    their statuses show; ``limit``: the smallest limit the other members name.
    ``complete``: every Job is listed; before that no run is admitted (one not
    listed yet may hold the group's room).
    """

    name: str | None = None
    limit: int | None = None
    active: frozenset[str] = frozenset()
    waiting: tuple[Waiting, ...] = ()
    complete: bool = False


NO_GROUP = GroupView()


@dataclass(frozen=True, kw_only=True, slots=True)
class Inputs:
    """Everything a step may read: the schedule, its parsed spec, its Jobs, the clock."""

    obj: Observed
    spec: JobScheduleSpec | None  # None when the spec is invalid (see ``error``)
    timeline: Timeline | None
    error: SpecError | None
    jobs: Mapping[str, JobObservation]  # by name, without the names in ``refused``
    # Jobs with the schedule's label (or name) that this schedule does not own:
    # never adopted, deleted or counted; each reported once (``warned``: already).
    foreign: tuple[JobObservation, ...] = ()
    warned: frozenset[str] = frozenset()
    pending: frozenset[str]
    refused: Mapping[str, Refusal]
    now: datetime
    policy: Policy
    threshold: timedelta  # the stale threshold
    stale_seconds: int | None  # the deadline a new Job gets, when it may be terminated
    start_seconds: int | None = None  # the start deadline a new Job carries
    # Runs past their start deadline whose pods were listed: why they did not start,
    # or None when a pod has run after all. A run not listed here is not judged yet.
    probed: Mapping[str, NotStarted | None] = field(default_factory=dict)
    chain: ChainView = NO_CHAIN
    group: GroupView = NO_GROUP
    # The JobCalendars the spec names, as the cluster shows them (a text: not Ready, why).
    calendars: Mapping[str, NamedDays | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Effects:
    """What steps ask of the API, in the order they ask it; added up along the pipeline."""

    starts: tuple[Start, ...] = ()
    deletes: tuple[Deletion, ...] = ()
    notes: tuple[Note, ...] = ()
    finished: tuple[hist.Transition, ...] = ()
    wake_at: datetime | None = None
    force_stuck_pods: bool = False

    def __add__(self, other: Effects) -> Effects:
        wakes = [w for w in (self.wake_at, other.wake_at) if w is not None]
        return Effects(
            self.starts + other.starts,
            self.deletes + other.deletes,
            self.notes + other.notes,
            self.finished + other.finished,
            min(wakes) if wakes else None,
            self.force_stuck_pods or other.force_stuck_pods,
        )


NO_EFFECTS = Effects()


def evolve(status: ScheduleStatus, **fields: Any) -> ScheduleStatus:
    """``status`` with ``fields`` replaced, or ``status`` itself when none differs.

    Steps call this instead of editing: the status they were given is never
    changed, and a step that changes nothing costs no copy (lists are
    compared entry by entry for identity, as steps replace what they change).
    """
    update = {}
    for key, value in fields.items():
        old = getattr(status, key)
        if isinstance(value, list) and isinstance(old, list):
            if len(value) == len(old) and all(a is b for a, b in zip(value, old, strict=True)):
                continue
        elif value is old or value == old:
            continue
        update[key] = value
    return status.model_copy(update=update) if update else status
