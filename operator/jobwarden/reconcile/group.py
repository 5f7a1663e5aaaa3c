"""Concurrency groups (``spec.concurrencyGroup``): a limit shared across schedules.

Every schedule of a namespace naming a group shares its ``limit``: at most that
many of their runs are in progress at once (members naming different limits
share the smallest, so no member's promise is broken). A run that comes due
while the group is full either waits in the schedule's ``status.queue`` (its
Job is created only when admitted, under the name fixed when it was queued)
or, with ``whenFull: Skip``, is recorded ``Skipped`` (reason ``GroupFull``).
A run waiting longer than ``startingDeadlineSeconds`` since it joined the
queue is recorded ``Missed`` (reason ``GroupQueueDeadline``).

Which runs may start is one pure decision, :func:`admit`: the free room
(limit minus the group's runs in progress) goes to the waiting runs oldest
scheduled time first, ties broken by Job name. Every member decides with the
same view of the group, and admits only its own runs among those, so the
members never disagree on who is next. The queue is the members' statuses and
the runs in progress are the Jobs (their group label): a restart, or a new
leader, derives both again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from jobwarden import labels
from jobwarden.api.spec import ConcurrencyGroup
from jobwarden.api.status import HistoryEntry, QueuedRun, ScheduleStatus, parse_time
from jobwarden.api.values import MAX_GROUP_LIMIT, MAX_QUEUE
from jobwarden.reconcile.actions import launch
from jobwarden.reconcile.due import suspended
from jobwarden.reconcile.model import Effects, GroupView, Inputs, Note, Start, Waiting, evolve
from jobwarden.runs import history as hist

GROUP_FULL = "GroupFull"
QUEUE_DEADLINE = "GroupQueueDeadline"


def admit(*, limit: int, active: int, waiting: Iterable[Waiting]) -> list[Waiting]:
    """The waiting runs that may start now: the first ``limit - active`` in FIFO order."""
    free = max(0, limit - active)
    return sorted(set(waiting))[:free]


def group_of(body: Mapping[str, Any]) -> tuple[str, int] | None:
    """The group a schedule body names, and the limit it names (malformed: none; the plan
    reports it by the field)."""
    spec = body.get("spec")
    group = spec.get("concurrencyGroup") if isinstance(spec, Mapping) else None
    if not isinstance(group, Mapping) or not isinstance(group.get("name"), str):
        return None
    limit = group.get("limit", 1)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_GROUP_LIMIT:
        return None
    return str(group["name"]), limit


def queue_of(name: str, body: Mapping[str, Any]) -> tuple[Waiting, ...]:
    """The waiting runs in a schedule body's ``status.queue``."""
    status = body.get("status")
    queue = status.get("queue") if isinstance(status, Mapping) else None
    runs = []
    for item in queue[:MAX_QUEUE] if isinstance(queue, list) else ():
        try:
            when = parse_time(item.get("scheduledTime"))
            job = item.get("job")
        except (AttributeError, ValueError, TypeError, OverflowError):
            continue
        if when is not None and isinstance(job, str):
            runs.append(Waiting.of(when, job, name))
    return tuple(runs)


def group_limit(group: ConcurrencyGroup, view: GroupView) -> int:
    """The limit this member holds to: the smallest any member of the group names."""
    if view.name != group.name or view.limit is None:
        return group.limit
    return min(group.limit, view.limit)


def in_group(start: Start, group: ConcurrencyGroup | None) -> Start:
    """The Job carrying the group's label (what counts it as one of the group's runs)."""
    if group is None:
        return start
    meta = start.body["metadata"]
    tagged = {**meta["labels"], labels.GROUP_LABEL: group.name}
    return Start({**start.body, "metadata": {**meta, "labels": tagged}}, start.due, start.upstreams)


def _upstreams(text: str | None) -> tuple[tuple[str, str], ...]:
    pairs = (part.partition("=") for part in (text or "").split(",") if part)
    return tuple((job, result) for job, _, result in pairs)


def _started_note(note: Note, names: set[str]) -> bool:
    """Whether ``note`` announces the start of one of ``names`` (a run that did not start)."""
    return (
        note.reason in ("Started", "ManualRun")
        and note.type == "Normal"
        and any(f"Job {n} " in f"{note.message} " for n in names)
    )


