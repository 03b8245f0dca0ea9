"""Regression tests for problems found in review: each failed before its fix."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from tests.helpers import Browser, auth_params, hidden_inputs, login_and_redeem, pkce


def test_unicode_digit_max_age_is_invalid_request_not_500(op):
    client = op.factory.gen_client()
    result = Browser(op.url).authorize(auth_params(client, pkce()[1], max_age="²"))
    assert result.params["error"] == "invalid_request"


def test_overlong_nonce_is_refused_before_login(op):
    client = op.factory.gen_client()
    result = Browser(op.url).authorize(auth_params(client, pkce()[1], nonce="n" * 513))
    assert result.params["error"] == "invalid_request" and not result.login_shown


def test_hint_for_another_user_then_login_is_login_required_not_a_loop(op):
    client = op.factory.gen_client()
    alice, bob = op.factory.gen_user(), op.factory.gen_user()
    hint = login_and_redeem(op.url, client, alice)["id_token"]
    result = Browser(op.url).authorize(auth_params(client, pkce()[1], id_token_hint=hint), bob)
    assert result.login_shown
    assert result.params.get("error") == "login_required"


def test_double_allow_on_the_consent_page_still_completes(op):
    third, user = op.factory.gen_client(first_party=False), op.factory.gen_user()
    browser = Browser(op.url)
    params = auth_params(third, pkce()[1])
    browser.authorize(params, user)
    consent_url = browser.http.get(f"{op.url}/authorize", params=params).url
    form = hidden_inputs(browser.http.get(consent_url).text) | {"decision": "allow"}
    first = browser.http.post(consent_url, data=form, allow_redirects=False)
    second = browser.http.post(consent_url, data=form, allow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"].startswith(params["redirect_uri"] + "?code=")
    # the second goes through /authorize again, which answers the same request afresh (SSO)
    assert second.headers["Location"].startswith("/authorize?")
    done = browser.http.get(f"{op.url}{second.headers['Location']}", allow_redirects=False)
    assert done.status_code == 302 and "code=" in done.headers["Location"]
    # a "deny" posted after the code was issued neither mints a code nor reports a denial
    late_deny = browser.http.post(consent_url, data=form | {"decision": "deny"})
    assert late_deny.status_code == 400 and "code=" not in late_deny.url
    # nor does a GET of another prompt's page of the finished interaction
    uid = urlsplit(consent_url).path.split("/")[2]
    page = browser.http.get(f"{op.url}/interaction/{uid}/mfa", allow_redirects=False)
    assert page.status_code == 400 and "Location" not in page.headers


def test_double_allow_when_mfa_follows_consent_goes_to_the_mfa_page(op):
    third = op.factory.gen_client(first_party=False)
    user = op.factory.gen_user()
    browser = Browser(op.url)
    params = auth_params(third, pkce()[1], acr_values="mfa")
    result = browser.authorize(params, user)
    assert result.consent_shown
    consent_url = browser.http.get(f"{op.url}/authorize", params=params).url
    form = hidden_inputs(browser.http.get(consent_url).text) | {"decision": "allow"}
    first = browser.http.post(consent_url, data=form, allow_redirects=False)
    second = browser.http.post(consent_url, data=form, allow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert first.headers["Location"].endswith("/mfa")


def test_reset_links_die_when_the_password_changes(op):
    from idp.extensions import db
    from idp.identity import tokens

    user = op.factory.gen_user()
    with op.app.app_context():
        first = tokens.issue(db.session, tokens.RESET_PASSWORD, user.user_id, 3600)
        second = tokens.issue(db.session, tokens.RESET_PASSWORD, user.user_id, 3600)
        db.session.commit()
    session = requests.Session()
    page = session.get(f"{op.url}/password/reset", params={"token": first})
    form = hidden_inputs(page.text) | {"password": "quartz-meadow-lantern-58"}
    assert session.post(f"{op.url}/password/reset", data=form).status_code == 200
    assert session.get(f"{op.url}/password/reset", params={"token": second}).status_code == 400


def test_integrity_conflict_is_409_not_503(op):
    """Unique-constraint races answer 'retry' (409), not 'database unavailable' (503)."""
    from sqlalchemy.exc import IntegrityError

    error = IntegrityError("INSERT", {}, Exception("duplicate key"))
    with op.app.test_request_context("/oauth/revoke", method="POST"):
        resp = op.app.handle_user_exception(error)
    assert resp.status_code == 409 and resp.get_json()["error"] == "invalid_request"
    assert "Retry-After" not in resp.headers and "duplicate" not in resp.get_data(as_text=True)
