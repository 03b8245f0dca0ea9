"""The console in a real browser (Debian's Chromium through Playwright): an admin signs in
with a password and an authenticator app enrolled on the way, and every console page passes
axe-core's WCAG 2.1 A/AA rules (light and dark) and does not scroll sideways at 375 px.

``UPDATE_SCREENSHOTS=1`` saves the main pages to docs/screenshots/console-*.png (the README
shows them), so they stay current."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.actions.test_lifecycle import idp
from tests.flows.test_accessibility import AXE, CHROMIUM, DESKTOP, Auditor
from tests.flows.test_accessibility import browser as browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
pytestmark = pytest.mark.browser


@pytest.fixture
def shots() -> Iterator[Any]:
    wanted = os.environ.get("UPDATE_SCREENSHOTS") == "1"
    if wanted:
        SHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        if wanted:
            page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=True)

    yield take


def sign_in(page: Any, op: Any, user: Any) -> None:
    """Open the console signed out: idp's login, then the second factor enrolled on the way."""
    page.goto(f"{op.url}/admin/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Continue").click()
    key = page.locator("code.secret").first.inner_text().strip()
    page.get_by_label("6-digit code").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("button", name="I saved them, continue").click()
    page.get_by_role("heading", name="Overview").wait_for()


def test_the_console_pages_pass_the_audit(op: Any, browser: Any, shots: Any) -> None:
    assert AXE.exists() and os.path.exists(CHROMIUM)
    user = op.factory.gen_user()
    idp(op, "admins", "add", "--email", user.email)
    audit = Auditor()
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    sign_in(page, op, user)
    audit(page, "overview")
    shots(page, "overview")

    page.get_by_role("link", name="Applications").first.click()
    audit(page, "applications")
    page.get_by_role("link", name="Create an application").click()
    audit(page, "new application")
    page.get_by_label("Name").fill("Browser app")
    page.get_by_label("Redirect URIs (one a line, matched exactly)").fill("http://app.test/cb")
    page.get_by_role("button", name="Create").click()
    audit(page, "new application, refused")  # http off loopback: the API's reason shown
    assert page.get_by_role("alert").inner_text().startswith("http redirect URIs")
    page.get_by_label("Redirect URIs (one a line, matched exactly)").fill("https://app.test/cb")
    page.get_by_role("button", name="Create").click()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", page.locator("#client-id").inner_text())
    audit(page, "application created, its secret shown once")
    shots(page, "application-created")
    page.get_by_role("link", name="Open the application").click()
    audit(page, "application")
    shots(page, "application")

    context.close()
    audit.assert_clean()
