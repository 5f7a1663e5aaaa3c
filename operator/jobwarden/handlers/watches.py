"""Which informers the operator runs, and what each feeds.

Four kinds, each one per watched namespace (or one cluster-wide), and the
cluster-scoped JobCalendars (one informer, feeding the scheduler's calendar index):

* JobSchedules (the operator's ``--selector``) feed the scheduler, the
  schedules due soon read first when a due-soon list is kept (``duesoon``);
* Jobs of schedules (label ``jobwarden.io/schedule``) feed the scheduler's
  view of each schedule's Jobs and the sweep's candidates;
* other Jobs that opted in (label ``jobwarden.io/stale-after``) feed the
  sweep's candidates;
* other Jobs that opted in to the start guard (label
  ``jobwarden.io/start-deadline``) feed the start guard's candidates.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobwarden.handlers import calendars, schedules, startguard, sweep
from jobwarden.handlers.duesoon import DueSoonReader
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.watching import Connection, Informer, paths


@dataclass
class Watches:
    """The informers, grouped by what waits for them."""

    jobs: list[Informer[Any]] = field(default_factory=list)
    others: list[Informer[Any]] = field(default_factory=list)
    calendars: list[Informer[Any]] = field(default_factory=list)

    @property
    def all(self) -> list[Informer[Any]]:
        return [*self.jobs, *self.others, *self.calendars]

    async def calendars_synced(self) -> None:
        """Until the JobCalendars are listed: a schedule planned before would find its
        calendars missing."""
        await asyncio.gather(*(i.synced.wait() for i in self.calendars))

    async def jobs_synced(self) -> None:
        """Until every Job informer has completed its first listing."""
        await asyncio.gather(*(i.synced.wait() for i in self.jobs))

    def schedules_synced(self) -> bool:
        """Whether every JobSchedule informer has completed its first listing."""
        return all(i.synced.is_set() for i in self.others)

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.all)


def _schedule_job(body: Mapping[str, Any]) -> schedules.JobSeen:
    return schedules.see_job(body, candidate=sweep.schedule_job(body))


def build(
    *,
    connection: Connection,
    namespaces: tuple[str, ...],
    selector: str | None,
    dry_run: bool,
    scheduler: Scheduler,
    jobs: schedules.ScheduleJobs,
    warden: sweep.Sweep,
    guard: startguard.StartGuard,
    calendar_writer: calendars.CalendarStatusWriter,
    due_soon: DueSoonReader | None = None,
) -> Watches:
    watches = Watches()
    # JobCalendars are cluster-scoped: one informer whatever namespaces are watched.
    watches.calendars.append(
        Informer(
            connection=connection,
            path=calendars.CALENDARS_PATH,
            project=calendars.see_calendar,
            sink=calendars.calendar_sink(
                index=scheduler.calendars, touch=scheduler.touch, writer=calendar_writer
            ),
        )
    )
    job_sink = schedules.job_sink(scheduler=scheduler, jobs=jobs, candidates=warden.track)
    for path in paths(collection=schedules.JOBS_PATH, namespaces=namespaces):
        watches.jobs.append(
            Informer(
                connection=connection,
                path=path,
                selector=sweep.SCHEDULE_JOBS_SELECTOR,
                project=_schedule_job,
                sink=job_sink,
            )
        )
        watches.jobs.append(
            Informer(
                connection=connection,
                path=path,
                selector=sweep.OPT_IN_SELECTOR,
                project=functools.partial(sweep.opt_in, dry_run=dry_run),
                sink=warden.track,
            )
        )
        watches.jobs.append(
            Informer(
                connection=connection,
                path=path,
                selector=startguard.SELECTOR,
                project=startguard.candidate,
                sink=guard.track,
            )
        )
    for namespace in namespaces or (None,):
        path = schedules.SCHEDULES_PATH.format(ns=f"namespaces/{namespace}/" if namespace else "")
        watches.others.append(
            Informer(
                connection=connection,
                path=path,
                selector=schedules.selector_query(selector),
                project=schedules.schedule_version,
                sink=schedules.schedule_sink(scheduler),
                prime=None if due_soon is None else functools.partial(due_soon.bodies, namespace),
            )
        )
    return watches
