"""The hostile-tenant arena: one tenant attacks, another must not notice.

Each case gets two namespaces of its own, ``hostile`` and ``victim``, and one
operator watching both. The case puts its hostile object or fault in place;
then :meth:`Arena.prove` checks what the issue demands of every case:

* the victim's one-time run, due a few seconds ahead, starts on time;
* a run-now on the victim starts within 10 s;
* the hostile object gets its clear report (the case's own check);
* no run is created twice: the API server accepted each Job name once
  (audit log), and no schedule got two Jobs for one scheduled time;
* the operator is still running and healthy.

Every check is run and recorded even when an earlier one failed, so a
failing case says everything that went wrong at once, and the findings are
attached to the test report (``record_property("findings")``).
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.cluster._faults import AuditMark, audit_mark, audit_requests
from tests.support.kube import Cluster, Timeout, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    RUN_NOW,
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    TRIGGER_LABEL,
    JobRecorder,
    annotate,
    condition,
    rfc3339,
    schedule,
    seconds_ahead,
    status_of,
    suspended_template,
    utcnow,
)

ON_TIME = timedelta(seconds=5)  # a Job's creationTimestamp (whole seconds) past its due time
RUN_NOW_WITHIN = timedelta(seconds=10)
VICTIM_LEAD = 8.0  # seconds from applying the victim to its run
REPORT_TIMEOUT = 30.0
FIELD_MANAGER = "hostile-tenant"


# --- findings -----------------------------------------------------------------------------


@dataclass
class Findings:
    """Named checks with their outcome; failures are collected, not raised one by one."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, what: str, probe: Callable[[], str | None]) -> bool:
        try:
            detail = probe() or "ok"
        except (AssertionError, client.ApiException) as exc:
            self.results.append((what, False, _short(str(exc))))
            return False
        except Exception as exc:  # a helper's bug still belongs in the findings
            self.results.append((what, False, _short(traceback.format_exc() or repr(exc))))
            return False
        self.results.append((what, True, _short(detail)))
        return True

    def summary(self) -> list[str]:
        return [f"{'PASS' if ok else 'FAIL'} {what}: {detail}" for what, ok, detail in self.results]

    def assert_all(self) -> None:
        failing = [r for r in self.results if not r[1]]
        assert not failing, f"{len(failing)} of {len(self.results)} checks failed:\n" + "\n".join(
            self.summary()
        )


