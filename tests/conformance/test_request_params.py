"""The authorization request's finer parameters, black-box against the live server: ``claims``
(OIDC Core §5.5), ``acr_values`` and an essential ``acr`` (§3.1.2.1, §5.5.1.1), ``max_age``
(§3.1.2.1) and ``response_mode=form_post`` (Form Post Response Mode §2)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from idp.extensions import db
from idp.identity import profile
from idp.identity.models import User
from idp.mfa.policy import MFA_ACR
from idp.oauth.acr import SINGLE_FACTOR_ACR
from tests.conformance._authz_helpers import (
    assert_error_redirect,
    code_flow,
    log_in,
    send_authorize,
)
from tests.conformance._token_helpers import refresh, userinfo
from tests.helpers import Browser, auth_params, hidden_inputs, jwt_parts, pkce, redeem

PHONE = "+33612345678"


@pytest.fixture
def client(op):
    return op.factory.gen_client()


@pytest.fixture
def user(op):
    """A user with a name and a phone number besides the email every user has."""
    made = op.factory.gen_user()
    with op.app.app_context():
        row = db.session.get(User, made.user_id)
        profile.update_profile(row, {"name": "Ada Lovelace", "phone_number": PHONE})
        db.session.commit()
    return made


def _claims(**members: Any) -> str:
    return json.dumps(members)


# --- claims: the spec's errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[]",
        '"id_token"',
        '{"id_token": ["email"]}',
        '{"userinfo": "email"}',
        '{"id_token": {"email": true}}',
        '{"id_token": {"acr": {"essential": "yes"}}}',
        '{"userinfo": {"email": {"values": "a@b.test"}}}',
        '{"id_token": {"acr": {"value": 2}}}',
        '{"id_token": {"acr": {"values": ["", "x"]}}}',
        '{"id_token": {"": null}}',
        "{" + '"x": 1, ' * 2100 + '"y": 1}',  # longer than 4096 characters
    ],
    ids=lambda raw: raw[:40],
)
def test_malformed_claims_is_invalid_request(op, client, raw):
    params = auth_params(client, pkce()[1], claims=raw)
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, client.redirect_uri, op.url, "invalid_request", params["state"])


def test_repeated_claims_is_invalid_request(op, client):
    params = [*auth_params(client, pkce()[1]).items(), ("claims", "{}"), ("claims", "{}")]
    resp = send_authorize(op.url, params)
    state = dict(params)["state"]
    assert_error_redirect(resp, client.redirect_uri, op.url, "invalid_request", state)


def test_claims_with_unknown_members_is_accepted(op, client, user):
    raw = _claims(id_token=None, userinfo={}, something_else={"x": 1})
    _result, tokens = code_flow(op.url, client, Browser(op.url), user, claims=raw)
    assert tokens is not None and "id_token" in tokens


# --- claims: what is released where ----------------------------------------------------------


def test_claims_released_exactly_as_asked(op, client, user):
    """ID token: what id_token asks (the user has; made-up names and absent claims left out);
    userinfo: the scope's claims (none beyond sub for scope=openid) plus what userinfo asks."""
    raw = _claims(
        id_token={
            "email": None,
            "name": {"essential": True},
            "nickname": None,  # the user has none
            "made_up_claim": {"value": "x"},  # not a claim idp knows: never invented
        },
        userinfo={"phone_number": None},
    )
    _result, tokens = code_flow(
        op.url, client, Browser(op.url), user, claims=raw, scope="openid offline_access"
    )
    assert tokens is not None
    id_claims = jwt_parts(tokens["id_token"])[1]
    assert id_claims["email"] == user.email and id_claims["name"] == "Ada Lovelace"
    for absent in ("nickname", "made_up_claim", "phone_number", "email_verified"):
        assert absent not in id_claims
    info = userinfo(op, tokens["access_token"]).json()
    assert info == {"sub": user.user_id, "phone_number": PHONE}
    # the grant remembers: the refreshed ID token and access token answer the same
    again = refresh(op, client, tokens["refresh_token"]).json()
    assert jwt_parts(again["id_token"])[1]["email"] == user.email
    assert userinfo(op, again["access_token"]).json() == info


def test_claims_value_never_changes_a_claim(op, client, user):
    raw = _claims(id_token={"email": {"value": "someone@else.test", "essential": True}})
    _result, tokens = code_flow(op.url, client, Browser(op.url), user, claims=raw)
    assert tokens is not None
    assert jwt_parts(tokens["id_token"])[1]["email"] == user.email


def test_claims_in_addition_to_scope_at_userinfo(op, client, user):
    raw = _claims(userinfo={"name": None})
    _result, tokens = code_flow(
        op.url, client, Browser(op.url), user, claims=raw, scope="openid email"
    )
    assert tokens is not None
    info = userinfo(op, tokens["access_token"]).json()
    assert info["name"] == "Ada Lovelace" and info["email"] == user.email
    assert "name" not in jwt_parts(tokens["id_token"])[1]


