"""Stale runs end the same way whoever stops them; force terminate clears stuck pods;
the sweep retries an opt-in Job it failed to delete and tags Events with the uid.

The cluster tests show these on the real control plane; here each rule is
pinned down as pure logic, including the race the cluster can only sample
(the Job controller's deadline firing before the operator's own wake-up).
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobwarden import labels
from jobwarden.handlers.sweep import JobCandidate, Sweep
from jobwarden.kube import ObjectRef
from jobwarden.reconcile import Deletion, Observed, Plan, Policy, plan
from jobwarden.runs.jobs import observe_job
from jobwarden.safety.stale import StaleAction, StaleCandidate

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TEMPLATE = {
    "spec": {
        "template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "busybox"}]}
        }
    }
}


def _observed(
    *, status: dict[str, Any], annotations: dict[str, str], spec: dict[str, Any] | None = None
) -> Observed:
    return Observed(
        namespace="ns",
        name="nightly",
        uid="uid-1",
        generation=1,
        created=T0,
        annotations=annotations,
        spec={"runAt": "2099-01-01T00:00:00Z", "jobTemplate": TEMPLATE, **(spec or {})},
        status=status,
    )


def _plan(
    *,
    status: dict[str, Any],
    annotations: dict[str, str],
    spec: dict[str, Any] | None = None,
    bodies: tuple[dict[str, Any], ...] = (),
    now: datetime,
) -> Plan:
    """One reconcile of the schedule, seeing the Jobs ``bodies``, at ``now``."""
    return plan(
        obj=_observed(status=status, annotations=annotations, spec=spec),
        jobs=[observe_job(b) for b in bodies],
        pending=frozenset(),
        now=now,
        policy=Policy(),
    )


def _entry(result: Plan, job: str) -> dict[str, Any]:
    assert result.status is not None
    found: dict[str, Any] = next(e for e in result.status["history"] if e["job"] == job)
    return found


def _started_manual_run(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The status and Job body after a run-now started one run at T0."""
    first = _plan(status={}, annotations={labels.RUN_NOW_ANNOTATION: "a"}, spec=spec, now=T0)
    assert first.status is not None and len(first.starts) == 1
    body = copy.deepcopy(first.starts[0].body)
    return first.status, body, body["metadata"]["name"]


def _fail_on_deadline(body: dict[str, Any], *, at: datetime) -> None:
    body["status"] = {
        "startTime": T0.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
                "lastTransitionTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
    }


def _after_a_deadline_failure(
    *, seconds: int, stale_deadline: bool = True
) -> tuple[Plan, dict[str, Any], dict[str, Any]]:
    """A manual run (staleAfter 30s) the Job controller failed on a deadline ``seconds``
    in, as the reconcile a second later sees it: the plan, the Job, its history entry.

    Without ``stale_deadline`` the Job lacks the operator's stale-deadline mark, as a
    template's own ``activeDeadlineSeconds`` would leave it.
    """
    status, body, name = _started_manual_run({"staleAfter": "30s"})
    if not stale_deadline:
        body["metadata"]["annotations"].pop(labels.STALE_DEADLINE_ANNOTATION)
    _fail_on_deadline(body, at=T0 + timedelta(seconds=seconds))
    result = _plan(
        status=status,
        annotations={labels.RUN_NOW_ANNOTATION: "a"},
        spec={"staleAfter": "30s"},
        bodies=(body,),
        now=T0 + timedelta(seconds=seconds + 1),
    )
    return result, body, _entry(result, name)


def test_a_run_the_job_controller_stopped_at_the_threshold_reads_as_stale_terminated() -> None:
    result, body, entry = _after_a_deadline_failure(seconds=31)
    assert body["spec"]["activeDeadlineSeconds"] == 30
    assert result.status is not None
    assert (entry["result"], entry["reason"]) == ("Stale", "StaleTerminated")
    assert "activeDeadlineSeconds" in entry["message"]
    assert result.status["executions"]["stale"] == 1
    assert result.status["executions"]["failed"] == 0
    # The same Event and the same clean-up as when the operator stops it.
    assert [(n.type, n.reason) for n in result.notes] == [("Warning", "StaleTerminated")]
    assert result.deletes == [Deletion(body["metadata"]["name"], None, False, "StaleTerminated")]


def test_an_ordinary_deadline_failure_is_a_failure_and_its_job_is_kept() -> None:
    """A template's own tighter deadline is the user's, not the stale threshold."""
    result, _, entry = _after_a_deadline_failure(seconds=10, stale_deadline=False)
    assert (entry["result"], entry["reason"]) == ("Failed", "DeadlineExceeded")
    assert [n.reason for n in result.notes] == ["Failed"]
    assert result.deletes == []


@pytest.mark.parametrize(("grace", "forced"), [("0", True), ("5", False), ("", False)])
def test_only_a_zero_grace_terminate_clears_stuck_pods(grace: str, forced: bool) -> None:
    status, body, name = _started_manual_run({})
    annotations = {labels.RUN_NOW_ANNOTATION: "a", labels.TERMINATE_ANNOTATION: "stop"}
    if grace:
        annotations[labels.TERMINATE_GRACE_ANNOTATION] = grace
    result = _plan(
        status=status, annotations=annotations, bodies=(body,), now=T0 + timedelta(seconds=5)
    )
    assert result.force_stuck_pods is forced
    assert [(d.job, d.force_pods) for d in result.deletes] == [(name, forced)]


