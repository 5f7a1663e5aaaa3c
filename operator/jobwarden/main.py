"""The ``jobwarden`` entry point: settings, then kopf."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import kopf

from jobwarden import __version__, liveness, metrics
from jobwarden.handlers import calendars, notifications, schedules, startguard, sweep, watches
from jobwarden.handlers.duesoon import WRITE_EVERY, DueSoonReader, DueSoonWriter
from jobwarden.handlers.leader import Elector, identity
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.kube import Kube, load_client
from jobwarden.notify.notifier import Notifier
from jobwarden.notify.sinks import Sink, SinkConfigError, load_sinks
from jobwarden.reconcile import Policy
from jobwarden.retrying import DEFAULT_TIMEOUTS
from jobwarden.settings import Settings, SettingsError, parse_settings
from jobwarden.watching import STALE_AFTER_SECONDS, Connection

# How long the first plans wait for the JobCalendars' listing (see startup).
CALENDARS_WAIT = 30.0

log = logging.getLogger("jobwarden")


def _scheduler_of(memo: kopf.Memo) -> Scheduler:
    scheduler: Scheduler = memo["scheduler"]
    return scheduler


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff base, disabled: jobwarden has no create/update/field handlers.

    kopf still builds an "essence" of every watched body (a deep copy of all
    of it, status included) to diff for such handlers; for a burst of a
    thousand due runs that was seconds of CPU on the event loop for nothing.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def _client(me: str, *, pool_size: int = 32) -> Any:
    """An API client whose User-Agent names this replica, so an audit log tells
    which replica made each call (and that a standby made none that write)."""
    api = load_client(pool_size=pool_size)
    api.user_agent = _user_agent(me)
    return api


def _user_agent(me: str) -> str:
    return f"jobwarden/{__version__} ({me})"


class Background:
    """The operator's own tasks. One that ends, other than by cancellation at
    cleanup, stops the operator: its traceback is logged and the process exits
    non-zero, so that a dead loop is a restart, never a silent operator."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self.failed: list[str] = []
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._ended)
        self.tasks.append(task)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.critical("%s died; stopping the operator", task.get_name(), exc_info=exc)
        else:
            log.critical("%s ended; stopping the operator", task.get_name())
        self.failed.append(task.get_name())
        self._stop.set()

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


def _components(
    *,
    scheduler: Scheduler,
    warden: sweep.Sweep,
    guard: startguard.StartGuard,
    watched: watches.Watches,
    notifier: Notifier,
    settings: Settings,
) -> list[liveness.Component]:
    """What liveness judges: the wake loop, the sweep, every watch stream, every sink's worker."""
    found = [
        liveness.Component(
            "scheduler",
            lambda: scheduler.last_beat,
            liveness.SCHEDULER_BOUND_SECONDS,
        ),
        liveness.Component(
            "sweep",
            lambda: warden.last_beat,
            liveness.sweep_bound(settings.sweep_interval.total_seconds()),
        ),
        liveness.Component(
            "start guard",
            lambda: guard.last_beat,
            liveness.sweep_bound(settings.sweep_interval.total_seconds()),
        ),
    ]
    found += notifier.components()
    # Named by kind and number, not by path: /healthz and the metrics are read by
    # people who must not learn tenants' namespaces from them (the log has the paths).
    for number, informer in enumerate(watched.all, start=1):
        kind = informer.path.rstrip("/").rsplit("/", 1)[-1]
        log.info("liveness: 'watch %s #%d' is %s", kind, number, informer.name)
        found.append(
            liveness.Component(
                f"watch {kind} #{number}",
                lambda i=informer: i.last_beat,  # type: ignore[misc]
                STALE_AFTER_SECONDS,
            )
        )
    return found