def test_a_claim_asked_by_name_needs_consent(op, user):
    """A third-party app asking for email by name is asked the email scope's consent."""
    third = op.factory.gen_client(first_party=False)
    raw = _claims(userinfo={"email": None})
    verifier, challenge = pkce()
    browser = Browser(op.url)
    shown = browser.authorize(auth_params(third, challenge, claims=raw), user)
    assert shown.consent_shown and "See your email address" in shown.page
    result = browser.authorize(auth_params(third, challenge, claims=raw), user, consent="allow")
    assert result.code
    tokens = redeem(op.url, third, result.code, verifier).json()
    assert userinfo(op, tokens["access_token"]).json()["email"] == user.email
    other = op.factory.gen_user()
    denied = Browser(op.url).authorize(auth_params(third, challenge, claims=raw), other,
                                       consent="deny")  # fmt: skip
    assert denied.params["error"] == "access_denied"


# --- acr ---------------------------------------------------------------------------------------


def _acr_of(op, client, user, **extra: Any) -> Any:
    result, tokens = code_flow(op.url, client, Browser(op.url), user, **extra)
    return result, (jwt_parts(tokens["id_token"])[1].get("acr") if tokens else None)


def test_a_password_login_says_single_factor(op, client, user):
    _result, acr = _acr_of(op, client, user)
    assert acr == SINGLE_FACTOR_ACR


def test_voluntary_acr_not_met_logs_in_with_what_was_achieved(op, client, user):
    _result, acr = _acr_of(op, client, user, acr_values="urn:example:loa:4")
    assert acr == SINGLE_FACTOR_ACR


def test_voluntary_acr_met_is_answered(op, client, user):
    _result, acr = _acr_of(op, client, user, acr_values=f"urn:example:loa:4 {SINGLE_FACTOR_ACR}")
    assert acr == SINGLE_FACTOR_ACR


def test_essential_acr_not_met_is_access_denied(op, client):
    raw = _claims(id_token={"acr": {"essential": True, "values": ["urn:example:loa:4"]}})
    params = auth_params(client, pkce()[1], claims=raw)
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, client.redirect_uri, op.url, "access_denied", params["state"])


def test_essential_acr_met(op, client, user):
    raw = _claims(id_token={"acr": {"essential": True, "value": SINGLE_FACTOR_ACR}})
    _result, acr = _acr_of(op, client, user, claims=raw)
    assert acr == SINGLE_FACTOR_ACR


def test_essential_mfa_acr_steps_the_login_up(op, client, user):
    """Asked through claims as acr_values already did: the MFA step, not a code."""
    raw = _claims(id_token={"acr": {"essential": True, "values": [MFA_ACR]}})
    result = Browser(op.url).authorize(auth_params(client, pkce()[1], claims=raw), user)
    assert result.code is None and result.status == 200
    assert "/mfa" in result.page or "authenticator" in result.page.lower()


def test_essential_mfa_acr_with_prompt_none_is_interaction_required(op, client, user):
    first = log_in(op.url, client, user)
    raw = _claims(id_token={"acr": {"essential": True, "values": [MFA_ACR]}})
    params = auth_params(client, pkce()[1], claims=raw, prompt="none")
    resp = send_authorize(op.url, params, http=first.browser.http)
    assert_error_redirect(
        resp, client.redirect_uri, op.url, "interaction_required", params["state"]
    )


# --- max_age -----------------------------------------------------------------------------------


def test_max_age_zero_shows_the_login_form_despite_a_session(op, client, user):
    first = log_in(op.url, client, user)
    again = first.browser.authorize(auth_params(client, pkce()[1], max_age="0"))
    assert again.login_shown and again.code is None
    # ...whereas a generous max_age is single sign-on
    sso = first.browser.authorize(auth_params(client, pkce()[1], max_age="3600"))
    assert sso.code and not sso.login_shown


def test_max_age_zero_with_prompt_none_is_login_required(op, client, user):
    first = log_in(op.url, client, user)
    params = auth_params(client, pkce()[1], max_age="0", prompt="none")
    resp = send_authorize(op.url, params, http=first.browser.http)
    assert_error_redirect(resp, client.redirect_uri, op.url, "login_required", params["state"])


def test_max_age_zero_login_then_auth_time_is_fresh(op, client, user):
    first = log_in(op.url, client, user)
    verifier, challenge = pkce()
    result = first.browser.authorize(auth_params(client, challenge, max_age="0"), user)
    assert result.code and result.login_shown
    id_claims = jwt_parts(redeem(op.url, client, result.code, verifier).json()["id_token"])[1]
    assert id_claims["auth_time"] >= first.id_claims["auth_time"]  # OIDC Core §2: present


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "²"])
def test_malformed_max_age_is_invalid_request(op, client, value):
    params = auth_params(client, pkce()[1], max_age=value)
    resp = send_authorize(op.url, params)
    assert_error_redirect(resp, client.redirect_uri, op.url, "invalid_request", params["state"])


# --- response_mode=form_post -------------------------------------------------------------------


def _form(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form id="form-post" method="post" action="([^"]+)"', page)
    assert action is not None, page[:500]
    return action.group(1), hidden_inputs(page)


