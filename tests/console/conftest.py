"""A real danlu server and Debian's chromium, driven by Playwright, for the console's tests.

Playwright's own browser downloads are never used: the browser is /usr/bin/chromium
(`make browser` installs it). Each test saves screenshots of the pages it visits under
build/console-screenshots/, to be looked at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from tests.support.server import RunningServer, start_server

CHROMIUM = Path(os.environ.get("DANLU_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parents[2] / "build" / "console-screenshots"
ADMIN_PASSWORD = "admin-password-for-tests"


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("console"), {"DANLU_REFINERY_WORKERS": "0"})
    yield server
    server.stop()


# Per module, not per session: while Playwright's sync API is running it holds an event loop
# on this thread, and every later test that runs one of its own (asyncio.run) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


def new_page(browser: Browser, locale: str = "en-US") -> Page:
    context = browser.new_context(
        locale=locale, viewport={"width": 1366, "height": 820}, base_url=None
    )
    context.set_default_timeout(30_000)
    return context.new_page()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser tab; any uncaught script error on it fails the test."""
    opened = new_page(browser)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    opened.context.close()
    assert not errors, f"script errors in the console: {errors}"


def shoot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def sign_in(
    page: Page, server: RunningServer, username: str = "admin", password: str = ADMIN_PASSWORD
) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name=f"Welcome, {username}").wait_for()


@pytest.fixture
def browser_zh(browser: Browser) -> Iterator[Page]:
    """A tab of a browser whose preferred language is Simplified Chinese."""
    opened = new_page(browser, locale="zh-CN")
    yield opened
    opened.context.close()


def nav(page: Page, name: str) -> Locator:
    """A link of the sidebar menu."""
    return page.get_by_role("navigation").get_by_role("link", name=name, exact=True)
