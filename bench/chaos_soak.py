"""Chaos soak: N schedules due every minute, two replicas, and faults all along.

Run with ``.venv/bin/python bench/chaos_soak.py [--minutes 30] [--schedules 500]``
against the local control plane, alone on it: the API server and etcd of that
control plane are restarted and paused (use ``JOBWARDEN_CLUSTER_NAME`` to give
the soak a control plane of its own).

Two operator replicas share a leader Lease. During the run the script:

* SIGKILLs a random replica at random moments (``--kills``; default one per
  three minutes); a killed replica is started again 1-4 s later, as the
  kubelet restarts a crashed container;
* kills kube-apiserver and starts it again (kwokctl), kills etcd and starts
  it again, and stops kube-apiserver with SIGSTOP for 20 s (every connection
  hangs rather than fails), each once, at random moments in slots of their own;
* plays the kubelet's liveness probe with the chart's timing (initial delay,
  period, failure threshold from charts/jobwarden/values.yaml): a replica
  failing /healthz that many times in a row is SIGKILLed and restarted.

Each schedule's Jobs complete at once (``completions: 0``, no pods), and the
finished ones beyond one are deleted by the operator, so the soak also
exercises recording and deleting runs while faults land.

Report: scheduled times in the measured window (every minute from the first
one after all schedules were reconciled to the last one at least 40 s before
the end), Jobs created for them (a watch keyed by uid, so a Job deleted and
created again counts twice), duplicates (a run created more than once; also
Job names the API server accepted twice, from the audit log), missing runs,
lateness, the longest stall while runs were due (from a minute boundary to
its first Job, or between two Jobs of a minute still incomplete), every fault
with its time, and restarts by the liveness probe and after exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from audit import Request, audit_requests
from common import ROOT, load, percentile, say, table
from harness import Bench, create_schedules
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines
from objects import jobschedule
from operator_process import Operator

sys.path.insert(0, str(ROOT))
import itertools

from tests.cluster._faults import SeparateControlPlane

SCHEDULE_LABEL = "jobwarden.io/schedule"
SCHEDULED_TIME = "jobwarden.io/scheduled-time"
LEASE = "jobwarden-soak"
STALL_SECONDS = 20.0


# --- Jobs as they are created -------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    schedule: str
    scheduled: float  # epoch seconds of the run's scheduled time
    seen: float  # time.time() when the watch delivered ADDED
    name: str


@dataclass
class JobLog:
    """Every Job ADDED in the namespace, keyed by uid, through watch breaks and relists."""

    bench: Bench
    namespace: str
    created: dict[str, Created] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        threading.Thread(target=self._run, name="job log", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _add(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid", "")
        stamp = (meta.get("annotations") or {}).get(SCHEDULED_TIME)
        owner = (meta.get("labels") or {}).get(SCHEDULE_LABEL)
        if not uid or not stamp or not owner:
            return
        scheduled = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        with self._lock:
            self.created.setdefault(uid, Created(owner, scheduled, time.time(), meta["name"]))

    def snapshot(self) -> list[Created]:
        with self._lock:
            return list(self.created.values())

    def _run(self) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:  # (re)list: Jobs created while no watch was open
                    listed = json.loads(
                        self.bench.batch.list_namespaced_job(
                            self.namespace, _preload_content=False, _request_timeout=30
                        ).data
                    )
                    for item in listed["items"]:
                        self._add(item)
                    rv = listed["metadata"]["resourceVersion"]
                resp = self.bench.batch.list_namespaced_job(
                    self.namespace,
                    watch=True,
                    resource_version=rv,
                    timeout_seconds=30,
                    allow_watch_bookmarks=True,
                    _preload_content=False,
                    _request_timeout=(5, 45),
                )
                for line in iter_resp_lines(resp):
                    if not line:
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        rv = None  # 410 Gone and the like: list again
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                    if event.get("type") == "ADDED":
                        self._add(obj)
            except Exception:  # the API server is down or hangs: try again shortly
                rv = None
                self._stop.wait(1.0)


# --- replicas and the kubelet's part ------------------------------------------------------


@dataclass
class Replica:
    name: str
    op: Operator
    liveness_restarts: int = 0
    exit_restarts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alive(self) -> bool:
        return self.op.proc is not None and self.op.proc.poll() is None

    def kill(self) -> None:
        with self.lock:
            if self.alive():
                assert self.op.proc is not None
                os.kill(self.op.proc.pid, signal.SIGKILL)
                self.op.proc.wait(timeout=30)

    def restart(self) -> None:
        """Start it again without waiting for health (the probe judges that)."""
        # Not healthy yet raises: the probe decides whether it becomes so.
        with self.lock, contextlib.suppress(RuntimeError):
            self.op.start(timeout=0.01)


@dataclass(frozen=True)
class Probe:
    """The chart's livenessProbe timing (charts/jobwarden/values.yaml), as a kubelet runs it."""

    initial_delay: float
    period: float
    failures: int

    @classmethod
    def from_chart(cls) -> Probe:
        values = yaml.safe_load((ROOT / "charts" / "jobwarden" / "values.yaml").read_text())
        probe = values["livenessProbe"]
        return cls(
            initial_delay=float(probe.get("initialDelaySeconds", 0)),
            period=float(probe.get("periodSeconds", 10)),
            failures=int(probe.get("failureThreshold", 3)),
        )


