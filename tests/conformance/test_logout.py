"""RP-Initiated Logout 1.0: CONFORMANCE.md §2.8 LO-01..LO-12 and SECURITY.md S-SS-07.

idp's policy: a valid ``id_token_hint`` (signed by us, expiry ignored) for the current session
and a ``post_logout_redirect_uri`` registered exactly for the hint's client → the session ends
and the browser is sent there (303) with exactly ``state`` added. A bad hint, an unregistered
URI, a URI without a hint or a ``client_id`` that is not the hint's audience → 400 page, no
redirect, nothing ended. No hint (or a hint for another user) → a confirmation page whose POST
needs the CSRF token.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.factories import RP_LOGOUT
from tests.helpers import Browser, auth_params, hidden_inputs, jwt_parts, login_and_redeem, pkce

LOGOUT = "/oidc/logout"
CONFIRM = "/oidc/logout/confirm"


# --- drivers -------------------------------------------------------------------------------


def _signed_in(op: Any, client: Any = None, user: Any = None, scope: str = "openid") -> Any:
    """A browser with an OP session for ``user`` at ``client``, plus its token response."""
    client = client or op.factory.gen_client()
    user = user or op.factory.gen_user()
    browser = Browser(op.url)
    tokens = login_and_redeem(op.url, client, user, scope=scope, browser=browser)
    return browser, client, user, tokens


def _logout(browser: Browser, params: dict[str, str], method: str = "GET") -> requests.Response:
    url = browser.base + LOGOUT
    if method == "GET":
        return browser.http.get(url, params=params, allow_redirects=False)
    return browser.http.post(url, data=params, allow_redirects=False)


def _silent(browser: Browser, client: Any) -> Any:
    """``prompt=none`` authorization: a code while the OP session lives, else an error."""
    _verifier, challenge = pkce()
    return browser.authorize(auth_params(client, challenge, prompt="none"))


def _assert_session_alive(browser: Browser, client: Any) -> None:
    result = _silent(browser, client)
    assert result.code, (result.status, result.params, result.page[:300])


def _assert_session_gone(browser: Browser, client: Any) -> None:
    result = _silent(browser, client)
    assert result.location and result.location.startswith(client.redirect_uri)
    assert result.params.get("error") == "login_required", result.params
    assert "code" not in result.params


def _assert_error_page(resp: requests.Response) -> None:
    """LO-05/06/07/08: an error shown by the OP, never a redirect."""
    assert resp.status_code == 400, (resp.status_code, resp.headers.get("Location"))
    assert "Location" not in resp.headers
    assert "text/html" in resp.headers["Content-Type"]
    assert "Traceback" not in resp.text


def _assert_confirmation_page(resp: requests.Response) -> dict[str, str]:
    assert resp.status_code == 200, (resp.status_code, resp.headers.get("Location"))
    assert "Location" not in resp.headers
    assert f'action="{CONFIRM}"' in resp.text
    fields = hidden_inputs(resp.text)
    assert fields.get("csrf_token")
    return fields


def _confirm(browser: Browser, fields: dict[str, str], decision: str = "logout") -> Any:
    data = dict(fields, decision=decision)
    return browser.http.post(browser.base + CONFIRM, data=data, allow_redirects=False)


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _session_cookie_cleared(resp: requests.Response) -> bool:
    cookies = resp.headers.get("Set-Cookie", "")
    return bool(re.search(r"idp_session=;|idp_session=\"\";", cookies)) and (
        "Expires=Thu, 01 Jan 1970" in cookies or "Max-Age=0" in cookies
    )


# --- LO-01, LO-02 ----------------------------------------------------------------------------


def test_lo01_end_session_endpoint_in_discovery(op):
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    endpoint = doc["end_session_endpoint"]
    assert endpoint == f"{op.url}{LOGOUT}"
    # Same scheme and origin as the issuer (https in production; the test issuer is http).
    assert urlsplit(endpoint)[:2] == urlsplit(doc["issuer"])[:2]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_lo02_get_and_form_post(op, method):
    browser, client, _user, tokens = _signed_in(op)
    state = secrets.token_urlsafe(8)
    resp = _logout(
        browser,
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": RP_LOGOUT,
            "state": state,
        },
        method=method,
    )
    assert resp.status_code == 303, (resp.status_code, resp.text[:300])
    assert resp.headers["Location"] == f"{RP_LOGOUT}?state={state}"
    _assert_session_gone(browser, client)


# --- LO-03, LO-04 ----------------------------------------------------------------------------


def test_lo03_hint_registered_uri_and_state(op):
    browser, client, _user, tokens = _signed_in(op)
    state = "s t&ä=1"  # needs encoding: the OP must add it, correctly encoded, and nothing else
    resp = _logout(
        browser,
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": RP_LOGOUT,
            "state": state,
        },
    )
    assert resp.status_code == 303
    location = resp.headers["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == RP_LOGOUT
    assert parse_qs(parts.query, keep_blank_values=True) == {"state": [state]}
    assert not parts.fragment
    assert resp.headers.get("Cache-Control") is None or "no-store" in resp.headers["Cache-Control"]
    assert _session_cookie_cleared(resp), resp.headers.get("Set-Cookie")
    _assert_session_gone(browser, client)


def test_lo03_registered_uri_with_query_keeps_its_query(op):
    """A registered URI that has its own query: ``state`` is appended, the rest is kept."""
    uri = "https://rp.test/bye?lang=en"
    client = op.factory.gen_client(post_logout_redirect_uris=[uri])
    browser, client, _user, tokens = _signed_in(op, client=client)
    resp = _logout(
        browser,
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri, "state": "xyz"},
    )
    assert resp.status_code == 303
    parts = urlsplit(resp.headers["Location"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://rp.test/bye"
    assert parse_qs(parts.query) == {"lang": ["en"], "state": ["xyz"]}


def test_lo04_no_state_means_no_state_added(op):
    browser, client, _user, tokens = _signed_in(op)
    resp = _logout(
        browser, {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": RP_LOGOUT}
    )
    assert resp.status_code == 303
    assert resp.headers["Location"] == RP_LOGOUT
    _assert_session_gone(browser, client)


# --- LO-05, S-SS-07 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        RP_LOGOUT + "?extra=1",
        RP_LOGOUT + "/",
        RP_LOGOUT + "#frag",
        "https://RP.test/logged-out",
        "http://rp.test/logged-out",
        "https://rp.test/logged-ou",
        "https://rp.test.evil.test/logged-out",
        "https://rp.test/cb",  # the redirect_uri, not a post-logout URI
    ],
)
def test_lo05_uri_not_registered_exactly_no_redirect(op, uri):
    browser, client, _user, tokens = _signed_in(op)
    resp = _logout(
        browser,
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri, "state": "s"},
    )
    _assert_error_page(resp)
    _assert_session_alive(browser, client)


def test_lo05_uri_registered_for_another_client_no_redirect(op):
    other = op.factory.gen_client(post_logout_redirect_uris=["https://other.test/bye"])
    browser, client, _user, tokens = _signed_in(op)
    assert other.client_id != client.client_id
    resp = _logout(
        browser,
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://other.test/bye"},
    )
    _assert_error_page(resp)
    _assert_session_alive(browser, client)


@pytest.mark.parametrize("with_hint", [True, False])
def test_s_ss_07_logout_open_redirect(op, with_hint):
    """S-SS-07: ``post_logout_redirect_uri=https://evil.test`` is never followed, with or
    without a valid hint, and the page does not link to it."""
    browser, client, _user, tokens = _signed_in(op)
    params = {"post_logout_redirect_uri": "https://evil.test", "state": "x"}
    if with_hint:
        params["id_token_hint"] = tokens["id_token"]
    for method in ("GET", "POST"):
        resp = _logout(browser, params, method=method)
        assert resp.status_code == 400, (method, resp.status_code)
        assert "Location" not in resp.headers
        assert "evil.test" not in resp.text
    _assert_session_alive(browser, client)


# --- LO-06 -----------------------------------------------------------------------------------


def _forged_hints(op: Any, id_token: str) -> dict[str, str]:
    header, claims = jwt_parts(id_token)
    h, p, s = id_token.split(".")
    foreign = RSAKey.generate_key(2048, parameters={"kid": header["kid"]})
    tampered_claims = dict(claims, sub="someone-else")
    return {
        "foreign_key_same_kid": jwt.encode({"alg": "RS256", "kid": header["kid"]}, claims, foreign),
        "alg_none": f"{_b64({'alg': 'none', 'kid': header['kid']})}.{p}.",
        "alg_none_no_kid": f"{_b64({'alg': 'none'})}.{p}.",
        "tampered_payload": f"{h}.{_b64(tampered_claims)}.{s}",
        "bad_signature": f"{h}.{p}.{s[:-6]}AAAAAA",
        "garbage": "not-a-jwt",
        "other_issuer": jwt.encode(
            {"alg": "RS256", "kid": "evil"}, dict(claims, iss="https://evil.test"), foreign
        ),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "foreign_key_same_kid",
        "alg_none",
        "alg_none_no_kid",
        "tampered_payload",
        "bad_signature",
        "garbage",
        "other_issuer",
    ],
)
def test_lo06_hint_not_ours_or_tampered_no_redirect(op, kind):
    browser, client, _user, tokens = _signed_in(op)
    hint = _forged_hints(op, tokens["id_token"])[kind]
    resp = _logout(
        browser, {"id_token_hint": hint, "post_logout_redirect_uri": RP_LOGOUT, "state": "s"}
    )
    _assert_error_page(resp)
    _assert_session_alive(browser, client)


def test_lo06_access_token_is_not_an_id_token_hint(op):
    """An access token (``typ: at+jwt``) signed by us is not an ID token hint."""
    browser, client, _user, tokens = _signed_in(op)
    resp = _logout(
        browser,
        {"id_token_hint": tokens["access_token"], "post_logout_redirect_uri": RP_LOGOUT},
    )
    _assert_error_page(resp)
    _assert_session_alive(browser, client)


# --- LO-07, LO-08 ----------------------------------------------------------------------------


@pytest.mark.parametrize("with_client_id", [False, True])
def test_lo07_uri_without_hint_no_redirect(op, with_client_id):
    browser, client, _user, _tokens = _signed_in(op)
    params = {"post_logout_redirect_uri": RP_LOGOUT, "state": "s"}
    if with_client_id:
        params["client_id"] = client.client_id  # a client_id alone proves nothing
    resp = _logout(browser, params)
    _assert_error_page(resp)
    _assert_session_alive(browser, client)


def test_lo08_client_id_must_match_hint_audience(op):
    other = op.factory.gen_client()
    browser, client, _user, tokens = _signed_in(op)
    resp = _logout(
        browser,
        {
            "id_token_hint": tokens["id_token"],
            "client_id": other.client_id,
            "post_logout_redirect_uri": RP_LOGOUT,
        },
    )
    _assert_error_page(resp)
    _assert_session_alive(browser, client)

    ok = _logout(
        browser,
        {
            "id_token_hint": tokens["id_token"],
            "client_id": client.client_id,
            "post_logout_redirect_uri": RP_LOGOUT,
            "state": "st",
        },
    )
    assert ok.status_code == 303
    assert ok.headers["Location"] == f"{RP_LOGOUT}?state=st"
    _assert_session_gone(browser, client)


# --- LO-09 -----------------------------------------------------------------------------------


def test_lo09_expired_hint_still_accepted(op, clock):
    browser, client, _user, tokens = _signed_in(op)
    _header, claims = jwt_parts(tokens["id_token"])
    clock.advance(claims["exp"] - claims["iat"] + 120)  # the hint is now expired
    resp = _logout(
        browser,
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": RP_LOGOUT, "state": "e"},
    )
    assert resp.status_code == 303, (resp.status_code, resp.text[:300])
    assert resp.headers["Location"] == f"{RP_LOGOUT}?state=e"
    _assert_session_gone(browser, client)


# --- LO-10, LO-11 ----------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"state": "only-state"}], ids=["no_params", "only_state"])
def test_lo10_no_hint_asks_then_logged_out_page(op, params):
    browser, client, _user, _tokens = _signed_in(op)
    page = _logout(browser, params)
    fields = _assert_confirmation_page(page)
    assert "no-store" in page.headers.get("Cache-Control", "")
    _assert_session_alive(browser, client)  # asking is not logging out

    done = _confirm(browser, fields)
    assert done.status_code == 200
    assert "Location" not in done.headers
    assert "signed out" in done.text.lower()
    assert "only-state" not in done.text
    _assert_session_gone(browser, client)


def test_lo10_hint_without_uri_logs_out_without_redirect(op):
    browser, client, _user, tokens = _signed_in(op)
    resp = _logout(browser, {"id_token_hint": tokens["id_token"], "state": "s"})
    assert resp.status_code == 200
    assert "Location" not in resp.headers
    assert "signed out" in resp.text.lower()
    _assert_session_gone(browser, client)


def test_lo10_no_session_no_params(op):
    """A browser without any OP session still gets the confirmation page and no redirect."""
    browser = Browser(op.url)
    fields = _assert_confirmation_page(_logout(browser, {}))
    done = _confirm(browser, fields)
    assert done.status_code == 200 and "Location" not in done.headers


def test_lo11_confirmation_post_needs_csrf_token(op):
    browser, client, _user, _tokens = _signed_in(op)
    fields = _assert_confirmation_page(_logout(browser, {}))

    missing = browser.http.post(
        op.url + CONFIRM, data={"decision": "logout"}, allow_redirects=False
    )
    assert missing.status_code == 400 and "Location" not in missing.headers
    wrong = browser.http.post(
        op.url + CONFIRM,
        data={"decision": "logout", "csrf_token": fields["csrf_token"][:-4] + "AAAA"},
        allow_redirects=False,
    )
    assert wrong.status_code == 400
    _assert_session_alive(browser, client)

    # A cross-site POST from another browser carrying this browser's session cookie but no
    # matching CSRF cookie: the token of one browser is not valid in another.
    attacker = requests.Session()
    attacker.cookies.set("idp_session", browser.http.cookies.get("idp_session"))
    forged = attacker.post(
        op.url + CONFIRM,
        data={"decision": "logout", "csrf_token": fields["csrf_token"]},
        allow_redirects=False,
    )
    assert forged.status_code == 400
    _assert_session_alive(browser, client)

    # The real form still works.
    fields = _assert_confirmation_page(_logout(browser, {}))
    assert _confirm(browser, fields).status_code == 200
    _assert_session_gone(browser, client)


def test_lo11_declining_keeps_the_session(op):
    browser, client, _user, _tokens = _signed_in(op)
    fields = _assert_confirmation_page(_logout(browser, {}))
    resp = _confirm(browser, fields, decision="stay")
    assert resp.status_code == 200 and "Location" not in resp.headers
    assert "still signed in" in resp.text.lower()
    _assert_session_alive(browser, client)


def test_lo11_hint_for_another_user_asks_first(op):
    """A valid hint that does not match the session's user: the OP asks; only after the user
    confirms does the session end (and then the registered URI may be used)."""
    client = op.factory.gen_client()
    _b1, _c, _u, tokens_a = _signed_in(op, client=client)  # user A's ID token
    browser_b, _c, _u, _t = _signed_in(op, client=client)  # browser signed in as user B
    resp = _logout(
        browser_b,
        {
            "id_token_hint": tokens_a["id_token"],
            "post_logout_redirect_uri": RP_LOGOUT,
            "state": "ab",
        },
    )
    fields = _assert_confirmation_page(resp)
    _assert_session_alive(browser_b, client)

    done = _confirm(browser_b, fields)
    assert done.status_code == 303
    assert done.headers["Location"] == f"{RP_LOGOUT}?state=ab"
    _assert_session_gone(browser_b, client)


# --- LO-12 -----------------------------------------------------------------------------------


def test_lo12_session_gone_after_logout_offline_tokens_per_policy(op):
    """After logout: ``prompt=none`` → ``login_required``, a plain request shows the login
    form again, the old session cookie is dead even if replayed; refresh tokens issued with
    ``offline_access`` outlive the session (idp's policy, OIDC BCL §2.7)."""
    browser, client, _user, tokens = _signed_in(op, scope="openid offline_access")
    old_cookie = browser.http.cookies.get("idp_session")
    assert old_cookie
    resp = _logout(
        browser, {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": RP_LOGOUT}
    )
    assert resp.status_code == 303
    _assert_session_gone(browser, client)

    _verifier, challenge = pkce()
    again = browser.authorize(auth_params(client, challenge))
    assert again.login_shown and not again.code

    replay = Browser(op.url)
    replay.http.cookies.set("idp_session", old_cookie)
    _assert_session_gone(replay, client)

    refreshed = requests.post(
        f"{op.url}/oauth/token",
        auth=client.basic,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
