"""Prometheus metrics of the operator.

Names are part of the product's contract: the chart's alerts and dashboard
query exactly these, and a test scrapes a live operator to prove it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RUNS = Counter(
    "jobwarden_runs_total",
    "Runs by outcome (Started, Succeeded, Failed, Terminated, Stale, Missed, Skipped).",
    ["namespace", "schedule", "result"],
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
STALE_RUNS = Counter(
    "jobwarden_stale_runs_total",
    "Runs found past their stale threshold, by the action taken (Terminate or Report).",
    ["namespace", "action"],
)
ACTIVE_RUNS = Gauge("jobwarden_active_runs", "Jobs of JobSchedules that are running now.")
SCHEDULES = Gauge("jobwarden_schedules", "JobSchedules by health state.", ["health"])
LEADER = Gauge(
    "jobwarden_leader",
    "1 while this replica acts (holds the leader Lease, or runs standalone); 0 on standby.",
)


def serve(*, host: str, port: int) -> None:
    """Expose /metrics on its own port, apart from the liveness probe."""
    start_http_server(port, addr=host)


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
