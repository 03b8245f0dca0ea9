"""Accessibility audit of every hosted page (issue 3), in a real browser.

Playwright drives Debian's Chromium through the pages a user meets — sign-in, sign-up, email
verification, consent, the account pages, password reset, logout and the error pages — each
in a realistic state (with and without form errors), and on each page:

* axe-core (node_modules/axe-core) checks the WCAG 2.0/2.1 A and AA rules, in the light and
  in the dark colour scheme (the pages follow ``prefers-color-scheme``);
* at a 375 px wide viewport nothing scrolls sideways.

Then: the Tab order of the login form; sign-in and consent with JavaScript switched off; a light
brand colour from config keeps the primary button readable (branding.css picks its text colour).

The pages forbid every script (CSP ``default-src 'none'``), so the auditing contexts bypass the
CSP to inject axe; the no-JavaScript context keeps it.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from idp.extensions import db
from tests.conftest import LiveServer, _free_server, build_app
from tests.helpers import auth_params, pkce

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
RP_CALLBACK = "https://rp.test/cb"  # the factory's default redirect URI, answered by a route

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    if not AXE.exists():
        pytest.skip("node_modules/axe-core is missing (make test runs npm ci)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _new_context(browser: Any, **options: Any) -> Any:
    context = browser.new_context(viewport=DESKTOP, **options)
    # the relying party: its callback answers 200 without leaving the machine
    context.route(
        f"{RP_CALLBACK}**",
        lambda route: route.fulfill(status=200, content_type="text/plain", body="rp callback"),
    )
    return context


def _format(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:5]:
            lines.append(f"    {' '.join(node['target'])}: {node['html'][:160]}")
            summary = (node.get("failureSummary") or "").replace("\n", " / ")
            if summary:
                lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


class Auditor:
    """Runs the checks on the page a context shows and collects the failures by page, so one
    run reports every page's problems at once."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.audited: list[str] = []

    def __call__(self, page: Any, name: str) -> None:
        self.audited.append(name)
        page.wait_for_load_state("load")
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(path=str(AXE))
        problems = []
        light = self._axe(page, {"runOnly": {"type": "tag", "values": WCAG_TAGS}})
        if light:
            problems.append("light scheme:\n" + _format(light))
        page.emulate_media(color_scheme="dark")
        dark = self._axe(page, {"runOnly": {"type": "rule", "values": ["color-contrast"]}})
        page.emulate_media(color_scheme="light")
        if dark:
            problems.append("dark scheme:\n" + _format(dark))
        page.set_viewport_size(PHONE)
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        page.set_viewport_size(DESKTOP)
        if widths[0] > widths[1]:
            problems.append(f"scrolls sideways at 375 px: content {widths[0]} > {widths[1]} px")
        if problems:
            self.failures.append(f"{name} ({page.url}):\n" + "\n".join(problems))

    @staticmethod
    def _axe(page: Any, options: dict[str, Any]) -> list[dict[str, Any]]:
        result = json.loads(
            page.evaluate(
                """async (options) => {
                    const r = await axe.run(document, options);
                    return JSON.stringify({violations: r.violations, passes: r.passes.length});
                }""",
                options,
            )
        )
        assert result["passes"], "axe checked nothing"
        return list(result["violations"])

    def assert_clean(self) -> None:
        assert not self.failures, "accessibility problems:\n\n" + "\n\n".join(self.failures)


def _authorize_url(op: LiveServer, client: Any, **extra: Any) -> str:
    return f"{op.url}/authorize?{urlencode(auth_params(client, pkce()[1], **extra))}"


