"""A real browser (Playwright driving Debian's Chromium) logs in through a social connection:
the keyboard presses "Continue with ..." on idp's login page (no JavaScript needed), the
real upstream (npm ``oidc-provider``) shows its own login form, and the application receives
tokens whose ``sub`` is idp's user and whose ``identities`` claim, set by an action, lists the
upstream identity."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.connections.social import add_connection
from tests.connections.upstream import PASSWORD
from tests.flows.test_browser_journey import _code, browser, rp  # noqa: F401  (fixtures)
from tests.helpers import auth_params, jwt_parts, pkce, redeem

pytestmark = pytest.mark.browser

IDENTITIES = (
    "def on_execute_post_login(event, api):\n"
    "    api.id_token.set_custom_claim('identities',\n"
    "        [{'connection': i['connection'], 'user_id': i['user_id'],\n"
    "          'isSocial': i['isSocial']} for i in event.user.identities])\n"
)


def test_chromium_continues_with_the_upstream_and_the_app_gets_tokens(
    social_op: Any,
    oidc_upstream: Any,
    browser: Any,  # noqa: F811
    rp: str,  # noqa: F811
) -> None:
    op = social_op
    client = op.factory.gen_client(redirect_uris=[rp])
    name = add_connection(op, oidc_upstream, client)
    op.factory.clear_actions()
    op.factory.gen_action("identities-claim", "post-login", IDENTITIES)
    verifier, challenge = pkce()
    params = auth_params(client, challenge, scope="openid email")
    login = "verified-chromium@example.com"

    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{op.url}/authorize?{urlencode(params)}")
    button = page.locator(f"#connection-{name}")
    assert button.inner_text().strip() == f"Continue with Upstream {name}"
    button.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # keyboard-usable, a plain form: no script involved
    for _ in range(6):  # the upstream's own pages: its login form, then its consent
        page.wait_for_load_state()
        if page.url.startswith(rp):
            break
        assert page.url.startswith(oidc_upstream.issuer), page.url
        if page.locator("input[name=login]").count():
            page.fill("input[name=login]", login)
            page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.locator("button[type=submit]").first.click()
    assert page.url.startswith(rp), page.url
    code = _code(page.url)
    assert code
    context.close()

    resp = redeem(op.url, client, code, verifier)
    assert resp.status_code == 200, resp.text
    claims = jwt_parts(resp.json()["id_token"])[1]
    assert claims["sub"].startswith("usr_")
    assert claims["identities"] == [{"connection": name, "user_id": login, "isSocial": True}]
    op.factory.clear_actions()
