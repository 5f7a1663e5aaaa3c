"""The dashboard's overview with 1,000 schedules: first render, and how fast it stays live.

Run with ``.venv/bin/python bench/dashboard.py [--n 1000] [--rounds 5]``.

N JobSchedules are created in a namespace of the run's own, each with a
status as the operator writes it (health, 20 history entries, a next run),
written through the status subresource so that no operator is needed.
``kubectl-jobwarden dashboard -n NS`` is started as a user starts it, and
Debian's headless chromium opens the printed URL. Figures:

* first render: navigation start → the full overview built in the page
  (``jw-first-render``) and painted (``jw-first-paint``, two animation frames
  later): HTML, scripts, the server's render of N schedules, the server-sent
  event carrying them, and the table's first 250 rows (unhealthiest first);
* show all: the button that draws every row → painted;
* payload: ``GET /api/overview`` from the page (server render + transfer +
  JSON parse), and its size;
* live: one schedule's status written through the API → its row showing the
  new last result, through the dashboard's one watch and its event stream.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import GROUP, PLURAL, VERSION, load, say, table
from harness import Bench, bulk, create_schedules
from objects import jobschedule, not_due_spec
from tests.support.browser import chromium

VENV_BIN = Path(sys.executable).parent
MERGE = "application/merge-patch+json"
FIRST_ROWS = 250  # overview.js draws the unhealthiest 250 rows until asked for all
RESULTS = ("Succeeded", "Succeeded", "Succeeded", "Failed", "Missed")


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def status(index: int, *, now: datetime) -> dict[str, Any]:
    """A status like the operator's after 20 hourly runs, health varying by schedule."""
    history = []
    for k in range(20):
        start = now - timedelta(hours=k + 1, minutes=index % 60)
        result = RESULTS[(index + k) % len(RESULTS)]
        entry: dict[str, Any] = {
            "job": f"s{index}-{k}",
            "trigger": "Schedule",
            "scheduledTime": _time(start),
            "result": result,
        }
        if result != "Missed":
            entry |= {
                "startTime": _time(start),
                "completionTime": _time(start + timedelta(seconds=30 + index % 300)),
                "durationSeconds": 30 + index % 300,
            }
        history.append(entry)
    state = ("Healthy", "Healthy", "Healthy", "Degraded", "Unhealthy")[index % 5]
    return {
        "phase": "Active",
        "scheduleDescription": f"once at {now.year + 1}-06-01T00:00:00Z",  # as not_due_spec
        "nextRunTime": _time(now + timedelta(minutes=index % 60)),
        "health": {"state": state, "consecutiveFailures": index % 3, "reason": "Runs"},
        "history": history,
    }


def start_dashboard(bench: Bench, namespace: str) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, KUBECONFIG=str(bench.kubeconfig))
    proc = subprocess.Popen(
        [str(VENV_BIN / "kubectl-jobwarden"), "dashboard", "-n", namespace],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    return proc, line.split(" at ", 1)[1].strip()


def wait_js(driver: Any, script: str, *, timeout: float = 60) -> Any:
    """Poll a script in the page until it returns something truthy (10 ms apart)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError(script)


FIRST_PAINT = """
const m = performance.getEntriesByName('jw-first-paint')[0];
const r = performance.getEntriesByName('jw-first-render')[0];
return m && r ? [r.startTime, m.startTime, document.querySelectorAll('#schedules tbody tr').length]
              : null;
"""
SHOW_ALL = """
const done = arguments[arguments.length - 1];
const began = performance.now();
document.getElementById('show-all').click();
requestAnimationFrame(() => requestAnimationFrame(() =>
  done([performance.now() - began, document.querySelectorAll('#schedules tbody tr').length])));
"""
PAYLOAD = """
const done = arguments[arguments.length - 1];
const began = performance.now();
fetch('/api/overview').then((r) => r.text()).then((text) => {
  const data = JSON.parse(text);
  done([performance.now() - began, text.length, data.schedules.length]);
});
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with Bench() as bench:
        namespace = bench.namespace("dashboard")
        now = datetime.now(UTC)
        bodies = [jobschedule(f"s-{i:05d}", spec=not_due_spec()) for i in range(args.n)]
        say(f"creating {args.n} schedules in {create_schedules(bench, namespace, bodies):.1f} s")

        def write_status(body: dict[str, Any]) -> object:
            return bench.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                body["name"],
                {"status": body["status"]},
                _content_type=MERGE,
                _preload_content=False,
            )

        statuses = [{"name": f"s-{i:05d}", "status": status(i, now=now)} for i in range(args.n)]
        say(f"writing their status in {bulk(write_status, statuses):.1f} s")
        proc, url = start_dashboard(bench, namespace)
        driver = chromium()
        try:
            renders, payloads, show_all = [], [], []
            for _ in range(args.rounds):
                driver.get(url)  # the token again: a fresh page each round
                built, painted, rows = wait_js(driver, FIRST_PAINT)
                assert rows == min(args.n, FIRST_ROWS), rows
                renders.append((built, painted))
                payloads.append(driver.execute_async_script(PAYLOAD))
                all_ms, all_rows = driver.execute_async_script(SHOW_ALL)
                assert all_rows == args.n, all_rows
                show_all.append(all_ms)
            driver.get(url)  # the default view again, for the live figure
            wait_js(driver, FIRST_PAINT)
            lives = []
            for k in range(args.rounds):
                result = ("Failed", "Succeeded")[k % 2]
                entry = {
                    "job": f"live-{k}",
                    "trigger": "Manual",
                    "result": result,
                    "startTime": _time(datetime.now(UTC)),
                }
                old = status(4, now=now)
                patch = {"status": {"history": [entry, *old["history"]]}}
                began = time.monotonic()
                write_status({"name": "s-00004", **patch})
                wait_js(
                    driver,
                    "return document.querySelector("
                    f"'tr[data-schedule=\"{namespace}/s-00004\"]')"
                    f"?.dataset.lastResult === '{result}'",
                )
                lives.append((time.monotonic() - began) * 1000)
        finally:
            driver.quit()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        figures = {
            "first render: built (ms)": [b for b, _ in renders],
            "first render: painted (ms)": [p for _, p in renders],
            f"'Show all {args.n}' → painted (ms)": show_all,
            "GET /api/overview (ms)": [p[0] for p in payloads],
            "status written → row updated (ms)": lives,
        }
        rows = [
            [label, f"{statistics.median(values):.0f}", f"{max(values):.0f}"]
            for label, values in figures.items()
        ]
        print(
            f"schedules: {args.n}, rounds: {args.rounds}, overview payload: "
            f"{payloads[0][1] / 1024:.0f} KiB, load: {load()}"
        )
        print(table(["measure", "median", "max"], rows))


if __name__ == "__main__":
    main()
