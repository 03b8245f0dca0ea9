"""Users revoke an application's access themselves; the login form needs its CSRF token."""

from __future__ import annotations

import requests

from tests.helpers import Browser, auth_params, hidden_inputs, login_form_action, pkce


def test_user_revokes_an_apps_access_from_the_account_page(mailing):
    op, user = mailing, mailing.factory.gen_user()
    partner = op.factory.gen_client(first_party=False)
    browser = Browser(op.url)
    verifier, challenge = pkce()
    done = browser.authorize(
        auth_params(partner, challenge, scope="openid offline_access"), user, consent="allow"
    )
    tokens = requests.post(
        f"{op.url}/oauth/token",
        auth=partner.basic,
        data={
            "grant_type": "authorization_code",
            "code": done.code,
            "redirect_uri": partner.redirect_uri,
            "code_verifier": verifier,
        },
    ).json()
    page = browser.http.get(f"{op.url}/account/sessions")
    assert f'data-client="{partner.client_id}"' in page.text
    form = hidden_inputs(page.text)
    resp = browser.http.post(
        f"{op.url}/account/consents/{partner.client_id}/revoke", data=form, allow_redirects=False
    )
    assert resp.status_code == 303
    assert (
        f'data-client="{partner.client_id}"'
        not in browser.http.get(f"{op.url}/account/sessions").text
    )
    refreshed = requests.post(
        f"{op.url}/oauth/token",
        auth=partner.basic,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.json()["error"] == "invalid_grant"
    # and a forged cross-site POST (no token) changes nothing
    again = browser.authorize(auth_params(partner, pkce()[1]), user, consent="allow")
    assert again.code
    assert (
        browser.http.post(
            f"{op.url}/account/consents/{partner.client_id}/revoke", data={}
        ).status_code
        == 400
    )


def test_login_post_without_csrf_token_is_refused(mailing):
    op, user = mailing, mailing.factory.gen_user()
    browser = Browser(op.url)
    page = browser.http.get(
        f"{op.url}/authorize", params=auth_params(op.factory.gen_client(), pkce()[1])
    )
    login_url = op.url + login_form_action(page.text)
    resp = browser.http.post(
        login_url, data={"email": user.email, "password": user.password}, allow_redirects=False
    )
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert not [c for c in browser.http.cookies if c.name == "idp_session"]
