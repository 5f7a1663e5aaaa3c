"""Hostile tenants, part 2: templates, names, action annotations, opt-in Jobs, squatted
Job names, refused status writes and status written by the tenant.

Each case is an arena of its own (tests/support/hostile.py): a hostile and a
victim namespace, one operator watching both, and the checks every case makes
(victim on time, run-now within 10 s, no run created twice, operator healthy)
around the case's own report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobwarden.runs.naming import job_name
from tests.cluster._safety import STALE_AFTER_LABEL, TERMINATE, TERMINATE_GRACE, events, plain_job
from tests.support.hostile import (
    Arena,
    RecordProperty,
    arena,
    hostile_schedule,
    patch_status,
    spec_report,
    suspended_job,
    suspended_template,
    warning_event,
)
from tests.support.kube import Cluster, Timeout, holds, wait_for
from tests.support.schedules import (
    RUN_NOW,
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    TRIGGER_LABEL,
    annotate,
    history,
    job_template,
    rfc3339,
    seconds_ahead,
    status_of,
    utcnow,
)

# --- jobTemplate ----------------------------------------------------------------------------

DEEP = "__deep__"


def _nested(depth: int) -> str:
    """JSON objects nested ``depth`` levels (deeper than Python's own encoder goes)."""
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [300, 3000])
def test_deeply_nested_job_template(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty, depth: int
) -> None:
    """Nested JSON under a field the Job API does not know: pruned or refused at apply,
    or survived by the operator (the watch keeps decoding every namespace's events)."""
    with arena(cluster, f"deep-{depth}", tmp_path, record_property) as a:
        manifest = hostile_schedule("deep")
        manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["hostile"] = DEEP
        text = json.dumps(manifest).replace(json.dumps(DEEP), _nested(depth))
        applied = a.apply(manifest, text=text)
        a.prove(
            lambda: spec_report(
                cluster,
                a.hostile,
                "deep",
                applied,
                field_path="spec.jobTemplate",
                may_reconcile=True,
            )
        )


