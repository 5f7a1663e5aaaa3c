"""Shared machinery of the cluster benchmarks (lag, throughput, idle, memory).

Every benchmark runs against the local control plane (or the cluster
``KUBECONFIG`` names), in namespaces of its own that it deletes afterwards.
The pieces here exist so that the benchmarks measure jobwarden and its peer,
kube-controller-manager's CronJob controller, the same way:

* ``Bench``: API clients, namespaces, and an identity for the operator. The
  operator runs as a ServiceAccount of its own, so the API server's audit
  log can tell its requests from everyone else's (other engineers run tests
  on this control plane at the same time);
* ``Operator``: the ``jobwarden`` console script as a child process, with its
  CPU time and resident memory read from ``/proc``;
* ``JobWatch``: a watch on Jobs that stamps each ADDED event with the local
  clock as it arrives (``creationTimestamp`` only has 1-second resolution);
* ``bulk``: many objects created quickly from a thread pool;
* ``burst``: N schedules (JobSchedules or CronJobs) all due at one minute
  boundary, measured from that boundary to each Job's ADDED event.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = ROOT / "tests" / "controlplane" / "cluster.sh"
GROUP, VERSION, PLURAL = "jobwarden.io", "v1alpha1", "jobschedules"
USER_AGENT = "jobwarden-bench"
# The operator's identity (a ServiceAccount in a namespace of each run's own): its
# requests are the audit log entries with that user (``Bench.operator_user``).
SA_NAME = "operator"
# The thread pool and connection pool of jobwarden's kube.Kube: raw baselines use the same.
OPERATOR_CONCURRENCY = 32


def say(message: str) -> None:
    """Progress goes to stderr, so stdout carries only the figures."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    """The 1/5/15-minute load averages, printed beside every figure (2 shared cores)."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was observed, never an interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned table (also valid Markdown), for the terminal and the README."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _cluster(*args: str) -> str:
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), *args], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def _configuration(kubeconfig: Path) -> client.Configuration:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return configuration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- cluster access ---------------------------------------------------------------------


