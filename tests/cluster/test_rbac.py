"""The chart's RBAC, proven rather than assumed.

A release is installed, a token is minted for its ServiceAccount, and the
real operator runs locally with nothing but that token (and the environment
the chart's Deployment gives it). It must then do its whole job — a run that
succeeds, a run terminated with its pods force-deleted, status, Events, the
leader Lease — without one refused request. The API server's audit log (on
the local control plane) then shows that every permission the release grants
was used, and nothing it denies was asked for: the grants are exactly what
the operator needs. ``kubectl auth can-i`` confirms what must stay denied.

Both shapes of the chart are covered: watchNamespaces (a Role per watched
namespace, the release in another namespace) and cluster-wide. The
cluster-wide operator watches every namespace of a cluster other tests share,
so it is given a label selector of its own and a sweep interval that never
comes round: it touches only this test's schedules.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.cluster._delivery import (
    HA,
    POLICY_ON,
    SHARED_SAFE,
    Grant,
    Question,
    Release,
    audit_calls,
    audit_log,
    can_i,
    can_i_all,
    installed,
    merged,
    render,
    rules_review,
    service_account_cluster,
    temp_namespace,
    unique,
    writers_of,
)
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess, scraper_token
from tests.support.schedules import (
    annotate,
    history,
    job_template,
    rfc3339,
    schedule,
    seconds_ahead,
    status_of,
    wait_status,
)

SCHEDULES = "jobschedules.jobwarden.io"
# Never the operator's business, wherever it works.
DENIED_IN_NAMESPACE = [
    ("get", "secrets", None),
    ("list", "secrets", None),
    ("watch", "secrets", None),
    ("get", "configmaps", None),
    ("list", "configmaps", None),
    ("create", "deployments.apps", None),
    ("create", "pods", None),
    ("create", "pods", "exec"),
    ("patch", "jobs.batch", None),
    ("update", "jobs.batch", None),
    # Git owns spec: the operator writes status only.
    ("patch", SCHEDULES, None),
    ("update", SCHEDULES, None),
    ("create", SCHEDULES, None),
    ("delete", SCHEDULES, None),
    ("update", SCHEDULES, "status"),
    ("create", "serviceaccounts", "token"),
    ("create", "rolebindings.rbac.authorization.k8s.io", None),
]
DENIED_CLUSTER = [
    ("delete", "namespaces"),
    ("create", "namespaces"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("list", "nodes"),
]
# Granted for a call that a race decides: a forced terminate patches away the
# Job controller's tracking finalizer only from a pod that still has it, and
# the controller drops it from a deleted Job's pods soon after (it would keep
# it for good while kube-controller-manager is down). A fake pod cannot make
# it certain: the controller strips the finalizer from orphans too.
MAY_GO_UNUSED: set[Grant] = {("", "pods", "patch")}
CALENDAR_STATUS: Grant = ("jobwarden.io", "jobcalendars/status", "patch")
# The calls a run, a forced terminate and a status write stand on.
ALLOWED_IN_NAMESPACE = [
    ("create", "jobs.batch", None),
    ("delete", "jobs.batch", None),
    ("patch", SCHEDULES, "status"),
    ("list", "pods", None),
    ("delete", "pods", None),
    ("create", "events", None),
]


def deployment_env(cluster: Cluster, rel: Release) -> dict[str, str]:
    """The operator's environment as the chart's Deployment sets it, fieldRefs resolved.

    Only the listen addresses are left to the test (ports must be free here).
    """
    dep = cluster.get_json("deployment", rel.fullname, "-n", rel.namespace)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    fields = {"metadata.namespace": rel.namespace, "metadata.name": f"{rel.fullname}-local"}
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
    for key in ("JOBWARDEN_METRICS_ADDRESS", "JOBWARDEN_HEALTH_ADDRESS"):
        env.pop(key)
    return env


def everyone_may(cluster: Cluster, namespace: str) -> set[Grant]:
    """What any ServiceAccount may do without a binding (self-reviews, discovery)."""
    nobody = f"system:serviceaccount:{namespace}:nobody-{uuid.uuid4().hex[:6]}"
    return rules_review(cluster, namespace, as_user=nobody)


def granted(cluster: Cluster, sa: Cluster, namespaces: list[str]) -> set[Grant]:
    """What the release grants its ServiceAccount in these namespaces (and cluster-wide)."""
    out: set[Grant] = set()
    for ns in namespaces:
        out |= rules_review(sa, ns) - everyone_may(cluster, ns)
    return out


def assert_answers(cluster: Cluster, user: str, questions: list[Question], *, yes: bool) -> None:
    wrong = [q for q, answer in can_i_all(cluster, user, questions).items() if answer != yes]
    assert not wrong, f"{user} {'may not' if yes else 'may'}: {wrong}"


def assert_denied(cluster: Cluster, user: str, namespaces: list[str]) -> None:
    questions: list[Question] = [
        (verb, resource, ns, sub)
        for ns in namespaces
        for verb, resource, sub in DENIED_IN_NAMESPACE
    ]
    questions += [(verb, resource, None, None) for verb, resource in DENIED_CLUSTER]
    assert_answers(cluster, user, questions, yes=False)


def assert_allowed(cluster: Cluster, user: str, namespace: str) -> None:
    questions: list[Question] = [
        (verb, resource, namespace, sub) for verb, resource, sub in ALLOWED_IN_NAMESPACE
    ]
    assert_answers(cluster, user, questions, yes=True)


@contextlib.contextmanager
def running_operator(
    sa: Cluster, *, env: dict[str, str], namespaces: list[str], log: Path
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(cluster=sa, namespaces=namespaces, log_path=log, extra_env=env)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def do_the_whole_job(cluster: Cluster, namespace: str, labels: dict[str, str]) -> None:
    """A run that succeeds, and a run terminated with its pods force-deleted."""
    at = rfc3339(seconds_ahead(4))
    ok = schedule("ok", runAt=at, jobTemplate=job_template(run_seconds=2))
    # A pod that a graceful delete leaves Terminating (a 30 s grace, held by the
    # fake node): only the operator's force delete removes it.
    stuck_template = job_template(run_seconds=None)
    pod = stuck_template["spec"]["template"]
    pod["metadata"]["annotations"]["jobwarden.test/hold-terminating"] = "true"
    pod["spec"]["terminationGracePeriodSeconds"] = 30
    stuck = schedule("stuck", runAt=at, jobTemplate=stuck_template)
    for body in (ok, stuck):
        body["metadata"]["labels"] = dict(labels)
        cluster.apply(body, namespace=namespace)

    def result(status: dict[str, Any]) -> str | None:
        entries = history(status)
        return entries[0].get("result") if entries else None

    wait_status(
        cluster,
        namespace,
        "stuck",
        lambda s: result(s) == "Running",
        timeout=40,
        what="the stuck run started",
    )
    wait_for(
        lambda: any(
            p["status"].get("phase") == "Running"
            for p in cluster.pods(namespace, "jobwarden.io/schedule=stuck")
        ),
        timeout=30,
        what="the stuck run's pod running",
    )
    annotate(cluster, namespace, "stuck", "jobwarden.io/terminate-grace-seconds", "0")
    annotate(cluster, namespace, "stuck", "jobwarden.io/terminate", "t1")
    wait_status(
        cluster,
        namespace,
        "ok",
        lambda s: result(s) == "Succeeded",
        timeout=40,
        what="the run Succeeded",
    )
    wait_status(
        cluster,
        namespace,
        "stuck",
        lambda s: result(s) == "Terminated",
        timeout=40,
        what="the stuck run Terminated",
    )
    # hold-terminating pods leave only when force-deleted: the operator did it.
    wait_for(
        lambda: not cluster.pods(namespace, "jobwarden.io/schedule=stuck"),
        timeout=30,
        what="the stuck run's pods force-deleted",
    )
    ok_status = status_of(cluster, namespace, "ok")
    assert ok_status["phase"] == "Completed"
    (job,) = cluster.jobs(namespace, "jobwarden.io/schedule=ok")
    assert history(ok_status)[0]["job"] == job["metadata"]["name"]
    calendar_status_written(cluster, namespace)


def calendar_of(namespace: str) -> str:
    """The JobCalendar a run of the whole job in ``namespace`` applies."""
    return f"{namespace}-calendar"


def calendar_status_written(cluster: Cluster, namespace: str) -> None:
    """A JobCalendar (cluster-scoped) listed, watched, and its status written."""
    name = calendar_of(namespace)
    cluster.apply(
        {
            "apiVersion": "jobwarden.io/v1alpha1",
            "kind": "JobCalendar",
            "metadata": {"name": name},
            "spec": {"yearly": ["12-25"]},
        }
    )
    try:
        wait_for(
            lambda: (cluster.get_json("jobcalendar", name).get("status") or {}).get("conditions"),
            timeout=30,
            what="the calendar's status written",
        )
    finally:
        cluster.kubectl("delete", "jobcalendar", name, "--wait=false", "--ignore-not-found")


def prove(
    cluster: Cluster,
    *,
    rel: Release,
    watched: str,
    operator_namespaces: list[str],
    labels: dict[str, str],
    tmp_path: Path,
) -> None:
    """Run the operator as the release's ServiceAccount and check every request it made."""
    sa = service_account_cluster(
        cluster, namespace=rel.namespace, name=rel.fullname, path=tmp_path / "sa.kubeconfig"
    )
    grants = granted(cluster, sa, [watched, rel.namespace])
    log = audit_log(cluster)
    offset = log.stat().st_size if log is not None else 0
    with running_operator(
        sa,
        env=deployment_env(cluster, rel),
        namespaces=operator_namespaces,
        log=tmp_path / "operator.log",
    ) as op:
        do_the_whole_job(cluster, watched, labels)
        # A scrape: the operator reviews the scraper's token (TokenReview) and
        # its right to /metrics (SubjectAccessReview), both granted for this.
        assert "jobwarden_leader" in op.metrics(token=scraper_token(cluster))
    text = op.log()
    # "403" as a status, not inside a log line's milliseconds ("13:37:32,403").
    for word in (r"Forbidden", r"forbidden", r"(?<![\d,.:])403(?!\d)"):
        assert not re.search(word, text), f"the operator was refused something ({word}):\n{text}"
    if log is None:
        return  # another cluster: no audit log to read; the run itself is the proof
    calls = audit_calls(log, offset=offset, user=rel.service_account)
    refused = [c for c in calls if c.code in (401, 403)]
    assert not refused, refused
    used = {c.grant for c in calls}
    assert used - grants == set(), "calls outside the grants (refused, so never made?)"
    may_go_unused = set(MAY_GO_UNUSED)
    calendar = f"/apis/jobwarden.io/v1alpha1/jobcalendars/{calendar_of(watched)}/status"
    writers = writers_of(log, offset=offset, uri=calendar)
    if writers and writers[0] != rel.service_account:
        # Every operator on this shared cluster watches JobCalendars (cluster-scoped):
        # when another test's wrote this one's status first, ours found it current.
        may_go_unused.add(CALENDAR_STATUS)
    assert grants - used - may_go_unused == set(), (
        f"granted but never needed: {sorted(grants - used)}; the calls: "
        + "".join(f"\n  {c.code} {c.grant[2]} {c.uri}" for c in calls)
    )