def test_every_page_passes_the_audit(mailing: LiveServer, browser: Any) -> None:
    op = mailing
    partner = op.factory.gen_client(first_party=False)  # asks for consent
    # a long address: it must wrap on a phone rather than widen the page
    email = f"someone.with-a-rather-long-address-{secrets.token_hex(4)}@example.test"
    password = "lantern-orchard-velvet-47"
    audit = Auditor()
    context = _new_context(browser, bypass_csp=True)
    page = context.new_page()

    page.goto(_authorize_url(op, partner, scope="openid email"))
    audit(page, "login")
    page.get_by_label("Email").fill("nobody@example.test")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Continue").click()
    audit(page, "login, wrong password")

    page.get_by_role("link", name="Create an account").click()
    audit(page, "sign-up")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Sign up").click()
    audit(page, "sign-up, weak password")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role(
        "heading", name="Check your email"
    ).wait_for()  # the page after the click, however slow the machine
    assert page.get_by_role("heading", name="Check your email").is_visible()
    audit(page, "sign-up done")

    verify_link = op.inbox.link(email, "Verify")
    page.goto(verify_link)
    audit(page, "verify email")
    page.get_by_role("button", name="Verify my email address").click()
    audit(page, "email verified")
    page.goto(verify_link)
    audit(page, "verify email, spent link")

    page.goto(_authorize_url(op, partner, scope="openid email"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role(
        "button", name="Allow"
    ).wait_for()  # the page after the click, however slow the machine
    assert page.get_by_role("button", name="Allow").is_visible()
    audit(page, "consent")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{RP_CALLBACK}?**")

    page.goto(f"{op.url}/account/sessions")
    assert page.get_by_role("heading", name="Applications you allowed").is_visible()
    audit(page, "account sessions and allowed apps")
    assert page.locator("time").first.get_attribute("datetime").endswith("Z")  # ISO 8601, UTC
    assert page.get_by_role("button", name="End the session signed in at ").count() == 1
    assert page.get_by_role("button", name="Remove access for test regular_web").is_visible()
    page.get_by_role("link", name="Change password").click()
    audit(page, "change password")
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password").fill("another-long-passphrase-93")
    page.get_by_role("button", name="Change password").click()
    audit(page, "change password, wrong current password")
    new_password = "copper-meadow-lantern-58"
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    page.get_by_role("status").wait_for()  # the page after the click, however slow the machine
    assert page.get_by_role("status").is_visible()
    audit(page, "password changed")

    page.goto(f"{op.url}/oidc/logout")
    audit(page, "logout confirmation")
    page.get_by_role("button", name="No, stay signed in").click()
    audit(page, "logout declined")
    page.goto(f"{op.url}/oidc/logout")
    page.get_by_role("button", name="Yes, sign me out").click()
    audit(page, "logged out")
    page.goto(f"{op.url}/account/sessions")
    audit(page, "account, signed out")

    page.goto(f"{op.url}/password/forgot")
    audit(page, "forgot password")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send me a link").click()
    audit(page, "forgot password, sent")
    reset_link = op.inbox.link(email, "Reset")
    page.goto(reset_link)
    audit(page, "reset password")
    page.get_by_label("New password").fill("password")
    page.get_by_role("button", name="Save").click()
    audit(page, "reset password, weak password")
    page.get_by_label("New password").fill("harbour-violet-compass-71")
    page.get_by_role("button", name="Save").click()
    page.get_by_role(
        "heading", name="Password changed"
    ).wait_for()  # the page after the click, however slow the machine
    assert page.get_by_role("heading", name="Password changed").is_visible()
    audit(page, "password reset")
    page.goto(reset_link)
    audit(page, "reset password, spent link")

    page.goto(f"{op.url}/authorize?client_id=nobody&response_type=code")
    audit(page, "authorize error")
    page.goto(f"{op.url}/interaction/{secrets.token_urlsafe(8)}/login")
    audit(page, "login link expired")
    page.goto(f"{op.url}/unblock?token={secrets.token_urlsafe(8)}")
    audit(page, "unblock, expired link")

    context.close()
    assert len(audit.audited) >= 25
    audit.assert_clean()


def test_tab_order_of_the_login_form(mailing: LiveServer, browser: Any) -> None:
    op = mailing
    client = op.factory.gen_client()
    context = _new_context(browser)
    page = context.new_page()
    page.goto(_authorize_url(op, client))
    focused_js = """() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        return {
            what: el === document.body ? "body" : el.id || el.textContent.trim(),
            outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
        };
    }"""
    assert page.evaluate(focused_js)["what"] == "email"  # autofocus
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(focused_js)["what"] == "body"  # nothing focusable comes before it
    page.keyboard.press("Tab")
    order = []
    for _ in range(6):  # the two fields, the button, the passkey button (webauthn.js), the links
        focused = page.evaluate(focused_js)
        order.append(focused["what"])
        assert focused["outline"], f"no visible focus on {focused['what']!r} after {order}"
        page.keyboard.press("Tab")
    assert order[:3] == ["email", "password", "Continue"], order
    assert order[3:] == ["Sign in with a passkey", "Forgot your password?", "Create an account"], (
        order
    )
    context.close()


def test_sign_in_and_consent_without_javascript(mailing: LiveServer, browser: Any) -> None:
    op = mailing
    partner = op.factory.gen_client(first_party=False)
    user = op.factory.gen_user()
    context = _new_context(browser, java_script_enabled=False)
    page = context.new_page()
    page.goto(_authorize_url(op, partner, scope="openid email"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{RP_CALLBACK}?**")
    assert "code=" in page.url
    page.goto(f"{op.url}/oidc/logout")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.get_by_role(
        "heading", name="You are signed out"
    ).wait_for()  # the page after the click, however slow the machine
    assert page.get_by_role("heading", name="You are signed out").is_visible()
    context.close()


@pytest.fixture(scope="module")
def light_brand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server branded with a pale yellow: white text on it would be unreadable."""
    tmp = tmp_path_factory.mktemp("brand")
    app, server = _free_server(lambda port: build_app(tmp, port, BRAND_PRIMARY_COLOR="#ffe680"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield LiveServer(app, server)
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def test_a_light_brand_colour_keeps_the_button_readable(
    light_brand: LiveServer, browser: Any
) -> None:
    op = light_brand
    partner = op.factory.gen_client(first_party=False)
    user = op.factory.gen_user()
    audit = Auditor()
    context = _new_context(browser, bypass_csp=True)
    page = context.new_page()
    page.goto(_authorize_url(op, partner))
    button = page.get_by_role("button", name="Continue")
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(255, 230, 128)"
    audit(page, "login, light brand")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    button.click()
    audit(page, "consent, light brand")
    context.close()
    audit.assert_clean()
