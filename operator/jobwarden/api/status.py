"""Pydantic models of ``JobSchedule.status``, field for field as in the CRD.

The CRD schema in ``crds/`` is the source of truth; these models are how the
operator builds and reads that status in Python. ``tests/unit/test_crd.py``
compares the two so that a field added to one and forgotten in the other
fails a test rather than being silently pruned by the API server.

Attributes are snake_case, the wire form is camelCase (``by_alias``); both
names are accepted on input. Timestamps are timezone-aware datetimes that
serialise as RFC 3339 in UTC with a ``Z``, the form Kubernetes itself writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from jobwarden.api.values import MAX_QUEUE


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, e.g. ``2024-03-31T01:30:00Z``.

    Kubernetes timestamps (metav1.Time) carry whole seconds; writing the same
    form keeps status diffs quiet and printer columns exact.
    """
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    # isoformat is several times faster than strftime, and pads the year to four digits.
    text = moment.isoformat(timespec="seconds")
    if not text.endswith("+00:00"):  # most are UTC already: one call, no conversion
        text = moment.astimezone(UTC).isoformat(timespec="seconds")
    return text[:19] + "Z"


def parse_time(value: object) -> datetime | None:
    """A Kubernetes timestamp (string or datetime) as an aware UTC datetime.

    ``None``, empty and unparsable values give ``None``: a status or Job body
    written by something else must never crash the operator.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None  # an offset that pushes it past year 1 or 9999: not a time we can hold


Timestamp = Annotated[AwareDatetime, PlainSerializer(format_time, return_type=str)]


# Free text in status is cut to these sizes in UTF-8 bytes (each within the
# CRD's maxLength, which counts characters): one over-long Job message must not
# make the API server reject the whole status patch, and a status with every
# list full must stay under STATUS_SIZE_BOUND (docs/api.md, status;
# tests/unit/test_status_bound.py computes the worst case).
REASON_LIMIT = 128
MESSAGE_LIMIT = 256
JOB_NAME_LIMIT = 63  # a run's Job name (runs.naming.MAX_NAME)
UPSTREAMS_LIMIT = 1024  # ten upstreams' "job=result"
CONDITION_MESSAGE_LIMIT = 1024
DESCRIPTION_LIMIT = 1024
FINGERPRINT_LENGTH = 64  # hex digits of a SHA-256
UPCOMING_LIMIT = 5  # runs in status.upcoming
LOCAL_TIME_LENGTH = 32  # 2027-03-28T03:00:00+02:00
STATUS_SIZE_BOUND = 768 * 1024  # bytes of the status as JSON, whatever the spec


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    if text is None or (len(text) <= limit and text.isascii()):
        return text
    return text.encode()[:limit].decode(errors="ignore")


def _clip(limit: int) -> AfterValidator:
    return AfterValidator(lambda text: clip(text, limit))


Reason = Annotated[str, _clip(REASON_LIMIT)]
Message = Annotated[str, _clip(MESSAGE_LIMIT)]

Phase = Literal["Active", "Suspended", "Completed", "Invalid"]
Trigger = Literal["Schedule", "Manual", "CatchUp", "After"]
RunResult = Literal[
    "Running", "Succeeded", "Failed", "Terminated", "Stale", "NeverStarted", "Missed", "Skipped"
]
HealthState = Literal["Healthy", "Degraded", "Unhealthy"]
ConditionStatus = Literal["True", "False", "Unknown"]

PHASES: tuple[Phase, ...] = ("Active", "Suspended", "Completed", "Invalid")
RUN_RESULTS: tuple[RunResult, ...] = (
    "Running",
    "Succeeded",
    "Failed",
    "Terminated",
    "Stale",
    "NeverStarted",
    "Missed",
    "Skipped",
)


class _Model(BaseModel):
    """Common config: camelCase on the wire, snake_case in Python.

    Unknown keys are ignored rather than rejected: a status written by a newer
    operator version must still load in an older one during a rollout.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_api(self) -> dict[str, Any]:
        """The JSON-ready camelCase dict, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Executions(_Model):
    """Lifetime counters of the schedule's runs, by how they started and ended."""

    scheduled: int = Field(default=0, ge=0)
    manual: int = Field(default=0, ge=0)
    succeeded: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    terminated: int = Field(default=0, ge=0)
    stale: int = Field(default=0, ge=0)
    never_started: int = Field(default=0, ge=0)
    missed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)


