"""``kubectl jobwarden preview -f FILE``: the next runs of a manifest, before applying it.

Each run of the table carries a NOTE when daylight saving moves or repeats it,
or a calendar moved it ("moved from 2027-12-25: de-by-holidays"). The
JobCalendars a schedule names are read from the same file or from
``--calendar FILE`` (repeatable), so calendars preview offline too.
Offline by design: no cluster and no credentials are needed, so a change can
be checked in a pull request or a CI job. The runs come from the operator's
own engine, keyed by ``namespace/name`` as the operator keys them (that key
seeds ``H``). A manifest rarely carries ``creationTimestamp``; without it the
schedule is taken as created at ``--from``, which anchors ``every.interval``
when ``startAt`` is unset, as applying it at that moment would.

JSON output (``-o json``): for a file with one JobSchedule, a list of RFC 3339
UTC instants; for several, an object mapping ``"namespace/name"`` to such a
list, in the order of the file. The single case stays the simple list a
script wants most; the several case stays keyed so that no entry has to be
matched back to its document by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from jobwarden import labels
from jobwarden.api.calendar import CalendarError, parse_calendar
from jobwarden.api.spec import SpecError, load_zone
from jobwarden.api.status import format_time, parse_time
from jobwarden.cli.tables import NONE, Table, relative
from jobwarden.schedule.checks import load_spec
from jobwarden.schedule.describe import describe
from jobwarden.schedule.holidays import expand
from jobwarden.schedule.moves import NamedDays
from jobwarden.schedule.timeline import build_timeline
from jobwarden.schedule.upcoming import upcoming_runs
from jobwarden.schedule.walltime import parse_instant

__all__ = [
    "Preview",
    "PreviewError",
    "load_calendars",
    "load_documents",
    "parse_from",
    "preview_documents",
    "preview_json",
    "preview_notes",
    "preview_table",
]

MAX_COUNT = 10_000


class PreviewError(Exception):
    """A problem with the manifest itself; the message is one line for stderr."""


@dataclass(frozen=True, kw_only=True)
class Preview:
    """The next runs of one JobSchedule document."""

    namespace: str
    name: str
    description: str
    zone: str
    runs: list[datetime]
    # One per run: why DST moves or repeats it (None when it does not).
    notes: list[str | None]
    after: tuple[str, ...] = ()  # the upstreams (spec.after) whose runs also start it

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_from(text: str | None, *, now: datetime) -> datetime:
    """The ``--from`` instant: ``now`` when unset, else RFC 3339 (no offset means UTC)."""
    if text is None or text.strip().lower() == "now":
        return now
    try:
        return parse_instant(text, UTC)
    except ValueError as exc:
        raise PreviewError(f"--from: {exc}") from exc


def _flatten(docs: Iterable[Any]) -> list[Any]:
    """Documents, with the items of a ``kind: List`` taken out as kubectl does."""
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == "List":
            out.extend(_flatten(doc.get("items") or []))
        elif doc is not None:
            out.append(doc)
    return out


def load_documents(text: str, *, source: str) -> list[Mapping[str, Any]]:
    """The JobSchedule documents of a (multi-document) YAML or JSON text.

    Documents of other kinds are passed over: a file that also holds the
    schedule's ConfigMap or RBAC previews as a file of schedules alone. A file
    without any JobSchedule is an error, since there is nothing to preview.
    """
    try:
        docs = _flatten(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise PreviewError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from exc
    schedules: list[Mapping[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, Mapping):
            raise PreviewError(f"{source}: a document is not an object")
        group = str(doc.get("apiVersion") or "").split("/")[0]
        if doc.get("kind") == labels.KIND and group == labels.GROUP:
            schedules.append(doc)
    if not schedules:
        raise PreviewError(f"{source}: no {labels.KIND} ({labels.API_VERSION}) documents found")
    return schedules


def load_calendars(text: str, *, source: str) -> dict[str, NamedDays | str]:
    """The JobCalendar documents of a YAML text, expanded by name (a text: why one cannot
    be used), for previews offline: ``--calendar FILE``, or calendars beside the schedules."""
    try:
        docs = _flatten(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise PreviewError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from exc
    found: dict[str, NamedDays | str] = {}
    for doc in docs:
        if not isinstance(doc, Mapping) or doc.get("kind") != labels.CALENDAR_KIND:
            continue
        name = (doc.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not name:
            raise PreviewError(f"{source}: a {labels.CALENDAR_KIND} document has no metadata.name")
        raw = doc.get("spec")
        try:
            found[name] = expand(
                name=name, spec=parse_calendar(raw if isinstance(raw, Mapping) else {})
            )
        except CalendarError as exc:
            found[name] = str(exc)
    return found


def preview_documents(
    docs: Sequence[Mapping[str, Any]],
    *,
    count: int,
    start: datetime,
    default_namespace: str,
    calendars: Mapping[str, NamedDays | str] | None = None,
) -> list[Preview]:
    """The next ``count`` runs after ``start`` of each document, in file order.

    ``maxExecutions`` caps the count (no runs were made yet, as far as a
    manifest knows). Raises :class:`PreviewError` on the first invalid spec,
    naming the document and the field. ``calendars``: the JobCalendars the
    schedules may name (see :func:`load_calendars`); one named and not given is
    such an error.
    """
    if count < 1 or count > MAX_COUNT:
        raise PreviewError(f"--count must be between 1 and {MAX_COUNT}")
    previews: list[Preview] = []
    seen: set[str] = set()
    for doc in docs:
        meta = doc.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise PreviewError(f"a {labels.KIND} document has no metadata.name")
        namespace = str(meta.get("namespace") or default_namespace)
        key = f"{namespace}/{name}"
        if key in seen:
            raise PreviewError(f'{labels.SINGULAR} "{key}" appears more than once in the file')
        seen.add(key)
        spec_raw = doc.get("spec")
        if not isinstance(spec_raw, Mapping):
            raise PreviewError(f'{labels.SINGULAR} "{name}": spec: is required')
        try:
            spec = load_spec(spec_raw)
        except SpecError as exc:
            raise PreviewError(f'{labels.SINGULAR} "{name}": {exc}') from exc
        created = parse_time(meta.get("creationTimestamp")) or start
        try:
            timeline = build_timeline(spec, key=key, created=created, calendars=calendars or {})
        except SpecError as exc:
            hint = " (give it with --calendar FILE)" if "does not exist" in exc.message else ""
            raise PreviewError(f'{labels.SINGULAR} "{name}": {exc}{hint}') from exc
        wanted = count if spec.max_executions is None else min(count, spec.max_executions)
        runs = upcoming_runs(timeline, after=start, count=wanted)
        previews.append(
            Preview(
                namespace=namespace,
                name=name,
                description=describe(spec),
                zone=spec.time_zone,
                runs=[r.time for r in runs],
                notes=[r.note for r in runs],
                after=tuple(u.schedule for u in spec.after or ()),
            )
        )
    return previews


def preview_json(previews: Sequence[Preview]) -> list[str] | dict[str, list[str]]:
    """The ``-o json`` value (shape in the module docstring)."""
    if len(previews) == 1:
        return [format_time(run) for run in previews[0].runs]
    return {p.key: [format_time(run) for run in p.runs] for p in previews}


def preview_notes(previews: Sequence[Preview]) -> list[str]:
    """A line for each chained schedule: its runs come after its upstreams', not (only)
    at the times listed."""
    notes = []
    for p in previews:
        if p.after:
            also = "also " if p.runs else ""
            if len(p.after) == 1:
                when = f"once a run of {p.after[0]} ends as asked"
            else:
                when = (
                    f"once {', '.join(p.after)} each have a run for the same scheduled time "
                    "that ended as asked"
                )
            notes.append(f"{p.key} {also}runs after its upstreams: {when} (spec.after)")
    return notes


def preview_table(previews: Sequence[Preview], *, start: datetime) -> Table:
    """One row per run; a schedule with no runs left gets one row of ``<none>``."""
    rows: list[list[object]] = []
    for p in previews:
        zone = load_zone(p.zone)
        head: list[object] = [p.namespace, p.name, p.description]
        if not p.runs:
            rows.append([*head, NONE, NONE, NONE, NONE, NONE])
        for i, (run, note) in enumerate(zip(p.runs, p.notes, strict=True), start=1):
            local = run.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")
            when = relative(run, now=start)
            rows.append([*head, i, format_time(run), local, when, note or ""])
    return Table(
        headers=["NAMESPACE", "NAME", "SCHEDULE", "#", "TIME", "LOCAL TIME", "IN", "NOTE"],
        rows=rows,
    )