def impersonating(cluster: Cluster, user: str) -> client.CoreV1Api:
    """The core API as ``user`` (the admin impersonating it)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    api.set_default_header("Impersonate-User", user)
    return client.CoreV1Api(api)


def pod_writes_are_narrowed(cluster: Cluster, *, user: str, namespace: str) -> None:
    """RBAC lets the operator patch and delete any pod there; its admission policy does not.

    It may remove a finalizer, and nothing else; it may delete pods a Job owns only.
    """
    name = unique("bare")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "finalizers": ["example.com/hold"]},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    cluster.apply(pod, namespace=namespace)
    pods = impersonating(cluster, user)

    def refused(call: Any, *args: Any) -> str:
        # Through the API alone: kubectl would GET first, which the operator may not.
        try:
            call(name, namespace, *args)
        except ApiException as exc:
            assert exc.status == 403, exc
            return str(exc.body)
        raise AssertionError(f"{call.__name__} was allowed")

    try:
        for patch in (
            {"metadata": {"labels": {"stolen": "yes"}}},
            {"spec": {"containers": [{"name": "c", "image": "evil:1"}]}},
        ):
            body = refused(pods.patch_namespaced_pod, patch)
            assert "may only remove finalizers from a pod" in body, body
        body = refused(pods.delete_namespaced_pod)
        assert "may only delete pods owned by a Job" in body, body
        unhold = [{"op": "remove", "path": "/metadata/finalizers/0"}]
        pods.patch_namespaced_pod(name, namespace, unhold)
        assert not cluster.get_json("pod", name, "-n", namespace)["metadata"].get("finalizers")
    finally:
        free = '{"metadata": {"finalizers": null}}'
        cluster.kubectl(
            "patch", "pod", name, "-n", namespace, "--type=merge", "-p", free, check=False
        )
        cluster.kubectl(
            "delete", "pod", name, "-n", namespace, "--grace-period=0", "--force", "--wait=false"
        )


def test_watch_namespaces_rbac_is_exactly_what_the_operator_needs(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """watchNamespaces=[one namespace], the release in another: a Role there, and no more.

    The admission policies are on (bound to the watched namespace): the
    operator's status writes and forced terminate pass them, and its pod
    writes are narrowed further than RBAC can.
    """
    with temp_namespace(cluster, "t-rbac-watched") as watched:
        values = merged(SHARED_SAFE, {**HA, **POLICY_ON, "watchNamespaces": [watched]})
        with installed(cluster, namespace=namespace, values=values, directory=tmp_path) as rel:
            user = rel.service_account
            assert_allowed(cluster, user, watched)
            assert_denied(cluster, user, [watched, namespace, "default"])
            # Outside the watched namespace the operator's own verbs are gone too.
            outside: list[Question] = [
                (verb, resource, other, None)
                for other in (namespace, "default", None)
                for verb, resource in (
                    ("list", "jobs.batch"),
                    ("list", SCHEDULES),
                    ("create", "jobs.batch"),
                    ("list", "pods"),
                    ("patch", "pods"),
                    ("delete", "pods"),
                )
            ]
            assert_answers(cluster, user, outside, yes=False)
            prove(
                cluster,
                rel=rel,
                watched=watched,
                operator_namespaces=[watched],
                labels={},
                tmp_path=tmp_path,
            )
            pod_writes_are_narrowed(cluster, user=user, namespace=watched)


def test_cluster_wide_rbac_is_exactly_what_the_operator_needs(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """All namespaces watched: one ClusterRole, the leader Lease Role, and no more."""
    shard = {"jobwarden.test/shard": uuid.uuid4().hex[:8]}
    selector = ",".join(f"{k}={v}" for k, v in shard.items())
    values = merged(SHARED_SAFE, {**HA, "selector": selector, "sweepInterval": "24h"})
    with (
        temp_namespace(cluster, "t-rbac-any") as watched,
        installed(cluster, namespace=namespace, values=values, directory=tmp_path) as rel,
    ):
        user = rel.service_account
        assert_allowed(cluster, user, watched)
        everywhere: list[Question] = [
            ("list", "jobs.batch", None, None),
            ("watch", SCHEDULES, None, None),
        ]
        assert_answers(cluster, user, everywhere, yes=True)
        assert_denied(cluster, user, [watched, namespace])
        prove(
            cluster,
            rel=rel,
            watched=watched,
            operator_namespaces=[],
            labels=shard,
            tmp_path=tmp_path,
        )


def test_user_roles_aggregate_into_view_edit_and_admin(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """Viewers read JobSchedules, editors and admins change their spec, nobody writes status.

    The chart's jobwarden-view/-edit have fixed names, shared by every test
    run on this cluster; the test applies them under names of its own, which
    aggregate by label just the same.
    """
    docs = render(cluster, release="jobwarden", namespace=namespace, values={}, directory=tmp_path)
    roles = [d for d in docs if d["metadata"]["name"] in ("jobwarden-view", "jobwarden-edit")]
    assert len(roles) == 2
    suffix = uuid.uuid4().hex[:6]
    for role in roles:
        role["metadata"]["name"] += f"-{suffix}"
    users = {kind: unique(f"user-{kind}") for kind in ("view", "edit", "admin")}
    try:
        cluster.apply(yaml.safe_dump_all(roles))
        for kind, user in users.items():
            cluster.kubectl(
                "create",
                "rolebinding",
                f"{kind}-{suffix}",
                "-n",
                namespace,
                f"--clusterrole={kind}",
                f"--user={user}",
            )

        def may(user: str, verb: str, sub: str | None = None) -> bool:
            return can_i(cluster, user, verb, SCHEDULES, namespace=namespace, subresource=sub)

        wait_for(
            lambda: may(users["view"], "list") and may(users["admin"], "create"),
            timeout=30,
            what="the roles aggregated into view and admin",
        )
        for verb in ("get", "list", "watch"):
            assert may(users["view"], verb)
        for verb in ("create", "patch", "delete"):
            assert not may(users["view"], verb)
            assert may(users["edit"], verb)
            assert may(users["admin"], verb)
        for user in users.values():
            assert not may(user, "patch", "status")
            assert not may(user, "update", "status")
    finally:
        for role in roles:
            cluster.kubectl(
                "delete", "clusterrole", role["metadata"]["name"], "--ignore-not-found", check=False
            )
