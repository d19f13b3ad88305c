"""A real browser for the live page: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver (given by path, so Selenium never tries to fetch one)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1400, 1100


def browser(tmp: Path) -> webdriver.Chrome:
    """A headless Chromium with its own profile under ``tmp``, keeping the console's log."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # a root CI container has no user namespaces for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={tmp / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(tmp / "chromedriver.log"))
    return webdriver.Chrome(options=options, service=service)


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """What the page said at level SEVERE (errors, failed loads) since last asked."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