def kubelet(replicas: list[Replica], stop: threading.Event, events: list[str]) -> None:
    """Restart an exited replica 1-4 s later; kill and restart one whose /healthz fails
    ``failureThreshold`` probes in a row, probing as the chart's livenessProbe says."""
    probe = Probe.from_chart()
    failures = dict.fromkeys((r.name for r in replicas), 0)
    next_probe = dict.fromkeys((r.name for r in replicas), time.monotonic() + probe.initial_delay)
    exited_at: dict[str, float] = {}

    def restarted(r: Replica) -> None:
        r.restart()
        next_probe[r.name] = time.monotonic() + probe.initial_delay
        failures[r.name] = 0

    while not stop.wait(0.5):
        for r in replicas:
            now = time.monotonic()
            if not r.alive():
                exited_at.setdefault(r.name, now + random.uniform(1, 4))
                if now >= exited_at[r.name]:
                    del exited_at[r.name]
                    r.exit_restarts += 1
                    restarted(r)
                continue
            if now < next_probe[r.name]:
                continue
            next_probe[r.name] = now + probe.period
            failures[r.name] = 0 if r.op.healthy() else failures[r.name] + 1
            if failures[r.name] >= probe.failures:
                events.append(
                    f"{stamp()} liveness: {r.name} failed {probe.failures} probes: restarted"
                )
                say(events[-1])
                r.kill()
                r.liveness_restarts += 1
                restarted(r)


def stamp() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


# --- faults -------------------------------------------------------------------------------


def faults(
    plane: SeparateControlPlane, replicas: list[Replica], *, kills: int
) -> list[tuple[str, Callable[[], None]]]:
    """The faults of one soak, each a named action; the caller spreads them in time."""

    def kill_replica() -> None:
        victim = random.choice(replicas)
        say(f"SIGKILL {victim.name}")
        victim.kill()

    def restart(component: str) -> Callable[[], None]:
        def act() -> None:
            plane.kill(component)
            plane.start()

        return act

    def stall() -> None:
        pid = plane.pid("kube-apiserver")
        assert pid is not None, "kube-apiserver is not running"
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(STALL_SECONDS)  # the fault's length
        finally:
            os.kill(pid, signal.SIGCONT)
        # kube-controller-manager and kube-scheduler exit when they cannot renew their
        # own leases; on a node the kubelet starts them again.
        plane.start()

    actions: list[tuple[str, Callable[[], None]]] = [
        ("SIGKILL a replica", kill_replica) for _ in range(kills)
    ]
    actions += [
        ("restart kube-apiserver", restart("kube-apiserver")),
        ("restart etcd", restart("etcd")),
        (f"stall kube-apiserver {STALL_SECONDS:g}s (SIGSTOP)", stall),
    ]
    random.shuffle(actions)
    return actions


