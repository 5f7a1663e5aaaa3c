"""The bad-input matrix: invalid or hostile JobSchedules and what each one gets.

Every case has exactly one expected outcome:

* ``reject``: the API server refuses ``kubectl apply`` with a message naming the field;
* ``invalid``: accepted, then ``Valid=False`` naming the field, phase ``Invalid``,
  a Warning Event and no Jobs;
* a named check for inputs that are accepted on purpose (hostile but harmless).

All cases share one operator and one namespace, and at the end the operator is
still running and a valid schedule applied alongside still runs on time: bad
input never costs other schedules anything.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import condition, history, status_of

pytestmark = pytest.mark.xdist_group("bad-input")


def _template(**pod_annotations: str) -> dict[str, Any]:
    return {
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "annotations": {"jobwarden.test/run-seconds": "1s", **pod_annotations}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                },
            },
        }
    }


def _soon(seconds: int = 4) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _every(**fields: Any) -> dict[str, Any]:
    return {"every": fields}


# (case id, spec fields replacing the valid base "schedule: '*/5 * * * *'", field the error names)
REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("cron-four-fields", {"schedule": "* * * *"}, "spec.schedule"),
    ("cron-six-fields", {"schedule": "0 0 * * * *"}, "spec.schedule"),
    ("cron-empty", {"schedule": ""}, "spec.schedule"),
    ("cron-words", {"schedule": "every day at noon"}, "spec.schedule"),
    ("macro-unknown", {"schedule": "@fortnightly"}, "spec.schedule"),
    ("macro-every", {"schedule": "@every 5m"}, "spec.schedule"),
    ("schedule-and-runat", {"runAt": "2030-01-01T00:00:00Z"}, "spec"),
    ("schedule-and-every", {"every": {"period": "Day"}}, "spec"),
    ("no-schedule-at-all", {"schedule": None}, "spec"),
    ("runat-not-a-date", {"schedule": None, "runAt": "next tuesday"}, "spec.runAt"),
    (
        "month-days-zero",
        {"schedule": None, **_every(period="Month", monthDays=[0])},
        "spec.every.monthDays",
    ),
    (
        "month-days-32",
        {"schedule": None, **_every(period="Month", monthDays=[32])},
        "spec.every.monthDays",
    ),
    ("month-without-days", {"schedule": None, **_every(period="Month")}, "spec.every"),
    ("weekdays-on-day", {"schedule": None, **_every(period="Day", weekdays=["Mon"])}, "spec.every"),
    ("week-without-weekdays", {"schedule": None, **_every(period="Week")}, "spec.every"),
    (
        "weekday-unknown",
        {"schedule": None, **_every(period="Week", weekdays=["Funday"])},
        "spec.every.weekdays",
    ),
    ("period-unknown", {"schedule": None, **_every(period="Fortnight")}, "spec.every.period"),
    (
        "interval-zero",
        {"schedule": None, **_every(period="Day", interval=0)},
        "spec.every.interval",
    ),
    (
        "interval-negative",
        {"schedule": None, **_every(period="Day", interval=-3)},
        "spec.every.interval",
    ),
    ("time-25h", {"schedule": None, **_every(period="Day", times=["25:00"])}, "spec.every.times"),
    (
        "time-no-colon",
        {"schedule": None, **_every(period="Day", times=["0900"])},
        "spec.every.times",
    ),
    (
        "end-before-start",
        {"startAt": "2030-01-02T00:00:00Z", "endAt": "2030-01-01T00:00:00Z"},
        "spec.endAt",
    ),
    ("max-executions-huge", {"maxExecutions": 10**12}, "spec.maxExecutions"),
    ("max-executions-zero", {"maxExecutions": 0}, "spec.maxExecutions"),
    (
        "successful-limit-negative",
        {"successfulJobsHistoryLimit": -1},
        "spec.successfulJobsHistoryLimit",
    ),
    ("failed-limit-negative", {"failedJobsHistoryLimit": -5}, "spec.failedJobsHistoryLimit"),
    ("history-limit-10000", {"historyLimit": 10000}, "spec.historyLimit"),
    ("stale-after-words", {"staleAfter": "6 hours"}, "spec.staleAfter"),
    ("stale-after-negative", {"staleAfter": "-5m"}, "spec.staleAfter"),
    ("jitter-negative", {"jitterSeconds": -1}, "spec.jitterSeconds"),
    ("deadline-negative", {"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds"),
    ("concurrency-unknown", {"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy"),
    ("catch-up-unknown", {"catchUp": "Maybe"}, "spec.catchUp"),
    ("stale-action-unknown", {"staleAction": "Explode"}, "spec.staleAction"),
    ("suspend-string", {"suspend": "yes"}, "spec.suspend"),
    ("exclude-not-a-date", {"exclude": ["2026-13-45x"]}, "spec.exclude"),
    ("timezone-garbage", {"timeZone": "../../etc/passwd"}, "spec.timeZone"),
    ("job-template-missing", {"jobTemplate": None}, "spec.jobTemplate"),
]

# Accepted by the schema, judged invalid by the operator: (case id, spec fields, field named).
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("cron-minute-61", {"schedule": "61 * * * *"}, "spec.schedule"),
    ("cron-hour-25", {"schedule": "0 25 * * *"}, "spec.schedule"),
    ("cron-five-words", {"schedule": "run it every day please"}, "spec.schedule"),
    ("cron-h-step-zero", {"schedule": "H/0 * * * *"}, "spec.schedule"),
    ("cron-h-range-backwards", {"schedule": "H(50-10) * * * *"}, "spec.schedule"),
    ("cron-february-30", {"schedule": "0 0 30 2 *"}, "spec.schedule"),
    ("timezone-unknown", {"timeZone": "Mars/Olympus_Mons"}, "spec.timeZone"),
    ("exclude-february-30", {"exclude": ["2027-02-30"]}, "spec.exclude"),
    ("stale-after-zero", {"staleAfter": "0s"}, "spec.staleAfter"),
]


def _base(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "jobwarden.io/v1alpha1",
        "kind": "JobSchedule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": _template()},
    }


def _with(manifest: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(manifest)
    for key, value in fields.items():
        if value is None:
            result["spec"].pop(key, None)
        else:
            result["spec"][key] = value
    return result


@pytest.fixture(scope="module")
def matrix_ns(cluster: Cluster) -> Iterator[str]:
    name = f"t-bad-input-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def matrix_operator(
    cluster: Cluster, matrix_ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = Path(tmp_path_factory.mktemp("bad-input")) / "operator.log"
    proc = OperatorProcess(cluster=cluster, namespaces=[matrix_ns], log_path=log)
    proc.start()
    yield proc
    proc.stop()


@pytest.mark.parametrize(("case", "fields", "field"), REJECTED, ids=[c[0] for c in REJECTED])
def test_rejected_at_apply_naming_the_field(
    cluster: Cluster, matrix_ns: str, case: str, fields: dict[str, Any], field: str
) -> None:
    manifest = _with(_base(f"bad-{case}", matrix_ns), fields)
    result = cluster.apply(manifest, check=False)
    assert result.returncode != 0, f"{case} was accepted: {result.stdout}"
    assert field in result.stderr, f"{case}: error does not name {field}: {result.stderr}"
    assert (
        cluster.kubectl(
            "get", "jobschedule", f"bad-{case}", "-n", matrix_ns, check=False
        ).returncode
        != 0
    )


@pytest.mark.parametrize(("case", "fields", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_operator_marks_invalid_naming_the_field(
    cluster: Cluster,
    matrix_ns: str,
    matrix_operator: OperatorProcess,
    case: str,
    fields: dict[str, Any],
    field: str,
) -> None:
    name = f"inv-{case}"
    cluster.apply(_with(_base(name, matrix_ns), fields))
    cond = wait_for(
        lambda: (
            (c := condition(status_of(cluster, matrix_ns, name), "Valid"))
            and c["status"] == "False"
            and c
        ),
        timeout=30,
        what=f"{name} Valid=False",
    )
    assert field in cond["message"], cond
    assert cluster.schedule(matrix_ns, name)["status"]["phase"] == "Invalid"
    wait_for(
        lambda: any(
            e["reason"] == "InvalidSpec" and e["type"] == "Warning"
            for e in cluster.events(matrix_ns, name=name)
        ),
        timeout=30,
        what=f"{name} InvalidSpec event",
    )
    assert not cluster.jobs(matrix_ns, f"jobwarden.io/schedule={name}")


def test_run_at_in_the_past_completes_without_running(
    cluster: Cluster, matrix_ns: str, matrix_operator: OperatorProcess
) -> None:
    """Decision: a runAt already past when the schedule is created never runs; it is Completed."""
    manifest = _with(
        _base("past-run-at", matrix_ns), {"schedule": None, "runAt": "2020-01-01T00:00:00Z"}
    )
    cluster.apply(manifest)
    wait_for(
        lambda: status_of(cluster, matrix_ns, "past-run-at").get("phase") == "Completed",
        timeout=30,
        what="past runAt Completed",
    )
    assert not cluster.jobs(matrix_ns, "jobwarden.io/schedule=past-run-at")


def test_job_template_the_job_api_rejects_surfaces_its_message(
    cluster: Cluster, matrix_ns: str, matrix_operator: OperatorProcess
) -> None:
    template = _template()
    template["spec"]["template"]["spec"]["restartPolicy"] = "Always"  # not allowed for Jobs
    cluster.apply(
        _with(
            _base("rejected-template", matrix_ns),
            {"schedule": None, "runAt": _soon(), "jobTemplate": template},
        )
    )
    entry = wait_for(
        lambda: next(
            (
                h
                for h in history(status_of(cluster, matrix_ns, "rejected-template"))
                if h["result"] == "Failed"
            ),
            None,
        ),
        timeout=40,
        what="rejected run recorded Failed",
    )
    assert entry["reason"] == "JobRejected"
    assert "restartPolicy" in entry["message"]
    wait_for(
        lambda: any(
            e["reason"] == "JobRejected" and "restartPolicy" in e["message"]
            for e in cluster.events(matrix_ns, name="rejected-template")
        ),
        timeout=30,
        what="JobRejected event with the API's message",
    )
    assert not cluster.jobs(matrix_ns, "jobwarden.io/schedule=rejected-template")


def test_template_naming_another_namespace_stays_in_its_own(
    cluster: Cluster, matrix_ns: str, matrix_operator: OperatorProcess
) -> None:
    template = _template()
    template["metadata"] = {"namespace": "kube-system", "labels": {"team": "x"}}
    cluster.apply(
        _with(
            _base("other-ns", matrix_ns),
            {"schedule": None, "runAt": _soon(), "jobTemplate": template},
        )
    )
    jobs = wait_for(
        lambda: cluster.jobs(matrix_ns, "jobwarden.io/schedule=other-ns"),
        timeout=40,
        what="Job in the schedule's own namespace",
    )
    assert [j["metadata"]["namespace"] for j in jobs] == [matrix_ns]
    assert not cluster.jobs("kube-system", "jobwarden.io/schedule=other-ns")


@pytest.mark.parametrize(
    "token",
    ["\U0001f4a5 \t garbage \n", "x" * 5000, "'; DROP TABLE --"],
    ids=["unicode", "long", "quote"],
)
def test_garbage_run_now_tokens_run_once(
    cluster: Cluster, matrix_ns: str, matrix_operator: OperatorProcess, token: str
) -> None:
    name = f"garbage-token-{len(token)}"
    manifest = _with(_base(name, matrix_ns), {"schedule": None, "runAt": "2099-01-01T00:00:00Z"})
    manifest["metadata"]["annotations"] = {
        "jobwarden.io/run-now": token,
        "jobwarden.io/terminate-grace-seconds": "not-a-number",
    }
    cluster.apply(manifest)
    wait_for(
        lambda: len(cluster.jobs(matrix_ns, f"jobwarden.io/schedule={name}")) == 1,
        timeout=30,
        what="one manual run",
    )
    wait_for(
        lambda: any(
            h["trigger"] == "Manual" and h["result"] == "Succeeded"
            for h in history(status_of(cluster, matrix_ns, name))
        ),
        timeout=30,
        what="manual run succeeded",
    )
    assert len(cluster.jobs(matrix_ns, f"jobwarden.io/schedule={name}")) == 1


def test_253_character_name_gets_valid_job_names(
    cluster: Cluster, matrix_ns: str, matrix_operator: OperatorProcess
) -> None:
    name = ("a" * 60 + ".") * 4 + "b" * 8
    assert len(name) == 252
    name += "c"
    cluster.apply(_with(_base(name, matrix_ns), {"schedule": None, "runAt": _soon()}))
    job = wait_for(
        lambda: next(
            (
                j
                for j in cluster.jobs(matrix_ns)
                if j["metadata"]["ownerReferences"][0]["name"] == name
            ),
            None,
        ),
        timeout=40,
        what="a Job for the 253-character schedule",
    )
    assert len(job["metadata"]["name"]) <= 63
    wait_for(
        lambda: any(
            h["result"] == "Succeeded" for h in history(status_of(cluster, matrix_ns, name))
        ),
        timeout=30,
        what="its run recorded in history",
    )


def test_runs_only_on_excluded_dates_never_fire(
    cluster: Cluster, matrix_ns: str, matrix_operator: OperatorProcess
) -> None:
    run_at = datetime(2031, 3, 14, 12, 0, tzinfo=UTC)
    cluster.apply(
        _with(
            _base("all-excluded", matrix_ns),
            {
                "schedule": None,
                "runAt": run_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "exclude": ["2031-03-14"],
            },
        )
    )
    wait_for(
        lambda: status_of(cluster, matrix_ns, "all-excluded").get("phase") == "Completed",
        timeout=30,
        what="nothing left to run: Completed",
    )
    assert "nextRunTime" not in cluster.schedule(matrix_ns, "all-excluded")["status"]


def test_after_the_matrix_a_valid_schedule_runs_on_time(
    cluster: Cluster, matrix_ns: str, matrix_operator: OperatorProcess
) -> None:
    """Last in this module: everything above is already applied alongside it."""
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    cluster.apply(
        _with(
            _base("valid-neighbour", matrix_ns),
            {"schedule": None, "runAt": due.strftime("%Y-%m-%dT%H:%M:%SZ")},
        )
    )
    job = wait_for(
        lambda: next(iter(cluster.jobs(matrix_ns, "jobwarden.io/schedule=valid-neighbour")), None),
        timeout=30,
        what="the valid neighbour's Job",
    )
    created = datetime.fromisoformat(job["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert due <= created + timedelta(seconds=1) and created - due < timedelta(seconds=3)
    assert matrix_operator.healthy()
