"""``kubectl jobwarden dashboard`` in a real browser against the real control plane.

The dashboard is started as users start it (the real kubectl finding the
plugin, with ``--as`` where a test needs a less privileged user), and driven
by Debian's headless chromium through selenium: pages are judged by what the
browser shows, and actions by their effect on the cluster. Screenshots of
each page, at 1280x800 and at a 400-pixel-wide window, are written under the
session's artifacts folder (``$JOBWARDEN_ARTIFACTS``, else pytest's base
temporary folder) for people to look at.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from jobwarden import labels
from tests.cluster._safety import job_template, schedule
from tests.support.browser import BrowserMissing, chromium
from tests.support.kube import Cluster, condition_true, wait_for
from tests.support.operator import OperatorProcess

T = TypeVar("T")

VENV_BIN = Path(sys.executable).parent
NARROW = 400
# Every control must have a name a screen reader can say: a <label>, or aria-label.
UNLABELLED_CONTROLS = """
return [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.type !== 'hidden')
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.textContent.trim())
  .map((el) => el.outerHTML);
"""


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("JOBWARDEN_ARTIFACTS")
    root = Path(base) if base else tmp_path_factory.getbasetemp() / "artifacts"
    folder = root / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        driver = chromium()
    except BrowserMissing as exc:
        pytest.fail(f"the dashboard's browser tests need chromium: {exc}")
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def dashboard(cluster: Cluster, *args: str) -> Iterator[str]:
    """``kubectl jobwarden dashboard ARGS`` running; its printed URL (token included)."""
    env = cluster.env()
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
    proc = subprocess.Popen(
        [cluster.kubectl_path, "jobwarden", "dashboard", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        first = wait_for(
            lambda: (
                next((ln for ln in lines if "http://127.0.0.1:" in ln), None)
                or (proc.poll() is not None and f"exited: {proc.stderr.read()}")
            ),  # type: ignore[union-attr]
            timeout=30,
            what="the dashboard's URL",
        )
        assert "http://127.0.0.1:" in first, first
        yield first.split(" at ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


def base(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/")


def screenshot(driver: Any, path: Path, *, width: int = 1280) -> None:
    """The whole page (not only the window) at ``width``, then the window back to 1280x800."""
    driver.set_window_size(width, 800)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    driver.set_window_size(1280, 800)


def check_layout(driver: Any) -> None:
    """Every control labelled; at a narrow window nothing but tables scrolls sideways."""
    assert driver.execute_script(UNLABELLED_CONTROLS) == []
    driver.set_window_size(NARROW, 800)
    try:
        wide = driver.execute_script("return document.documentElement.scrollWidth")
        inner = driver.execute_script("return window.innerWidth")
        assert wide <= inner, f"the page is {wide}px wide in a {inner}px window"
    finally:
        driver.set_window_size(1280, 800)


def shown(driver: Any, css: str) -> Any:
    return next(iter(driver.find_elements(By.CSS_SELECTOR, css)), None)


def live(read: Callable[[], T]) -> Callable[[], T | None]:
    """``read``, for polling a page that redraws itself: an element replaced between
    being found and being read (stale) is found again at the next poll."""

    def again() -> T | None:
        try:
            return read()
        except StaleElementReferenceException:
            return None

    return again


def confirm(driver: Any) -> None:
    wait_for(lambda: shown(driver, "dialog#confirm[open]"), timeout=5, what="the confirmation")
    driver.find_element(By.ID, "confirm-ok").click()


def test_overview_reflects_a_run_within_seconds_of_its_job_finishing(
    cluster: Cluster, namespace: str, operator: OperatorProcess, browser: Any, artifacts: Path
) -> None:
    cluster.apply(schedule("quick", template=job_template(run_seconds=1)), namespace=namespace)
    cluster.apply(schedule("steady", template=job_template(run_seconds=1)), namespace=namespace)
    # Two more, so that the overview (and its screenshot) shows a failed and an active run.
    cluster.apply(schedule("flaky", template=job_template(fail=True)), namespace=namespace)
    cluster.apply(
        schedule("long", template=job_template(run_seconds=None), staleAfter="10m"),
        namespace=namespace,
    )
    for name in ("flaky", "long"):
        cluster.kubectl(
            "annotate", "jobschedule", name, "-n", namespace, f"{labels.RUN_NOW_ANNOTATION}=first"
        )
    with dashboard(cluster, "-n", namespace) as url:
        browser.get(url)
        assert "token=" not in browser.current_url  # traded for the cookie
        row = f'tr[data-schedule="{namespace}/quick"]'
        wait_for(lambda: shown(browser, row), timeout=30, what="the schedule's row")
        assert shown(browser, row).get_attribute("data-last-result") == ""

        cluster.kubectl(
            "annotate",
            "jobschedule",
            "quick",
            "-n",
            namespace,
            f"{labels.RUN_NOW_ANNOTATION}={uuid.uuid4().hex[:8]}",
        )
        job = wait_for(
            lambda: next(
                (j for j in cluster.jobs(namespace) if condition_true(j, "Complete")), None
            ),
            timeout=60,
            what="the manual run's Job to complete",
        )
        finished = datetime.now(UTC)
        # The page shows it without a reload: the one watch, fanned out by server-sent events.
        wait_for(
            live(lambda: shown(browser, row).get_attribute("data-last-result") == "Succeeded"),
            timeout=15,
            what="the overview to show the run's result",
        )
        seen_after = datetime.now(UTC) - finished
        assert seen_after < timedelta(seconds=15)
        wait_for(
            lambda: shown(browser, f'#failed tr a[href$="/{namespace}/flaky"]'),
            timeout=30,
            what="the failed run in the overview",
        )
        wait_for(
            lambda: shown(browser, "#active progress"),
            timeout=30,
            what="the active run against its stale threshold",
        )
        screenshot(browser, artifacts / "overview.png")
        screenshot(browser, artifacts / "overview-narrow.png", width=NARROW)
        check_layout(browser)

        browser.find_element(By.ID, "search").send_keys("stead")
        wait_for(lambda: not shown(browser, row), timeout=5, what="search to hide 'quick'")
        assert shown(browser, f'tr[data-schedule="{namespace}/steady"]')

        browser.get(f"{base(url)}/schedules/{namespace}/quick")
        job_name = job["metadata"]["name"]
        wait_for(
            lambda: shown(browser, f'#history tr[data-job="{job_name}"]'),
            timeout=15,
            what="the run in the history table",
        )
        assert shown(browser, f'#timeline rect.bar.r-Succeeded[data-job="{job_name}"]')
        assert len(browser.find_elements(By.CSS_SELECTOR, "#next tbody tr")) >= 1
        assert "kind: JobSchedule" in browser.find_element(By.ID, "yaml").text
        screenshot(browser, artifacts / "schedule.png")
        screenshot(browser, artifacts / "schedule-narrow.png", width=NARROW)
        check_layout(browser)

        # An action the user may take: the dashboard's Run now starts a second run.
        browser.find_element(By.ID, "act-run").click()
        confirm(browser)
        ok = wait_for(lambda: shown(browser, "#action-ok"), timeout=15, what="the run request")
        assert "run requested" in ok.text
        wait_for(
            lambda: len(cluster.jobs(namespace, f"{labels.SCHEDULE_LABEL}=quick")) == 2,
            timeout=30,
            what="the dashboard's run's Job",
        )


def test_an_action_the_users_rbac_forbids_shows_the_refusal_and_changes_nothing(
    cluster: Cluster, namespace: str, browser: Any, artifacts: Path
) -> None:
    cluster.apply(schedule("guarded"), namespace=namespace)
    viewer = f"jw-viewer-{uuid.uuid4().hex[:6]}"
    cluster.kubectl(
        "create",
        "role",
        "reader",
        "-n",
        namespace,
        "--verb=get,list,watch",
        "--resource=jobschedules.jobwarden.io",
    )
    cluster.kubectl(
        "create", "rolebinding", "reader", "-n", namespace, "--role=reader", f"--user={viewer}"
    )
    wait_for(
        lambda: (
            cluster.kubectl(
                "get", "jobschedules", "-n", namespace, check=False, as_user=viewer
            ).returncode
            == 0
        ),
        timeout=20,
        what="the reader's role to take effect",
    )
    before = cluster.schedule(namespace, "guarded")
    with dashboard(cluster, "-n", namespace, "--as", viewer) as url:
        browser.get(f"{url}")
        browser.get(f"{base(url)}/schedules/{namespace}/guarded")
        wait_for(
            lambda: browser.find_element(By.ID, "yaml").text, timeout=30, what="the schedule page"
        )
        for action in ("suspend", "run", "terminate-force"):
            browser.find_element(By.ID, f"act-{action}").click()
            confirm(browser)
            refusal = wait_for(
                lambda: shown(browser, "#action-refused"),
                timeout=15,
                what=f"the refusal of {action}",
            )
            text = refusal.text
            assert text.startswith("Refused: forbidden:"), text
            # The API server's own words, naming the user and the verb it refused.
            assert f'User "{viewer}" cannot patch resource "jobschedules"' in text, text
            if action == "suspend":
                screenshot(browser, artifacts / "schedule-refused.png")
            browser.execute_script("document.getElementById('action-result').replaceChildren()")
    after = cluster.schedule(namespace, "guarded")
    assert after["spec"] == before["spec"]
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_compose_previews_what_preview_prints_and_applies_as_the_user(
    cluster: Cluster, namespace: str, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    # A time of day half a day from now, so that no run falls between two computations.
    at = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    with dashboard(cluster, "-n", namespace) as url:
        browser.get(url.replace("/?", "/compose?"))
        form = {
            "f-name": "composed",
            "f-namespace": namespace,
            "f-times": at,
            "f-timeZone": "Europe/Berlin",
            "f-exclude": "2099-01-01",
            "f-staleAfter": "90m",
            "f-maxExecutions": "8",
        }
        wait_for(lambda: shown(browser, "body[data-previewed]"), timeout=15, what="a preview")
        for field, value in form.items():
            box = browser.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        Select(browser.find_element(By.ID, "f-preset")).select_by_value("weekly")
        for day in ("Tue", "Thu", "Sat"):
            browser.find_element(By.CSS_SELECTOR, f'input[name="weekdays"][value="{day}"]').click()

        def previewed() -> list[str] | None:
            yaml_text = browser.find_element(By.ID, "yaml").text
            if "Sat" not in yaml_text or "Europe/Berlin" not in yaml_text:
                return None
            cells = browser.find_elements(By.CSS_SELECTOR, "#preview td.utc")
            return [c.text for c in cells] or None

        runs = wait_for(live(previewed), timeout=15, what="the preview of the finished form")
        manifest = tmp_path / "composed.yaml"
        manifest.write_text(browser.find_element(By.ID, "yaml").text + "\n")
        env = cluster.env()
        env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
        printed = subprocess.run(
            [
                cluster.kubectl_path,
                "jobwarden",
                "preview",
                "-f",
                str(manifest),
                "--count",
                "10",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        assert runs == json.loads(printed.stdout)
        assert len(runs) == 8  # maxExecutions caps the list, in both
        screenshot(browser, artifacts / "compose.png")
        screenshot(browser, artifacts / "compose-narrow.png", width=NARROW)
        check_layout(browser)

        browser.find_element(By.ID, "apply").click()
        confirm(browser)
        wait_for(lambda: shown(browser, "#apply-result .ok"), timeout=15, what="the apply")
    applied = cluster.schedule(namespace, "composed")
    assert applied["spec"]["every"]["weekdays"] == ["Mon", "Tue", "Thu", "Sat"]
    assert applied["spec"]["every"]["times"] == [at] and applied["spec"]["maxExecutions"] == 8
    managers = {m["manager"] for m in applied["metadata"].get("managedFields") or []}
    assert "kubectl-jobwarden-dashboard" in managers
