"""A user at the browser: the small vocabulary the end-to-end journey is written in.

`Browser` wraps one Playwright page against a running server. It types into fields by their
form name, picks options by their visible label, presses the buttons a user presses and waits
for the page that follows, so the journey reads like the protocol and exercises the real pages
(templates, JavaScript, CSRF, redirects). It also watches everything the browser sees: a
JavaScript console error, an uncaught exception, a request that fails on the network or a
response with a status of 400 or more that the step did not announce with `expecting(status)`
is recorded, and `assert_clean()` (called after every step and at the end) fails the journey
with the list. Why: a journey that only checks the database would pass with a broken page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from playwright.sync_api import Page, Response, expect

PASSWORD = "e2e-journey-pass-2026"


class Browser:
    """One user's browser tab on the live server, with its problems recorded."""

    def __init__(self, page: Page, base_url: str, artifacts: Path) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.artifacts = artifacts
        self.problems: list[str] = []
        self._expected: set[int] = set()
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught exception: {exc}"))
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)

    # -- what the browser reports ------------------------------------------------------------

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        # Chromium echoes every HTTP error status on the console; an announced one is expected.
        echoed = re.search(r"Failed to load resource: .* status of (\d{3})", message.text)
        if echoed and int(echoed.group(1)) in self._expected:
            return
        self.problems.append(f"console error on {self.page.url}: {message.text}")

    def _on_request_failed(self, request) -> None:
        failure = request.failure or "failed"
        if failure == "net::ERR_ABORTED" and not request.is_navigation_request():
            # Chromium cancels a sub-resource still loading (the favicon, say) when the page
            # navigates away, e.g. on a form submit: the browser's doing, not a failure of the
            # server. A real failure (refused, reset, 4xx/5xx) is still caught.
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400 and response.status not in self._expected:
            self.problems.append(
                f"HTTP {response.status} for {response.request.method} {response.url}"
            )

    @contextmanager
    def expecting(self, *statuses: int) -> Iterator[None]:
        """Inside the block, responses with these statuses are what the step is about."""
        before = set(self._expected)
        self._expected |= set(statuses)
        try:
            yield
        finally:
            self._expected = before

    def assert_clean(self, step: str) -> None:
        assert not self.problems, f"after {step}: " + "; ".join(self.problems)

    # -- navigation and forms ----------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    def open(self, path: str) -> None:
        response = self.page.goto(self.url(path))
        assert response is not None, path
        assert response.status == 200, f"{path}: HTTP {response.status}"

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.open("/accounts/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation():
            self.page.locator("main form button[type=submit]").first.click()
        assert "/accounts/login/" not in self.page.url, f"{username} could not log in"

    def logout(self) -> None:
        with self.page.expect_navigation():
            self.page.locator("header form.inline button[type=submit]").click()

    def field(self, name: str):
        return self.page.locator(f"main form [name='{name}']")

    def fill(self, **values: object) -> None:
        """Type each value into the field of that name (text, number, date, textarea)."""
        for name, value in values.items():
            text = value.isoformat() if isinstance(value, date) else str(value)
            self.field(name).first.fill(text)

    def select(self, name: str, label: str) -> None:
        """Pick the option of select `name` whose visible label contains `label`."""
        select = self.field(name).first
        labels = [text.strip() for text in select.locator("option").all_inner_texts()]
        matches = [text for text in labels if label in text]
        assert len(matches) == 1, f"{name}: {label!r} among {labels}"
        select.select_option(label=matches[0])

    def select_value(self, name: str, value: str) -> None:
        self.field(name).first.select_option(value=value)

    def choose(self, name: str, value: str) -> None:
        """Click the radio button of group `name` with this value."""
        self.page.locator(f"main form input[type=radio][name='{name}'][value='{value}']").check()

    def tick(self, name: str, value: str | None = None, on: bool = True) -> None:
        selector = f"main form input[type=checkbox][name='{name}']"
        if value is not None:
            selector += f"[value='{value}']"
        box = self.page.locator(selector)
        box.check() if on else box.uncheck()

    def press(self, button: str = "save_complete") -> None:
        """Press a submit button (by its name, or its visible text) and wait for the answer."""
        by_name = self.page.locator(f"main form button[name='{button}']")
        target = by_name if by_name.count() else self.page.get_by_role("button", name=button)
        with self.page.expect_navigation():
            target.first.click()

    def save(self, button: str = "save_complete") -> None:
        """Press the save button and check the form went through (no field errors shown)."""
        path_before = self.page.url
        self.press(button)
        errors = self.page.locator(
            "main .errors, main .field-errors, main .errorlist, main .message.error"
        )
        if errors.count():
            texts = [t.strip() for t in errors.all_inner_texts() if t.strip()]
            assert not texts, f"{path_before} was not saved: {texts}"

    def click_link(self, text: str) -> None:
        with self.page.expect_navigation():
            self.page.get_by_role("link", name=text, exact=True).first.click()

    def heading(self) -> str:
        return self.page.locator("main h1").first.inner_text().strip()

    def expect_text(self, text: str | re.Pattern) -> None:
        expect(self.page.locator("main")).to_contain_text(text)

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