# --- the figures --------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    minutes: list[float]
    expected: int
    created: int
    duplicates: list[tuple[str, float, int]]
    missing: list[tuple[str, float]]
    lateness: list[float]
    longest_stall: float
    longest_stall_at: float
    accepted_twice: list[str]


def figures(
    log: list[Created], names: list[str], first: float, last: float, accepted: list[Request]
) -> Figures:
    minutes = [first + 60 * i for i in range(int((last - first) // 60) + 1)]
    wanted = set(minutes)
    runs: dict[tuple[str, float], list[Created]] = defaultdict(list)
    for c in log:
        if c.scheduled in wanted:
            runs[(c.schedule, c.scheduled)].append(c)
    duplicates = [(s, t, len(cs)) for (s, t), cs in runs.items() if len(cs) > 1]
    missing = [(n, m) for m in minutes for n in names if (n, m) not in runs]
    lateness = [min(c.seen for c in cs) - t for (_, t), cs in runs.items()]
    stall, stall_at = 0.0, first
    for m in minutes:
        seen = sorted(min(c.seen for c in cs) for (_, t), cs in runs.items() if t == m)
        points = [m, *seen]
        if len(seen) < len(names):  # runs of this minute never came: until the next minute
            points.append(m + 60)
        for a, b in itertools.pairwise(points):
            if b - a > stall:
                stall, stall_at = b - a, a
    counts = Counter(r.name for r in accepted if r.code == 201)
    return Figures(
        minutes=minutes,
        expected=len(minutes) * len(names),
        created=sum(len(cs) for cs in runs.values()),
        duplicates=duplicates,
        missing=missing,
        lateness=lateness,
        longest_stall=stall,
        longest_stall_at=stall_at,
        accepted_twice=sorted(n for n, c in counts.items() if c > 1),
    )


def job_creates(audit_dir: Path, *, start_inode: int, start_offset: int, user: str,
                since: float, until: float) -> list[Request]:  # fmt: skip
    """Job creates by ``user`` in every audit file written since the start (it rotates)."""
    found: list[Request] = []
    for path in sorted(audit_dir.glob("audit*.log"), key=lambda p: p.stat().st_mtime):
        st = path.stat()
        if st.st_mtime < since:
            continue
        offset = start_offset if st.st_ino == start_inode else 0
        requests, _ = audit_requests(path, offset=offset, user=user, since=since, until=until)
        found += [r for r in requests if r.verb == "create" and r.resource == "jobs"]
    return found


# --- the soak -----------------------------------------------------------------------------


def template() -> dict[str, Any]:
    """A Job that completes at once, with no pod: the run's whole life without kwok's load."""
    return {
        "spec": {
            "completions": 0,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}],
                }
            },
        }
    }


