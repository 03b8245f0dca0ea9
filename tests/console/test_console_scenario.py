"""The admin console's end-to-end scenario (issue 15) in a real browser (Debian's Chromium
through Playwright), under the console's own CSP, driven through the console's pages only, as
an operator would: sign in (TOTP enrolled on the way); create a regular web application and
note its client ID and secret; an end user logs into it (authorization code with PKCE, RFC
7636) in another browser, the code reaching the relying party's redirect URI; create a Google
connection enabled for the application, whose login page then offers it; write a post-login
action in the editor, run it in the test panel, deploy it and drag it into the post-login flow;
the end user's ID token then carries the action's claim; version 2 changes it, rolling back to
version 1 restores it. What the pages did is read back from the management API.

Then the refusals, each a readable page (axe-core's WCAG 2.1 A/AA rules, light and dark): a user
without the admin role ("Not an admin"), a form whose CSRF token no longer matches (400 "Form
expired", no stack trace), and the second of two tabs saving the same application (412
"Changed meanwhile"). ``UPDATE_SCREENSHOTS=1`` saves the flow and the users found for the README."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp
import pytest

from tests import factories
from tests.console.helpers import admin
from tests.console.test_console_browser import shots as shots
from tests.console.test_console_browser import sign_in
from tests.flows.test_accessibility import DESKTOP, Auditor
from tests.flows.test_accessibility import browser as browser
from tests.helpers import auth_params, jwt_parts, pkce, redeem
from tests.management.conftest import ALL, Mgmt, grant

pytestmark = pytest.mark.browser
RP = "https://shop.example.test/callback"  # the stand-in relying party, answered by a route
PLAN = "https://example.test/plan"
# a clipboard paste carrying the text, dispatched at the editor's content
PASTE = """(editor, text) => {
  const data = new DataTransfer();
  data.setData("text/plain", text);
  editor.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
}"""
CODE = (
    "def on_execute_post_login(event, api):\n"
    "    print('plan for', event.user.email)\n"
    f"    api.id_token.set_custom_claim('{PLAN}', '{{plan}}')\n"
)


@pytest.fixture(autouse=True)
def fresh_actions(op: Any) -> Iterator[None]:
    op.factory.clear_actions()
    yield
    op.factory.clear_actions()  # a bound action would run on the module's other logins


def end_user_login(
    browser: Any, op: Any, app: factories.TestClient, user: factories.TestUser, google: bool
) -> Any:
    """The end user logs in at the application's login page in a browser of their own; the
    code reaching the relying party is redeemed with the application's secret: the ID token's
    claims. ``google``: whether the login page offers "Continue with Google"."""
    context = browser.new_context(viewport=DESKTOP)
    context.route(f"{RP}**", lambda route: route.fulfill(status=200, content_type="text/plain",
                                                         body="the relying party"))  # fmt: skip
    page = context.new_page()
    verifier, challenge = pkce()
    params = auth_params(app, challenge)
    page.goto(f"{op.url}/authorize?{urlencode(params)}")
    assert page.get_by_role("button", name="Continue with Google").count() == int(google)
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Continue", exact=True).click()
    page.wait_for_url(f"{RP}?**")
    answer = parse_qs(urlsplit(page.url).query)
    assert page.get_by_text("the relying party").is_visible()
    context.close()
    assert answer["state"] == [params["state"]], answer
    tokens = redeem(op.url, app, answer["code"][0], verifier)
    assert tokens.status_code == 200, tokens.text
    claims = jwt_parts(tokens.json()["id_token"])[1]
    assert claims["aud"] == app.client_id and claims["sub"] == user.user_id
    assert claims["nonce"] == params["nonce"]
    return claims


def edit_code(page: Any, code: str, button: str) -> None:
    """Replace the draft in the editor (CodeMirror, in its shadow root) and press ``button``.
    The code is pasted as an operator would (a clipboard paste event, which CodeMirror inserts
    as is: typing it would auto-indent; ``keyboard.insert_text`` makes Chromium's own
    contenteditable editing write a style attribute, which the console's CSP blocks)."""
    content = page.locator(".code-editor .cm-content")
    content.click()
    page.keyboard.press("Control+A")
    content.evaluate(PASTE, code)
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state("load")


def test_an_operator_builds_the_scenario_from_the_console(
    op: Any, browser: Any, shots: Any
) -> None:
    held = Mgmt(op, grant(op, ALL), ALL, [])  # to read back what the pages did
    operator, customer = admin(op), op.factory.gen_user()
    context = browser.new_context(viewport=DESKTOP)  # the console's CSP enforced
    page = context.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(f"{page.url}: {m.text}")
            if "Security Policy" in m.text else None)  # fmt: skip
    page.on("pageerror", lambda e: refusals.append(f"{page.url}: {e}"))
    # 1. the admin signs in, enrolling an authenticator app on the way
    sign_in(page, op, operator)
    nav = page.get_by_role("navigation", name="Console")

    # 2. a regular web application; its client ID and secret, shown once, noted
    nav.get_by_role("link", name="Applications").click()
    page.get_by_role("link", name="Create an application").click()
    page.get_by_label("Name").fill("Scenario shop")
    page.get_by_label("Type").select_option(label="Regular web application")
    page.get_by_label("Redirect URIs (one a line, matched exactly)").fill(RP)
    page.get_by_role("button", name="Create").click()
    client_id, secret = page.locator("#client-id").inner_text(), page.locator("#client-secret")
    shop = factories.TestClient(client_id.strip(), secret.inner_text().strip(), RP)
    made = held.call("GET", f"/clients/{shop.client_id}").json()
    assert made["app_type"] == "regular_web" and made["callbacks"] == [RP]
    assert "client_secret" not in made  # the API keeps only a digest

    # 3. the end user logs in; the code comes back to the redirect URI and is redeemed
    claims = end_user_login(browser, op, shop, customer, google=False)
    assert PLAN not in claims

    # 4. a Google connection, enabled for the application: its login page offers it
    nav.get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="Create a connection").click()
    page.get_by_role("link", name="Google", exact=True).click()
    page.get_by_label("Name (letters, digits and dashes; fixed once created)").fill("google")
    page.get_by_label("Display name").fill("Google")
    page.get_by_label("client_id").fill("shop-at-google.apps.example")
    page.get_by_label("client_secret").fill("scenario-google-secret")
    page.get_by_label("Scenario shop").check()
    page.get_by_role("button", name="Create").click()
    page.get_by_role("status").get_by_text("Saved.").wait_for()
    google = next(c for c in held.call("GET", "/connections").json() if c["name"] == "google")
    assert google["strategy"] == "google" and google["enabled_clients"] == [shop.client_id]
    assert "scenario-google-secret" not in page.content()

    # 5. a post-login action written in the editor, run in the test panel, deployed
    nav.get_by_role("link", name="Actions").click()
    page.get_by_label("Name").fill("plan-claim")
    page.get_by_label("Trigger").select_option("post-login")
    page.get_by_role("button", name="Create").click()
    page.locator(".code-editor .cm-content").wait_for()  # the editor has replaced the textarea
    action_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    edit_code(page, CODE.format(plan="gold"), "Save draft")
    page.get_by_text("Draft saved.").wait_for()
    assert held.call("GET", f"/actions/actions/{action_id}").json()["code"] == CODE.format(
        plan="gold")  # fmt: skip
    page.get_by_role("button", name="Run the draft").click()
    page.get_by_role("heading", name="Result").wait_for()
    command = page.locator("#test-commands tbody tr").first.inner_text()
    assert "set_custom_claim" in command and PLAN in command and "gold" in command, command
    assert page.locator("#test-logs").inner_text().startswith("plan for ")
    page.get_by_role("button", name="Save and deploy").click()
    page.get_by_text("Version 1 is deployed and live.").wait_for()

    # 6. dragged from the library into the post-login flow
    nav.get_by_role("link", name="Flows").click()
    page.get_by_role("link", name="post-login", exact=True).click()
    page.get_by_text("Drag an action from the library").wait_for()  # flows.js ran
    page.drag_and_drop(f'.library [data-action="{action_id}"]', '#chain .slot[data-position="0"]')
    page.get_by_text("Added to the chain.").wait_for()
    chain = held.call("GET", "/actions/triggers/post-login/bindings").json()["bindings"]
    assert [b["action"]["id"] for b in chain] == [action_id]
    shots(page, "flow")

    # 7. the end user logs in again: the ID token carries the action's claim
    assert end_user_login(browser, op, shop, customer, google=True)[PLAN] == "gold"

    # 8. version 2 changes the claim; rolling back to version 1 restores it
    nav.get_by_role("link", name="Actions").click()
    page.get_by_role("link", name="plan-claim").click()
    edit_code(page, CODE.format(plan="platinum"), "Save and deploy")
    page.get_by_text("Version 2 is deployed and live.").wait_for()
    assert end_user_login(browser, op, shop, customer, google=True)[PLAN] == "platinum"
    page.get_by_role("button", name="Roll back to 1").click()
    page.get_by_text("Rolled back: version 1 is live again.").wait_for()
    live = held.call("GET", f"/actions/actions/{action_id}").json()["deployed_version"]
    assert live["number"] == 1, live
    assert end_user_login(browser, op, shop, customer, google=True)[PLAN] == "gold"

    # the operator finds the end user and their logins
    nav.get_by_role("link", name="Users").click()
    page.get_by_label("Search").fill(f'email:"{customer.email}"')
    page.get_by_role("button", name="Search").click()
    row = page.get_by_role("row").filter(has_text=customer.email)
    assert row.get_by_role("cell").nth(3).inner_text() == "4"  # logins
    shots(page, "users")
    assert refusals == []
    context.close()