def gate_group(
    inp: Inputs, status: ScheduleStatus, started: Effects
) -> tuple[ScheduleStatus, Effects]:
    """The runs ``started`` so far in this plan, and the queued ones, held to the group.

    Admitted runs start (their Jobs labelled with the group); the others wait in
    ``status.queue`` or are Skipped; queued runs past their deadline are Missed.
    A schedule that left its group starts its queued runs. An invalid spec leaves
    the queue as it is.
    """
    spec, obj, now = inp.spec, inp.obj, inp.now
    queue = list(status.queue or [])
    if spec is None or (spec.concurrency_group is None and not queue):
        return status, started
    group = spec.concurrency_group
    history = list(status.history or [])
    candidates: dict[str, Waiting] = {}
    fresh: dict[str, Start] = {}
    for start in started.starts:
        entry = hist.find(history, start.name)
        if entry is not None and entry.scheduled_time is not None:
            fresh[start.name] = start
            candidates[start.name] = Waiting.of(entry.scheduled_time, start.name, obj.name)
    queued: dict[str, QueuedRun] = {}
    for run in queue:
        if run.job in inp.jobs or run.job in inp.pending:
            # Admitted by a reconcile whose status write was lost: it runs.
            if hist.find(history, run.job) is None:
                history.insert(0, _entry(run))
            continue
        queued[run.job] = run
        candidates[run.job] = Waiting.of(run.scheduled_time, run.job, obj.name)

    complete = group is None or (inp.group.complete and inp.group.name == group.name)
    if group is None:
        admitted = set(candidates)
    elif complete:
        limit = group_limit(group, inp.group)
        active = inp.group.active - set(candidates)
        others = [w for w in inp.group.waiting if w.schedule != obj.name]
        chosen = admit(limit=limit, active=len(active), waiting=[*others, *candidates.values()])
        admitted = {w.job for w in chosen if w.job in candidates}
    else:
        admitted = set()
    # Suspended or being deleted: what waits does not start (nor holds the others up).
    stopped = obj.deleting is not None or suspended(inp, status)
    if stopped:
        admitted -= set(queued)

    starts = [s for s in started.starts if s.name not in fresh]
    notes: list[Note] = []
    finished: list[hist.Transition] = []
    more = dict.fromkeys(("scheduled", "skipped", "missed", "failed"), 0)
    waiting: list[QueuedRun] = []
    held: set[str] = set()
    deadline = spec.starting_deadline_seconds
    wake: list[datetime] = []

    def record(run: QueuedRun, result: str, reason: str, message: str) -> None:
        history.insert(
            0,
            HistoryEntry(
                trigger=run.trigger,
                scheduled_time=run.scheduled_time,
                result=result,  # type: ignore[arg-type]
                reason=reason,
                message=message,
            ),
        )
        more[result.lower()] += 1
        more["scheduled"] -= run.trigger != labels.TRIGGER_MANUAL  # it never ran
        finished.append(hist.Transition("", result, None, reason, message))
        notes.append(
            Note("Warning", result, f"Run for {run.scheduled_time:%Y-%m-%dT%H:%M:%SZ}: {message}")
        )

    for name, _ in sorted(candidates.items(), key=lambda kv: kv[1]):
        run = queued.get(name) or _queued(history, fresh[name], now)
        if name in admitted:
            if name in fresh:
                starts.append(in_group(fresh[name], group))
                continue
            begun = launch(
                inp,
                active=len(hist.running(history)),
                name=name,
                trigger=run.trigger,
                scheduled=run.scheduled_time,
                due=run.queued_at or run.scheduled_time,
                reason=run.reason,
                upstreams=_upstreams(run.upstreams),
            )
            history.insert(0, begun.entry)
            if begun.start is not None:
                starts.append(in_group(begun.start, group))
            finished += [begun.finished] if begun.finished is not None else []
            notes.append(begun.note)
            if begun.counted:
                more[begun.counted] += 1
            continue
        if stopped and name in queued:
            record(run, "Skipped", "Suspended", "the schedule was suspended while the run waited")
            continue
        assert group is not None  # with no group every candidate is admitted
        if name in fresh:
            held.add(name)
            history = [e for e in history if e.job != name]
        expires = (run.queued_at or now) + timedelta(seconds=deadline or 0)
        if deadline is not None and now >= expires:
            record(run, "Missed", QUEUE_DEADLINE, _full(group, f"not started within {deadline}s"))
        elif complete and group.when_full == "Skip":
            record(run, "Skipped", GROUP_FULL, _full(group, "whenFull is Skip"))
        elif len(waiting) >= MAX_QUEUE:
            record(run, "Skipped", GROUP_FULL, _full(group, f"{MAX_QUEUE} runs queued already"))
        else:
            waiting.append(run)
            if deadline is not None:
                wake.append(expires)
            if name in fresh:
                notes.append(Note("Normal", "Queued", _full(group, "queued")))

    gated = evolve(
        status,
        history=history,
        queue=waiting or None,
        executions=hist.tally(status.executions, (), **more),
    )
    wakes = [w for w in (started.wake_at, *wake) if w is not None]
    return gated, Effects(
        starts=tuple(starts),
        deletes=started.deletes,
        notes=tuple(n for n in started.notes if not _started_note(n, held)) + tuple(notes),
        finished=started.finished + tuple(finished),
        wake_at=min(wakes) if wakes else None,
        force_stuck_pods=started.force_stuck_pods,
    )


def _full(group: ConcurrencyGroup, what: str) -> str:
    return f"concurrency group {group.name} is full: {what}"


def _queued(history: list[HistoryEntry], start: Start, now: datetime) -> QueuedRun:
    """The queue entry a run started in this plan becomes when it has to wait."""
    entry = hist.find(history, start.name)
    assert entry is not None and entry.scheduled_time is not None
    return QueuedRun(
        job=start.name,
        trigger=entry.trigger,
        scheduled_time=entry.scheduled_time,
        queued_at=now,
        reason=entry.reason,
        upstreams=",".join(f"{job}={result}" for job, result in start.upstreams) or None,
    )


def _entry(run: QueuedRun) -> HistoryEntry:
    return HistoryEntry(
        job=run.job,
        trigger=run.trigger,
        scheduled_time=run.scheduled_time,
        result="Running",
        reason=run.reason,
    )
