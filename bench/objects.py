"""What gets scheduled: the JobSchedule, CronJob and Job template bodies.

Pure functions returning plain dicts, shared by every benchmark so that
jobwarden and the CronJob controller are given the same Jobs and the same
cron expressions. They need no cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from common import GROUP, VERSION

# --- what gets scheduled ----------------------------------------------------------------


def job_template(*, suspend: bool) -> dict[str, Any]:
    """The Job template of every benchmark schedule.

    ``suspend: true`` (the default of the benchmarks) creates Jobs that start
    no pods: the figures are the scheduler's, not those of the Job controller,
    kube-scheduler and kwok moving a thousand pods at the same instant. Without
    it, pods run for one second on the fake nodes.
    """
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"annotations": {"jobwarden.test/run-seconds": "1s"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}],
            },
        },
    }
    if suspend:
        spec["suspend"] = True
    return {"spec": spec}


def cron_at(moment: datetime) -> str:
    """A daily cron expression (UTC) due at ``moment``'s minute: the commonest kind of schedule.

    The next run is a day away, long after the benchmark has deleted it.
    """
    m = moment.astimezone(UTC)
    return f"{m.minute} {m.hour} * * *"


def jobschedule(name: str, *, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobSchedule",
        "metadata": {"name": name},
        "spec": dict(spec),
    }


def cronjob(name: str, *, schedule: str, template: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": schedule, "timeZone": "Etc/UTC", "jobTemplate": dict(template)},
    }


def not_due_spec(*, suspend_jobs: bool = True) -> dict[str, Any]:
    """A schedule with nothing to do for months: a one-time run next year."""
    year = datetime.now(UTC).year + 1
    return {"runAt": f"{year}-06-01T00:00:00Z", "jobTemplate": job_template(suspend=suspend_jobs)}