class Bench:
    """Clients, namespaces and the operator's identity for one benchmark run.

    Use as a context manager: everything it created (namespaces, the
    ServiceAccount's namespace and binding) is deleted on the way out, even
    after an error or Ctrl-C.
    """

    def __init__(self, *, pool: int = 64) -> None:
        if os.environ.get("JOBWARDEN_TEST_KUBECONFIG") == "1":
            self.kubeconfig = Path(os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser()
            self.bin_dir: Path | None = None
        else:
            self.kubeconfig = Path(_cluster("kubeconfig"))
            self.bin_dir = Path(_cluster("bin-dir"))
        self.configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=self.configuration
        )
        self.configuration.connection_pool_maxsize = pool
        self.api = client.ApiClient(self.configuration)
        self.api.user_agent = USER_AGENT
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self._namespaces: list[str] = []
        # mkdtemp, not TemporaryDirectory: that one removes itself at exit, kept logs too.
        self.tmp = Path(tempfile.mkdtemp(prefix="jobwarden-bench-"))
        self._operator_kubeconfig: Path | None = None
        self._operators: list[Operator] = []
        # Unique per run: a namespace still terminating from an earlier run would
        # revoke the new ServiceAccount's token under the operator.
        self.identity_namespace = f"bench-identity-{uuid.uuid4().hex[:6]}"
        self.operator_user = f"system:serviceaccount:{self.identity_namespace}:{SA_NAME}"
        self._install_crd()

    def _install_crd(self) -> None:
        """Apply the CRD (a fresh cluster has none) and wait until it is served."""
        kubectl = str(self.bin_dir / "kubectl") if self.bin_dir else "kubectl"
        base = [kubectl, "--kubeconfig", str(self.kubeconfig)]
        subprocess.run(
            [*base, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *base,
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                f"crd/{PLURAL}.{GROUP}",
            ],
            check=True,
            capture_output=True,
        )

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        for op in self._operators:
            op.stop()
        for ns in list(self._namespaces):
            self.delete_namespace(ns, wait=False)
        if self._operator_kubeconfig is not None:
            with contextlib.suppress(ApiException):
                self.rbac.delete_cluster_role_binding(self.identity_namespace)
            self.delete_namespace(self.identity_namespace, wait=False)
        if os.environ.get("JOBWARDEN_BENCH_KEEP_LOGS"):
            say(f"operator logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def audit_log(self) -> Path:
        return Path(_cluster("workdir")) / "logs" / "audit.log"

    # namespaces

    def namespace(self, prefix: str) -> str:
        name = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
        self.core.create_namespace({"metadata": {"name": name}})
        self._namespaces.append(name)
        return name

    def delete_namespace(self, name: str, *, wait: bool = True, timeout: float = 300) -> float:
        """Delete a namespace; with ``wait``, until it is gone (returns the seconds taken)."""
        began = time.monotonic()
        with contextlib.suppress(ApiException):
            self.core.delete_namespace(name)
        if name in self._namespaces:
            self._namespaces.remove(name)
        if not wait:
            return 0.0
        while time.monotonic() - began < timeout:
            try:
                self.core.read_namespace(name, _preload_content=False)
            except ApiException as exc:
                if exc.status == 404:
                    return time.monotonic() - began
                raise
            time.sleep(0.5)
        say(f"namespace {name} still terminating after {timeout:.0f}s; moving on")
        return time.monotonic() - began

    # the operator's identity

    def operator_kubeconfig(self) -> Path:
        """A kubeconfig for a ServiceAccount that is the operator's alone.

        cluster-admin keeps the benchmark independent of the chart's RBAC
        (tested elsewhere); what matters here is a distinct user name.
        """
        if self._operator_kubeconfig is not None:
            return self._operator_kubeconfig
        ns = self.identity_namespace
        self.core.create_namespace({"metadata": {"name": ns}})
        self.core.create_namespaced_service_account(ns, {"metadata": {"name": SA_NAME}})
        self.rbac.create_cluster_role_binding(
            {
                "metadata": {"name": ns},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": ns}],
            }
        )
        token = self.core.create_namespaced_service_account_token(
            SA_NAME, ns, {"spec": {"expirationSeconds": 4 * 3600}}
        ).status.token
        c = self.configuration
        ca = Path(c.ssl_ca_cert).read_bytes() if c.ssl_ca_cert else b""
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "bench",
            "clusters": [
                {
                    "name": "bench",
                    "cluster": {
                        "server": c.host,
                        "certificate-authority-data": base64.b64encode(ca).decode(),
                    },
                }
            ],
            "users": [{"name": "bench", "user": {"token": token}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
        }
        path = self.tmp / "operator.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig))
        path.chmod(0o600)
        # The new binding reaches the authorizer within moments; wait for it.
        probe = client.ApiClient(_configuration(path))
        deadline = time.monotonic() + 30
        while True:
            try:
                client.BatchV1Api(probe).list_namespaced_job(ns, limit=1, _preload_content=False)
                break
            except ApiException as exc:
                if exc.status not in (401, 403) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        probe.close()
        self._operator_kubeconfig = path
        return path

    def operator(
        self,
        *,
        namespaces: Sequence[str],
        name: str = "operator",
        profile: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Operator:
        op = Operator(
            kubeconfig=self.operator_kubeconfig(),
            namespaces=namespaces,
            log_path=self.tmp / f"{name}.log",
            profile=profile,
            env=env or {},
        )
        self._operators.append(op)
        return op

    # objects

    def list_names(self, namespace: str, *, kind: str) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            if kind == "jobschedules":
                resp = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, **kwargs
                )
            elif kind == "jobs":
                resp = self.batch.list_namespaced_job(namespace, **kwargs)
            else:
                resp = self.batch.list_namespaced_cron_job(namespace, **kwargs)
            data = json.loads(resp.data)
            names += [i["metadata"]["name"] for i in data["items"]]
            token = data["metadata"].get("continue")
            if not token:
                return names


def bulk(
    create: Callable[[dict[str, Any]], object],
    bodies: Sequence[dict[str, Any]],
    *,
    threads: int = 32,
) -> float:
    """Create ``bodies`` from ``threads`` threads; returns the seconds it took.

    A conflict (the object exists) counts as done, so a retried run converges.
    """

    def one(body: dict[str, Any]) -> None:
        for attempt in range(5):
            try:
                response = create(body)
                # Read the raw body: that returns the connection to the pool. Left
                # unread, every call opened a new TLS connection (half the rate).
                getattr(response, "data", None)
                return
            except ApiException as exc:
                if exc.status == 409:
                    return
                if exc.status in (429, 500, 503, 504) and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, bodies))
    return time.monotonic() - began


def create_schedules(
    bench: Bench, namespace: str, bodies: Sequence[dict[str, Any]], *, threads: int = 32
) -> float:
    def create(body: dict[str, Any]) -> object:
        return bench.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, _preload_content=False
        )

    return bulk(create, bodies, threads=threads)