def test_huge_job_template(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """A template of ~1 MB whose pod annotations exceed what a Job may carry: refused at
    apply naming the template, or its run recorded Failed (JobRejected) with the API's
    message, once."""
    with arena(cluster, "huge-template", tmp_path, record_property) as a:
        template = suspended_template()
        pod = template["spec"]["template"]
        pod["metadata"]["annotations"]["hostile/blob"] = "x" * (300 * 1024)
        pod["spec"]["containers"][0]["env"] = [
            {"name": f"V{i}", "value": "y" * 100} for i in range(6000)
        ]
        applied = a.apply(
            hostile_schedule("huge", runAt=rfc3339(seconds_ahead(5)), jobTemplate=template)
        )

        def report() -> str:
            if not applied.accepted:
                return applied.names("spec.jobTemplate")
            # A create of ~1 MB on a loaded API server may take most of its call's budget.
            entry = _wait_history(a, "huge", lambda e: e.get("result") == "Failed", timeout=90)
            assert entry.get("reason") == "JobRejected", entry
            assert "annotations" in (entry.get("message") or ""), entry
            return f"run recorded Failed {entry.get('reason')}: {entry.get('message', '')[:200]}"

        a.prove(report)


GARBAGE: list[tuple[str, dict[str, Any], str]] = [
    (
        "containers-not-a-list",
        {"spec": {"template": {"spec": {"containers": "all of them", "restartPolicy": "Never"}}}},
        "spec.jobTemplate.spec.template.spec.containers",
    ),
    (
        "backoff-limit-words",
        {"spec": {"backoffLimit": "lots", "template": suspended_template()["spec"]["template"]}},
        "spec.jobTemplate.spec.backoffLimit",
    ),
    (
        "template-a-list",
        {"spec": {"template": [1, 2, 3]}},
        "spec.jobTemplate.spec.template",
    ),
]


@pytest.mark.parametrize(("case", "template", "field_path"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_job_template_refused_at_apply(
    cluster: Cluster,
    tmp_path: Path,
    record_property: RecordProperty,
    case: str,
    template: dict[str, Any],
    field_path: str,
) -> None:
    """A template that is no JobTemplateSpec is refused at apply, as a CronJob's would be."""
    with arena(cluster, case, tmp_path, record_property) as a:
        applied = a.apply(
            hostile_schedule("garbage", runAt=rfc3339(seconds_ahead(5)), jobTemplate=template)
        )
        a.prove(lambda: applied.names(field_path))


def test_template_spoofing_the_operators_labels(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """A template claiming the operator's own labels and annotations (another schedule,
    a Manual trigger, another time) gets a Job that says the truth."""
    with arena(cluster, "spoof", tmp_path, record_property) as a:
        template = suspended_template()
        template["metadata"]["labels"].update(
            {SCHEDULE_LABEL: "victim", TRIGGER_LABEL: "Manual", "jobwarden.io/scheduled-at": "0"}
        )
        template["metadata"]["annotations"] = {SCHEDULED_TIME_ANNOTATION: "1999-01-01T00:00:00Z"}
        due = seconds_ahead(5)
        a.apply(hostile_schedule("spoof", runAt=rfc3339(due), jobTemplate=template))

        def report() -> str:
            entry = _wait_history(a, "spoof", lambda e: bool(e.get("job")))
            [job] = [j for j in a.cluster.jobs(a.hostile) if j["metadata"]["name"] == entry["job"]]
            meta = job["metadata"]
            assert meta["labels"][SCHEDULE_LABEL] == "spoof", meta["labels"]
            assert meta["labels"][TRIGGER_LABEL] == "Schedule", meta["labels"]
            assert meta["annotations"][SCHEDULED_TIME_ANNOTATION] == rfc3339(due), meta
            return f"Job {entry['job']} labelled for its own schedule, trigger and time"

        a.prove(report)


def test_schedule_names_at_the_length_limit(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """Two 253-character names that differ only in the last character each get their
    own valid Job, recorded on their own schedule."""
    stem = ("a" * 60 + ".") * 4 + "b" * 8
    names = [stem + "c", stem + "d"]
    with arena(cluster, "long-names", tmp_path, record_property) as a:
        due = rfc3339(seconds_ahead(5))
        for name in names:
            a.apply(hostile_schedule(name, runAt=due))

        def report() -> str:
            jobs = [_wait_history(a, n, lambda e: bool(e.get("job")))["job"] for n in names]
            assert len(set(jobs)) == 2 and all(len(j) <= 63 for j in jobs), jobs
            return f"Jobs {jobs}"

        a.prove(report)


# --- action annotations ---------------------------------------------------------------------


def test_run_now_token_of_60_kib(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """A 60 KiB run-now token starts exactly one manual run, recorded in history."""
    with arena(cluster, "token-60k", tmp_path, record_property) as a:
        token = "t" * (60 * 1024)
        manifest = hostile_schedule("token", runAt="2099-01-01T00:00:00Z")
        manifest["metadata"]["annotations"] = {RUN_NOW: token}
        a.apply(manifest)

        def report() -> str:
            entry = _wait_history(a, "token", lambda e: e.get("trigger") == "Manual")
            return f"one manual run {entry.get('job')}"

        def still_one() -> str:
            manual = [
                j
                for j in a.cluster.jobs(a.hostile)
                if j["metadata"]["labels"].get(TRIGGER_LABEL) == "Manual"
            ]
            assert len(manual) == 1, [j["metadata"]["name"] for j in manual]
            return "still exactly one manual Job"

        a.prove(report, after=still_one)


@pytest.mark.parametrize("grace", ["-1", "1e99", "abc", "99999999999999999999999"])
def test_odd_terminate_grace_seconds(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty, grace: str
) -> None:
    """terminate with a grace period that is no valid number of seconds: a Warning Event
    naming the annotation, and the terminate still ends the run (the bad value ignored)."""
    with arena(cluster, f"grace-{grace[:8]}", tmp_path, record_property) as a:
        a.apply(
            hostile_schedule(
                "grace", runAt="2099-01-01T00:00:00Z", jobTemplate=job_template(run_seconds=None)
            )
        )
        annotate(a.cluster, a.hostile, "grace", RUN_NOW, "start")
        running = _wait_history(a, "grace", lambda e: e.get("result") == "Running")
        a.cluster.kubectl(
            "annotate", "-n", a.hostile, "--overwrite", "jobschedule/grace",
            f"{TERMINATE_GRACE}={grace}", f"{TERMINATE}=stop",
        )  # fmt: skip

        def report() -> str:
            event = warning_event(a.cluster, a.hostile, "grace", mentions="terminate-grace-seconds")
            ended = _wait_history(
                a,
                "grace",
                lambda e: e.get("job") == running["job"] and e.get("result") == "Terminated",
            )
            return f"{event}; run {ended['job']} Terminated"

        a.prove(report)


# --- opt-in Jobs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["99999999999999h", "9" * 62 + "d", "1.8e308h", "abc"],
    ids=["hours-overflow", "62-digits", "float-overflow", "words"],
)
def test_opt_in_job_with_a_bad_stale_after(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty, value: str
) -> None:
    """An opt-in Job with a stale-after no duration can hold: a Warning Event on that Job,
    which is left alone; the victim's opt-in Job (3 s) is still terminated by the sweep."""
    with arena(cluster, f"stale-label-{value[:6]}", tmp_path, record_property) as a:
        a.cluster.apply(plain_job("optin", labels={STALE_AFTER_LABEL: value}), namespace=a.hostile)
        a.cluster.apply(plain_job("optin", labels={STALE_AFTER_LABEL: "3s"}), namespace=a.victim)

        def report() -> str:
            event = warning_event(a.cluster, a.hostile, "optin", mentions="stale-after")
            assert [j for j in a.cluster.jobs(a.hostile) if j["metadata"]["name"] == "optin"], (
                "the hostile Job was deleted"
            )
            return event

        def victim_swept() -> str:
            found = wait_for(
                lambda: events(a.cluster, a.victim, "optin", reason="StaleTerminated"),
                timeout=30,
                what="the victim's opt-in Job terminated as stale",
            )
            return f"victim's opt-in Job: {found[0].get('message')}"

        a.prove(report, after=victim_swept)


# --- a squatted name, refused status writes, a status written by the tenant ------------------


def test_job_squatting_a_runs_name_is_reported_not_adopted(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """A Job not owned by the schedule holds the name its next run would get: the run is
    recorded Failed (NameTaken), and the squatter is neither adopted nor counted."""
    with arena(cluster, "squatter", tmp_path, record_property) as a:
        due = seconds_ahead(6)
        name = job_name(schedule="squatted", scheduled=due, trigger="Schedule")
        assert a.apply(suspended_job(name)).accepted
        a.apply(hostile_schedule("squatted", runAt=rfc3339(due)))

        def report() -> str:
            entry = _wait_history(a, "squatted", lambda e: e.get("result") == "Failed")
            assert entry.get("reason") == "NameTaken", entry
            [job] = [j for j in a.cluster.jobs(a.hostile) if j["metadata"]["name"] == name]
            assert not job["metadata"].get("ownerReferences"), "the squatter was adopted"
            status = status_of(a.cluster, a.hostile, "squatted")
            assert not status.get("active"), status.get("active")
            return f"Failed NameTaken: {entry.get('message')}"

        a.prove(report)


def test_job_with_the_schedules_labels_and_a_far_future_time_is_not_adopted(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """A tenant's Job with the schedule's labels (trigger Schedule, a scheduled time in
    2999) but no owner reference: not adopted as a lost run, so the cursor does not jump
    past the schedule's own runs, which still start; a Warning Event names the Job once."""
    with arena(cluster, "labelled", tmp_path, record_property) as a:
        squatter = suspended_job(
            "labelled-squat",
            labels={SCHEDULE_LABEL: "labelled", TRIGGER_LABEL: "Schedule",
                    "jobwarden.io/scheduled-at": "32503680000"},
            annotations={SCHEDULED_TIME_ANNOTATION: "2999-12-31T00:00:00Z"},
        )  # fmt: skip
        assert a.apply(squatter).accepted
        a.apply(hostile_schedule("labelled", runAt=rfc3339(seconds_ahead(6))))

        def report() -> str:
            event = warning_event(a.cluster, a.hostile, "labelled", mentions="labelled-squat")
            entry = _wait_history(
                a, "labelled", lambda e: e.get("trigger") == "Schedule" and e.get("job")
            )
            assert entry["job"] != "labelled-squat", entry
            status = status_of(a.cluster, a.hostile, "labelled")
            assert not str(status.get("lastScheduleTime", "")).startswith("2999"), status
            assert all(e.get("job") != "labelled-squat" for e in history(status))
            [job] = [
                j
                for j in a.cluster.jobs(a.hostile)
                if j["metadata"]["name"] == squatter["metadata"]["name"]
            ]
            assert not job["metadata"].get("ownerReferences"), "the squatter was adopted"
            foreign = [
                e for e in a.cluster.events(a.hostile, name="labelled")
                if e.get("reason") == "ForeignJob"
            ]  # fmt: skip
            assert sum(int(e.get("count") or 1) for e in foreign) == 1, foreign
            return f"{event}; own run {entry['job']} recorded"

        a.prove(report)


def test_refused_status_writes_never_create_a_run_twice(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """A ValidatingAdmissionPolicy bound to the hostile namespace refuses every status
    write. A one-time run with no finished Jobs kept is created exactly once and never
    again, its Job is not deleted while its fate is unrecorded, and the refusal is
    reported in a Warning Event."""
    with arena(cluster, "status-refused", tmp_path, record_property) as a:
        policy = f"hostile-freeze-{a.hostile}"
        a.cluster.apply(_freeze_policy(policy, a.hostile))
        try:
            _wait_status_frozen(a)
            a.apply(
                hostile_schedule(
                    "frozen",
                    runAt=rfc3339(seconds_ahead(4)),
                    successfulJobsHistoryLimit=0,
                    failedJobsHistoryLimit=0,
                    historyLimit=0,
                    jobTemplate=job_template(run_seconds=1),
                )
            )

            def report() -> str:
                return warning_event(a.cluster, a.hostile, "frozen", mentions="frozen")

            def once() -> str:
                recorder = a.recorders[a.hostile]
                wait_for(lambda: recorder.snapshot(), timeout=20, what="the run's Job")
                # A second create would come within a few reconciles.
                holds(lambda: len(recorder.snapshot()) <= 1, seconds=20, what="a single Job")
                names = recorder.names()
                assert len(names) == 1, f"{len(names)} Jobs created for one run: {names}"
                assert a.cluster.jobs(a.hostile), "its Job was deleted before its fate was recorded"
                return f"one Job ({names[0]}), kept"

            a.prove(report, after=once)
        finally:
            a.cluster.kubectl("delete", "validatingadmissionpolicybinding", policy, check=False)
            a.cluster.kubectl("delete", "validatingadmissionpolicy", policy, check=False)


@pytest.mark.parametrize(
    ("entries", "message_size"), [(1000, 1000), (5000, 10)], ids=["1000-fat", "5000"]
)
def test_status_flooded_by_the_tenant(
    cluster: Cluster,
    tmp_path: Path,
    record_property: RecordProperty,
    entries: int,
    message_size: int,
) -> None:
    """A tenant with status permission writes a history of thousands of entries (or
    megabytes): refused by the schema naming status.history, or read by the operator
    and trimmed to historyLimit at its next write."""
    with arena(cluster, f"status-{entries}", tmp_path, record_property) as a:
        a.apply(hostile_schedule("flooded", runAt="2099-01-01T00:00:00Z", historyLimit=5))
        wait_for(
            lambda: status_of(a.cluster, a.hostile, "flooded").get("phase"),
            timeout=30,
            what="a phase",
        )
        flood = [
            {"job": f"fake-{i}", "trigger": "Schedule", "result": "Succeeded",
             "scheduledTime": "2020-01-01T00:00:00Z", "message": "m" * message_size}
            for i in range(entries)
        ]  # fmt: skip
        patched = patch_status(a.cluster, a.hostile, "flooded", {"history": flood})
        annotate(a.cluster, a.hostile, "flooded", RUN_NOW, "after-flood")

        def report() -> str:
            entry = _wait_history(a, "flooded", lambda e: e.get("trigger") == "Manual")
            kept = history(status_of(a.cluster, a.hostile, "flooded"))
            assert len(kept) <= 5, f"history holds {len(kept)} entries, limit 5"
            prefix = "" if patched.accepted else patched.names("status.history") + "; "
            return f"{prefix}manual run {entry['job']} recorded, history {len(kept)} entries"

        a.prove(report)


def test_job_forged_as_owned_by_the_schedule(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """The tenant creates a Job owned by its schedule, with the operator's labels and
    garbage in the scheduled-time annotation and label: the schedule still runs and
    records its own run, and the operator survives reading the forgery."""
    with arena(cluster, "forged", tmp_path, record_property) as a:
        a.apply(hostile_schedule("forged", runAt=rfc3339(seconds_ahead(6))))
        uid = wait_for(
            lambda: a.cluster.schedule(a.hostile, "forged")["metadata"]["uid"], timeout=10
        )
        owner = {
            "apiVersion": "jobwarden.io/v1alpha1",
            "kind": "JobSchedule",
            "name": "forged",
            "uid": uid,
            "controller": True,
        }
        forged = suspended_job(
            "forged-x-not-a-run",
            labels={
                SCHEDULE_LABEL: "forged",
                TRIGGER_LABEL: "Schedule",
                "jobwarden.io/scheduled-at": "garbage",
            },
            annotations={SCHEDULED_TIME_ANNOTATION: "not a time at all"},
            ownerReferences=[owner],
        )
        assert a.apply(forged).accepted

        def report() -> str:
            entry = _wait_history(
                a,
                "forged",
                lambda e: e.get("trigger") == "Schedule" and e.get("job") != "forged-x-not-a-run",
            )
            return f"own run {entry.get('job')} recorded"

        a.prove(report)


def test_schedule_held_in_deletion_by_a_finalizer(
    cluster: Cluster, tmp_path: Path, record_property: RecordProperty
) -> None:
    """A schedule deleted while a tenant's finalizer holds it starts no run any more."""
    with arena(cluster, "finalizer", tmp_path, record_property) as a:
        due = seconds_ahead(8)
        manifest = hostile_schedule("held", runAt=rfc3339(due))
        manifest["metadata"]["finalizers"] = ["hostile.example/hold"]
        a.apply(manifest)
        try:
            wait_for(
                lambda: status_of(a.cluster, a.hostile, "held").get("phase"),
                timeout=20,
                what="a phase",
            )
            a.cluster.kubectl("delete", "jobschedule", "held", "-n", a.hostile, "--wait=false")

            def report() -> str:
                holds(
                    lambda: not a.recorders[a.hostile].names(),
                    seconds=max(1.0, (due - utcnow()).total_seconds() + 8),
                    what="no run started while deleting",
                )
                return "no run started while deleting"

            a.prove(report)
        finally:
            a.cluster.kubectl(
                "patch", "jobschedule", "held", "-n", a.hostile, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False,
            )  # fmt: skip


# --- helpers ----------------------------------------------------------------------------------


def _wait_history(a: Arena, name: str, match: Any, timeout: float = 30) -> dict[str, Any]:
    last: list[dict[str, Any]] = []

    def found() -> dict[str, Any] | None:
        nonlocal last
        last = history(status_of(a.cluster, a.hostile, name))
        return next((e for e in last if match(e)), None)

    try:
        return wait_for(found, timeout=timeout, interval=0.5, what=f"{name}: a history entry")
    except Timeout as exc:
        status = status_of(a.cluster, a.hostile, name)
        raise AssertionError(
            f"{name}: no such history entry ({exc}); history {last[:5]}; "
            f"conditions {status.get('conditions')}; phase {status.get('phase')}"
        ) from None


def _freeze_policy(name: str, namespace: str) -> dict[str, Any]:
    """A policy refusing every JobSchedule status write, bound to ``namespace`` only."""
    rule = {
        "apiGroups": ["jobwarden.io"],
        "apiVersions": ["*"],
        "operations": ["UPDATE"],
        "resources": ["jobschedules/status"],
    }
    only_there = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    group = "admissionregistration.k8s.io/v1"
    policy = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [rule]},
        "validations": [{"expression": "false", "message": "status writes are frozen here"}],
    }
    binding = {
        "policyName": name,
        "validationActions": ["Deny"],
        "matchResources": {"namespaceSelector": only_there},
    }
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": group, "kind": kind, "metadata": {"name": name}, "spec": spec}
            for kind, spec in (
                ("ValidatingAdmissionPolicy", policy),
                ("ValidatingAdmissionPolicyBinding", binding),
            )
        ],
    }


def _wait_status_frozen(a: Arena) -> None:
    """The policy is in force once a server-side dry run of a status write is refused."""
    a.apply(hostile_schedule("probe", runAt="2099-01-01T00:00:00Z"))

    def refused() -> bool:
        out = a.cluster.kubectl(
            "patch", "jobschedule", "probe", "-n", a.hostile, "--subresource=status",
            "--type=merge", "-p", '{"status":{"phase":"Active"}}', "--dry-run=server", check=False,
        )  # fmt: skip
        return out.returncode != 0 and "frozen" in out.stderr

    wait_for(refused, timeout=30, interval=0.5, what="the status freeze in force")
