"""The ``jobwarden`` entry point: settings, then kopf."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import kopf

from jobwarden import __version__, metrics
from jobwarden.handlers import schedules, sweep
from jobwarden.handlers.leader import Elector, identity
from jobwarden.handlers.scheduler import Scheduler
from jobwarden.kube import Kube, load_client
from jobwarden.reconcile import Policy
from jobwarden.retrying import DEFAULT_TIMEOUTS
from jobwarden.settings import Settings, SettingsError, parse_settings

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
    api.user_agent = f"jobwarden/{__version__} ({me})"
    return api


def _configure(settings: Settings) -> None:
    """Register kopf handlers bound to these settings."""
    schedules.register(scheduler_of=_scheduler_of, selector=settings.selector)
    sweep.register(dry_run=settings.dry_run)

    @kopf.on.startup(id="jobwarden_startup")
    async def startup(**kwargs: Any) -> None:
        kopf_settings: kopf.OperatorSettings = kwargs["settings"]
        memo: kopf.Memo = kwargs["memo"]
        # jobwarden records its own Events; kopf's would cost calls and RBAC for nothing.
        kopf_settings.posting.enabled = False
        kopf_settings.persistence.diffbase_storage = NoDiffBase()
        # kopf keeps a worker per object, holding its last body, for idle_timeout after
        # each event (default 5 s): after a wave of events (a restart, a burst, thousands
        # of schedules applied) that was every body at once, a peak the allocator keeps.
        kopf_settings.batching.idle_timeout = 0.5
        # The initial listing in pages, not all schedules (and Jobs) in one response.
        kopf_settings.watching.chunk_size = 500
        kopf_settings.watching.server_timeout = 300
        kopf_settings.watching.client_timeout = 330
        # kopf's own short requests (the listing's pages): bounded like jobwarden's
        # calls (by default kopf has no connect timeout and five minutes per request).
        kopf_settings.networking.connect_timeout = DEFAULT_TIMEOUTS.connect
        kopf_settings.networking.request_timeout = 60
        me = identity(os.environ)
        kube = Kube(_client(me))
        index = kwargs["schedule_jobs"]

        def jobs_of(key: tuple[str, str]) -> Any:
            return list(index.get(key, ()))

        policy = Policy(
            default_stale_after=settings.stale_after,
            unhealthy_after=settings.unhealthy_after,
            dry_run=settings.dry_run,
        )
        scheduler = Scheduler(kube=kube, policy=policy, jobs_of=jobs_of)
        warden = sweep.Sweep(kube=kube, scheduler=scheduler, interval=settings.sweep_interval)
        memo["scheduler"] = scheduler
        memo["kube"] = kube
        memo["elector"] = None
        tasks = [
            asyncio.create_task(scheduler.run(), name="jobwarden scheduler"),
            asyncio.create_task(warden.run(kwargs["stale_candidates"]), name="jobwarden sweep"),
        ]
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
            tasks.append(asyncio.create_task(elector.run(), name="jobwarden elector"))
        else:
            metrics.LEADER.set(1)
        memo["tasks"] = tasks

    @kopf.on.cleanup(id="jobwarden_cleanup")
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        for task in memo.get("tasks", []):
            task.cancel()
        scheduler = _scheduler_of(memo)
        scheduler.pause()
        await scheduler.close()
        elector: Elector | None = memo.get("elector")
        if elector is not None:
            # Only now that nothing acts any more may a standby take over.
            await elector.release()
            memo["lease_kube"].close()
        memo["kube"].close()


def _logging(settings: Settings) -> None:
    fmt = kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=False, log_format=fmt)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    # kopf logs every handled watch event at INFO: thousands of lines per minute at scale.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings(argv=sys.argv[1:] if argv is None else argv, env=os.environ)
        schedules.selector_labels(settings.selector)
    except (SettingsError, ValueError) as exc:
        print(f"jobwarden: {exc}", file=sys.stderr)
        return 2
    _logging(settings)
    _configure(settings)
    metrics.serve(settings)
    host, port = settings.health_address
    log.info(
        "jobwarden starting: namespaces=%s selector=%s stale-after=%s dry-run=%s lease=%s",
        ",".join(settings.namespaces) or "*",
        settings.selector,
        settings.stale_after,
        settings.dry_run,
        f"{settings.lease_namespace}/{settings.lease}" if settings.lease else "(standalone)",
    )
    # kopf's peering is never used: it would pause kopf's handlers but not the
    # scheduler. Every replica watches; the leader Lease decides who acts.
    kopf.run(
        clusterwide=settings.all_namespaces,
        namespaces=list(settings.namespaces),
        standalone=True,
        liveness_endpoint=f"http://{host}:{port}/healthz",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