def test_the_refusals_are_readable_pages(op: Any, browser: Any) -> None:
    held = Mgmt(op, grant(op, ALL), ALL, [])
    audit = Auditor()

    # a user without the admin role signs in (a second factor enrolled): "Not an admin"
    someone = op.factory.gen_user()
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)  # to inject axe
    page = context.new_page()
    page.goto(f"{op.url}/admin/")
    page.get_by_label("Email").fill(someone.email)
    page.get_by_label("Password").fill(someone.password)
    page.get_by_role("button", name="Continue").click()
    key = page.locator("code.secret").first.inner_text().strip()
    page.get_by_label("6-digit code").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on").click()
    with page.expect_response(lambda r: "/admin/callback" in r.url) as callback:
        page.get_by_role("button", name="I saved them, continue").click()
    assert callback.value.status == 403
    page.get_by_role("heading", name="Not an admin").wait_for()
    assert "idp admins add" in page.get_by_role("main").inner_text()
    assert page.get_by_role("navigation", name="Console").count() == 0
    audit(page, "not an admin")
    context.close()

    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    sign_in(page, op, admin(op))
    app = op.factory.gen_client()
    url = f"{op.url}/admin/applications/{app.client_id}"

    # a form whose CSRF token no longer matches the session's (the cookie holding it is gone)
    page.goto(url)
    context.clear_cookies(name="idp_csrf")
    page.get_by_label("Name").fill("Forged name")
    with page.expect_response(url) as posted:
        page.get_by_role("button", name="Save").click()
    assert posted.value.status == 400
    page.get_by_role("heading", name="Form expired").wait_for()
    assert "Traceback" not in page.content()
    audit(page, "form expired")
    assert held.call("GET", f"/clients/{app.client_id}").json()["name"] != "Forged name"

    # two tabs edit the same application: the second save is refused, the first one kept
    first, second = page, context.new_page()
    for tab in (first, second):
        tab.goto(url)
    first.get_by_label("Name").fill("Saved first")
    first.get_by_role("button", name="Save").click()
    first.get_by_role("status").get_by_text("Saved.").wait_for()
    second.get_by_label("Name").fill("Saved second")
    with second.expect_response(url) as posted:
        second.get_by_role("button", name="Save").click()
    assert posted.value.status == 412
    second.get_by_role("heading", name="Changed meanwhile").wait_for()
    audit(second, "changed meanwhile")
    assert held.call("GET", f"/clients/{app.client_id}").json()["name"] == "Saved first"

    # not a refusal, but a state the other audits do not reach: two versions, one to roll back to
    made = held.call("POST", "/actions/actions", json={
        "name": "two-versions", "supported_triggers": [{"id": "post-login", "version": "v1"}],
        "code": CODE.format(plan="gold")}).json()  # fmt: skip
    held.call("POST", f"/actions/actions/{made['id']}/deploy")
    held.call("PATCH", f"/actions/actions/{made['id']}", json={"code": CODE.format(plan="x")})
    held.call("POST", f"/actions/actions/{made['id']}/deploy")
    first.goto(f"{op.url}/admin/actions/{made['id']}")
    first.get_by_role("button", name="Roll back to 1").wait_for()
    audit(first, "an action with a version to roll back to")
    context.close()
    audit.assert_clean()
