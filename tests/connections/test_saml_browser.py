"""A real browser (Playwright driving Debian's Chromium) logs in through a SAML connection:
the application's /authorize, idp's login page where the keyboard presses "Continue with ...",
the tests' SAML IdP (pysaml2, ``tests/connections/saml_idp.py``) and its login form, its
answer page whose button posts the SAMLResponse to idp's ACS (no JavaScript anywhere), idp's
303 to the GET of the callback, and the application's redirect URI with a code. The code is
redeemed: the ID token's ``sub`` is idp's user and an action's ``identities`` claim lists the
SAML identity. Then the same through the HTTP-POST request binding (idp's "Continue" page)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from idp.connections import service as connections
from idp.extensions import db, services
from tests.conftest import LiveServer
from tests.connections.saml_idp import SamlIdp
from tests.flows.test_browser_journey import _code, browser, rp  # noqa: F401  (fixtures)
from tests.helpers import auth_params, jwt_parts, pkce, redeem

pytestmark = pytest.mark.browser

IDENTITIES = (
    "def on_execute_post_login(event, api):\n"
    "    api.id_token.set_custom_claim('identities',\n"
    "        [{'connection': i['connection'], 'user_id': i['user_id'],\n"
    "          'isSocial': i['isSocial']} for i in event.user.identities])\n"
)


def _connect(op: LiveServer, idp: SamlIdp, client: Any, **options: Any) -> str:
    """A samlp connection to the tests' IdP enabled for ``client``; the IdP loads idp's SP
    metadata (its administrator's step)."""
    name = "corp-" + secrets.token_hex(3)
    with op.app.app_context():
        connections.create_connection(
            db.session, name=name, strategy="samlp", display_name=f"Corp {name}",
            options=idp.options(**options), box=services().box,
        )  # fmt: skip
        connections.enable(db.session, name, client.client_id)
        db.session.commit()
    metadata = requests.get(f"{op.url}/samlp/metadata/{name}", timeout=10)
    assert metadata.status_code == 200, metadata.text[:300]
    idp.register_sp(metadata.text)
    return name


def _browser_login(
    op: LiveServer, idp: SamlIdp, chromium: Any, app_uri: str, username: str, post_binding: bool
) -> tuple[str, dict[str, Any]]:
    """The whole login in Chromium; the connection's name and the ID token's claims."""
    client = op.factory.gen_client(redirect_uris=[app_uri])
    options = {"email_verified": True, **({"request_binding": "post"} if post_binding else {})}
    name = _connect(op, idp, client, **options)
    verifier, challenge = pkce()
    params = auth_params(client, challenge, scope="openid email")

    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{op.url}/authorize?{urlencode(params)}")
    button = page.locator(f"#connection-{name}")
    assert button.inner_text().strip() == f"Continue with Corp {name}"
    button.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # a plain form: keyboard-usable, no script involved
    if post_binding:  # idp's page whose one button posts the AuthnRequest to the IdP
        assert page.url.startswith(op.url), page.url
        assert page.get_by_role("heading", name="Continue to sign in").is_visible()
        with page.expect_navigation():
            page.keyboard.press("Enter")  # the button has the focus (autofocus)
    # the IdP's login form
    assert page.url.startswith(idp.base), page.url
    page.fill("input[name=username]", username)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    # the IdP's answer page: its form posts SAMLResponse and RelayState to idp's ACS
    assert page.url == f"{idp.base}/login", page.url
    assert page.locator("input[name=SAMLResponse]").count() == 1
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{app_uri}?**")
    code = _code(page.url)
    assert code, page.url
    context.close()

    resp = redeem(op.url, client, code, verifier)
    assert resp.status_code == 200, resp.text
    return name, jwt_parts(resp.json()["id_token"])[1]


def _check_claims(op: LiveServer, name: str, username: str, claims: dict[str, Any]) -> None:
    assert claims["sub"].startswith("usr_")
    assert claims["identities"] == [{"connection": name, "user_id": username, "isSocial": False}]
    with op.app.app_context():  # sub is idp's user, who has that identity
        ((identity, connection),) = connections.identities_of(db.session, claims["sub"])
        assert identity.user_id == claims["sub"] and identity.upstream_user_id == username
        assert connection.name == name and identity.provider == "samlp"


@pytest.fixture
def identities_action(social_op: LiveServer) -> Iterator[None]:
    social_op.factory.clear_actions()
    social_op.factory.gen_action("identities-claim", "post-login", IDENTITIES)
    yield
    social_op.factory.clear_actions()


def test_chromium_signs_in_through_the_saml_idp_and_the_app_gets_tokens(
    social_op: LiveServer,
    saml_idp: SamlIdp,
    identities_action: Any,
    browser: Any,  # noqa: F811
    rp: str,  # noqa: F811
) -> None:
    username = "chromium-" + secrets.token_hex(3)
    name, claims = _browser_login(social_op, saml_idp, browser, rp, username, post_binding=False)
    _check_claims(social_op, name, username, claims)
    assert saml_idp.requests[-1]["binding"].endswith("HTTP-Redirect")


def test_chromium_through_the_post_binding_page(
    social_op: LiveServer,
    saml_idp: SamlIdp,
    identities_action: Any,
    browser: Any,  # noqa: F811
    rp: str,  # noqa: F811
) -> None:
    username = "chromium-post-" + secrets.token_hex(3)
    name, claims = _browser_login(social_op, saml_idp, browser, rp, username, post_binding=True)
    _check_claims(social_op, name, username, claims)
    assert saml_idp.requests[-1]["binding"].endswith("HTTP-POST")
