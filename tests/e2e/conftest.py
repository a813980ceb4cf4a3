"""Fixtures of the browser journey: Debian's chromium driven by Playwright, and the artifacts.

The browser is the system's `/usr/bin/chromium` (installed by scripts/install-system-deps.sh),
never one downloaded by `playwright install`, so CI and a developer run the browser the
machine's package manager keeps patched. Without it the e2e tests skip with the reason, and
with REQUIRE_SERVICES=1 (CI) they fail, like the other service gates in tests/conftest.py.
"""

import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import _missing

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(settings.BASE_DIR) / "var" / "artifacts" / "e2e"


@pytest.fixture
def chromium():
    """A headless chromium (Playwright's sync API), closed after the test.

    Started per test and only after the test's database setup, because Playwright's sync API
    keeps an event loop in this thread: Django refuses ORM calls while one runs, so the
    journey sets up its users first and reads everything else through the browser.
    """
    if not CHROMIUM.exists():
        _missing(f"no chromium at {CHROMIUM} (scripts/install-system-deps.sh installs it)")
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def server(live_server):
    """The live server, warmed up: its first request imports every app's views and templates
    (seconds on a busy machine), which the browser's first page load should not have to wait
    for under its navigation timeout."""
    with urllib.request.urlopen(live_server.url + "/accounts/login/", timeout=180) as response:
        assert response.status == 200
    return live_server


@pytest.fixture
def artifacts() -> Path:
    """var/artifacts/e2e/, emptied first so the screenshots there are this run's."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS
