"""``kubectl jobwarden`` as users run it: the real kubectl finds the plugin on PATH.

Every command goes through the kubectl binary of the test cluster with the
venv's ``kubectl-jobwarden`` on PATH, so plugin discovery, argument passing
and exit codes are what users get. Actions are checked by their effect on the
cluster (a Manual Job appears, active runs end), not by the plugin's words.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobwarden import labels
from jobwarden.api.spec import parse_spec
from jobwarden.api.status import format_time, parse_time
from jobwarden.cli.preview import load_calendars
from jobwarden.schedule.timeline import build_timeline
from tests.cluster._safety import job_template, schedule
from tests.support.kube import Cluster, wait_for
from tests.support.operator import OperatorProcess, free_port
from tests.support.plugin import COMMANDS, LIST_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
VENV_BIN = Path(sys.executable).parent


def _env(cluster: Cluster, **extra: str) -> dict[str, str]:
    env = cluster.env()
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
    env.update(extra)
    return env


def plugin(
    cluster: Cluster,
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``kubectl jobwarden ARGS`` through the real kubectl."""
    return subprocess.run(
        [cluster.kubectl_path, "jobwarden", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env or _env(cluster),
        timeout=timeout,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


def manifest(
    name: str, *, run_seconds: float | None = 2, hold_terminating: bool = False, **spec: Any
) -> dict[str, Any]:
    """A schedule whose runs take ``run_seconds`` (None: until ended), its one run far
    away unless ``spec`` says when, so that only the plugin's actions start work."""
    template = job_template(run_seconds=run_seconds, hold_terminating=hold_terminating)
    return schedule(name, template=template, **spec)


def rows(text: str) -> list[list[str]]:
    """Table lines split on the three-space column gap."""
    return [
        [cell.strip() for cell in line.split("   ") if cell.strip()] for line in text.splitlines()
    ]


def section(text: str, title: str) -> list[str]:
    """The indented table lines under ``title:`` in describe output."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{title}"))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return out


@contextmanager
def streaming(cluster: Cluster, *args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """A long-running plugin command whose stdout lines are collected as they come."""
    proc = subprocess.Popen(
        [cluster.kubectl_path, "jobwarden", *args],
        env=_env(cluster),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        reader.join(timeout=10)


def _printed(lines: list[str], test: Callable[[str], bool], *, what: str) -> None:
    """Wait until a streaming command has printed a line that passes ``test``."""
    wait_for(lambda: any(test(line) for line in lines), timeout=30, what=what)


# --- discovery and reading -----------------------------------------------------------------


def test_kubectl_discovers_the_plugin(cluster: Cluster) -> None:
    proc = subprocess.run(
        [cluster.kubectl_path, "plugin", "list"],
        capture_output=True,
        text=True,
        env=_env(cluster),
        timeout=60,
    )
    assert str(VENV_BIN / "kubectl-jobwarden") in proc.stdout
    help_text = ok(plugin(cluster, "--help"))
    for command in COMMANDS:
        assert command in help_text


def test_list_in_a_namespace_all_namespaces_and_as_json(cluster: Cluster, namespace: str) -> None:
    cluster.apply(manifest("alpha"), namespace=namespace)
    cluster.apply(manifest("beta", schedule="*/5 * * * *", suspend=True), namespace=namespace)

    table = rows(ok(plugin(cluster, "list", "-n", namespace)))
    assert table[0] == list(LIST_COLUMNS)
    by_name = {r[0]: r for r in table[1:]}
    assert set(by_name) == {"alpha", "beta"}
    assert by_name["alpha"][1] == "once at 2099-01-01T00:00:00Z"
    assert by_name["beta"][1:4] == ["*/5 * * * *", "<none>", "true"]

    everywhere = rows(ok(plugin(cluster, "list", "-A")))
    assert everywhere[0][:2] == ["NAMESPACE", "NAME"]
    assert [r[1] for r in everywhere[1:] if r[0] == namespace] == ["alpha", "beta"]

    listed = json.loads(ok(plugin(cluster, "list", "-n", namespace, "-o", "json")))
    assert listed["kind"] == "List"
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["alpha", "beta"]
    assert all("managedFields" not in i["metadata"] for i in listed["items"])
    as_yaml = yaml.safe_load(ok(plugin(cluster, "list", "-n", namespace, "-o", "yaml")))
    assert sorted(i["metadata"]["name"] for i in as_yaml["items"]) == ["alpha", "beta"]


def test_default_namespace_comes_from_the_kubeconfig_context(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.apply(manifest("from-context"), namespace=namespace)
    config = tmp_path / "kubeconfig"
    shutil.copy(cluster.kubeconfig, config)
    subprocess.run(
        [
            cluster.kubectl_path,
            "config",
            "set-context",
            "--current",
            f"--namespace={namespace}",
            f"--kubeconfig={config}",
        ],
        check=True,
        capture_output=True,
        env=_env(cluster),
    )
    # Through KUBECONFIG, as kubectl would read it...
    listed = rows(ok(plugin(cluster, "list", env=_env(cluster, KUBECONFIG=str(config)))))
    assert [r[0] for r in listed[1:]] == ["from-context"]
    # ...and through --kubeconfig, which beats KUBECONFIG.
    other = _env(cluster, KUBECONFIG=str(tmp_path / "missing"))
    listed = rows(ok(plugin(cluster, "list", "--kubeconfig", str(config), env=other)))
    assert [r[0] for r in listed[1:]] == ["from-context"]
    # -n beats the context's namespace.
    proc = plugin(cluster, "list", "-n", "kube-system", env=_env(cluster, KUBECONFIG=str(config)))
    assert proc.returncode == 0 and "from-context" not in proc.stdout
    # --context must name an existing context.
    bad = plugin(cluster, "list", "--context", "no-such-context")
    assert 'context "no-such-context" does not exist' in one_error_line(bad)


def test_describe_shows_the_engines_next_runs(cluster: Cluster, namespace: str) -> None:
    spec = {
        "every": {"period": "Day", "interval": 2, "times": ["09:00", "21:30"]},
        "timeZone": "Europe/Paris",
    }
    cluster.apply(manifest("calendar", **spec), namespace=namespace)
    obj = cluster.schedule(namespace, "calendar")
    text = ok(plugin(cluster, "describe", "calendar", "-n", namespace))
    after = datetime.now(UTC)

    assert text.splitlines()[0].split() == ["Name:", "calendar"]
    assert "Schedule:               every 2 days at 09:00,21:30 (Europe/Paris)" in text
    listed = [line.split()[0] for line in section(text, "Next Runs")[1:]]
    created = parse_time(obj["metadata"]["creationTimestamp"])
    assert created is not None
    timeline = build_timeline(parse_spec(obj["spec"]), key=f"{namespace}/calendar", created=created)
    expected = [format_time(t) for t in timeline.upcoming(after, count=5)]
    # Runs are hours apart: the few seconds between the two clocks cannot shift them.
    assert listed == expected


def test_unknown_schedule_is_a_one_line_error(cluster: Cluster, namespace: str) -> None:
    for command in (
        ["describe", "ghost"],
        ["run", "ghost"],
        ["suspend", "ghost"],
        ["resume", "ghost"],
        ["terminate", "ghost", "--force"],
    ):
        line = one_error_line(plugin(cluster, *command, "-n", namespace))
        assert line == f'Error: jobschedule "ghost" not found in namespace "{namespace}"'


def test_without_permission_the_forbidden_verb_is_named(cluster: Cluster, namespace: str) -> None:
    cluster.apply(manifest("guarded"), namespace=namespace)
    nobody = f"jw-nobody-{uuid.uuid4().hex[:6]}"
    line = one_error_line(plugin(cluster, "list", "-n", namespace, "--as", nobody))
    assert line.startswith(
        f'Error: forbidden: cannot list jobschedules.jobwarden.io in namespace "{namespace}"'
    )
    assert nobody in line
    line = one_error_line(plugin(cluster, "health", "-A", "--as", nobody))
    assert "cannot list jobschedules.jobwarden.io in any namespace" in line

    # A reader may list and describe, but not act.
    viewer = f"jw-viewer-{uuid.uuid4().hex[:6]}"
    cluster.kubectl(
        "create",
        "role",
        "jobschedule-reader",
        "-n",
        namespace,
        "--verb=get,list,watch",
        "--resource=jobschedules.jobwarden.io",
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "jobschedule-reader",
        "-n",
        namespace,
        "--role=jobschedule-reader",
        f"--user={viewer}",
    )
    wait_for(
        lambda: plugin(cluster, "list", "-n", namespace, "--as", viewer).returncode == 0,
        timeout=20,
        what="the reader's role to take effect",
    )
    described = ok(plugin(cluster, "describe", "guarded", "-n", namespace, "--as", viewer))
    assert "Events:                 <unavailable: forbidden: cannot list events" in described
    patch = '"patch" on jobschedules'
    for command, needs in (
        (["run", "guarded"], f'starting a run now needs {patch} and "update" on '),
        (["suspend", "guarded"], f"suspending (spec.suspend) needs {patch} in"),
        (["terminate", "guarded"], f'terminating needs {patch} and "update" on '),
    ):
        line = one_error_line(plugin(cluster, *command, "-n", namespace, "--as", viewer))
        assert line.startswith(f"Error: forbidden: {needs}"), line
        assert line.endswith(f'in namespace "{namespace}"; ask your cluster admin'), line
    obj = cluster.schedule(namespace, "guarded")
    assert labels.RUN_NOW_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    assert obj["spec"].get("suspend") is not True


def test_unreachable_cluster_is_a_one_line_error(cluster: Cluster, tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "gone",
                "clusters": [{"name": "gone", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
            }
        )
    )
    for command in (["list", "-A"], ["run", "x"]):
        proc = plugin(cluster, *command, env=_env(cluster, KUBECONFIG=str(config)))
        assert one_error_line(proc) == (
            f"Error: cannot reach the Kubernetes API server at {server}: connection refused"
        )


# --- preview, offline ----------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_preview_every_example_offline(cluster: Cluster, path: Path, tmp_path: Path) -> None:
    offline = _env(cluster, KUBECONFIG=str(tmp_path / "no-kubeconfig"), HOME=str(tmp_path))
    start = "2026-11-30T10:00:00Z"
    value = json.loads(
        ok(
            plugin(
                cluster,
                "preview",
                "-f",
                str(path),
                "-o",
                "json",
                "--count",
                "4",
                "--from",
                start,
                env=offline,
            )
        )
    )
    text = path.read_text()
    # The JobSchedules; the JobCalendars beside them are the calendars they name.
    docs = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "JobSchedule"]
    calendars = load_calendars(text, source=str(path))
    begin = datetime(2026, 11, 30, 10, tzinfo=UTC)
    expected = {
        f"{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}": [
            format_time(t)
            for t in build_timeline(
                parse_spec(d["spec"]),
                key=f"{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}",
                created=begin,
                calendars=calendars,
            ).upcoming(begin, count=min(4, d["spec"].get("maxExecutions", 4)))
        ]
        for d in docs
    }
    if len(docs) == 1:
        assert value == next(iter(expected.values()))
    else:
        assert value == expected
    # Every example on a clock has runs ahead of `start` (a chained one may have no clock).
    clocked = [
        f"{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}"
        for d in docs
        if {"schedule", "runAt", "every", "recurrences"} & set(d["spec"])
    ]
    assert clocked and all(expected[key] for key in clocked)

    printed = ok(plugin(cluster, "preview", "-f", str(path), "--from", start, env=offline))
    # The table, without the note under it for each chained schedule.
    table = [r for r in rows(printed) if len(r) > 1]
    assert table[0] == ["NAMESPACE", "NAME", "SCHEDULE", "#", "TIME", "LOCAL TIME", "IN", "NOTE"]
    assert {r[1] for r in table[1:]} == {d["metadata"]["name"] for d in docs}


def test_preview_of_an_invalid_spec_names_the_field(cluster: Cluster, tmp_path: Path) -> None:
    bad = manifest("bad")
    bad["spec"] = {"every": {"period": "Week", "times": ["25:00"]}, "jobTemplate": {}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = plugin(cluster, "preview", "-f", str(path))
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert line.startswith('Error: jobschedule "bad": spec.every.times')
    proc = plugin(cluster, "preview", "-f", "-", "-o", "json", input=yaml.safe_dump(bad))
    assert proc.returncode == 1 and proc.stdout == ""


# --- actions -------------------------------------------------------------------------------


def test_suspend_and_resume_patch_spec_and_lift_the_operators_hold(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(manifest("pausable"), namespace=namespace)
    out = ok(plugin(cluster, "suspend", "pausable", "-n", namespace))
    assert out.strip() == "jobschedule.jobwarden.io/pausable suspended"
    assert cluster.schedule(namespace, "pausable")["spec"]["suspend"] is True
    assert rows(ok(plugin(cluster, "list", "-n", namespace)))[1][3] == "true"

    ok(plugin(cluster, "resume", "pausable", "-n", namespace))
    obj = cluster.schedule(namespace, "pausable")
    assert obj["spec"]["suspend"] is False
    # Not held by the operator: no resume token is needed, none is set.
    assert labels.RESUME_ANNOTATION not in (obj["metadata"].get("annotations") or {})

    # Held by the operator (as after suspendAfterFailures): resume also sets the token.
    cluster.kubectl(
        "patch",
        "jobschedule",
        "pausable",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"suspendedByOperator": {"suspended": True}}}),
    )
    out = ok(plugin(cluster, "resume", "pausable", "-n", namespace))
    token = (cluster.schedule(namespace, "pausable")["metadata"].get("annotations") or {}).get(
        labels.RESUME_ANNOTATION
    )
    assert token and f"{labels.RESUME_ANNOTATION}={token}" in out


def test_run_starts_a_manual_job_and_describe_shows_it(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(manifest("on-demand", run_seconds=1), namespace=namespace)
    out = ok(plugin(cluster, "run", "on-demand", "-n", namespace))
    assert out.startswith("jobschedule.jobwarden.io/on-demand run requested")
    selector = f"{labels.SCHEDULE_LABEL}=on-demand,{labels.TRIGGER_LABEL}=Manual"
    jobs = wait_for(lambda: cluster.jobs(namespace, selector), timeout=20, what="a Manual Job")
    assert len(jobs) == 1

    def succeeded() -> str | None:
        text = ok(plugin(cluster, "describe", "on-demand", "-n", namespace))
        history = section(text, "History")
        return text if any("Manual" in r and "Succeeded" in r for r in history[1:]) else None

    text = wait_for(succeeded, timeout=30, interval=1, what="the manual run in the history")
    history = section(text, "History")
    assert history[1].split()[0] == jobs[0]["metadata"]["name"]

    # A second run is a second Job; the history lists the newest first.
    ok(plugin(cluster, "run", "on-demand", "-n", namespace))
    wait_for(
        lambda: len(cluster.jobs(namespace, selector)) == 2, timeout=20, what="a second Manual Job"
    )
    newest = max(
        cluster.jobs(namespace, selector), key=lambda j: j["metadata"]["creationTimestamp"]
    )["metadata"]["name"]

    def newest_first() -> bool:
        table = section(ok(plugin(cluster, "describe", "on-demand", "-n", namespace)), "History")
        return len(table) >= 3 and table[1].split()[0] == newest

    wait_for(newest_first, timeout=20, interval=1, what="the newer run first in the history")


def test_terminate_ends_active_runs_and_health_reports_them(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(manifest("forever", run_seconds=None), namespace=namespace)
    ok(plugin(cluster, "run", "forever", "-n", namespace))
    status = wait_for(
        lambda: (cluster.schedule(namespace, "forever").get("status") or {}).get("active"),
        timeout=20,
        what="an active run",
    )
    job = status[0]["name"]

    health = json.loads(ok(plugin(cluster, "health", "-n", namespace, "-o", "json")))
    assert [r["job"] for r in health["activeRuns"]] == [job]
    text = ok(plugin(cluster, "health", "-n", namespace))
    active_rows = text.split("Active runs:\n")[1].split("\n\n")[0].splitlines()
    assert active_rows[0].split()[:2] == ["SCHEDULE", "JOB"]
    assert active_rows[1].split()[:2] == ["forever", job]
    assert namespace in ok(plugin(cluster, "health", "-A"))

    out = ok(plugin(cluster, "terminate", "forever", "-n", namespace))
    assert "terminate requested for 1 active run(s)" in out
    wait_for(
        lambda: not cluster.jobs(namespace, f"{labels.SCHEDULE_LABEL}=forever"),
        timeout=30,
        what="the active Job deleted",
    )

    def terminated() -> bool:
        entries = (cluster.schedule(namespace, "forever").get("status") or {}).get("history")
        return any(e.get("job") == job and e.get("result") == "Terminated" for e in entries or [])

    wait_for(terminated, timeout=20, what="the run recorded Terminated")
    annotations = cluster.schedule(namespace, "forever")["metadata"]["annotations"]
    assert labels.TERMINATE_GRACE_ANNOTATION not in annotations


def test_terminate_force_removes_pods_stuck_terminating(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(manifest("stuck", run_seconds=None, hold_terminating=True), namespace=namespace)
    ok(plugin(cluster, "run", "stuck", "-n", namespace))
    selector = f"{labels.SCHEDULE_LABEL}=stuck"

    def running_pod() -> bool:
        return any(
            p.get("status", {}).get("phase") == "Running" for p in cluster.pods(namespace, selector)
        )

    wait_for(running_pod, timeout=30, what="the run's pod Running")
    out = ok(plugin(cluster, "terminate", "stuck", "--force", "-n", namespace))
    assert "pods force-deleted" in out
    annotations = cluster.schedule(namespace, "stuck")["metadata"]["annotations"]
    assert annotations[labels.TERMINATE_GRACE_ANNOTATION] == "0"
    # A graceful delete would leave this pod Terminating for good; force removes it.
    wait_for(
        lambda: not cluster.pods(namespace, selector), timeout=30, what="the pod force-deleted"
    )


# --- watching ------------------------------------------------------------------------------


def test_list_watch_prints_new_rows_until_ctrl_c(cluster: Cluster, namespace: str) -> None:
    cluster.apply(manifest("first"), namespace=namespace)
    with streaming(cluster, "list", "-w", "-n", namespace) as (proc, lines):
        _printed(lines, lambda line: line.startswith("first "), what="the initial table")
        assert lines[0].startswith("NAME ")
        cluster.apply(manifest("second"), namespace=namespace)
        _printed(lines, lambda line: line.startswith("second "), what="a row for the new schedule")
        ok(plugin(cluster, "suspend", "first", "-n", namespace))
        _printed(
            lines,
            lambda line: line.startswith("first ") and " true " in line,
            what="a row for the change",
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        assert proc.stderr is not None and proc.stderr.read() == ""
    assert sum(1 for line in lines if line.startswith("NAME ")) == 1


def test_list_watch_timeout_ends_cleanly(cluster: Cluster, namespace: str) -> None:
    cluster.apply(manifest("only"), namespace=namespace)
    proc = plugin(cluster, "list", "-w", "-n", namespace, "--watch-timeout", "2")
    assert [r[0] for r in rows(ok(proc))[1:]] == ["only"]


def test_describe_watch_reprints_on_change(cluster: Cluster, namespace: str) -> None:
    cluster.apply(manifest("watched"), namespace=namespace)
    with streaming(cluster, "describe", "watched", "-w", "-n", namespace) as (proc, lines):
        _printed(lines, lambda line: line.startswith("Next Runs"), what="the first description")
        ok(plugin(cluster, "suspend", "watched", "-n", namespace))
        _printed(
            lines,
            lambda line: line == "Suspend:                true",
            what="a new description after the change",
        )
        assert "---" in lines
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130


def test_describe_and_preview_name_a_chains_upstreams_and_downstreams(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(manifest("extract"), namespace=namespace)
    cluster.apply(manifest("report", after=[{"schedule": "extract"}]), namespace=namespace)
    upstream = ok(plugin(cluster, "describe", "extract", "-n", namespace))
    assert "Runs Before:            report" in upstream.splitlines()
    downstream = ok(plugin(cluster, "describe", "report", "-n", namespace)).splitlines()
    assert "Runs After:             extract (Succeeded)" in downstream
    assert "Schedule:               after extract" in downstream
    offline = _env(cluster, KUBECONFIG="/nonexistent")
    preview = ok(
        plugin(cluster, "preview", "-f", str(ROOT / "examples" / "chain.yaml"), env=offline)
    )
    assert "default/report runs after its upstreams: once extract, load" in preview
