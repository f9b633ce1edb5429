"""Debian's Chromium driven through Playwright (never a downloaded browser), against the real app stack."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.stack import REPO_ROOT

SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "a-long-test-passphrase-2026"


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), "Debian's chromium is missing: run `bash scripts/test_deps.sh` (make test does)"
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_context(browser, app_stack):
    """Open isolated browser sessions (one per user) at a chosen viewport; all closed after the test."""
    contexts: list[BrowserContext] = []

    def make(viewport: dict | None = None) -> BrowserContext:
        context = browser.new_context(viewport=viewport or DESKTOP, base_url=app_stack.base_url, accept_downloads=True)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def page_open(context: BrowserContext) -> Page:
    """A page that fails the test on any JavaScript error or failed script/stylesheet load."""
    page = context.new_page()
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    page.on("requestfailed", lambda request: request_failed_note(page, request))
    # What the Content-Security-Policy blocked (an inline script, handler or style) is a broken page too.
    page.on("console", lambda message: page.js_errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    return page


def request_failed_note(page: Page, request) -> None:
    """A script or stylesheet that did not load is a broken page; one whose load the browser dropped because the test
    had already moved on to the next page (``net::ERR_ABORTED``) is not."""
    if request.resource_type not in ("script", "stylesheet"):
        return
    failure = request.failure or ""
    if "ERR_ABORTED" in failure:
        return
    page.js_errors.append(f"{request.url} failed ({failure})")


def signup(page: Page, prefix: str) -> str:
    """Create an account through the sign-up page, as a person would; returns the username."""
    username = f"{prefix}-{uuid.uuid4().hex[:6]}"
    page.goto("/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))
    expect(page.locator(".usermenu summary")).to_have_text(username)
    return username


def shot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    return path


def no_page_overflow(page: Page) -> None:
    """Nothing wider than the screen: wide tables scroll inside their box, plots shrink."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    culprits = page.evaluate("""() => Array.from(document.querySelectorAll('main *, header *'))
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-scroll'))
        .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)""")
    assert overflow <= 1, f"{page.url} is {overflow}px wider than the screen: {culprits}"