def create_cronjobs(
    bench: Bench, namespace: str, bodies: Sequence[dict[str, Any]], *, threads: int = 32
) -> float:
    def create(body: dict[str, Any]) -> object:
        return bench.batch.create_namespaced_cron_job(namespace, body, _preload_content=False)

    return bulk(create, bodies, threads=threads)


# --- what gets scheduled ----------------------------------------------------------------


def job_template(*, suspend: bool) -> dict[str, Any]:
    """The Job template of every benchmark schedule.

    ``suspend: true`` (the default of the benchmarks) creates Jobs that start
    no pods: the figures are the scheduler's, not those of the Job controller,
    kube-scheduler and kwok moving a thousand pods at the same instant. Without
    it, pods run for one second on the fake nodes.
    """
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"annotations": {"jobwarden.test/run-seconds": "1s"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}],
            },
        },
    }
    if suspend:
        spec["suspend"] = True
    return {"spec": spec}


def cron_at(moment: datetime) -> str:
    """A daily cron expression (UTC) due at ``moment``'s minute: the commonest kind of schedule.

    The next run is a day away, long after the benchmark has deleted it.
    """
    m = moment.astimezone(UTC)
    return f"{m.minute} {m.hour} * * *"


def jobschedule(name: str, *, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobSchedule",
        "metadata": {"name": name},
        "spec": dict(spec),
    }


def cronjob(name: str, *, schedule: str, template: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": schedule, "timeZone": "Etc/UTC", "jobTemplate": dict(template)},
    }


def not_due_spec(*, suspend_jobs: bool = True) -> dict[str, Any]:
    """A schedule with nothing to do for months: a one-time run next year."""
    year = datetime.now(UTC).year + 1
    return {"runAt": f"{year}-06-01T00:00:00Z", "jobTemplate": job_template(suspend=suspend_jobs)}


# --- the operator -----------------------------------------------------------------------


@dataclass
class ProcStat:
    cpu_seconds: float  # user + system, all threads
    rss_kib: int


def proc_stat(pid: int) -> ProcStat:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return ProcStat(cpu_seconds=cpu, rss_kib=rss)


