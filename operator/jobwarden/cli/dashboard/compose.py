"""The compose form: its fields become a JobSchedule manifest, previewed by ``preview``'s engine.

Pure: a form (the browser's field values, all strings or lists of strings)
in, a manifest, its YAML and its next runs out. The runs come from
:func:`jobwarden.cli.preview.preview_documents`, the very function behind
``kubectl jobwarden preview``, so what the form shows is what ``preview``
prints for the same YAML, and what the operator will do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import yaml

from jobwarden import labels
from jobwarden.api.spec import WEEKDAYS, load_zone
from jobwarden.cli.dashboard.views import run_rows
from jobwarden.cli.preview import PreviewError, preview_documents

__all__ = ["PRESETS", "ComposeError", "Composed", "build_manifest", "compose"]

PRESETS: Final = ("once", "daily", "weekly", "monthly", "cron")
PREVIEW_COUNT: Final = 10
DEFAULT_IMAGE: Final = "busybox:1.36"


class ComposeError(ValueError):
    """A form value that cannot become a spec; the message names the field."""


@dataclass(frozen=True, kw_only=True)
class Composed:
    """What the form shows: the manifest's YAML, the schedule in words, the next runs."""

    manifest: dict[str, Any]
    yaml: str
    description: str | None
    runs: list[dict[str, Any]]
    error: str | None

    def to_api(self) -> dict[str, Any]:
        return {
            "yaml": self.yaml,
            "description": self.description,
            "runs": self.runs,
            "error": self.error,
        }


def _text(form: Mapping[str, Any], field: str) -> str:
    value = form.get(field)
    return value.strip() if isinstance(value, str) else ""


def _items(form: Mapping[str, Any], field: str) -> list[str]:
    """A list field: a list of strings, or one string split on commas and spaces."""
    value = form.get(field)
    parts = value if isinstance(value, list) else str(value or "").replace(",", " ").split()
    return [str(p).strip() for p in parts if str(p).strip()]


def _whole(form: Mapping[str, Any], field: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise ComposeError(f"{field}: {text!r} is not a whole number") from exc


def _when(form: Mapping[str, Any], preset: str) -> dict[str, Any]:
    """The part of the spec that says when it runs, for the chosen preset."""
    if preset == "once":
        run_at = _text(form, "runAt")
        if not run_at:
            raise ComposeError("runAt: a date and time is required for a one-time run")
        return {"runAt": run_at if len(run_at) > 16 else f"{run_at}:00"}
    if preset == "cron":
        expression = _text(form, "schedule")
        if not expression:
            raise ComposeError("schedule: a cron expression is required")
        return {"schedule": expression}
    period = {"daily": "Day", "weekly": "Week", "monthly": "Month"}[preset]
    every: dict[str, Any] = {"period": period}
    interval = _text(form, "interval")
    if interval and interval != "1":
        every["interval"] = _whole(form, "every.interval", interval)
    every["times"] = _items(form, "times") or ["00:00"]
    if period == "Week":
        days = _items(form, "weekdays")
        unknown = [d for d in days if d not in WEEKDAYS]
        if unknown:
            raise ComposeError(f"every.weekdays: {unknown[0]!r} is not one of {WEEKDAYS}")
        if not days:
            raise ComposeError("every.weekdays: pick at least one day")
        every["weekdays"] = [d for d in WEEKDAYS if d in days]
    if period == "Month":
        days_text = _items(form, "monthDays")
        if not days_text:
            raise ComposeError("every.monthDays: give at least one day (1..31, -1 for the last)")
        every["monthDays"] = [_whole(form, "every.monthDays", d) for d in days_text]
    return {"every": every}


def build_manifest(form: Mapping[str, Any]) -> dict[str, Any]:
    """The JobSchedule manifest the form describes; :class:`ComposeError` names a bad field."""
    name = _text(form, "name") or "my-schedule"
    preset = _text(form, "preset") or "daily"
    if preset not in PRESETS:
        raise ComposeError(f"preset: {preset!r} is not one of {', '.join(PRESETS)}")
    spec: dict[str, Any] = _when(form, preset)
    zone = _text(form, "timeZone") or "UTC"
    try:
        load_zone(zone)
    except ValueError as exc:
        raise ComposeError(f"timeZone: {exc}") from exc
    spec["timeZone"] = zone
    dst = {
        field: value
        for field, default in (("missingTime", "RunAfter"), ("repeatedTime", "First"))
        if (value := _text(form, field)) and value != default
    }
    if dst:
        spec["dst"] = dst
    for field in ("startAt", "endAt"):
        value = _text(form, field)
        if value:
            spec[field] = value if len(value) > 16 else f"{value}:00"
    max_executions = _text(form, "maxExecutions")
    if max_executions:
        spec["maxExecutions"] = _whole(form, "maxExecutions", max_executions)
    exclude = _items(form, "exclude")
    if exclude:
        spec["exclude"] = exclude
    stale = _text(form, "staleAfter")
    if stale:
        spec["staleAfter"] = stale
    command = _text(form, "command")
    container: dict[str, Any] = {"name": "work", "image": _text(form, "image") or DEFAULT_IMAGE}
    if command:
        container["command"] = ["sh", "-c", command]
    spec["jobTemplate"] = {
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}
    }
    metadata: dict[str, Any] = {"name": name}
    namespace = _text(form, "namespace")
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": labels.API_VERSION,
        "kind": labels.KIND,
        "metadata": metadata,
        "spec": spec,
    }


def compose(
    form: Mapping[str, Any], *, now: datetime, default_namespace: str, count: int = PREVIEW_COUNT
) -> Composed:
    """The form's manifest, YAML and next ``count`` runs after ``now`` (or the error)."""
    try:
        manifest = build_manifest(form)
    except ComposeError as exc:
        return Composed(manifest={}, yaml="", description=None, runs=[], error=str(exc))
    text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
    try:
        (preview,) = preview_documents(
            [manifest], count=count, start=now, default_namespace=default_namespace
        )
    except PreviewError as exc:
        return Composed(manifest=manifest, yaml=text, description=None, runs=[], error=str(exc))
    runs = run_rows(preview.runs, zone=preview.zone, now=now)
    return Composed(
        manifest=manifest, yaml=text, description=preview.description, runs=runs, error=None
    )
