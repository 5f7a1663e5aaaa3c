"""The notification sinks the operator's owner configures: read once, at start.

The chart renders ``notifications.sinks`` into a JSON file (a ConfigMap)
given by ``--notify-sinks``; a bearer token is a file too (a mounted Secret),
read at each delivery so a rotated Secret is used without a restart. The
operator never reads a Secret through the API, and tenants only name sinks.

A file that does not parse stops the operator at start with a message
naming the entry, as a bad setting does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from jobwarden.api.notify import MAX_SINK_NAME_LENGTH, SINK_NAME_PATTERN

MAX_SINKS: Final = 64
MAX_URL_LENGTH: Final = 2048
MAX_TIMEOUT_SECONDS: Final = 300.0
MAX_ATTEMPTS: Final = 100
MAX_QUEUE: Final = 100_000


class SinkConfigError(ValueError):
    """The sinks file is unusable; the message names the entry and field."""


class Sink(BaseModel):
    """One receiver of CloudEvents over HTTP."""

    model_config = ConfigDict(
        populate_by_name=True, alias_generator=to_camel, extra="forbid", frozen=True
    )

    name: Annotated[
        str, Field(min_length=1, max_length=MAX_SINK_NAME_LENGTH, pattern=SINK_NAME_PATTERN)
    ]
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
    # A file holding the bearer token (a mounted Secret's key); None: no Authorization.
    token_file: Path | None = None
    # structured: the whole event as application/cloudevents+json; binary: ce-* headers.
    mode: Literal["structured", "binary"] = "structured"
    # Each HTTP call's whole budget (connect, send, answer).
    timeout_seconds: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS)] = 10.0
    # Tries of one event before it is given up (a Warning Event on the schedule).
    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS)] = 8
    # Events waiting for this sink; when full the oldest is dropped (and counted).
    queue_size: Annotated[int, Field(ge=1, le=MAX_QUEUE)] = 1000

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sinks: list[Sink] = Field(default_factory=list, max_length=MAX_SINKS)


def parse_sinks(text: str) -> tuple[Sink, ...]:
    """The sinks of a JSON document ``{"sinks": [...]}``; raises ``SinkConfigError``."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SinkConfigError(f"not JSON: {exc}") from None
    try:
        sinks = _File.model_validate(raw).sinks
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise SinkConfigError(f"{where.lstrip('.')}: {first['msg']}") from None
    seen: set[str] = set()
    for i, sink in enumerate(sinks):
        if sink.name in seen:
            raise SinkConfigError(f"sinks[{i}].name: {sink.name!r} is configured twice")
        seen.add(sink.name)
    return tuple(sinks)


def load_sinks(path: Path | None) -> tuple[Sink, ...]:
    """The sinks in ``path`` (None: no sinks); raises ``SinkConfigError``."""
    if path is None:
        return ()
    try:
        text = path.read_text()
    except OSError as exc:
        raise SinkConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse_sinks(text)


def read_token(sink: Sink) -> str | None:
    """The sink's bearer token, read now (a rotated Secret is used at once); None: none.

    Raises ``OSError`` when the file cannot be read: that delivery fails, and
    is retried, rather than going out without the credentials it needs.
    """
    if sink.token_file is None:
        return None
    return sink.token_file.read_text().strip() or None