class Operator:
    """The ``jobwarden`` console script watching the bench namespaces.

    With ``profile``, it runs under ``python -m cProfile -o profile`` instead
    (the profile is written when it stops on SIGTERM/SIGINT).
    """

    def __init__(
        self,
        *,
        kubeconfig: Path,
        namespaces: Sequence[str],
        log_path: Path,
        profile: Path | None,
        env: Mapping[str, str],
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = list(namespaces)
        self.log_path = log_path
        self.profile = profile
        self.extra_env = dict(env)
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_wall = 0.0

    def command(self) -> list[str]:
        exe = Path(sys.executable).with_name("jobwarden")
        if self.profile is None:
            return [str(exe)]
        return [sys.executable, "-m", "cProfile", "-o", str(self.profile), str(exe)]

    def start(self, *, timeout: float = 120) -> float:
        """Start and wait for /healthz; returns the seconds to healthy."""
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "JOBWARDEN_NAMESPACES": ",".join(self.namespaces),
                "JOBWARDEN_METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}",
                "JOBWARDEN_HEALTH_ADDRESS": f"127.0.0.1:{self.health_port}",
            }
        )
        env.update(self.extra_env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.started_wall = time.time()
        began = time.monotonic()
        self.proc = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log()}")
            if self.healthy():
                return time.monotonic() - began
            time.sleep(0.2)
        raise RuntimeError(f"operator not healthy after {timeout}s:\n{self.log()[-4000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stat(self) -> ProcStat:
        return proc_stat(self.pid)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        """The operator's /metrics as {series: value} (labels kept in the key)."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10
        ) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[key] = float(value)
        return out

    def schedules_reconciled(self) -> int:
        """Schedules the operator has reconciled at least once (its health gauge's total)."""
        return int(
            sum(v for k, v in self.metrics().items() if k.startswith("jobwarden_schedules{"))
        )

    def runs_started(self) -> int:
        return int(
            sum(
                v
                for k, v in self.metrics().items()
                if k.startswith("jobwarden_runs_total{") and 'result="Started"' in k
            )
        )

    def wait_reconciled(self, count: int, *, timeout: float) -> float:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.schedules_reconciled() >= count:
                return time.monotonic() - began
            time.sleep(0.5)
        raise RuntimeError(
            f"operator reconciled {self.schedules_reconciled()} of {count} schedules in {timeout}s"
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT if self.profile else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# --- watching Jobs arrive ---------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    wall: float  # time.time() when the ADDED event arrived
    mono: float  # time.monotonic() at the same instant


@dataclass
class JobWatch:
    """Stamps every Job ADDED in ``namespace`` as this client receives the event.

    The stamp is taken when the event's line arrives, before it is parsed, so
    the figure is creation plus watch delivery (milliseconds on loopback) and
    does not depend on the 1-second resolution of ``creationTimestamp``.
    """

    bench: Bench
    namespace: str
    added: dict[str, Stamp] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    def __enter__(self) -> JobWatch:
        self._thread = threading.Thread(
            target=self._run, name=f"watch {self.namespace}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"watch on {self.namespace} did not start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            listed = json.loads(
                self.bench.batch.list_namespaced_job(
                    self.namespace, limit=1, _preload_content=False
                ).data
            )
            rv = listed["metadata"]["resourceVersion"]
            self._ready.set()
            while not self._stop.is_set():
                resp = self.bench.batch.list_namespaced_job(
                    self.namespace,
                    watch=True,
                    resource_version=rv,
                    timeout_seconds=60,
                    allow_watch_bookmarks=True,
                    _preload_content=False,
                    _request_timeout=(10, 90),
                )
                try:
                    for line in iter_resp_lines(resp):
                        wall, mono = time.time(), time.monotonic()
                        if not line:
                            continue
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                        if event.get("type") == "ADDED":
                            with self._cond:
                                self.added.setdefault(obj["metadata"]["name"], Stamp(wall, mono))
                                self._cond.notify_all()
                        elif event.get("type") == "ERROR":
                            raise RuntimeError(f"watch error: {obj}")
                        if self._stop.is_set():
                            break
                finally:
                    resp.release_conn()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            with self._cond:
                self._cond.notify_all()

    def wait(self, count: int, *, until_wall: float) -> int:
        """Wait until ``count`` Jobs were added or the wall clock passes ``until_wall``."""
        with self._cond:
            while len(self.added) < count and time.time() < until_wall and self._error is None:
                self._cond.wait(timeout=min(1.0, max(0.01, until_wall - time.time())))
            if self._error is not None:
                raise RuntimeError(f"watch failed: {self._error!r}")
            return len(self.added)


# --- a burst of runs due at one minute boundary ----------------------------------------


@dataclass
class Burst:
    """N schedules of one kind due at one minute boundary, and when their Jobs appeared."""

    kind: str  # "jobwarden" or "cronjob"
    n: int
    due: float  # the boundary, as a wall-clock timestamp
    lags: list[float]  # seconds from ``due`` to each Job's ADDED event, ascending
    first_to_last: float  # seconds between the first and the last ADDED event
    setup_seconds: float  # creating the N objects (and, for jobwarden, their first reconcile)
    created_seconds: float  # creating the N objects alone
    settle_seconds: float = math.nan  # jobwarden: due -> every run's bookkeeping done
    cpu_seconds: float = math.nan  # jobwarden: operator CPU from due to settled
    burst_cpu_seconds: float = math.nan  # jobwarden: operator CPU from due to the last Job
    load: str = ""

    @property
    def missing(self) -> int:
        return self.n - len(self.lags)

    def p(self, pct: float) -> float:
        return percentile(self.lags, pct)

    @property
    def rate(self) -> float:
        """Jobs per second within the burst: first to last ADDED event."""
        if len(self.lags) < 2 or self.first_to_last <= 0:
            return math.nan
        return (len(self.lags) - 1) / self.first_to_last


def margin_for(n: int) -> float:
    """Seconds of lead time before the boundary: creation plus first reconcile of N objects."""
    return 20 + 0.05 * n


def next_boundary(*, margin: float) -> datetime:
    """The first minute boundary at least ``margin`` seconds away: the same rule for both kinds."""
    earliest = datetime.now(UTC) + timedelta(seconds=margin)
    boundary = earliest.replace(second=0, microsecond=0)
    return boundary if boundary >= earliest else boundary + timedelta(minutes=1)


def _sleep_until(wall: float) -> None:
    while (left := wall - time.time()) > 0:
        time.sleep(min(left, 1.0))


def burst(
    bench: Bench,
    *,
    kind: str,
    n: int,
    suspend_jobs: bool = True,
    profile: Path | None = None,
    cleanup: bool = True,
    operator_env: Mapping[str, str] | None = None,
) -> Burst:
    """One phase: N schedules of ``kind`` due at the next feasible minute, measured.

    For jobwarden the operator is started on an empty namespace first, then
    the schedules are created and each gets its first reconcile before the
    boundary; for CronJobs kube-controller-manager is always running. Both
    kinds get the same lead time (``margin_for``) and the same cron expression.
    """
    ns = bench.namespace(f"{'jw' if kind == 'jobwarden' else 'cj'}{n}")
    op: Operator | None = None
    try:
        if kind == "jobwarden":
            op = bench.operator(
                namespaces=[ns], name=f"burst-{n}-{ns}", profile=profile, env=operator_env
            )
            op.start()
        boundary = next_boundary(margin=margin_for(n))
        due = boundary.timestamp()
        expr = cron_at(boundary)
        template = job_template(suspend=suspend_jobs)
        say(f"{kind} N={n}: due {boundary:%H:%M:%S} ({due - time.time():.0f}s away), ns {ns}")
        with JobWatch(bench, ns) as watch:
            began = time.monotonic()
            if kind == "jobwarden":
                bodies = [
                    jobschedule(f"s{i:05d}", spec={"schedule": expr, "jobTemplate": template})
                    for i in range(n)
                ]
                created = create_schedules(bench, ns, bodies)
                assert op is not None
                op.wait_reconciled(n, timeout=max(5.0, due - time.time() - 2))
            else:
                bodies = [cronjob(f"c{i:05d}", schedule=expr, template=template) for i in range(n)]
                created = create_cronjobs(bench, ns, bodies)
            setup = time.monotonic() - began
            if time.time() > due - 1:
                raise RuntimeError(f"setup took {setup:.1f}s, past the boundary; raise the margin")
            cpu0 = op.stat().cpu_seconds if op else math.nan
            _sleep_until(due - 0.5)
            load_now = load()
            seen = watch.wait(n, until_wall=due + max(90.0, n * 0.5))
            burst_cpu = op.stat().cpu_seconds - cpu0 if op else math.nan
            stamps = sorted(s.wall for s in watch.added.values())
        settle = cpu = math.nan
        if op is not None:
            while op.runs_started() < seen and time.time() < due + 300:
                time.sleep(0.2)
            settle = time.time() - due
            cpu = op.stat().cpu_seconds - cpu0
        result = Burst(
            kind=kind,
            n=n,
            due=due,
            lags=[s - due for s in stamps],
            first_to_last=(stamps[-1] - stamps[0]) if stamps else math.nan,
            setup_seconds=setup,
            created_seconds=created,
            settle_seconds=settle,
            cpu_seconds=cpu,
            burst_cpu_seconds=burst_cpu,
            load=load_now,
        )
        say(
            f"{kind} N={n}: {seen}/{n} Jobs, p50 {result.p(50):.3f}s p99 {result.p(99):.3f}s "
            f"max {result.p(100):.3f}s (load {load_now})"
        )
        return result
    finally:
        if op is not None:
            op.stop()
        if cleanup:
            bench.delete_namespace(ns, wait=True)


# --- the audit log ----------------------------------------------------------------------


_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


def _ts(text: str) -> float:
    m = _TS.match(text)
    if not m:
        return math.nan
    whole = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return whole + float(f"0.{m.group(2)}") if m.group(2) else whole


@dataclass(frozen=True)
class Request:
    received: float
    verb: str
    resource: str
    user_agent: str


def audit_requests(
    path: Path, *, offset: int, user: str, since: float, until: float
) -> tuple[list[Request], int]:
    """The requests of ``user`` received in [since, until), read from byte ``offset`` on.

    Each request is counted once (by audit ID), whatever stages were logged;
    returns them and the offset where reading stopped.
    """
    seen: dict[str, Request] = {}
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            if user.encode() not in raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if (entry.get("user") or {}).get("username") != user:
                continue
            received = _ts(entry.get("requestReceivedTimestamp", ""))
            if not since <= received < until:
                continue
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", entry.get("requestURI", "?"))
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            seen.setdefault(
                entry["auditID"],
                Request(received, entry.get("verb", "?"), resource, entry.get("userAgent", "")),
            )
        end = f.tell()
    return sorted(seen.values(), key=lambda r: r.received), end


def audit_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    say(f"{label}: {time.monotonic() - began:.1f}s")
