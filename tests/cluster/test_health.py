"""Health verdicts and suspendAfterFailures, driven by pods that fail or succeed.

Runs are started with run-now tokens, one at a time, and the template is
switched between a failing and a succeeding pod by a spec change, as a user
fixing a broken Job would. The operator's JOBWARDEN_UNHEALTHY_AFTER is left
at its default, 3.
"""

from __future__ import annotations

from typing import Any

from tests.cluster._safety import RESUME, events, job_template, schedule
from tests.support.checks import generation_seen, phase
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import RUN_NOW, Schedules, condition, executions

FAILING = job_template(run_seconds=1, fail=True)
SUCCEEDING = job_template(run_seconds=1)


def _finished(count: int) -> Any:
    def check(status: dict[str, Any]) -> bool:
        counts = executions(status)
        return bool(counts.get("succeeded", 0) + counts.get("failed", 0) >= count)

    return check


def _run(here: Schedules, name: str, token: str, *, finished: int) -> dict[str, Any]:
    """One manual run, waited on until it is the ``finished``-th to end."""
    here.annotate(name, RUN_NOW, token)
    return here.wait(name, _finished(finished), timeout=20, what=f"run {token} finished")


def _use(
    here: Schedules, name: str, template: dict[str, Any], generation: int, **spec: Any
) -> None:
    here.apply(schedule(name, template=template, **spec))
    here.wait(name, generation_seen(generation), timeout=10, what=f"generation {generation} seen")


def _health(status: dict[str, Any]) -> tuple[str, int]:
    health = status["health"]
    return health["state"], health["consecutiveFailures"]


def test_health_follows_failures_and_recovers(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """Healthy after a success, Degraded after one failure, Unhealthy after three in
    a row, Healthy again after the next success."""
    here = Schedules(cluster, namespace)
    _use(here, "flaky", SUCCEEDING, 1)
    status = _run(here, "flaky", "ok-1", finished=1)
    assert _health(status) == ("Healthy", 0)
    assert status["health"]["reason"] == "RunsSucceeding"

    _use(here, "flaky", FAILING, 2)
    status = _run(here, "flaky", "bad-1", finished=2)
    assert _health(status) == ("Degraded", 1)
    assert status["health"]["reason"] == "LastRunFailed"

    status = _run(here, "flaky", "bad-2", finished=3)
    assert _health(status) == ("Degraded", 2)
    status = _run(here, "flaky", "bad-3", finished=4)
    assert _health(status) == ("Unhealthy", 3)
    assert status["health"]["reason"] == "ConsecutiveFailures"
    assert executions(status)["failed"] == 3
    assert status["phase"] == "Active"  # unhealthy alone never suspends

    _use(here, "flaky", SUCCEEDING, 3)
    status = _run(here, "flaky", "ok-2", finished=5)
    assert _health(status) == ("Healthy", 0)
    assert executions(status)["succeeded"] == 2


def test_suspend_after_failures_and_resume(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """suspendAfterFailures 2: two failed runs suspend the schedule in status (phase,
    condition, Event), without touching spec; jobwarden.io/resume lifts it, and
    failures before the resume no longer count."""
    here = Schedules(cluster, namespace)
    _use(here, "fragile", FAILING, 1, suspendAfterFailures=2)
    status = _run(here, "fragile", "bad-1", finished=1)
    assert status["phase"] == "Active"
    _run(here, "fragile", "bad-2", finished=2)
    status = here.wait(
        "fragile", phase("Suspended"), timeout=10, what="suspended after two failures"
    )
    suspended = condition(status, "Suspended")
    assert suspended is not None
    assert (suspended["status"], suspended["reason"]) == ("True", "TooManyFailures")
    assert (condition(status, "Ready") or {}).get("status") == "False"
    assert status.get("nextRunTime") is None
    warnings = wait_for(
        lambda: events(cluster, namespace, "fragile", reason="SuspendedAfterFailures"),
        timeout=10,
        what="a SuspendedAfterFailures Event",
    )
    assert [e["type"] for e in warnings] == ["Warning"]
    assert cluster.schedule(namespace, "fragile")["spec"].get("suspend") in (None, False)

    here.annotate("fragile", RESUME, "fixed-it")
    status = here.wait("fragile", phase("Active"), timeout=10, what="active again after resume")
    lifted = condition(status, "Suspended")
    assert lifted is not None
    assert (lifted["status"], lifted["reason"]) == ("False", "ResumeRequested")
    assert status.get("nextRunTime") is not None
    resumed = wait_for(
        lambda: events(cluster, namespace, "fragile", reason="Resumed"),
        timeout=10,
        what="a Resumed Event",
    )
    assert [e["type"] for e in resumed] == ["Normal"]

    # One more failure after the resume is one, not three: still active.
    status = _run(here, "fragile", "bad-3", finished=3)
    assert status["phase"] == "Active"
    assert (condition(status, "Suspended") or {}).get("status") == "False"
