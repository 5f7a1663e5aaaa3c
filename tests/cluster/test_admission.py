"""Who may ask the operator for what: the chart's admission policy and user roles, proven.

Each test renders the chart (its ValidatingAdmissionPolicy, binding and the
user-facing roles) and applies it so that it reaches this test's namespace
only: the binding is the chart's namespace-list form (``watchNamespaces``),
the policy and binding carry a release name of their own, and the roles are
renamed (they aggregate by label just the same). Schedules other tests write
elsewhere in the shared cluster never meet this policy.

Five subjects — a viewer, an editor, an editor without Jobs (the chart's
jobwarden-edit role alone), an admin and a cluster admin — try every action
and spec change, through ``kubectl --as`` and through the plugin. Each cell
says allow, or which layer denies: RBAC, or the policy. A denied write leaves
no trace: the object's resourceVersion is unchanged (nothing was written, so
the operator had nothing to see), no Job was created, and status is the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jobwarden import labels
from tests.cluster._delivery import merged, render, unique
from tests.cluster.test_plugin import plugin
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import job_template, schedule

SCHEDULES = "jobschedules.jobwarden.io"
ROLES = ("jobwarden-view", "jobwarden-edit", "jobwarden-admin")
SUBJECTS = ("viewer", "editor", "editor-without-jobs", "admin", "cluster-admin")
A, RBAC, POLICY = "allow", "rbac", "policy"
# Far away: the operator never starts a run of these on its own.
YEARLY = "0 3 1 1 *"

# What each subject may do, cell by cell: allow, or the layer that refuses.
MATRIX: dict[str, tuple[str, str, str, str, str]] = {
    #                   viewer  editor  no-jobs  admin  cluster-admin
    "run-now": (RBAC, A, A, A, A),
    "terminate": (RBAC, POLICY, POLICY, A, A),
    "force-terminate": (RBAC, POLICY, POLICY, A, A),
    "resume": (RBAC, POLICY, POLICY, A, A),
    "suspend": (RBAC, A, A, A, A),
    "edit-spec": (RBAC, A, A, A, A),
    "edit-job-template": (RBAC, A, POLICY, A, A),
    "reapply-unchanged": (RBAC, A, A, A, A),
    "create": (RBAC, A, POLICY, A, A),
    "delete": (RBAC, A, A, A, A),
}
# The permission a policy refusal names, by operation.
NAMED = {
    "terminate": '"update" on jobschedules/terminate',
    "force-terminate": '"update" on jobschedules/forceterminate',
    "resume": '"update" on jobschedules/resume',
    "edit-job-template": '"create" on jobs (group batch)',
    "create": '"create" on jobs (group batch)',
}
# `kubectl jobwarden can-i` rows and the matrix operation that answers each.
CAN_I = {
    "describe": None,
    "suspend": "suspend",
    "resume": "suspend",
    "run": "run-now",
    "terminate": "terminate",
    "terminate-force": "force-terminate",
    "lift-suspension": "resume",
    "edit-spec": "edit-spec",
    "edit-job-template": "edit-job-template",
    "delete": "delete",
}


@dataclass(frozen=True)
class Subject:
    kind: str
    user: str
    groups: tuple[str, ...] = ()

    def args(self) -> list[str]:
        out = ["--as", self.user]
        for group in self.groups:
            out += ["--as-group", group]
        return out

    def expect(self, operation: str) -> str:
        return MATRIX[operation][SUBJECTS.index(self.kind)]


@dataclass(frozen=True)
class Guarded:
    namespace: str
    subjects: dict[str, Subject]
    policy: str


def kubectl_as(
    cluster: Cluster, subject: Subject, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(*args, *subject.args(), input=input, check=False)


def policy_docs(
    cluster: Cluster, *, namespace: str, values: Mapping[str, Any], directory: Path
) -> list[dict[str, Any]]:
    """The chart's policy, binding and user roles, reaching ``namespace`` only."""
    base = {"watchNamespaces": [namespace], "crds": {"install": False}}
    docs = render(
        cluster,
        release=unique("adm"),
        namespace=namespace,
        values=merged(base, values),
        directory=directory,
    )
    # The operator-pods policy is about the operator's ServiceAccount: not needed here.
    kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    return [
        d
        for d in docs
        if (d["kind"] in kinds and d["metadata"]["name"].endswith("-jobschedules"))
        or d["metadata"]["name"] in ROLES
    ]