def _short(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


# --- applying what a tenant may write -----------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What the API server answered to a tenant's write."""

    accepted: bool
    message: str  # the API's refusal, or "" when accepted

    def names(self, field_path: str) -> str:
        """A finding: the refusal names ``field_path``."""
        assert not self.accepted, "accepted"
        assert field_path in self.message, f"refusal does not name {field_path}: {self.message}"
        return f"refused at apply: {self.message[:300]}"


def _request(
    cluster: Cluster, method: str, path: str, body: str | dict[str, Any], content_type: str
) -> Applied:
    """One raw request. A ``str`` body is sent as it is (JSON nested deeper than Python's
    encoder goes, megabytes of it), as a tenant's own client would send it."""
    query = [("fieldManager", FIELD_MANAGER)]
    if content_type == "application/apply-patch+yaml":
        query.append(("force", "true"))
    api = cluster.api
    method, url, headers, _, _ = api.param_serialize(
        method,
        path,
        query_params=query,
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(method, url, header_params=headers, body=body, _request_timeout=60)
    data = resp.read() or b""
    if 200 <= resp.status < 300:
        return Applied(True, "")
    try:
        message = str(json.loads(data).get("message") or data.decode(errors="replace"))
    except (TypeError, ValueError, AttributeError):
        message = data.decode(errors="replace")
    return Applied(False, f"{resp.status}: {message}")


def schedule_path(namespace: str, name: str, subresource: str = "") -> str:
    tail = f"/{subresource}" if subresource else ""
    return f"/apis/jobwarden.io/v1alpha1/namespaces/{namespace}/jobschedules/{name}{tail}"


def apply_raw(
    cluster: Cluster, namespace: str, manifest: dict[str, Any], *, text: str | None = None
) -> Applied:
    """Server-side apply of a JobSchedule or Job (no last-applied annotation to outgrow).

    ``text`` is the body to send instead of ``manifest`` serialized (for JSON
    that Python's encoder will not write); ``manifest`` still names the object.
    """
    name = manifest["metadata"]["name"]
    if manifest["kind"] == "Job":
        path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
    else:
        path = schedule_path(namespace, name)
    body = text if text is not None else json.dumps(manifest)
    return _request(cluster, "PATCH", path, body, "application/apply-patch+yaml")


def patch_status(cluster: Cluster, namespace: str, name: str, status: dict[str, Any]) -> Applied:
    """A merge patch of ``status``, as a tenant granted jobschedules/status may send."""
    return _request(
        cluster,
        "PATCH",
        schedule_path(namespace, name, "status"),
        {"status": status},
        "application/merge-patch+json",
    )


def suspended_job(name: str, **metadata: Any) -> dict[str, Any]:
    """A Job that never starts, made by the tenant (``metadata``: labels, ownerReferences...)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, **metadata},
        "spec": suspended_template()["spec"],
    }


def hostile_schedule(name: str, **spec: Any) -> dict[str, Any]:
    """A JobSchedule due every minute unless ``spec`` says otherwise; None drops a field."""
    fields: dict[str, Any] = {"schedule": "* * * * *", "jobTemplate": suspended_template()}
    if {"runAt", "every"} & set(spec):
        fields.pop("schedule")
    fields.update(spec)
    manifest = schedule(name, **{k: v for k, v in fields.items() if v is not None})
    manifest["spec"].setdefault("jobTemplate", suspended_template())
    return manifest


# --- reports on the hostile object --------------------------------------------------------


def read_schedule(cluster: Cluster, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
    """(metadata.generation, status), read by kubectl: a spec nested thousands of levels
    deep is beyond Python's JSON decoder, so only the parts needed are decoded here."""
    out = cluster.kubectl(
        "get", "jobschedule", name, "-n", namespace,
        "-o", 'jsonpath={.metadata.generation}{"\\t"}{.status}',
    ).stdout  # fmt: skip
    generation, _, status = out.partition("\t")
    return int(generation), (json.loads(status) if status.strip() else {})


def spec_report(
    cluster: Cluster,
    namespace: str,
    name: str,
    applied: Applied,
    *,
    field_path: str,
    may_reconcile: bool,
) -> str:
    """The clear report of a hostile spec.

    Refused at apply naming ``field_path``; or ``Valid=False`` naming it; or,
    where the value is extreme but meaningful (``may_reconcile``), reconciled
    like any schedule: a phase for the current generation, ``Valid`` and ``Ready``
    not False. An ``InternalError`` is no report for a spec: the field must be named.
    """
    if not applied.accepted:
        return applied.names(field_path)
    want, last = read_schedule(cluster, namespace, name)

    def judged() -> str | None:
        nonlocal last
        _, last = read_schedule(cluster, namespace, name)
        valid = condition(last, "Valid")
        if valid and valid.get("status") == "False" and field_path in valid.get("message", ""):
            return f"Valid=False: {valid.get('message')}"
        if (
            may_reconcile
            and last.get("observedGeneration") == want
            and last.get("phase") in ("Active", "Completed", "Suspended")
            and (valid or {}).get("status") != "False"
            and (condition(last, "Ready") or {}).get("status") != "False"
        ):
            return f"reconciled: phase {last['phase']}, next run {last.get('nextRunTime')}"
        return None

    try:
        return wait_for(judged, timeout=REPORT_TIMEOUT, interval=0.5, what=f"{name}: a report")
    except Timeout as exc:
        raise AssertionError(
            f"no report naming {field_path}: {exc}; status: {_short(str(last))}"
        ) from None


def warning_event(
    cluster: Cluster, namespace: str, name: str, *, mentions: str, timeout: float = REPORT_TIMEOUT
) -> str:
    """A Warning Event about object ``name`` whose message mentions ``mentions``."""

    def found() -> str | None:
        for event in cluster.events(namespace, name=name):
            if event.get("type") == "Warning" and mentions in (event.get("message") or ""):
                return f"Warning {event.get('reason')}: {event.get('message')}"
        return None

    try:
        return wait_for(found, timeout=timeout, interval=0.5, what=f"{name}: a Warning Event")
    except Timeout:
        seen = [
            (e.get("type"), e.get("reason"), e.get("message"))
            for e in cluster.events(namespace, name=name)
        ]
        raise AssertionError(
            f"no Warning Event on {name} mentioning {mentions!r}; events: {_short(str(seen))}"
        ) from None


# --- the arena ----------------------------------------------------------------------------


@dataclass
class Arena:
    cluster: Cluster
    hostile: str
    victim: str
    operator: OperatorProcess
    audit: AuditMark | None
    recorders: dict[str, JobRecorder]
    findings: Findings = field(default_factory=Findings)

    def apply(self, manifest: dict[str, Any], *, text: str | None = None) -> Applied:
        return apply_raw(self.cluster, self.hostile, manifest, text=text)

    def prove(
        self,
        report: Callable[[], str | None],
        *,
        victim_due: datetime | None = None,
        after: Callable[[], str | None] | None = None,
    ) -> None:
        """The checks every case makes; ``report`` is the hostile object's own."""
        due = victim_due or seconds_ahead(VICTIM_LEAD)
        victim = schedule("victim", runAt=rfc3339(due), jobTemplate=suspended_template())
        self.cluster.apply(victim, namespace=self.victim)
        self.findings.check("hostile object reported", report)
        self.findings.check("victim runs on time", lambda: self._on_time(due))
        self.findings.check("victim run-now starts within 10 s", self._run_now)
        if after is not None:
            self.findings.check("case-specific outcome", after)
        self.findings.check("no run created twice", self.no_run_twice)
        self.findings.check("operator alive and healthy", self._alive)

    def _victim_jobs(self, trigger: str) -> list[Any]:
        """The victim schedule's Jobs of ``trigger`` (a case may add more to its namespace)."""
        return [
            j
            for j in self.recorders[self.victim].snapshot()
            if j.body["metadata"].get("labels", {}).get(TRIGGER_LABEL) == trigger
            and j.body["metadata"].get("labels", {}).get(SCHEDULE_LABEL) == "victim"
        ]

    def _on_time(self, due: datetime) -> str:
        timeout = (due - utcnow()).total_seconds() + 20
        try:
            [job] = wait_for(
                lambda: self._victim_jobs("Schedule"), timeout=max(timeout, 5), what="victim's run"
            )
        except Timeout as exc:
            status = status_of(self.cluster, self.victim, "victim")
            raise AssertionError(
                f"the victim's run due {rfc3339(due)}: {exc}; its status: {status}"
            ) from None
        late = job.created - due
        assert late <= ON_TIME, f"created {late.total_seconds():.0f}s after its time"
        return f"created {late.total_seconds():.0f}s after its time"

    def _run_now(self) -> str:
        token = uuid.uuid4().hex[:8]
        asked = utcnow()
        annotate(self.cluster, self.victim, "victim", RUN_NOW, token)
        try:
            [job] = wait_for(
                lambda: self._victim_jobs("Manual"),
                timeout=RUN_NOW_WITHIN.total_seconds() + 5,
                interval=0.1,
                what="the victim's manual run",
            )
        except Timeout as exc:
            raise AssertionError(f"no manual run: {exc}") from None
        took = job.seen - asked
        assert took <= RUN_NOW_WITHIN, f"manual run after {took.total_seconds():.1f}s"
        return f"manual run after {took.total_seconds():.1f}s"

    def no_run_twice(self) -> str:
        problems: list[str] = []
        accepted_total = 0
        for namespace, recorder in self.recorders.items():
            runs = Counter(
                (
                    j.body["metadata"].get("labels", {}).get(SCHEDULE_LABEL),
                    j.body["metadata"].get("annotations", {}).get(SCHEDULED_TIME_ANNOTATION),
                    j.body["metadata"].get("labels", {}).get(TRIGGER_LABEL) == "Manual" and j.name,
                )
                for j in recorder.snapshot()
                if j.body["metadata"].get("labels", {}).get(SCHEDULE_LABEL)
            )
            problems += [
                f"{namespace}: {run} created {n} times" for run, n in runs.items() if n > 1
            ]
            if self.audit is not None:
                creates = [
                    r
                    for r in audit_requests(self.audit, namespace=namespace)
                    if r.verb == "create" and r.resource == "jobs" and r.code == 201
                ]
                names = Counter(r.name for r in creates)
                accepted_total += len(creates)
                problems += [
                    f"{namespace}: Job {n} accepted {c} times" for n, c in names.items() if c > 1
                ]
        assert not problems, "; ".join(problems[:20])
        return f"{accepted_total} Job creates accepted, each name once"

    def _alive(self) -> str:
        proc = self.operator.proc
        assert proc is not None and proc.poll() is None, (
            f"operator exited: {self.operator.log()[-2000:]}"
        )
        assert self.operator.healthy(), "/healthz does not answer 200"
        return "running, /healthz 200"


def namespace_pair(cluster: Cluster, case: str, stack: ExitStack) -> tuple[str, str]:
    """``hostile`` and ``victim`` namespaces of one case, deleted afterwards."""
    suffix = uuid.uuid4().hex[:5]
    safe = "".join(ch for ch in case.lower() if ch.isalnum() or ch == "-")[:30].strip("-")
    names = (f"h-{safe}-{suffix}", f"v-{safe}-{suffix}")
    for name in names:
        cluster.kubectl("create", "namespace", name)
        stack.callback(cluster.kubectl, "delete", "namespace", name, "--wait=false", check=False)
    return names


RecordProperty = Callable[[str, object], None]  # pytest's record_property fixture


@contextmanager
def arena(
    cluster: Cluster,
    case: str,
    tmp_path: Path,
    record: RecordProperty,
    *,
    extra_env: dict[str, str] | None = None,
    cluster_name: str | None = None,
) -> Iterator[Arena]:
    """Two namespaces, Job recorders on both, and one operator watching both.

    On leaving the block the findings are recorded and every one must have passed.
    """
    with ExitStack() as stack:
        hostile, victim = namespace_pair(cluster, case, stack)
        recorders = {
            ns: stack.enter_context(JobRecorder(cluster, ns).running()) for ns in (hostile, victim)
        }
        mark = audit_mark(cluster, cluster_name=cluster_name)
        proc = OperatorProcess(
            cluster=cluster,
            namespaces=[hostile, victim],
            log_path=tmp_path / "operator.log",
            extra_env=extra_env,
        )
        stack.callback(proc.stop)  # also when it never became healthy
        proc.start()
        found = Arena(cluster, hostile, victim, proc, mark, recorders)
        yield found
        record("findings", found.findings.summary())
        found.findings.assert_all()
