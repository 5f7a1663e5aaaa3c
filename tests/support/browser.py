"""A real browser for the dashboard's tests and benchmark: Debian's headless chromium.

Driven through selenium and Debian's ``chromium-driver`` (both installed by
``hack/install-browser.sh``, which ``make test`` runs first); selenium is
pointed at them explicitly, so that it never looks for or downloads a
browser of its own. A missing browser is a failure that says how to install
it, never a skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

__all__ = ["BrowserMissing", "chromium"]

INSTALL_HINT = "run `bash hack/install-browser.sh` (Debian's chromium and chromium-driver)"


class BrowserMissing(RuntimeError):
    """chromium or chromedriver is not installed."""


def _find(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BrowserMissing(f"{name} is not installed: {INSTALL_HINT}")
    return found


def chromium(*, width: int = 1280, height: int = 800, downloads: Path | None = None) -> Any:
    """A headless chromium window of ``width`` x ``height``; the caller quits it."""
    options = webdriver.ChromeOptions()
    options.binary_location = _find("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root, where chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--lang=en-US",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    service = Service(executable_path=_find("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_window_size(width, height)
    return driver
