"""The Job a run becomes, and reading a Job body back."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwarden.labels import (
    SCHEDULE_LABEL,
    SCHEDULED_AT_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    SCHEDULED_TIME_ENV,
    STALE_DEADLINE_ANNOTATION,
    TRIGGER_LABEL,
)
from jobwarden.runs.context import RunContext
from jobwarden.runs.jobs import JobObservation, build_job, observe_job

T0 = datetime(2024, 3, 31, 1, 30, tzinfo=UTC)


def template() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "ignored",
            "namespace": "elsewhere",
            "labels": {"team": "data"},
            "annotations": {"owner": "ops"},
        },
        "spec": {
            "backoffLimit": 2,
            "template": {
                "metadata": {"labels": {"app": "etl"}},
                "spec": {
                    "restartPolicy": "Never",
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox",
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": SCHEDULED_TIME_ENV, "value": "stale"},
                            ],
                        },
                        {"name": "side", "image": "busybox"},
                    ],
                },
            },
        },
    }


def build(
    *,
    scheduled: datetime = T0,
    previous: datetime | None = None,
    trigger: str = "Schedule",
    **overrides: Any,
) -> dict[str, Any]:
    args: dict[str, Any] = {
        "schedule_name": "nightly",
        "schedule_uid": "uid-1",
        "namespace": "team-a",
        "job_template": template(),
        "context": RunContext(
            schedule="nightly", scheduled=scheduled, trigger=trigger, previous=previous
        ),
        "name": "nightly-28530810",
        "stale_after_seconds": 3600,
        **overrides,
    }
    return build_job(**args)


def test_metadata() -> None:
    job = build()
    meta = job["metadata"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert meta["name"] == "nightly-28530810"
    assert meta["namespace"] == "team-a"
    assert meta["labels"] == {
        "team": "data",
        SCHEDULE_LABEL: "nightly",
        TRIGGER_LABEL: "Schedule",
        SCHEDULED_AT_LABEL: str(int(T0.timestamp())),
    }
    assert meta["annotations"][SCHEDULED_TIME_ANNOTATION] == "2024-03-31T01:30:00Z"
    assert meta["annotations"]["owner"] == "ops"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "jobwarden.io/v1alpha1",
            "kind": "JobSchedule",
            "name": "nightly",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_env_in_every_container_replacing_ours() -> None:
    pod = build(previous=T0 - timedelta(days=1))["spec"]["template"]["spec"]
    expected = [
        {"name": "JOBWARDEN_SCHEDULE", "value": "nightly"},
        {"name": SCHEDULED_TIME_ENV, "value": "2024-03-31T01:30:00Z"},
        {"name": "JOBWARDEN_PREVIOUS_SCHEDULED_TIME", "value": "2024-03-30T01:30:00Z"},
        {"name": "JOBWARDEN_TRIGGER", "value": "Schedule"},
        {"name": "JOBWARDEN_UPSTREAM_JOB", "value": ""},
        {"name": "JOBWARDEN_UPSTREAM_RESULT", "value": ""},
        {"name": "JOBWARDEN_UPSTREAM_SCHEDULED_TIME", "value": ""},
    ]
    for container in pod["containers"] + pod["initContainers"]:
        ours = [e for e in container["env"] if e["name"].startswith("JOBWARDEN_")]
        assert ours == expected, container["name"]
    # Ours first, so the template's entries may refer to them as $(NAME); theirs kept in order.
    assert pod["containers"][0]["env"] == [*expected, {"name": "A", "value": "1"}]


def test_first_run_has_an_empty_previous_time() -> None:
    pod = build()["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][1]["env"]}
    assert env["JOBWARDEN_PREVIOUS_SCHEDULED_TIME"] == ""


def test_pod_labels_and_spec_kept() -> None:
    spec = build()["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["template"]["metadata"]["labels"] == {"app": "etl", SCHEDULE_LABEL: "nightly"}
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_template_is_not_mutated() -> None:
    original = template()
    pristine = copy.deepcopy(original)
    job = build(job_template=original)
    assert original == pristine
    job["spec"]["template"]["spec"]["containers"][0]["env"].clear()
    assert original == pristine


@pytest.mark.parametrize(
    ("template_deadline", "stale", "expected", "annotated"),
    [
        (None, 3600, 3600, True),
        (7200, 3600, 3600, True),
        (600, 3600, 600, False),
        (3600, 3600, 3600, False),
        (600, None, 600, False),
        (None, None, None, False),
    ],
)
def test_active_deadline(
    template_deadline: int | None, stale: int | None, expected: int | None, annotated: bool
) -> None:
    tpl = template()
    if template_deadline is not None:
        tpl["spec"]["activeDeadlineSeconds"] = template_deadline
    job = build(job_template=tpl, stale_after_seconds=stale)
    assert job["spec"].get("activeDeadlineSeconds") == expected
    assert (STALE_DEADLINE_ANNOTATION in job["metadata"]["annotations"]) is annotated


def test_minimal_template() -> None:
    job = build(job_template={"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}})
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert SCHEDULED_TIME_ENV in [e["name"] for e in env]
    assert job["metadata"]["labels"][SCHEDULE_LABEL] == "nightly"


def test_long_schedule_name_label_is_a_valid_value() -> None:
    long_name = "a" * 200
    job = build(schedule_name=long_name)
    value = job["metadata"]["labels"][SCHEDULE_LABEL]
    assert len(value) <= 63
    assert job["metadata"]["ownerReferences"][0]["name"] == long_name


@settings(max_examples=50)
@given(
    ns=st.sampled_from(["a", "b", "kube-system"]),
    template_ns=st.one_of(st.none(), st.text(max_size=10)),
    offset_minutes=st.integers(min_value=0, max_value=10**7),
)
def test_namespace_is_always_the_schedule_s(
    ns: str, template_ns: str | None, offset_minutes: int
) -> None:
    tpl = template()
    tpl["metadata"]["namespace"] = template_ns
    job = build(namespace=ns, job_template=tpl, scheduled=T0 + timedelta(minutes=offset_minutes))
    assert job["metadata"]["namespace"] == ns


# --- observe_job -----------------------------------------------------------------------------


def job_body(status: dict[str, Any], **annotations: str) -> dict[str, Any]:
    body = build()
    body["metadata"]["annotations"].update(annotations)
    body["status"] = status
    return body


def test_observe_running() -> None:
    obs = observe_job(job_body({"startTime": "2024-03-31T01:30:05Z", "active": 1}))
    assert obs == JobObservation(
        name="nightly-28530810",
        namespace="team-a",
        schedule="nightly",
        trigger="Schedule",
        scheduled_time=T0,
        start_time=T0 + timedelta(seconds=5),
        finish_time=None,
        result="Running",
        reason=None,
        message=None,
        active=1,
        stale_deadline=False,
        owner_uid="uid-1",
    )
    assert not obs.finished and obs.duration_seconds is None


# Labels, annotations and timestamps on a Job can be written by anyone who may edit it.
# (case, status, annotations, labels, the scheduled time read): 1711848600 is T0.
HOSTILE_TIMES: list[tuple[str, dict[str, Any], dict[str, str], dict[str, str], datetime | None]] = [
    ("scheduled-time at the end of the calendar", {},
     {SCHEDULED_TIME_ANNOTATION: "9999-12-31T23:59:59-05:00"},
     {SCHEDULED_AT_LABEL: "1711848600"}, T0),
    ("scheduled-time at the start of the calendar", {},
     {SCHEDULED_TIME_ANNOTATION: "0001-01-01T00:00:00+05:00"},
     {SCHEDULED_AT_LABEL: "1711848600"}, T0),
    ("epoch label past any calendar", {},
     {SCHEDULED_TIME_ANNOTATION: "garbage"}, {SCHEDULED_AT_LABEL: "9" * 60}, None),
    ("epoch label in other digits", {},
     {SCHEDULED_TIME_ANNOTATION: "garbage"}, {SCHEDULED_AT_LABEL: "\u0661\u0662"}, None),
    ("startTime overflowing", {"startTime": "9999-12-31T23:59:59-01:00"}, {}, {}, T0),
    ("completionTime overflowing",
     {"completionTime": "0001-01-01T00:00:00+01:00",
      "conditions": [{"type": "Complete", "status": "True",
                      "lastTransitionTime": "9999-12-31T23:59:59-01:00"}]}, {}, {}, T0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "status", "annotations", "label_values", "scheduled"),
    HOSTILE_TIMES,
    ids=[c[0] for c in HOSTILE_TIMES],
)
def test_observe_ignores_times_past_the_calendar(
    case: str,
    status: dict[str, Any],
    annotations: dict[str, str],
    label_values: dict[str, str],
    scheduled: datetime | None,
) -> None:
    body = job_body(status, **annotations)
    body["metadata"]["labels"].update(label_values)
    obs = observe_job(body)
    assert (obs.scheduled_time, obs.start_time, obs.finish_time) == (scheduled, None, None)


def test_observe_succeeded() -> None:
    obs = observe_job(
        job_body(
            {
                "startTime": "2024-03-31T01:30:00Z",
                "completionTime": "2024-03-31T01:31:30Z",
                "succeeded": 1,
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True"},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached"},
                ],
            }
        )
    )
    assert obs.result == "Succeeded" and obs.finished
    assert obs.finish_time == T0 + timedelta(seconds=90)
    assert obs.duration_seconds == 90.0
    assert obs.reason == "CompletionsReached"


@pytest.mark.parametrize(
    ("reason", "annotated", "stale"),
    [
        ("BackoffLimitExceeded", True, False),
        ("DeadlineExceeded", True, True),
        ("DeadlineExceeded", False, False),
    ],
)
def test_observe_failed(reason: str, annotated: bool, stale: bool) -> None:
    body = job_body(
        {
            "startTime": "2024-03-31T01:30:00Z",
            "failed": 3,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": reason},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": reason,
                    "message": "Job has reached the specified backoff limit",
                    "lastTransitionTime": "2024-03-31T02:00:00Z",
                },
            ],
        }
    )
    if not annotated:
        del body["metadata"]["annotations"][STALE_DEADLINE_ANNOTATION]
    obs = observe_job(body)
    assert obs.result == "Failed"
    assert obs.finish_time == datetime(2024, 3, 31, 2, 0, tzinfo=UTC)
    assert obs.reason == reason and obs.message and "backoff" in obs.message
    assert obs.stale_deadline is stale


def test_observe_failure_target_is_still_running() -> None:
    obs = observe_job(
        job_body({"conditions": [{"type": "FailureTarget", "status": "True", "reason": "X"}]})
    )
    assert obs.result == "Running" and obs.reason == "X"


def test_observe_false_conditions_are_ignored() -> None:
    obs = observe_job(job_body({"conditions": [{"type": "Complete", "status": "False"}]}))
    assert obs.result == "Running"


def test_observe_snake_case_body_from_client_to_dict() -> None:
    body = {
        "metadata": {
            "name": "j",
            "namespace": "n",
            "labels": {TRIGGER_LABEL: "Manual", SCHEDULED_AT_LABEL: "1711848600"},
            "owner_references": [
                {"api_version": "jobwarden.io/v1alpha1", "kind": "JobSchedule", "name": "s"}
            ],
        },
        "status": {
            "start_time": datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
            "completion_time": datetime(2024, 3, 31, 1, 31, tzinfo=UTC),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    obs = observe_job(body)
    assert obs.schedule == "s" and obs.trigger == "Manual"
    assert obs.scheduled_time == T0
    assert obs.result == "Succeeded" and obs.duration_seconds == 60.0


def test_observe_foreign_job_without_our_metadata() -> None:
    obs = observe_job({"metadata": {"name": "other", "namespace": "n"}})
    assert obs.schedule is None and obs.trigger is None and obs.scheduled_time is None
    assert obs.result == "Running" and obs.active == 0


def test_observe_survives_garbage() -> None:
    obs = observe_job(
        {
            "metadata": {"name": "x", "annotations": {SCHEDULED_TIME_ANNOTATION: "not a time"}},
            "status": {"startTime": 12, "conditions": [None, "x", {"type": "Failed"}]},
        }
    )
    assert obs.scheduled_time is None and obs.start_time is None and obs.result == "Running"


def test_build_then_observe_round_trip() -> None:
    obs = observe_job(build(trigger="CatchUp"))
    assert (obs.schedule, obs.trigger, obs.scheduled_time) == ("nightly", "CatchUp", T0)


@pytest.mark.parametrize(
    ("refs", "schedule", "uid"),
    [
        (None, "nightly", None),
        ([], "nightly", None),
        ("not a list", "nightly", None),
        ([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "x", "uid": "u"}], "nightly", None),
        ([{"apiVersion": "jobwarden.io/v1alpha1", "kind": "JobSchedule", "name": "other"}],
         "other", None),
        ([{"apiVersion": "jobwarden.io/v1alpha1", "kind": "JobSchedule", "name": "nightly",
           "uid": "uid-9"}], "nightly", "uid-9"),
    ],
)  # fmt: skip
def test_observe_owner_uid(refs: Any, schedule: str, uid: str | None) -> None:
    body = job_body({})
    if refs is None:
        del body["metadata"]["ownerReferences"]
    else:
        body["metadata"]["ownerReferences"] = refs
    obs = observe_job(body)
    assert (obs.schedule, obs.owner_uid) == (schedule, uid)
