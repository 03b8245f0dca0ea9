"""A passkey login is one factor without user verification, two with it (issue 19).

UV=false: the MFA step that follows never takes the same credential again (it is not offered,
its options leave it out, and its assertion is refused); another key or another kind passes.
UV=true: the login is multi-factor already (amr has "mfa", acr the PAPE multi-factor URI),
no MFA page. Over HTTP with the software authenticator, RP ID 127.0.0.1.
"""

from __future__ import annotations

import re
from typing import Any

from idp.mfa.policy import MFA_ACR
from tests.helpers import Browser, auth_params, jwt_parts, pkce
from tests.mfa.soft_authenticator import SoftAuthenticator, b64u
from tests.mfa.test_account_factors import add_key
from tests.mfa.test_account_mfa import signed_in_with_totp
from tests.mfa.test_totp import follow, post, tokens_from
from tests.mfa.test_webauthn import _options, _post, _uid


def passkey_login(op: Any, client: Any, key: SoftAuthenticator) -> tuple[Browser, Any, str]:
    """Usernameless sign-in with ``key``; returns (browser, the response after it, verifier)."""
    browser = Browser(op.url)
    verifier, challenge = pkce()
    page = browser.authorize(auth_params(client, challenge, acr_values="mfa")).page
    uid = _uid(page)
    options = _options(browser, f"/interaction/{uid}/login/passkey/options", page).json()
    done = _post(browser, f"/interaction/{uid}/login/passkey", page, key.get(options, op.url))
    return browser, done, verifier


def test_without_uv_the_second_factor_is_another_credential(op: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    lazy = SoftAuthenticator(uv=False, user_handle=user.user_id.encode())
    other = SoftAuthenticator(uv=False, user_handle=user.user_id.encode())
    assert add_key(browser, lazy, "passkey").status_code == 200
    assert add_key(browser, other, "key").status_code == 200
    client = op.factory.gen_client()

    second, done, verifier = passkey_login(op, client, lazy)
    location, page = follow(second, done)
    assert location is None and "protected by a second step" in page  # one factor: the MFA step
    assert "authenticator app" in page.lower()  # another kind is offered
    uid = _uid(page)
    options = _options(second, f"/interaction/{uid}/mfa/webauthn/options", page).json()
    assert [c["id"] for c in options["allowCredentials"]] == [b64u(other.cred_id)]
    same = _post(second, f"/interaction/{uid}/mfa/webauthn", page, lazy.get(options, op.url))
    assert same.status_code == 401 and "not accepted" in same.text
    options = _options(second, f"/interaction/{uid}/mfa/webauthn/options", same.text).json()
    location, _ = follow(second, _post(second, f"/interaction/{uid}/mfa/webauthn", same.text,
                                       other.get(options, op.url)))  # fmt: skip
    assert location and "code=" in location
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["hwk", "mfa"] and claims["acr"] == MFA_ACR


def test_without_uv_a_lone_passkey_leaves_the_recovery_codes(op: Any) -> None:
    """The key is the user's only factor: the step offers no key at all, the codes pass."""
    client, test_user = op.factory.gen_client(), op.factory.gen_user()
    key = SoftAuthenticator(uv=False, user_handle=test_user.user_id.encode())
    browser = Browser(op.url)
    page = browser.authorize(auth_params(client, pkce()[1], acr_values="mfa"), test_user).page
    uid = _uid(page)
    options = _options(browser, f"/interaction/{uid}/mfa/webauthn/register/options", page).json()
    codes_page = _post(browser, f"/interaction/{uid}/mfa/webauthn/register", page,
                       key.create(options, op.url))  # fmt: skip
    codes = re.findall(r"<li><code>([0-9a-f-]+)</code></li>", codes_page.text)
    assert len(codes) == 10

    second, done, verifier = passkey_login(op, client, key)
    location, page = follow(second, done)
    assert location is None and "protected by a second step" in page
    assert "Use your security key or passkey" not in page and "recovery code" in page.lower()
    uid = _uid(page)
    refused = _options(second, f"/interaction/{uid}/mfa/webauthn/options", page)
    assert refused.status_code == 400 and refused.json()["error"] == "no_credential"
    location, _ = follow(second, post(second, page, {"action": "recovery", "code": codes[0]}))
    assert location and "code=" in location
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["hwk", "otp", "mfa"]


def test_with_uv_the_passkey_alone_is_multi_factor(op: Any) -> None:
    user, browser, _, _ = signed_in_with_totp(op)
    key = SoftAuthenticator(uv=True, user_handle=user.user_id.encode())
    assert add_key(browser, key, "passkey").status_code == 200
    client = op.factory.gen_client()
    second, done, verifier = passkey_login(op, client, key)
    location, _ = follow(second, done)
    assert location and "code=" in location  # no MFA page
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["hwk", "mfa"] and claims["acr"] == MFA_ACR