@contextlib.contextmanager
def guarded(
    cluster: Cluster, namespace: str, directory: Path, values: Mapping[str, Any] | None = None
) -> Iterator[Guarded]:
    docs = policy_docs(cluster, namespace=namespace, values=values or {}, directory=directory)
    suffix = uuid.uuid4().hex[:6]
    for doc in docs:
        if doc["kind"] == "ClusterRole":
            doc["metadata"]["name"] += f"-{suffix}"
    (policy,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    subjects = {k: Subject(k, f"jw-{k}-{suffix}") for k in SUBJECTS}
    subjects["cluster-admin"] = Subject("cluster-admin", f"jw-root-{suffix}", ("system:masters",))
    role_for = {
        "viewer": "clusterrole=view",
        "editor": "clusterrole=edit",
        "editor-without-jobs": f"clusterrole=jobwarden-edit-{suffix}",
        "admin": "clusterrole=admin",
    }
    try:
        cluster.apply(yaml.safe_dump_all(docs))
        for kind, role in role_for.items():
            cluster.kubectl(
                "create",
                "rolebinding",
                f"{kind}-{suffix}",
                "-n",
                namespace,
                f"--{role}",
                f"--user={subjects[kind].user}",
            )
        g = Guarded(namespace, subjects, policy)
        wait_until_enforced(cluster, g)
        yield g
    finally:
        for doc in docs:
            cluster.kubectl(
                "delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found", check=False
            )


def wait_until_enforced(cluster: Cluster, g: Guarded) -> None:
    """The roles aggregated and the policy loaded: a template write by the Job-less editor fails."""

    def may(subject: str, verb: str, resource: str, sub: str | None = None) -> bool:
        args = ["auth", "can-i", verb, resource, "-n", g.namespace]
        if sub:
            args.append(f"--subresource={sub}")
        out = kubectl_as(cluster, g.subjects[subject], *args)
        return out.stdout.strip() == "yes"

    wait_for(
        lambda: (
            may("admin", "update", SCHEDULES, "forceterminate")
            and may("editor", "update", SCHEDULES, "runnow")
            and may("viewer", "list", SCHEDULES)
        ),
        timeout=60,
        what="the user roles aggregated into view, edit and admin",
    )
    probe = yaml.safe_dump(schedule(f"probe-{uuid.uuid4().hex[:6]}", schedule=YEARLY))

    def refused() -> bool:
        proc = kubectl_as(
            cluster,
            g.subjects["editor-without-jobs"],
            "create",
            "--dry-run=server",
            "-n",
            g.namespace,
            "-f",
            "-",
            input=probe,
        )
        return proc.returncode != 0 and "denied request" in proc.stderr

    wait_for(refused, timeout=60, what=f"the policy {g.policy} enforced")
    status = cluster.get_json("validatingadmissionpolicy", g.policy).get("status") or {}
    warnings = (status.get("typeChecking") or {}).get("expressionWarnings") or []
    assert not warnings, f"the policy's CEL does not type-check: {warnings}"


# --- the operations -----------------------------------------------------------------------


def token() -> str:
    return uuid.uuid4().hex[:10]


def template_manifest(name: str) -> dict[str, Any]:
    """The schedule as Git holds it: a yearly run of a short job."""
    return schedule(name, schedule=YEARLY, jobTemplate=job_template(run_seconds=1))


def operate(
    cluster: Cluster, who: Subject, operation: str, *, namespace: str, name: str
) -> subprocess.CompletedProcess[str]:
    """One write of ``operation`` on schedule ``name`` (``create``: a new schedule ``name``)."""
    target = ["-n", namespace, SCHEDULES, name]

    def annotate(*pairs: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        values = [f"{key}={value}" for key, value in pairs]
        return kubectl_as(cluster, who, "annotate", *target, *values, "--overwrite")

    def patch(body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return kubectl_as(cluster, who, "patch", *target, "--type=merge", "-p", json.dumps(body))

    manifest = yaml.safe_dump(template_manifest(name))
    match operation:
        case "run-now":
            return annotate((labels.RUN_NOW_ANNOTATION, token()))
        case "terminate":
            return annotate((labels.TERMINATE_ANNOTATION, token()))
        case "force-terminate":
            return annotate(
                (labels.TERMINATE_GRACE_ANNOTATION, "0"), (labels.TERMINATE_ANNOTATION, token())
            )
        case "resume":
            return annotate((labels.RESUME_ANNOTATION, token()))
        case "suspend":
            return patch({"spec": {"suspend": True}})
        case "edit-spec":
            return patch({"spec": {"staleAfter": f"{uuid.uuid4().int % 50 + 2}h"}})
        case "edit-job-template":
            return patch({"spec": {"jobTemplate": {"metadata": {"labels": {"edit": token()}}}}})
        case "reapply-unchanged":
            # A Git controller applying what it applied before (server-side, its own manager).
            return kubectl_as(
                cluster,
                who,
                "apply",
                "--server-side",
                "--field-manager=git",
                "-n",
                namespace,
                "-f",
                "-",
                input=manifest,
            )
        case "create":
            return kubectl_as(cluster, who, "create", "-n", namespace, "-f", "-", input=manifest)
        case "delete":
            return kubectl_as(cluster, who, "delete", *target, "--wait=false")
    raise AssertionError(operation)


@dataclass(frozen=True)
class Trace:
    """What a denied write must leave as it was."""

    exists: bool
    resource_version: str | None
    status: dict[str, Any] | None
    jobs: list[str]


def trace(cluster: Cluster, namespace: str, name: str) -> Trace:
    proc = cluster.kubectl("get", SCHEDULES, name, "-n", namespace, "-o", "json", check=False)
    obj = json.loads(proc.stdout) if proc.returncode == 0 else None
    jobs = sorted(
        j["metadata"]["name"] for j in cluster.jobs(namespace, f"{labels.SCHEDULE_LABEL}={name}")
    )
    if obj is None:
        return Trace(False, None, None, jobs)
    return Trace(True, obj["metadata"]["resourceVersion"], obj.get("status"), jobs)


def check_cell(
    proc: subprocess.CompletedProcess[str], *, expect: str, operation: str, cell: str
) -> None:
    if expect == A:
        assert proc.returncode == 0, f"{cell}: refused: {proc.stderr.strip()}"
        return
    assert proc.returncode != 0, f"{cell}: allowed, expected a {expect} refusal"
    err = proc.stderr
    if expect == RBAC:
        assert "is forbidden: User" in err and "denied request" not in err, f"{cell}: {err}"
    else:
        assert "denied request" in err, f"{cell}: {err}"
        assert NAMED[operation] in err, f"{cell}: the refusal should name {NAMED[operation]}: {err}"


def settled(
    cluster: Cluster, namespace: str, name: str, tokens: Mapping[str, str]
) -> dict[str, Any] | None:
    """The schedule's status once the operator has reconciled it and handled ``tokens``."""
    status: dict[str, Any] = cluster.schedule(namespace, name).get("status") or {}
    done = all(handled(status, a, v) for a, v in tokens.items())
    return status if done and "observedGeneration" in status else None


def handled(status: Mapping[str, Any] | None, annotation: str, value: str) -> bool:
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return ((status or {}).get("handledActions") or {}).get(annotation) == digest


# --- the tests ----------------------------------------------------------------------------


def test_impersonation_matrix_through_kubectl(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """Every subject x every action and spec change, by `kubectl --as`; a denial leaves no trace.

    The matrix runs before any operator watches, so nothing else writes the
    schedules: an unchanged resourceVersion proves a denied write wrote
    nothing. The operator then starts and handles exactly what was allowed:
    the allowed actions' tokens, never a denied one, and a run only where a
    run-now got through.
    """
    with guarded(cluster, namespace, tmp_path) as g:
        for who in g.subjects.values():
            mine, victim = f"s-{who.kind}", f"v-{who.kind}"
            for name in (mine, victim):
                cluster.apply(template_manifest(name), namespace=namespace)
            for operation in MATRIX:
                expect = who.expect(operation)
                name = {"create": f"c-{who.kind}", "delete": victim}.get(operation, mine)
                before = trace(cluster, namespace, name)
                proc = operate(cluster, who, operation, namespace=namespace, name=name)
                cell = f"{who.kind} x {operation}"
                check_cell(proc, expect=expect, operation=operation, cell=cell)
                if expect != A:
                    assert trace(cluster, namespace, name) == before, f"{cell}: left a trace"
        actions = {
            "run-now": labels.RUN_NOW_ANNOTATION,
            "terminate": labels.TERMINATE_ANNOTATION,
            "resume": labels.RESUME_ANNOTATION,
        }
        with running_operator(cluster, namespace, tmp_path):
            for who in g.subjects.values():
                name = f"s-{who.kind}"
                notes = cluster.schedule(namespace, name)["metadata"].get("annotations") or {}
                given = {a for op, a in actions.items() if who.expect(op) == A}
                assert {a for a in actions.values() if a in notes} == given, who.kind

                tokens = {a: notes[a] for a in given}
                status = wait_for(
                    lambda n=name, t=tokens: settled(cluster, namespace, n, t),
                    timeout=60,
                    what=f"the operator handling {who.kind}'s schedule",
                )
                assert set(status.get("handledActions") or {}) == given, who.kind
                runs = cluster.jobs(namespace, f"{labels.SCHEDULE_LABEL}={name}")
                assert bool(runs) == (labels.RUN_NOW_ANNOTATION in given), who.kind


@contextlib.contextmanager
def running_operator(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[None]:
    proc = OperatorProcess(cluster=cluster, namespaces=[namespace], log_path=tmp_path / "op.log")
    proc.start()
    try:
        yield
    finally:
        proc.stop()


def test_impersonation_matrix_through_the_plugin(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """`kubectl jobwarden can-i` agrees with the matrix, and refused actions name the permission."""
    with guarded(cluster, namespace, tmp_path) as g:
        for who in g.subjects.values():
            name = f"p-{who.kind}"
            cluster.apply(template_manifest(name), namespace=namespace)
            proc = plugin(cluster, "can-i", name, "-n", namespace, *who.args(), "-o", "json")
            assert proc.returncode == 0, proc.stderr
            actions = json.loads(proc.stdout)["actions"]
            report = {a["action"]: a["allowed"] for a in actions}
            missing = {
                a["action"]: " and ".join(n["permission"] for n in a["needs"] if not n["allowed"])
                for a in actions
            }
            expected = {
                action: True if op is None else who.expect(op) == A for action, op in CAN_I.items()
            }
            assert report == expected, who.kind
            for command, operation, doing, ability in (
                (["run"], "run-now", "starting a run now", "run"),
                (["terminate"], "terminate", "terminating", "terminate"),
                (
                    ["terminate", "--force"],
                    "force-terminate",
                    "force-terminating",
                    "terminate-force",
                ),
                (["suspend"], "suspend", "suspending (spec.suspend)", "suspend"),
            ):
                before = trace(cluster, namespace, name)
                proc = plugin(cluster, *command, name, "-n", namespace, *who.args())
                expect, cell = who.expect(operation), f"{who.kind} x plugin {command}"
                if expect == A:
                    assert proc.returncode == 0, f"{cell}: {proc.stderr}"
                    continue
                assert proc.returncode == 1, cell
                needs = missing[ability]
                assert (NAMED[operation] if expect == POLICY else '"patch"') in needs, cell
                assert proc.stderr == (
                    f'Error: forbidden: {doing} needs {needs} in namespace "{namespace}"; '
                    "ask your cluster admin\n"
                ), cell
                assert trace(cluster, namespace, name) == before, f"{cell}: left a trace"


def test_the_deputy_case(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """Without `create jobs` no template can be set or changed; with it, it can; and
    an unchanged template (a Git re-apply, an annotation) needs nothing more."""
    with guarded(cluster, namespace, tmp_path) as g:
        deputy, editor = g.subjects["editor-without-jobs"], g.subjects["editor"]
        assert (
            cluster.kubectl(
                "auth",
                "can-i",
                "create",
                "jobs.batch",
                "-n",
                namespace,
                *deputy.args(),
                check=False,
            ).stdout.strip()
            == "no"
        )
        for verb in ("create", "edit-job-template"):
            name = "deputy" if verb == "create" else "owned"
            if verb != "create":
                cluster.apply(template_manifest(name), namespace=namespace)
            before = trace(cluster, namespace, name)
            proc = operate(cluster, deputy, verb, namespace=namespace, name=name)
            check_cell(proc, expect=POLICY, operation=verb, cell=f"deputy {verb}")
            assert trace(cluster, namespace, name) == before
            proc = operate(cluster, editor, verb, namespace=namespace, name=name)
            check_cell(proc, expect=A, operation=verb, cell=f"editor {verb}")
        # The template the editor set stays; the deputy may still change the rest.
        for operation in ("reapply-unchanged", "suspend", "run-now", "edit-spec"):
            proc = operate(cluster, deputy, operation, namespace=namespace, name="deputy")
            check_cell(proc, expect=A, operation=operation, cell=f"deputy {operation}")
        # Swapping the template for another one through a whole-object replace is a change too.
        obj = cluster.schedule(namespace, "deputy")
        obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
        proc = kubectl_as(cluster, deputy, "replace", "-f", "-", input=json.dumps(obj))
        check_cell(proc, expect=POLICY, operation="edit-job-template", cell="deputy replace")


def test_service_account_allow_list(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """With the allow-list on, a template names `default` or a listed ServiceAccount only."""
    values = {"admissionPolicy": {"serviceAccounts": {"restrict": True}}}

    def with_account(name: str, account: str | None, field: str = "serviceAccountName") -> str:
        body = template_manifest(name)
        pod = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        if account is not None:
            pod[field] = account
        return yaml.safe_dump(body)

    def create(
        name: str, account: str | None, field: str = "serviceAccountName"
    ) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            input=with_account(name, account, field),
            check=False,
        )

    with guarded(cluster, namespace, tmp_path, values):
        assert create("plain", None).returncode == 0
        assert create("default", "default").returncode == 0
        refused = create("builder", "builder")
        assert (
            refused.returncode != 0
            and "serviceAccountName builder is not allowed" in refused.stderr
        )
        assert create("old-field", "builder", "serviceAccount").returncode != 0
        cluster.kubectl(
            "annotate",
            "namespace",
            namespace,
            "jobwarden.io/allowed-service-accounts=builder, reporter",
        )
        assert create("builder", "builder").returncode == 0
        assert create("reporter", "reporter").returncode == 0
        assert create("other", "other").returncode != 0
