"""Shared pieces of the fault tests: many one-time schedules, the verdict that each ran
exactly once, the API server's audit log, operator replicas, and a control plane of
their own for tests that break it.

The verdict reads what users can read (Jobs, ``status.executions``,
``status.history``) and, on the local control plane, what only the API server
knows: every create request, with its response code and the User-Agent that
names the replica which sent it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    TRIGGER_LABEL,
    jobs_of,
    parse_time,
    rfc3339,
    schedule,
    suspended_template,
    utcnow,
)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "tests" / "controlplane" / "cluster.sh"


# --- many one-time schedules --------------------------------------------------------------


def spread(*, first: datetime, last: datetime, count: int) -> list[datetime]:
    """``count`` whole-second instants from ``first`` to ``last``, evenly spaced."""
    span = (last - first).total_seconds()
    return [first + timedelta(seconds=round(span * i / max(1, count - 1))) for i in range(count)]


def run_at_schedules(prefix: str, dues: Sequence[datetime]) -> dict[str, datetime]:
    """Schedule names mapped to their one run time (whole seconds, UTC)."""
    return {f"{prefix}{i:03d}": due for i, due in enumerate(dues)}


def apply_run_at(cluster: Cluster, namespace: str, runs: dict[str, datetime]) -> None:
    """One ``kubectl apply`` for all of them, as a GitOps sync would apply them."""
    items = [
        schedule(name, runAt=rfc3339(due), catchUp="Latest", jobTemplate=suspended_template())
        for name, due in runs.items()
    ]
    cluster.apply({"apiVersion": "v1", "kind": "List", "items": items}, namespace=namespace)


def list_schedules(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    resp: Any = client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        "jobwarden.io", "v1alpha1", namespace, "jobschedules", _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(resp.data)["items"]
    return {s["metadata"]["name"]: s for s in items}


def scheduled_count(body: dict[str, Any]) -> int:
    return int(((body.get("status") or {}).get("executions") or {}).get("scheduled") or 0)


def wait_all_scheduled(
    cluster: Cluster, namespace: str, names: Iterable[str], *, timeout: float
) -> dict[str, dict[str, Any]]:
    """The schedules once every one of ``names`` counts at least one scheduled run."""
    wanted = set(names)

    def probe() -> dict[str, dict[str, Any]] | None:
        found = list_schedules(cluster, namespace)
        done = {n for n in wanted if n in found and scheduled_count(found[n]) >= 1}
        return found if done == wanted else None

    return wait_for(
        probe,
        timeout=timeout,
        interval=1.0,
        what=f"all {len(wanted)} schedules in {namespace} to count their run",
    )


@dataclass(frozen=True)
class Verdict:
    jobs: dict[str, list[dict[str, Any]]]  # schedule -> its Jobs
    triggers: Counter[str]
    lateness: dict[str, float]  # schedule -> seconds from its time to its Job's creation

    def late(self, *, by: float) -> list[str]:
        return sorted(n for n, seconds in self.lateness.items() if seconds > by)


def assert_each_ran_exactly_once(
    cluster: Cluster, namespace: str, runs: dict[str, datetime]
) -> Verdict:
    """Each schedule has one Job for its time, counted once, recorded once, nothing missed."""
    bodies = list_schedules(cluster, namespace)
    by_schedule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in cluster.jobs(namespace):
        by_schedule[job["metadata"]["labels"].get(SCHEDULE_LABEL, "")].append(job)
    problems: list[str] = []
    triggers: Counter[str] = Counter()
    lateness: dict[str, float] = {}
    stray = set(by_schedule) - set(runs)
    if stray:
        problems.append(f"Jobs of unknown schedules: {sorted(stray)}")
    for name, due in runs.items():
        jobs = by_schedule.get(name, [])
        status = (bodies.get(name) or {}).get("status") or {}
        counts = status.get("executions") or {}
        history = status.get("history") or []
        if len(jobs) != 1:
            problems.append(f"{name}: {len(jobs)} Jobs {[j['metadata']['name'] for j in jobs]}")
            continue
        job = jobs[0]
        meta = job["metadata"]
        triggers[meta["labels"].get(TRIGGER_LABEL, "?")] += 1
        lateness[name] = (parse_time(meta["creationTimestamp"]) - due).total_seconds()
        if parse_time(meta["annotations"][SCHEDULED_TIME_ANNOTATION]) != due:
            problems.append(
                f"{name}: Job for {meta['annotations'][SCHEDULED_TIME_ANNOTATION]},"
                f" expected {rfc3339(due)}"
            )
        if int(counts.get("scheduled") or 0) != 1:
            problems.append(f"{name}: executions.scheduled={counts.get('scheduled')}")
        if int(counts.get("missed") or 0) != 0:
            problems.append(f"{name}: executions.missed={counts.get('missed')}")
        if [e.get("job") for e in history] != [meta["name"]]:
            problems.append(f"{name}: history {[(e.get('job'), e.get('result')) for e in history]}")
    assert not problems, f"{len(problems)} schedule(s) not run exactly once:\n" + "\n".join(
        problems[:40]
    )
    return Verdict(jobs=dict(by_schedule), triggers=triggers, lateness=lateness)


# --- the audit log ------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    verb: str
    resource: str  # "jobs", "jobschedules/status", ...
    name: str
    code: int
    user_agent: str
    at: datetime  # when the API server received it


def audit_path(cluster: Cluster, *, cluster_name: str | None = None) -> Path | None:
    """The local control plane's audit log; None on any other cluster."""
    if not cluster.local:
        return None
    env = dict(os.environ)
    if cluster_name is not None:
        env["JOBWARDEN_CLUSTER_NAME"] = cluster_name
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "workdir"], capture_output=True, text=True, env=env, check=False
    )
    path = Path(out.stdout.strip()) / "logs" / "audit.log"
    return path if out.returncode == 0 and path.exists() else None