def _configure(settings: Settings, sinks: tuple[Sink, ...], background: Background) -> None:
    """Register kopf handlers bound to these settings."""
    judged: list[liveness.Component] = []
    synced: list[watches.Watches] = []

    def verdict() -> tuple[liveness.Verdict, bool]:
        result = liveness.judge(judged, now=time.monotonic())
        return result, result.alive and all(w.synced() for w in synced)

    @kopf.on.probe(id="heartbeats", errors=kopf.ErrorsMode.PERMANENT)
    async def heartbeats(**_: Any) -> dict[str, Any]:
        # kopf answers /healthz with 500 when a probe raises (with errors=PERMANENT
        # at once, not after retries), and with the returned dict as JSON otherwise.
        result, ready = verdict()
        if not result.alive:
            raise kopf.PermanentError(result.message())
        return {"ready": ready, "ages": {k: round(v, 1) for k, v in result.ages.items()}}

    @kopf.on.startup(id="jobwarden_startup")
    async def startup(**kwargs: Any) -> None:
        kopf_settings: kopf.OperatorSettings = kwargs["settings"]
        memo: kopf.Memo = kwargs["memo"]
        # jobwarden records its own Events; kopf's would cost calls and RBAC for nothing.
        kopf_settings.posting.enabled = False
        kopf_settings.persistence.diffbase_storage = NoDiffBase()
        # jobwarden watches through its own informers (jobwarden.watching): kopf only
        # runs the process (startup, cleanup, the probe, logging) and discovers nothing.
        kopf_settings.scanning.disabled = True
        # kopf's own short requests: bounded like jobwarden's calls (by default kopf
        # has no connect timeout and five minutes per request).
        kopf_settings.networking.connect_timeout = DEFAULT_TIMEOUTS.connect
        kopf_settings.networking.request_timeout = 60
        me = identity(os.environ)
        kube = Kube(_client(me))
        jobs = schedules.ScheduleJobs()
        policy = Policy(
            default_stale_after=settings.stale_after,
            default_start_deadline=settings.start_deadline,
            unhealthy_after=settings.unhealthy_after,
            dry_run=settings.dry_run,
            sinks=frozenset(s.name for s in sinks),
        )
        notifier = notifications.build(sinks=sinks, kube=kube)
        scheduler = Scheduler(
            kube=kube,
            policy=policy,
            jobs_of=jobs.jobs_of,
            listed=False,
            notify=notifier.submit,
        )
        warden = sweep.Sweep(kube=kube, scheduler=scheduler, interval=settings.sweep_interval)
        guard = startguard.StartGuard(
            kube=kube,
            scheduler=scheduler,
            interval=settings.sweep_interval,
            dry_run=settings.dry_run,
        )
        calendar_writer = calendars.CalendarStatusWriter(
            kube=kube, index=scheduler.calendars, leading=lambda: scheduler.leading
        )
        connection = Connection(load_client().configuration, user_agent=_user_agent(me))
        reader: DueSoonReader | None = None
        if settings.due_soon_configmap:
            reader = DueSoonReader(
                kube=kube,
                namespace=settings.lease_namespace,
                name=settings.due_soon_configmap,
                selector=schedules.selector_labels(settings.selector),
            )
        watched = watches.build(
            connection=connection,
            namespaces=settings.namespaces,
            selector=settings.selector,
            dry_run=settings.dry_run,
            scheduler=scheduler,
            jobs=jobs,
            warden=warden,
            guard=guard,
            calendar_writer=calendar_writer,
            due_soon=reader,
        )
        writer: DueSoonWriter | None = None
        if settings.due_soon_configmap:
            writer = DueSoonWriter(
                kube=kube,
                source=scheduler,
                ready=watched.schedules_synced,
                namespace=settings.lease_namespace,
                name=settings.due_soon_configmap,
            )
            judged.append(
                liveness.Component(
                    "due-soon list",
                    lambda: writer.last_beat if writer else None,
                    liveness.sweep_bound(WRITE_EVERY),
                )
            )
        judged.extend(
            _components(
                scheduler=scheduler,
                warden=warden,
                guard=guard,
                watched=watched,
                notifier=notifier,
                settings=settings,
            )
        )
        synced.append(watched)
        for component in judged:
            metrics.HEARTBEAT_AGE.labels(component.name).set_function(
                lambda c=component: _age(c)  # type: ignore[misc]
            )
        metrics.READY.set_function(lambda: float(verdict()[1]))
        memo["scheduler"] = scheduler
        memo["kube"] = kube
        memo["connection"] = connection
        memo["elector"] = None

        async def schedule() -> None:
            # Until every Job is listed, a schedule's missing Job may only be unlisted:
            # the scheduler runs what is due meanwhile from each one's own Jobs.
            # A schedule planned before the calendars are listed would find its own
            # missing; an operator without the right to list them still schedules.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watched.calendars_synced(), timeout=CALENDARS_WAIT)
            async with asyncio.TaskGroup() as group:
                group.create_task(scheduler.run())
                await watched.jobs_synced()
                scheduler.listed()

        for informer in watched.all:
            background.start(informer.run(), name=f"jobwarden watch {informer.name}")
        background.start(schedule(), name="jobwarden scheduler")
        background.start(warden.run(), name="jobwarden sweep")
        background.start(calendar_writer.run(), name="jobwarden calendar status")
        background.start(guard.run(), name="jobwarden start guard")
        if writer is not None:
            background.start(writer.run(), name="jobwarden due-soon list")
        for worker in notifier.workers:
            background.start(worker.run(), name=f"jobwarden notify {worker.sink.name}")
        if settings.lease:
            # A standby until the Lease is won. The elector has its own client and
            # threads, so renewals never queue behind a burst of reconciles.
            scheduler.pause()
            lease_kube = Kube(_client(me, pool_size=2), workers=2)
            elector = Elector(
                kube=lease_kube,
                switch=scheduler,
                name=settings.lease,
                namespace=settings.lease_namespace,
                me=me,
            )
            # Creates, deletes, status writes and Events go out only within the term.
            kube.guard(elector.term)
            memo["elector"], memo["lease_kube"] = elector, lease_kube
            background.start(elector.run(), name="jobwarden elector")
        else:
            metrics.LEADER.set(1)

    @kopf.on.cleanup(id="jobwarden_cleanup")
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        background.cancel()
        scheduler = _scheduler_of(memo)
        scheduler.pause()
        await scheduler.close()
        elector: Elector | None = memo.get("elector")
        if elector is not None:
            # Only now that nothing acts any more may a standby take over.
            await elector.release()
            memo["lease_kube"].close()
        await memo["connection"].close()
        memo["kube"].close()


