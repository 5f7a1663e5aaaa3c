"""A suspended schedule whose run came due is still owed that run, not Completed.

Found on the real control plane: a one-time run that came due during a
suspension made the next reconcile (a run-now, say) report phase Completed
and Ready=False, although resuming then started the run (catchUp Latest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jobwarden.reconcile import Observed, Policy, plan

CREATED = datetime(2024, 1, 1, tzinfo=UTC)
DUE = CREATED + timedelta(seconds=10)
TEMPLATE: dict[str, Any] = {
    "spec": {
        "template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
        }
    }
}


def _phase(*, suspend: bool, now: datetime, status: dict[str, Any] | None = None) -> str:
    obj = Observed(
        namespace="ns",
        name="once",
        uid="u",
        generation=1,
        created=CREATED,
        annotations={},
        status=status or {},
        spec={"runAt": "2024-01-01T00:00:10Z", "suspend": suspend, "jobTemplate": TEMPLATE},
    )
    result = plan(obj=obj, jobs=[], pending=frozenset(), now=now, policy=Policy())
    assert result.status is not None
    phase: str = result.status["phase"]
    return phase


def test_suspended_run_at_past_its_time_stays_suspended() -> None:
    assert _phase(suspend=True, now=DUE + timedelta(seconds=30)) == "Suspended"
    assert _phase(suspend=True, now=DUE + timedelta(days=3)) == "Suspended"


def test_suspended_run_at_already_run_is_completed() -> None:
    done = {"lastScheduleTime": "2024-01-01T00:00:10Z", "executions": {"scheduled": 1}}
    assert _phase(suspend=True, now=DUE + timedelta(seconds=30), status=done) == "Completed"


def test_unsuspended_run_at_past_its_time_is_started_and_active_while_it_runs() -> None:
    # The run just started is still going: Completed only once it ends.
    assert _phase(suspend=False, now=DUE + timedelta(seconds=30)) == "Active"
