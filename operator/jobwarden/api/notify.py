"""``spec.notify``: which of the operator owner's sinks a schedule's events go to.

A tenant names sinks, never addresses: the sinks (URL, credentials) are the
operator's settings, so a JobSchedule cannot make the operator send anything
anywhere the owner did not configure. Whether a named sink exists is judged
by the operator (``jobwarden.notify.subscriptions``), which alone knows them.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

EventKind = Literal["Failed", "Stale", "NeverStarted", "Missed", "Suspended", "Recovered"]
EVENT_KINDS: Final[tuple[EventKind, ...]] = (
    "Failed",
    "Stale",
    "NeverStarted",
    "Missed",
    "Suspended",
    "Recovered",
)
# Events read from status.history (one per run), as against the schedule's own state.
RUN_EVENTS: Final = frozenset({"Failed", "Stale", "NeverStarted", "Missed"})
MAX_SUBSCRIPTIONS: Final = 8  # entries in spec.notify
MAX_SINK_NAME_LENGTH: Final = 63  # a sink's name is a DNS label
SINK_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Subscription(BaseModel):
    """``notify: [{sink: oncall, events: [Failed, Stale]}]``: these events go to this sink.

    The list is ``events``, not ``on``: YAML 1.1 (kubectl's and Helm's parser)
    reads an unquoted ``on:`` key as ``true``, so ``on: [...]`` would reach the
    API server as ``"true": [...]`` and be pruned.
    """

    model_config = ConfigDict(
        populate_by_name=True, alias_generator=to_camel, extra="ignore", frozen=True
    )

    sink: Annotated[
        str, Field(min_length=1, max_length=MAX_SINK_NAME_LENGTH, pattern=SINK_NAME_PATTERN)
    ]
    events: list[EventKind] = Field(min_length=1, max_length=len(EVENT_KINDS))

    @field_validator("events")
    @classmethod
    def _once_each(cls, value: list[EventKind]) -> list[EventKind]:
        if len(set(value)) != len(value):
            raise ValueError("an event is listed twice")
        return value
