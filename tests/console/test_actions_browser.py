"""The Actions code editor in a real browser (Debian's Chromium through Playwright), under the
console's own CSP: the bundle enhances the textarea into CodeMirror with its styles applied and
no CSP violation, completes ``event.`` and ``api.`` members of the trigger, and what is typed
is what the form saves. The Actions pages pass axe-core's WCAG 2.1 A/AA rules (light and dark)
and do not scroll sideways at 375 px."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.helpers import admin
from tests.console.test_console_browser import shots as shots
from tests.console.test_console_browser import sign_in
from tests.flows.test_accessibility import DESKTOP, Auditor
from tests.flows.test_accessibility import browser as browser
from tests.management.conftest import ALL, Mgmt, grant

pytestmark = pytest.mark.browser
CLAIM = (
    "def on_execute_post_login(event, api):\n"
    "    print('plan for', event.user.email)\n"
    "    api.id_token.set_custom_claim('https://example.com/plan', 'gold')\n"
)


def test_the_editor_completes_the_trigger_schema_under_the_csp(op: Any, browser: Any) -> None:
    held = Mgmt(op, grant(op, ALL), ALL, [])
    user = admin(op)
    context = browser.new_context(viewport=DESKTOP)  # the CSP enforced
    page = context.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "Security Policy" in m.text else None)
    page.on("pageerror", lambda e: refusals.append(str(e)))
    sign_in(page, op, user)
    page.goto(f"{op.url}/admin/actions")
    page.get_by_label("Name").fill("browser-plan")
    page.get_by_role("button", name="Create").click()

    content = page.locator(".code-editor .cm-content")  # in the editor's (open) shadow root
    content.wait_for()
    assert not page.locator("textarea#code").is_visible()
    assert content.get_attribute("aria-label", timeout=1000).startswith("Draft code")
    # CodeMirror's own styles are applied (unstyled, its root would be a block)
    editor = page.locator(".code-editor .cm-editor")
    assert editor.evaluate("e => getComputedStyle(e).display") == "flex"
    keyword = page.locator(".code-editor .cm-line span").first  # `def`, highlighted
    assert keyword.evaluate("e => getComputedStyle(e).color") != "rgb(26, 26, 26)"

    content.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("    plan = event.user.em")
    options = page.locator(".code-editor .cm-tooltip-autocomplete li .cm-completionLabel")
    options.first.wait_for()
    assert {"email", "email_verified"} <= set(options.all_inner_texts())
    page.keyboard.press("Escape")
    page.keyboard.type("ail")
    page.keyboard.press("Enter")
    page.keyboard.type("api.access_token.set_")
    # the list of the previous member may still show for a moment: wait for this one's
    expect(options.first).to_have_text("set_custom_claim")
    page.wait_for_timeout(200)  # CodeMirror ignores an Enter right after the list opens
    page.keyboard.press("Enter")  # accept the completion
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_load_state("load")
    page.get_by_text("Draft saved.").wait_for()

    code = held.call("GET", "/actions/actions/browser-plan").json()["code"]
    assert code.endswith("    plan = event.user.email\n    api.access_token.set_custom_claim")
    assert refusals == []
    context.close()


def test_the_actions_pages_pass_the_audit(op: Any, browser: Any, shots: Any) -> None:
    held = Mgmt(op, grant(op, ALL), ALL, [])
    user = admin(op)
    audit = Auditor()
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)  # to inject axe
    page = context.new_page()
    sign_in(page, op, user)
    page.goto(f"{op.url}/admin/actions")
    page.get_by_label("Name").fill("plan")
    page.get_by_role("button", name="Create").click()
    page.locator(".code-editor .cm-content").wait_for()
    held.call("PATCH", "/actions/actions/plan", json={"code": CLAIM})
    page.reload()
    page.locator(".code-editor .cm-content").wait_for()
    audit(page, "action editor")
    page.get_by_role("button", name="Save and deploy").click()
    held.call("PATCH", "/actions/actions/plan", json={"code": CLAIM.replace("gold", "platinum")})
    page.reload()
    page.get_by_role("button", name="Run the draft").click()
    page.get_by_role("heading", name="Result").wait_for()
    audit(page, "action tested")
    shots(page, "action-tested")
    page.get_by_label("Name (a new name adds a secret, an existing one replaces its value)").fill(
        "TOKEN"
    )
    page.get_by_label("Value", exact=True).fill("secret-value-123")
    page.get_by_role("button", name="Set the secret").click()
    page.get_by_role("link", name="Version 1 to the draft").click()
    audit(page, "action diff")
    shots(page, "action-diff")
    page.goto(f"{op.url}/admin/actions")
    audit(page, "actions")
    audit.assert_clean()
    context.close()