@dataclass(frozen=True)
class AuditMark:
    """Where the audit log stood when a test began.

    kube-apiserver rotates ``audit.log`` at 100 MB by renaming it (the inode
    goes with the old content, to ``audit-<time>.log``) and starting a new
    one; a busy suite rotates it within minutes, so a byte offset alone would
    lose a test's requests. The inode finds the marked file again.
    """

    path: Path
    inode: int
    offset: int


def audit_mark(cluster: Cluster, *, cluster_name: str | None = None) -> AuditMark | None:
    path = audit_path(cluster, cluster_name=cluster_name)
    if path is None:
        return None
    st = path.stat()
    return AuditMark(path=path, inode=st.st_ino, offset=st.st_size)


def _audit_files(mark: AuditMark) -> list[tuple[Path, int]]:
    """(file, byte to start at) for everything logged since ``mark``, oldest first."""
    files = sorted(mark.path.parent.glob("audit*.log"), key=lambda p: p.stat().st_mtime)
    start = next((i for i, p in enumerate(files) if p.stat().st_ino == mark.inode), None)
    if start is None:
        raise AssertionError(f"the audit log marked at {mark} is gone")
    return [(files[start], mark.offset)] + [(p, 0) for p in files[start + 1 :]]


def audit_requests(mark: AuditMark, *, namespace: str) -> list[Request]:
    """The completed resource requests in ``namespace`` since ``mark``."""
    needle = f'"namespace":"{namespace}"'.encode()
    found: dict[str, Request] = {}
    for path, offset in _audit_files(mark):
        with path.open("rb") as f:
            f.seek(offset)
            for raw in f:
                if needle not in raw:
                    continue
                entry = json.loads(raw)
                ref = entry.get("objectRef") or {}
                if entry.get("stage") != "ResponseComplete" or ref.get("namespace") != namespace:
                    continue
                resource = ref.get("resource", "") + (
                    f"/{ref['subresource']}" if ref.get("subresource") else ""
                )
                found[entry["auditID"]] = Request(
                    verb=entry["verb"],
                    resource=resource,
                    name=ref.get("name", ""),
                    code=int((entry.get("responseStatus") or {}).get("code") or 0),
                    user_agent=entry.get("userAgent", ""),
                    at=parse_time(entry["requestReceivedTimestamp"]),
                )
    return sorted(found.values(), key=lambda r: r.at)


WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def writes_by(requests: Iterable[Request], replica: str) -> list[Request]:
    """Writes sent by the replica whose identity is ``replica`` (its User-Agent names it)."""
    return [r for r in requests if r.verb in WRITES and f"({replica})" in r.user_agent]


# --- replicas -----------------------------------------------------------------------------