def test_a_zero_grace_terminate_with_nothing_running_still_clears_stuck_pods() -> None:
    """Pods an earlier graceful terminate left behind are what --force is for."""
    result = _plan(
        status={},
        annotations={labels.TERMINATE_ANNOTATION: "stop", labels.TERMINATE_GRACE_ANNOTATION: "0"},
        now=T0,
    )
    assert result.deletes == []
    assert result.force_stuck_pods is True


# --- the sweep over opt-in Jobs -----------------------------------------------------------


class _Scheduler:
    leading = True

    def __init__(self) -> None:
        self.touched: list[tuple[str, str]] = []

    def touch(self, key: tuple[str, str]) -> None:
        self.touched.append(key)


class _Kube:
    """Records the sweep's calls; the first delete can be made to fail."""

    def __init__(self, *, fail_first_delete: bool) -> None:
        self.fail_next = fail_first_delete
        self.deleted: list[str] = []
        self.events: list[tuple[ObjectRef, str]] = []

    async def delete_job(self, *, namespace: str, name: str, grace_seconds: int | None) -> bool:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("API server unavailable")
        self.deleted.append(name)
        return True

    async def post_event(
        self, *, regarding: ObjectRef, type_: str, reason: str, message: str
    ) -> None:
        self.events.append((regarding, reason))


def _sweep(kube: _Kube) -> Sweep:
    return Sweep(kube=kube, scheduler=_Scheduler(), interval=timedelta(seconds=2))  # type: ignore[arg-type]


def _opt_in(
    uid: str = "job-uid", *, start_time: datetime = T0, action: StaleAction = "Terminate"
) -> JobCandidate:
    """The opt-in Job ``backup``, stale 3 s after ``start_time``."""
    return JobCandidate(
        key=("ns", "backup", ""),
        start_time=start_time,
        threshold=timedelta(seconds=3),
        action=action,
        uid=uid,
    )


def test_a_failed_delete_of_an_opt_in_job_is_tried_again_next_sweep() -> None:
    """The failure stays with that Job: the pass ends normally, and the next one retries."""
    kube = _Kube(fail_first_delete=True)
    sweep = _sweep(kube)
    later = T0 + timedelta(seconds=10)
    assert asyncio.run(sweep.sweep_once([_opt_in()], now=later)) == 1
    assert kube.deleted == []
    assert asyncio.run(sweep.sweep_once([_opt_in()], now=later)) == 1
    assert kube.deleted == ["backup"]
    assert [(ref.uid, reason) for ref, reason in kube.events] == [("job-uid", "StaleTerminated")]


def test_a_reported_opt_in_job_is_reported_once_while_it_stays_due() -> None:
    kube = _Kube(fail_first_delete=False)
    sweep = _sweep(kube)
    report = _opt_in("u", action="Report")
    for seconds in (5, 7, 9):
        asyncio.run(sweep.sweep_once([report], now=T0 + timedelta(seconds=seconds)))
    assert [reason for _, reason in kube.events] == ["StaleReported"]
    assert kube.deleted == []


def test_the_sweep_forgets_jobs_that_are_no_longer_due() -> None:
    """A Job deleted and recreated under the same name is a new run: judged again."""
    kube = _Kube(fail_first_delete=False)
    sweep = _sweep(kube)
    later = T0 + timedelta(seconds=10)
    asyncio.run(sweep.sweep_once([_opt_in()], now=later))
    asyncio.run(sweep.sweep_once([], now=later))  # gone from the index
    fresh = _opt_in("new", start_time=later)
    asyncio.run(sweep.sweep_once([fresh], now=later + timedelta(seconds=5)))
    assert kube.deleted == ["backup", "backup"]


def test_a_plain_candidate_without_a_uid_still_works() -> None:
    kube = _Kube(fail_first_delete=False)
    plain = StaleCandidate(key=("ns", "backup", ""), start_time=T0, threshold=timedelta(seconds=3))
    asyncio.run(_sweep(kube).sweep_once([plain], now=T0 + timedelta(seconds=4)))
    assert [(ref.uid, reason) for ref, reason in kube.events] == [("", "StaleTerminated")]


def test_the_sweep_wakes_at_the_next_opt_in_deadline_only() -> None:
    """Opt-in Jobs have only the sweep, so it sleeps until the first of their
    deadlines; runs of schedules and Jobs already past theirs do not shorten it."""
    now = T0 + timedelta(seconds=10)

    def candidate(name: str, schedule: str, started: float) -> StaleCandidate:
        return StaleCandidate(
            key=("ns", name, schedule),
            start_time=T0 + timedelta(seconds=started),
            threshold=timedelta(seconds=5),
        )

    runs = [
        candidate("of-a-schedule", "nightly", 6),
        candidate("past", "", 1),
        candidate("next", "", 7),
        candidate("later", "", 9),
    ]
    assert Sweep.until_next_opt_in(runs, now=now) == 2.0
    assert Sweep.until_next_opt_in(runs[:2], now=now) == float("inf")
    unstarted = StaleCandidate(
        key=("ns", "pending", ""), start_time=None, threshold=timedelta(seconds=5)
    )
    assert Sweep.until_next_opt_in([unstarted], now=now) == float("inf")
