"""Consent for third-party applications: AZ-26, AZ-29, AZ-38, AZ-39, AZ-40, SEC-11, S-SS-01."""

from __future__ import annotations

import pytest
import requests

from idp.consent import service as consent
from idp.extensions import db
from tests.helpers import Browser, auth_params, hidden_inputs, pkce, redeem


@pytest.fixture
def third(op):
    return op.factory.gen_client(first_party=False)


def _login(op, client, user, browser, **extra):
    _verifier, challenge = pkce()
    return browser.authorize(auth_params(client, challenge, **extra), user, consent="allow")


def test_first_party_apps_never_ask(op):
    client, user = op.factory.gen_client(), op.factory.gen_user()
    result = Browser(op.url).authorize(auth_params(client, pkce()[1], scope="openid email"), user)
    assert result.code and not result.consent_shown


def test_consent_is_asked_once_then_remembered(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    verifier, challenge = pkce()
    first = browser.authorize(auth_params(third, challenge, scope="openid email"), user)
    assert first.consent_shown and not first.code
    assert "See your email address" in first.page and "test regular_web" in first.page
    allowed = browser.authorize(
        auth_params(third, challenge, scope="openid email"), user, consent="allow"
    )
    assert allowed.code and allowed.params["iss"] == op.url
    assert redeem(op.url, third, allowed.code, verifier).status_code == 200
    again = browser.authorize(auth_params(third, pkce()[1], scope="openid email"), user)
    assert again.code and not again.consent_shown


def test_az26_prompt_none_without_consent_is_consent_required(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    _login(op, op.factory.gen_client(), user, browser)  # a session, via a first-party app
    params = auth_params(third, pkce()[1], prompt="none", state="st-26")
    result = browser.authorize(params, user)
    assert result.params["error"] == "consent_required"
    assert result.params["state"] == "st-26" and result.params["iss"] == op.url
    assert "code" not in result.params


def test_new_scope_asks_only_for_what_is_missing(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    assert _login(op, third, user, browser, scope="openid").code
    result = browser.authorize(auth_params(third, pkce()[1], scope="openid email"), user)
    assert result.consent_shown
    assert "See your email address" in result.page and "Know who you are" not in result.page


def test_az29_prompt_consent_asks_again(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    assert _login(op, third, user, browser).code
    result = browser.authorize(auth_params(third, pkce()[1], prompt="consent"), user)
    assert result.consent_shown
    done = browser.authorize(auth_params(third, pkce()[1], prompt="consent"), user, consent="allow")
    assert done.code  # answered once, no loop


def test_prompt_login_with_consent_does_not_loop(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    result = browser.authorize(auth_params(third, pkce()[1], prompt="login"), user, consent="allow")
    assert result.login_shown and result.consent_shown and result.code


def test_az38_denial_is_access_denied_with_state_and_iss(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    params = auth_params(third, pkce()[1], state="st-38")
    shown = browser.authorize(params, user)
    assert shown.consent_shown
    denied = browser.authorize(params, user, consent="deny")
    assert denied.status == 303  # AZ-40: never 307 after a POST
    assert denied.location.startswith(third.redirect_uri)
    assert denied.params["error"] == "access_denied"
    assert denied.params["state"] == "st-38" and denied.params["iss"] == op.url
    assert "code" not in denied.params


def test_consent_post_without_csrf_token_grants_nothing(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    params = auth_params(third, pkce()[1], scope="openid email")
    shown = browser.authorize(params, user)
    page = browser.http.get(f"{op.url}/authorize", params=params)
    consent_url = page.url
    assert "/consent" in consent_url and shown.consent_shown
    for fields in ({"decision": "allow"}, {"decision": "allow", "csrf_token": "forged"}):
        resp = browser.http.post(consent_url, data=fields, allow_redirects=False)
        assert resp.status_code == 400 and "Location" not in resp.headers
    with op.app.app_context():
        assert consent.list_for_user(db.session, user.user_id) == []
    # the same page with its real token still works
    fields = hidden_inputs(browser.http.get(consent_url).text) | {"decision": "allow"}
    assert browser.http.post(consent_url, data=fields, allow_redirects=False).status_code == 303


def test_consent_page_is_bound_to_the_browser(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    params = auth_params(third, pkce()[1])
    browser.authorize(params, user)
    consent_url = browser.http.get(f"{op.url}/authorize", params=params).url
    stranger = requests.get(consent_url, allow_redirects=False)
    assert stranger.status_code == 400 and "Allow" not in stranger.text


def test_revoked_consent_ends_the_apps_tokens(op, third):
    user, browser = op.factory.gen_user(), Browser(op.url)
    verifier, challenge = pkce()
    result = browser.authorize(
        auth_params(third, challenge, scope="openid offline_access"), user, consent="allow"
    )
    tokens = redeem(op.url, third, result.code, verifier).json()
    with op.app.app_context():
        consent.revoke(db.session, user.user_id, third.client_id)
        db.session.commit()
    refreshed = requests.post(
        f"{op.url}/oauth/token",
        auth=third.basic,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    info = requests.get(
        f"{op.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 401
    again = browser.authorize(auth_params(third, pkce()[1]), user)
    assert again.consent_shown


def test_az39_offline_access_needs_consent_of_a_third_party_app(op, third):
    """OIDC Core §11: a refresh token for offline_access only once consent covers it
    (first-party applications are trusted by the operator and never ask)."""
    user, browser = op.factory.gen_user(), Browser(op.url)
    verifier, challenge = pkce()
    params = auth_params(third, challenge, scope="openid offline_access")
    shown = browser.authorize(params, user)
    assert shown.consent_shown and "Stay signed in" in shown.page and not shown.code
    done = browser.authorize(params, user, consent="allow")
    tokens = redeem(op.url, third, done.code, verifier).json()
    assert tokens.get("refresh_token")