def replica(
    cluster: Cluster,
    *,
    namespaces: list[str],
    log_path: Path,
    lease: str | None,
    lease_namespace: str,
    identity: str,
) -> OperatorProcess:
    env = {"POD_NAME": identity}
    if lease is not None:
        env.update(JOBWARDEN_LEASE=lease, JOBWARDEN_LEASE_NAMESPACE=lease_namespace)
    return OperatorProcess(cluster=cluster, namespaces=namespaces, log_path=log_path, extra_env=env)


RecordProperty = Callable[[str, object], None]  # pytest's record_property fixture


def at_or_after(moment: datetime) -> Callable[[], bool]:
    """A wait_for predicate: the clock has reached ``moment``."""
    return lambda: utcnow() >= moment


def jobs_present(
    cluster: Cluster, namespace: str, name: str, *, count: int | None = None
) -> Callable[[], bool]:
    """A wait_for predicate: ``name`` has Jobs (exactly ``count`` of them, if given)."""

    def probe() -> bool:
        found = len(jobs_of(cluster, namespace, name))
        return found == count if count is not None else found > 0

    return probe


def leading(proc: OperatorProcess) -> bool | None:
    """Whether the replica says it acts (its jobwarden_leader gauge); None if unreachable."""
    try:
        text = proc.metrics()
    except OSError:  # not listening (yet), or gone
        return None
    for line in text.splitlines():
        if line.startswith("jobwarden_leader "):
            return float(line.split()[1]) == 1.0
    return None


def lease_holder(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        resp: Any = client.CoordinationV1Api(cluster.api).read_namespaced_lease(
            name, namespace, _preload_content=False
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    spec: dict[str, Any] = json.loads(resp.data).get("spec") or {}
    return spec


# --- a control plane of one's own ---------------------------------------------------------


class SeparateControlPlane:
    """A second local control plane, so breaking its API server disturbs no other test.

    ``cluster.sh`` keeps clusters apart by name: state, kubeconfig, kwok work
    directory and ports are all the name's own.
    """

    COMPONENTS = (
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok-controller",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.env = dict(os.environ, JOBWARDEN_CLUSTER_NAME=name)

    @classmethod
    def beside(cls, suffix: str) -> SeparateControlPlane:
        """A plane named after this session's cluster: runs side by side never share one."""
        return cls(f"{os.environ.get('JOBWARDEN_CLUSTER_NAME') or 'jobwarden'}-{suffix}")

    def _script(self, *args: str) -> str:
        out = subprocess.run(
            ["bash", str(CLUSTER_SH), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
            check=False,
        )
        assert out.returncode == 0, f"cluster.sh {' '.join(args)} ({self.name}): {out.stderr}"
        return out.stdout.strip()

    def up(self) -> Cluster:
        kubeconfig = Path(self._script("up").splitlines()[-1])
        self.bin_dir = Path(self._script("bin-dir"))
        self.workdir = Path(self._script("workdir"))
        self.cluster = Cluster(kubeconfig=kubeconfig, bin_dir=self.bin_dir, local=True)
        return self.cluster

    def down(self) -> None:
        self._script("down")

    def pid(self, component: str) -> int | None:
        path = self.workdir / "pids" / f"{component}.pid"
        try:
            pid = int(path.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def kill(self, component: str) -> None:
        pid = self.pid(component)
        assert pid is not None, f"{component} of {self.name} is not running"
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: self.pid(component) is None,
            timeout=10,
            what=f"{component} of {self.name} to die",
        )

    def ready(self) -> bool:
        out = subprocess.run(
            [
                str(self.bin_dir / "kubectl"),
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "--request-timeout=3s",
                "get",
                "--raw",
                "/readyz",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode == 0

    def start(self, *, need: tuple[str, ...] | None = None) -> None:
        """Start whatever is not running (kwokctl skips live components), until ``need``
        (default: every component) runs and the API server is ready.

        kube-controller-manager exits by itself when it cannot renew its own
        lease during an outage, possibly after the first start: so check again.
        A test that needs only the API server says so, and does not wait on that.
        """
        needed = need or self.COMPONENTS

        def running() -> bool:
            subprocess.run(
                [str(self.bin_dir / "kwokctl"), "start", "cluster", "--name", self.name],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=180,
                check=False,
            )
            return self.ready() and all(self.pid(c) is not None for c in needed)

        wait_for(
            running,
            timeout=120,
            interval=1.0,
            what=f"{', '.join(needed)} of {self.name} running and the API server ready",
        )

    def install_crds(self) -> None:
        self.cluster.install_crds(ROOT / "crds")