def _age(component: liveness.Component) -> float:
    beat = component.last_beat()
    return float("nan") if beat is None else max(0.0, time.monotonic() - beat)


def _logging(settings: Settings) -> None:
    fmt = kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=False, log_format=fmt)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    # kopf logs every handled watch event at INFO: thousands of lines per minute at scale.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # The probe runs on every /healthz request: a line each time says nothing.
    logging.getLogger("kopf.activities.probe").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings(argv=sys.argv[1:] if argv is None else argv, env=os.environ)
        schedules.selector_labels(settings.selector)
        sinks = load_sinks(settings.notify_sinks)
    except SinkConfigError as exc:
        print(f"jobwarden: setting --notify-sinks (JOBWARDEN_NOTIFY_SINKS): {exc}", file=sys.stderr)
        return 2
    except (SettingsError, ValueError) as exc:
        print(f"jobwarden: {exc}", file=sys.stderr)
        return 2
    _logging(settings)
    stop = asyncio.Event()
    background = Background(stop)
    _configure(settings, sinks, background)
    metrics.serve(settings)
    host, port = settings.health_address
    log.info(
        "jobwarden starting: namespaces=%s selector=%s stale-after=%s dry-run=%s lease=%s sinks=%s",
        ",".join(settings.namespaces) or "*",
        settings.selector,
        settings.stale_after,
        settings.dry_run,
        f"{settings.lease_namespace}/{settings.lease}" if settings.lease else "(standalone)",
        ",".join(s.name for s in sinks) or "-",
    )
    # kopf's peering is never used: it would pause kopf's handlers but not the
    # scheduler. Every replica watches; the leader Lease decides who acts. kopf
    # watches nothing itself (see startup), so it is told "cluster-wide" only to
    # look for no namespaces.
    kopf.run(
        clusterwide=True,
        standalone=True,
        liveness_endpoint=f"http://{host}:{port}/healthz",
        stop_flag=stop,
    )
    if background.failed:
        log.critical("stopped because %s ended", ", ".join(background.failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
