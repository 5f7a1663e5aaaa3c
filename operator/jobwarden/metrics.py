"""Prometheus metrics of the operator.

Names are part of the product's contract: the chart's alerts and dashboard
query exactly these, and a test scrapes a live operator to prove it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from jobwarden import metrics_http
from jobwarden.kube import load_client
from jobwarden.metrics_auth import Gate, KubeReviewer
from jobwarden.settings import Settings


class TenantLabelled:
    """A metric whose leading labels name a tenant's objects (namespace, schedule).

    Callers always pass every label value. With tenant labels off (for very
    large clusters, or to keep tenants' names out of metrics) the leading
    values are dropped and the series counts over all tenants: the operator
    keeps one series per result instead of one per schedule and result.
    """

    def __init__(
        self,
        make: Callable[[Sequence[str]], Any],
        *,
        tenant: Sequence[str],
        rest: Sequence[str],
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._make = make
        self._registry = registry
        self._tenant = len(tenant)
        self._rest = tuple(rest)
        self._metric = make((*tenant, *rest))
        self.tenant_labels = True

    def labels(self, *values: str) -> Any:
        return self._metric.labels(*self._kept(values))

    def remove(self, *values: str) -> None:
        """Forget one tenant's series; with tenant labels off there is none of its own."""
        if self.tenant_labels:
            self._metric.remove(*values)

    def clear(self) -> None:
        self._metric.clear()

    def drop_tenant_labels(self) -> None:
        """From now on, no tenant labels (at start, before anything is counted)."""
        if self.tenant_labels:
            self._registry.unregister(self._metric)
            self._metric = self._make(self._rest)
            self.tenant_labels = False

    def _kept(self, values: tuple[str, ...]) -> tuple[str, ...]:
        return values if self.tenant_labels else values[self._tenant :]


def _counter(name: str, doc: str) -> Callable[[Sequence[str]], Any]:
    return lambda labels: Counter(name, doc, labels)


RUNS = TenantLabelled(
    _counter(
        "jobwarden_runs_total",
        "Runs by outcome (Started, Succeeded, Failed, Terminated, Stale, Missed, Skipped).",
    ),
    tenant=("namespace", "schedule"),
    rest=("result",),
)
SCHEDULE_LAG = Histogram(
    "jobwarden_schedule_lag_seconds",
    "Delay from a run's scheduled time (plus its jitter) to the creation of its Job.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
RUN_DURATION = Histogram(
    "jobwarden_run_duration_seconds",
    "Duration of finished runs, from start to completion.",
    ["result"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600),
)
STALE_RUNS = TenantLabelled(
    _counter(
        "jobwarden_stale_runs_total",
        "Runs found past their stale threshold, by the action taken (Terminate or Report).",
    ),
    tenant=("namespace",),
    rest=("action",),
)
GROUP_RUNS = TenantLabelled(
    lambda labels: Gauge(
        "jobwarden_group_runs",
        "Runs of a concurrency group by state: active (in progress, counted against the "
        "limit) and queued (waiting for room); limit: the group's limit.",
        labels,
    ),
    tenant=("namespace", "group"),
    rest=("state",),
)
GROUP_STATES = ("active", "queued", "limit")
# Every metric labelled with tenants' names: the schedule-labels switch drops them all.
TENANT_LABELLED = (RUNS, STALE_RUNS, GROUP_RUNS)
ACTIVE_RUNS = Gauge("jobwarden_active_runs", "Jobs of JobSchedules that are running now.")
SCHEDULES = Gauge("jobwarden_schedules", "JobSchedules by health state.", ["health"])
LEADER = Gauge(
    "jobwarden_leader",
    "1 while this replica acts (holds the leader Lease, or runs standalone); 0 on standby.",
)


# Notifications, by the owner's sink names (never a tenant's): see jobwarden.notify.
NOTIFICATIONS = Counter(
    "jobwarden_notifications_total",
    "Notifications by sink and outcome: Delivered; Failed (refused, or still failing after "
    "its retries); Dropped (the sink's queue was full: the oldest waiting is dropped).",
    ["sink", "outcome"],
)
NOTIFICATION_RETRIES = Counter(
    "jobwarden_notification_retries_total",
    "Delivery attempts that failed and were tried again, by sink.",
    ["sink"],
)
NOTIFICATION_QUEUE = Gauge(
    "jobwarden_notification_queue", "Notifications waiting for each sink.", ["sink"]
)
NOTIFICATION_DELAY = Histogram(
    "jobwarden_notification_delivery_seconds",
    "From the status write that made a notification to its delivery, by sink.",
    ["sink"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)


def forget_schedule(namespace: str, name: str, *, results: Iterable[str]) -> None:
    """Drop a deleted schedule's series, so they neither linger nor grow without bound.

    One removal per result label (a dict pop each), not a scan of every
    series: deleting a namespace of thousands of schedules forgets each.
    """
    for result in results:
        RUNS.remove(namespace, name, result)


def show_group(namespace: str, group: str, *, limit: int, active: int, queued: int) -> None:
    """A concurrency group's occupancy (only per group: summed over groups it would mean
    nothing, so with tenant labels off it is not shown)."""
    if GROUP_RUNS.tenant_labels:
        for state, value in zip(GROUP_STATES, (active, queued, limit), strict=True):
            GROUP_RUNS.labels(namespace, group, state).set(value)


def forget_group(namespace: str, group: str) -> None:
    """The group is gone (no member, no run): its series go with it."""
    for state in GROUP_STATES:
        with contextlib.suppress(KeyError):
            GROUP_RUNS.remove(namespace, group, state)


def serve(settings: Settings) -> Any:
    """Expose /metrics on its own port, apart from the liveness probe.

    Called once at start, before anything is counted: it applies the
    schedule-labels switch first. Returns the server (``shutdown()`` stops it).
    """
    if not settings.metrics_schedule_labels:
        for metric in TENANT_LABELLED:
            metric.drop_tenant_labels()
    host, port = settings.metrics_address
    if not settings.metrics_secure:
        return metrics_http.start(host=host, port=port, gate=None, tls=None)
    tls = metrics_http.TLS(cert_file=settings.metrics_cert_file, key_file=settings.metrics_key_file)
    gate = Gate(reviewer=KubeReviewer(load_client(pool_size=4)))
    return metrics_http.start(host=host, port=port, gate=gate, tls=tls)


# Liveness and readiness, as metrics: the same verdict /healthz gives.
HEARTBEAT_AGE = Gauge(
    "jobwarden_heartbeat_age_seconds",
    "Seconds since each loop's last beat (scheduler, sweep, each watch stream).",
    ["component"],
)
READY = Gauge(
    "jobwarden_ready",
    "1 when every watch has completed its first listing and every loop beats within its bound.",
)