class ActiveRun(_Model):
    """One Job of the schedule that has not finished."""

    name: str
    scheduled_time: Timestamp | None = None
    start_time: Timestamp | None = None


class HistoryEntry(_Model):
    """One run, or one run that did not happen (Missed, Skipped: no ``job``)."""

    job: str | None = None
    trigger: Trigger
    scheduled_time: Timestamp | None = None
    # A run a calendar moved (calendarPolicy): the time it was due before the move.
    nominal_time: Timestamp | None = None
    start_time: Timestamp | None = None
    completion_time: Timestamp | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    result: RunResult
    reason: Reason | None = None
    message: Message | None = None


class QueuedRun(_Model):
    """A run waiting for room in its concurrency group; its Job is created when admitted,
    under the name fixed here (so a lost status write never starts it twice)."""

    job: Annotated[str, Field(max_length=JOB_NAME_LIMIT)]
    trigger: Trigger
    scheduled_time: Timestamp
    queued_at: Timestamp | None = None
    reason: Reason | None = None
    # For a run started by upstream runs (trigger After): "job=result,...", in spec.after order.
    upstreams: Annotated[str, Field(max_length=UPSTREAMS_LIMIT)] | None = None


class Health(_Model):
    """The verdict on recent runs (see ``jobwarden.safety.health``)."""

    state: HealthState
    consecutive_failures: int = Field(default=0, ge=0)
    reason: Reason | None = None
    message: Message | None = None


class Condition(_Model):
    """A standard ``metav1.Condition``: the shape every Kubernetes tool reads."""

    type: str
    status: ConditionStatus
    reason: Reason = Field(min_length=1)
    message: Annotated[str, _clip(CONDITION_MESSAGE_LIMIT)] = ""
    last_transition_time: Timestamp
    observed_generation: int | None = Field(default=None, ge=0)


class SuspendedByOperator(_Model):
    """A suspension the operator imposed after ``suspendAfterFailures``.

    Kept in status because the operator never writes spec. ``generation`` is
    the spec generation at the time: a later spec change lifts it, as does the
    ``jobwarden.io/resume`` action.
    """

    suspended: bool
    reason: Reason | None = None
    message: Message | None = None
    since: Timestamp | None = None
    generation: int | None = Field(default=None, ge=0)


class Timing(_Model):
    """Which timing spec is in force, and since when: what makes an edit safe.

    ``fingerprint`` names the fields that decide when runs fall (see
    ``jobwarden.schedule.edits``); ``since`` is when the operator first saw
    them. Runs are due under a spec only from ``since`` on, so an edit never
    back-dates a run that only the new spec would have had.
    """

    fingerprint: Annotated[str, Field(max_length=FINGERPRINT_LENGTH)]
    since: Timestamp


class Upcoming(_Model):
    """One of the next runs: when, on the zone's wall clock, and why it is there."""

    time: Timestamp
    local: Annotated[str, Field(max_length=LOCAL_TIME_LENGTH)]
    note: Message | None = None


class ScheduleStatus(_Model):
    """The whole ``status`` of a JobSchedule."""

    observed_generation: int | None = Field(default=None, ge=0)
    phase: Phase | None = None
    schedule_description: Annotated[str, _clip(DESCRIPTION_LIMIT)] | None = None
    next_run_time: Timestamp | None = None
    last_schedule_time: Timestamp | None = None
    last_after_time: Timestamp | None = None
    last_successful_time: Timestamp | None = None
    last_failure_time: Timestamp | None = None
    last_result: RunResult | None = None
    active_count: int | None = Field(default=None, ge=0)
    executions: Executions | None = None
    active: list[ActiveRun] | None = None
    history: list[HistoryEntry] | None = None
    queue: list[QueuedRun] | None = Field(default=None, max_length=MAX_QUEUE)
    health: Health | None = None
    conditions: list[Condition] | None = None
    handled_actions: dict[str, str] | None = None
    suspended_by_operator: SuspendedByOperator | None = None
    timing: Timing | None = None
    upcoming: list[Upcoming] | None = Field(default=None, max_length=UPCOMING_LIMIT)