def wait_reconciled(bench: Bench, namespace: str, count: int, timeout: float = 300) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            data = json.loads(
                bench.custom.list_namespaced_custom_object(
                    "jobwarden.io", "v1alpha1", namespace, "jobschedules", _preload_content=False
                ).data
            )
        except ApiException:
            data = {"items": []}
        done = sum(1 for s in data["items"] if (s.get("status") or {}).get("phase"))
        if done >= count:
            return time.monotonic() - began
        time.sleep(2)
    raise RuntimeError(f"schedules not all reconciled after {timeout:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--schedules", type=int, default=500)
    parser.add_argument("--kills", type=int, help="replica SIGKILLs (default: one per 3 min)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    random.seed(args.seed)
    kills = args.kills if args.kills is not None else max(1, int(args.minutes // 3))
    say(f"seed {args.seed}: {args.minutes:g} min, {args.schedules} schedules, {kills} kills")

    plane = SeparateControlPlane(os.environ.get("JOBWARDEN_CLUSTER_NAME") or "jobwarden")
    plane.up()
    stop = threading.Event()
    events: list[str] = []
    with Bench() as bench:
        ns = bench.namespace("soak")
        audit_file = bench.audit_log
        st = audit_file.stat()
        start_inode, start_offset, began_wall = st.st_ino, st.st_size, time.time()
        env = {"JOBWARDEN_LEASE": LEASE, "JOBWARDEN_LEASE_NAMESPACE": ns}
        replicas = [
            Replica(name, bench.operator(namespaces=[ns], name=name, env={**env, "POD_NAME": name}))
            for name in ("replica-a", "replica-b")
        ]
        for r in replicas:
            r.op.start()
        log = JobLog(bench, ns)
        log.start()
        names = [f"s{i:04d}" for i in range(args.schedules)]
        spec = {
            "schedule": "* * * * *",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 1,
            "historyLimit": 5,
            "jobTemplate": template(),
        }
        took = create_schedules(bench, ns, [jobschedule(n, spec=spec) for n in names])
        say(f"{len(names)} schedules created in {took:.1f}s")
        say(f"all reconciled after {wait_reconciled(bench, ns, len(names)):.0f}s more")
        now = time.time()
        first = (now // 60 + 1) * 60 + (60 if (now // 60 + 1) * 60 - now < 20 else 0)
        end = now + args.minutes * 60
        last = ((end - 40) // 60) * 60
        prober = threading.Thread(target=kubelet, args=(replicas, stop, events), daemon=True)
        prober.start()

        # Faults in slots of their own between the first measured minute and the end.
        actions = faults(plane, replicas, kills=kills)
        span_start, span_end = first + 10, end - 70
        slot = (span_end - span_start) / max(1, len(actions))
        for i, (what, act) in enumerate(actions):
            at = span_start + slot * i + random.uniform(0, slot * 0.4)
            while time.time() < at:
                time.sleep(0.2)
            say(f"fault: {what}")
            began = time.time()
            try:
                act()
                events.append(f"{stamp()} {what} ({time.time() - began:.0f}s)")
            except Exception as exc:  # report it and go on with the soak
                events.append(f"{stamp()} {what} FAILED: {exc!r}")
            say(events[-1])
        while time.time() < end:
            time.sleep(1)
        stop.set()
        log.stop()
        accepted = job_creates(
            audit_file.parent,
            start_inode=start_inode,
            start_offset=start_offset,
            user=bench.operator_user,
            since=began_wall,
            until=time.time(),
        )
        result = figures(log.snapshot(), names, first, last, accepted)
        alive = {r.name: r.alive() for r in replicas}

    print(f"chaos soak: seed {args.seed}, {args.minutes:g} min, {args.schedules} schedules,"
          f" load {load()}")  # fmt: skip
    print(
        table(
            ["figure", "value"],
            [
                ("measured minutes", len(result.minutes)),
                ("scheduled times", result.expected),
                ("Jobs created for them", result.created),
                ("duplicates (run created twice)", len(result.duplicates)),
                ("Job names accepted twice (audit)", len(result.accepted_twice)),
                ("missing", len(result.missing)),
                ("lateness p50 (s)", percentile(result.lateness, 50)),
                ("lateness p99 (s)", percentile(result.lateness, 99)),
                ("lateness max (s)", max(result.lateness, default=float("nan"))),
                ("longest stall while runs were due (s)", result.longest_stall),
                ("restarts by liveness", sum(r.liveness_restarts for r in replicas)),
                ("restarts after an exit (kills)", sum(r.exit_restarts for r in replicas)),
                ("replicas alive at the end", sum(alive.values())),
            ],
        )
    )
    stall_at = datetime.fromtimestamp(result.longest_stall_at, UTC)
    print(f"longest stall began {stall_at:%H:%M:%S}")
    print("events:\n  " + "\n  ".join(events))
    if result.duplicates:
        print(f"duplicates: {result.duplicates[:20]}")
    if result.missing:
        by_minute = Counter(m for _, m in result.missing)
        print("missing by minute: " + ", ".join(
            f"{datetime.fromtimestamp(m, UTC):%H:%M} {n}" for m, n in sorted(by_minute.items())
        ))  # fmt: skip
    if os.environ.get("JOBWARDEN_BENCH_KEEP_LOGS"):
        say("operator logs kept (see above)")


if __name__ == "__main__":
    main()
