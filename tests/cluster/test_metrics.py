"""The operator's /metrics and /healthz as Prometheus and a kubelet see them, and
bad settings refused at start.

Each operator here watches only its test's namespace, so every figure on its
/metrics comes from what that test did and can be asserted exactly.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.cluster._safety import job_template, metric, schedule, wait_job_started
from tests.support.checks import counted, recorded
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import RUN_NOW, Schedules, history, rfc3339, seconds_ahead


def _scrape_until(operator: OperatorProcess, check: Any, *, what: str) -> str:
    def probe() -> str | None:
        text = operator.metrics()
        return text if check(text) else None

    return wait_for(probe, timeout=15, what=what)


def test_metrics_count_what_the_runs_did(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """One run succeeds, one goes stale, one keeps running: /metrics shows each
    by result, the stale termination, one active run, schedules by health, and
    a lag observation for each Job created; /healthz answers 200."""
    here = Schedules(cluster, namespace)
    here.apply(
        schedule("quick", runAt=rfc3339(seconds_ahead(2)), template=job_template(run_seconds=1))
    )
    here.apply(schedule("slow", staleAfter="3s"))
    here.apply(schedule("steady"))
    here.annotate("slow", RUN_NOW, "go")
    here.annotate("steady", RUN_NOW, "go")

    here.wait("quick", counted("succeeded", 1), timeout=20, what="the quick run succeeded")
    here.wait("slow", counted("stale", 1), timeout=20, what="the slow run terminated stale")
    steady = here.wait("steady", recorded, timeout=10, what="the steady run recorded")
    wait_job_started(cluster, namespace, history(steady)[0]["job"])

    def settled(text: str) -> bool:
        return (
            metric(
                text,
                "jobwarden_runs_total",
                namespace=namespace,
                schedule="quick",
                result="Succeeded",
            )
            == 1.0
            and metric(text, "jobwarden_schedules", health="Degraded") == 1.0
        )

    text = _scrape_until(operator, settled, what="the runs counted on /metrics")

    def runs(schedule_name: str, result: str) -> float | None:
        return metric(
            text, "jobwarden_runs_total", namespace=namespace, schedule=schedule_name, result=result
        )

    assert runs("quick", "Started") == 1.0
    assert runs("quick", "Succeeded") == 1.0
    assert runs("slow", "Stale") == 1.0
    assert runs("slow", "Failed") is None
    assert (
        metric(text, "jobwarden_stale_runs_total", namespace=namespace, action="Terminate") == 1.0
    )
    assert metric(text, "jobwarden_active_runs") == 1.0  # steady's, and only it
    assert metric(text, "jobwarden_schedules", health="Healthy") == 2.0  # quick, steady
    assert metric(text, "jobwarden_schedules", health="Degraded") == 1.0  # slow: LastRunStale
    assert metric(text, "jobwarden_schedules", health="Unhealthy") in (None, 0.0)
    assert metric(text, "jobwarden_schedule_lag_seconds_count") == 3.0  # three Jobs created
    lag = metric(text, "jobwarden_schedule_lag_seconds_sum")
    assert lag is not None and 0.0 <= lag < 3 * 2.0
    durations = metric(text, "jobwarden_run_duration_seconds_count", result="Succeeded")
    assert durations == 1.0

    assert operator.healthy()
    with urllib.request.urlopen(
        f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5
    ) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("variable", "value", "flag"),
    [
        ("JOBWARDEN_STALE_AFTER", "banana", "--stale-after"),
        ("JOBWARDEN_SWEEP_INTERVAL", "0s", "--sweep-interval"),
        ("JOBWARDEN_UNHEALTHY_AFTER", "three", "--unhealthy-after"),
    ],
)
def test_a_bad_setting_stops_the_operator_at_start(
    cluster: Cluster, tmp_path: Path, variable: str, value: str, flag: str
) -> None:
    """The process exits non-zero at once, naming the flag and variable it read."""
    probe = OperatorProcess(
        cluster=cluster,
        namespaces=["default"],
        log_path=tmp_path / "operator.log",
        extra_env={variable: value},
    )
    done = subprocess.run(
        probe.command(), env=probe.env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert variable in done.stderr and flag in done.stderr
    assert repr(value) in done.stderr or value in done.stderr