def _check_form_post_page(resp_or_page: Any, redirect_uri: str) -> None:
    """No inline script (every script from 'self'), a button, and a CSP whose form-action is
    the redirect URI only."""
    page = resp_or_page.text
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and all(re.search(r'src="/static/form_post\.js', s) for s in scripts)
    assert re.search(r"<script[^>]*>\s*[^<\s]", page) is None  # nothing inline
    assert "<button" in page and "onload" not in page and "onclick" not in page
    csp = resp_or_page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    assert directives["form-action"] == redirect_uri.split("?")[0]
    assert resp_or_page.headers["Cache-Control"].startswith("no-store")


def test_form_post_delivers_code_state_and_iss(op, client, user):
    """AZ-17: the code, state and iss as the form's fields, posted to the redirect URI."""
    browser = Browser(op.url)
    verifier, challenge = pkce()
    params = auth_params(client, challenge, response_mode="form_post")
    result = browser.authorize(params, user)
    assert result.status == 200 and result.code is None  # a page, not a redirect
    action, fields = _form(result.page)
    assert action == client.redirect_uri
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == params["state"] and fields["iss"] == op.url
    assert redeem(op.url, client, fields["code"], verifier).status_code == 200


def test_form_post_page_headers(op, client, user):
    first = log_in(op.url, client, user)
    params = auth_params(client, pkce()[1], response_mode="form_post")
    resp = send_authorize(op.url, params, http=first.browser.http)  # SSO: the page at once
    assert resp.status_code == 200 and "Location" not in resp.headers
    _check_form_post_page(resp, client.redirect_uri)
    script = requests.get(f"{op.url}/static/form_post.js")
    assert script.status_code == 200 and "submit()" in script.text


def test_form_post_errors_too(op, client):
    """An error after the redirect URI is validated goes by form_post as well."""
    raw = _claims(id_token={"acr": {"essential": True, "values": ["urn:example:loa:4"]}})
    params = auth_params(client, pkce()[1], response_mode="form_post", claims=raw)
    resp = send_authorize(op.url, params)
    assert resp.status_code == 200
    _check_form_post_page(resp, client.redirect_uri)
    action, fields = _form(resp.text)
    assert action == client.redirect_uri
    assert fields["error"] == "access_denied" and fields["state"] == params["state"]
    assert fields["iss"] == op.url and "code" not in fields
    # an error Authlib finds (no PKCE) as well
    params = auth_params(client, None, response_mode="form_post")
    params.pop("code_challenge_method")
    _action, fields = _form(send_authorize(op.url, params).text)
    assert fields["error"] == "invalid_request"


def test_form_post_never_to_an_unregistered_redirect_uri(op, client):
    params = auth_params(client, pkce()[1], response_mode="form_post")
    params["redirect_uri"] = "https://attacker.test/cb"
    resp = send_authorize(op.url, params)
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert (
        "form-post" not in resp.text
        and "form-action" not in resp.headers["Content-Security-Policy"]
    )


def test_form_post_redirect_uri_cannot_inject_csp(op):
    """A registered redirect URI with CSP separators does not add directives."""
    uri = "https://rp.test/cb;script-src,x?a=1"
    client = op.factory.gen_client(redirect_uris=[uri])
    params = auth_params(client, None, response_mode="form_post")
    params.pop("code_challenge_method")  # an error: the form, whoever asks
    resp = send_authorize(op.url, params)
    csp = resp.headers["Content-Security-Policy"]
    names = [d.strip().split(" ", 1)[0] for d in csp.split(";")]
    assert names.count("script-src") == 1 and len(names) == len(set(names))
    assert csp.endswith("; form-action https://rp.test/cb%3Bscript-src%2Cx")
    assert _form(resp.text)[0] == uri.replace("&", "&amp;")


def test_discovery_advertises_the_parameters(op):
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    assert doc["claims_parameter_supported"] is True
    assert doc["acr_values_supported"] == [SINGLE_FACTOR_ACR, MFA_ACR]
    assert doc["response_modes_supported"] == ["query", "form_post"]
    assert doc["ui_locales_supported"] == ["en", "fr"]


def test_a_requested_sub_value_binds_the_login(op, client, user):
    """§5.5.1: with another user's session, a sub value asks for the login again; prompt=none
    is login_required; the right user's session answers at once."""
    other = op.factory.gen_user()
    first = log_in(op.url, client, other)
    raw = _claims(id_token={"sub": {"value": user.user_id}})
    shown = first.browser.authorize(auth_params(client, pkce()[1], claims=raw))
    assert shown.login_shown and shown.code is None
    params = auth_params(client, pkce()[1], claims=raw, prompt="none")
    resp = send_authorize(op.url, params, http=first.browser.http)
    assert_error_redirect(resp, client.redirect_uri, op.url, "login_required", params["state"])
    mine = log_in(op.url, client, user)
    again = mine.browser.authorize(auth_params(client, pkce()[1], claims=raw))
    assert again.code and not again.login_shown
