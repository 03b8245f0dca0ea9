"""Token endpoint (CONFORMANCE.md §2.3 TK-01..TK-24) and the PKCE, code and client-auth
attacks of SECURITY.md §2.2, §2.3 and §2.5 (S-PK-03..05, S-CD-01, S-CD-03..07, S-CA-02, S-CA-04).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from sqlalchemy import text

from tests.conformance._token_helpers import (
    B64URL,
    VSCHAR,
    assert_no_store,
    assert_oauth_error,
    client_credentials,
    code_tokens,
    common_prefix,
    get_code,
    hs256_jwt,
    is_active,
    refresh,
    shannon_bits,
    token_post,
    unsigned_jwt,
    userinfo,
)
from tests.helpers import Browser, auth_params, jwt_parts, pkce, redeem

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def actors(live: Any) -> dict[str, Any]:
    """Clients and users shared by the tests of this module (each test still makes its own
    codes and tokens)."""
    f = live.factory
    return {
        "web": f.gen_client(),
        "web2": f.gen_client(),
        "spa": f.gen_client("spa"),
        "post": f.gen_client(auth_method="client_secret_post"),
        "user": f.gen_user(),
        "user2": f.gen_user(),
    }


def _token_url(op: Any) -> str:
    return f"{op.url}/oauth/token"


def _set_secret(op: Any, client_id: str, secret: str) -> None:
    """Give a client a secret of our choosing (the service only generates URL-safe ones)."""
    from idp.extensions import db, services
    from idp.oauth.models import Client

    with op.app.app_context():
        row = db.session.get(Client, client_id)
        assert row is not None
        row.secret_digest = services().box.digest(secret)
        db.session.commit()
        services().clients.invalidate()


def _inject_code(op: Any, client: Any, user: Any, challenge: str | None) -> str:
    """Store a code the way the authorization endpoint would, but optionally without a PKCE
    challenge (an "exempt" or legacy code), which /authorize itself never issues."""
    from idp.core import clock
    from idp.core.crypto import sha256_hex
    from idp.extensions import db
    from idp.oauth.models import AuthorizationCode

    code = secrets.token_urlsafe(32)
    with op.app.app_context():
        now = clock.now()
        db.session.add(
            AuthorizationCode(
                code_hash=sha256_hex(code),
                grant_id="grt_" + secrets.token_urlsafe(12),
                client_id=client.client_id,
                user_id=user.user_id,
                redirect_uri=client.redirect_uri,
                scope="openid",
                audience=None,
                nonce=None,
                code_challenge=challenge,
                code_challenge_method="S256" if challenge else None,
                auth_time=now,
                amr=["pwd"],
                acr=None,
                sid=None,
                include_auth_time=True,
                created_at=now,
                expires_at=now + 60,
            )
        )
        db.session.commit()
    return code


def _form_basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-urlencode id and secret, then base64 ``id:secret``."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


# --- TK-01 .. TK-07 ------------------------------------------------------------------------


def test_tk01_form_post_only(op, actors):
    web, user = actors["web"], actors["user"]
    get = requests.get(_token_url(op), params={"grant_type": "client_credentials"})
    assert get.status_code in (400, 405), get.status_code
    assert "access_token" not in get.text

    code, verifier = get_code(op, web, user)
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": web.redirect_uri,
        "code_verifier": verifier,
    }
    as_json = requests.post(_token_url(op), json=body, auth=web.basic)
    assert_oauth_error(as_json, 400, "invalid_request")
    # The JSON request was refused before the code was looked at: the form request works.
    assert redeem(op.url, web, code, verifier).status_code == 200


def test_tk02_success_response(op, actors):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user, scope="openid email no:such-scope")
    resp = redeem(op.url, web, code, verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    body = resp.json()
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"].lower() in ("bearer", "dpop")
    expires_in = body["expires_in"]
    assert type(expires_in) is int and 0 < expires_in <= 31_536_000
    assert isinstance(body["id_token"], str) and body["id_token"].count(".") == 2
    # The granted scope differs from the request (the unknown scope was dropped): it is stated.
    assert body["scope"].split() == ["openid", "email"]
    assert "error" not in body

    # Without openid there is no ID token.
    code, verifier = get_code(op, web, user, scope="email")
    plain = redeem(op.url, web, code, verifier)
    assert plain.status_code == 200, plain.text
    assert "id_token" not in plain.json() and plain.json()["access_token"]


def test_tk03_cache_control_no_store(op, actors):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user, scope="openid offline_access")
    success = redeem(op.url, web, code, verifier)
    assert success.status_code == 200
    refreshed = refresh(op, web, success.json()["refresh_token"])
    assert refreshed.status_code == 200
    replay = redeem(op.url, web, code, verifier)
    assert replay.status_code == 400
    bad_client = token_post(
        op, {"grant_type": "refresh_token", "refresh_token": "x"}, auth=(web.client_id, "nope")
    )
    assert bad_client.status_code == 401
    not_form = requests.post(_token_url(op), json={"grant_type": "x"})
    assert not_form.status_code == 400
    m2m, audience = op.factory.m2m()
    cc = client_credentials(op, m2m, audience=audience)
    assert cc.status_code == 200
    for resp in (success, replay, refreshed, bad_client, not_form, cc):
        assert_no_store(resp)


@pytest.mark.parametrize("secret_kind", ["generated", "reserved-characters"])
def test_tk04_client_secret_basic_and_post(op, actors, secret_kind):
    user = actors["user"]
    basic = op.factory.gen_client()
    post = op.factory.gen_client(auth_method="client_secret_post")
    if secret_kind == "reserved-characters":
        secret = "s3cr:et%25+/ with space" + secrets.token_urlsafe(8)
        _set_secret(op, basic.client_id, secret)
        _set_secret(op, post.client_id, secret)
        basic_secret = post_secret = secret
    else:
        basic_secret, post_secret = basic.client_secret, post.client_secret
    assert basic_secret and post_secret

    code, verifier = get_code(op, basic, user)
    resp = requests.post(
        _token_url(op),
        headers={"Authorization": _form_basic(basic.client_id, basic_secret)},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": basic.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert resp.status_code == 200, resp.text

    code, verifier = get_code(op, post, user)
    resp = requests.post(
        _token_url(op),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": post.redirect_uri,
            "code_verifier": verifier,
            "client_id": post.client_id,
            "client_secret": post_secret,
        },
    )
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "authorization",
    ["wrong-secret", "unknown-client", "not-base64", "no-colon"],
)
def test_tk05_bad_basic_credentials_401(op, actors, authorization):
    web, user = actors["web"], actors["user"]
    header = {
        "wrong-secret": _form_basic(web.client_id, "wrong" + secrets.token_urlsafe(16)),
        "unknown-client": _form_basic("no-such-client", web.client_secret),
        "not-base64": "Basic !!!not base64!!!",
        "no-colon": "Basic " + base64.b64encode(web.client_id.encode()).decode(),
    }[authorization]
    code, verifier = get_code(op, web, user)
    resp = requests.post(
        _token_url(op),
        headers={"Authorization": header},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": web.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert_oauth_error(resp, 401, "invalid_client")
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic"), resp.headers


def test_tk05_missing_credentials_invalid_client(op, actors):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": web.redirect_uri,
        "code_verifier": verifier,
    }
    nothing = requests.post(_token_url(op), data=data)
    assert_oauth_error(nothing, (400, 401), "invalid_client")
    id_only = requests.post(_token_url(op), data={**data, "client_id": web.client_id})
    assert_oauth_error(id_only, (400, 401), "invalid_client")
    empty_secret = requests.post(
        _token_url(op), data={**data, "client_id": web.client_id, "client_secret": ""}
    )
    assert_oauth_error(empty_secret, (400, 401), "invalid_client")


def test_tk06_two_auth_methods_invalid_request(op, actors):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user)
    resp = requests.post(
        _token_url(op),
        auth=web.basic,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": web.redirect_uri,
            "code_verifier": verifier,
            "client_id": web.client_id,
            "client_secret": web.client_secret,
        },
    )
    assert_oauth_error(resp, 400, "invalid_request")


def test_tk07_unregistered_auth_method_invalid_client(op, actors):
    web, post, user = actors["web"], actors["post"], actors["user"]
    # Registered client_secret_basic, authenticates with client_secret_post.
    code, verifier = get_code(op, web, user)
    resp = requests.post(
        _token_url(op),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": web.redirect_uri,
            "code_verifier": verifier,
            "client_id": web.client_id,
            "client_secret": web.client_secret,
        },
    )
    assert_oauth_error(resp, (400, 401), "invalid_client")
    # Registered client_secret_post, authenticates with client_secret_basic.
    code, verifier = get_code(op, post, user)
    resp = redeem(op.url, post, code, verifier)  # redeem() uses Basic for secret holders
    assert_oauth_error(resp, 401, "invalid_client")


# --- TK-08 .. TK-15: codes and PKCE --------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 30])
def test_tk08_code_reuse_invalid_grant_and_revokes(op, actors, clock, delay):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user)
    first = redeem(op.url, web, code, verifier)
    assert first.status_code == 200
    access = first.json()["access_token"]
    assert userinfo(op, access).status_code == 200
    clock.advance(delay)
    again = redeem(op.url, web, code, verifier)
    assert_oauth_error(again, 400, "invalid_grant")
    assert userinfo(op, access).status_code == 401
    assert not is_active(op, web, access)


@pytest.mark.parametrize("replay", ["wrong-verifier", "no-client-auth", "other-client"])
def test_tk09_invalid_replay_does_not_revoke(op, actors, replay):
    web, web2, user = actors["web"], actors["web2"], actors["user"]
    code, verifier = get_code(op, web, user)
    first = redeem(op.url, web, code, verifier)
    assert first.status_code == 200
    access = first.json()["access_token"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": web.redirect_uri,
        "code_verifier": verifier,
    }
    if replay == "wrong-verifier":
        resp = requests.post(
            _token_url(op), auth=web.basic, data={**data, "code_verifier": pkce()[0]}
        )
        assert_oauth_error(resp, 400, "invalid_grant")
    elif replay == "no-client-auth":
        resp = requests.post(_token_url(op), data={**data, "client_id": web.client_id})
        assert_oauth_error(resp, (400, 401), "invalid_client")
    else:
        resp = requests.post(_token_url(op), auth=web2.basic, data=data)
        assert_oauth_error(resp, 400, "invalid_grant")
    assert userinfo(op, access).status_code == 200
    assert is_active(op, web, access)


def test_tk10_expired_code_invalid_grant(op, actors, clock):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user)
    clock.advance(61)
    assert_oauth_error(redeem(op.url, web, code, verifier), 400, "invalid_grant")


def test_tk11_code_of_other_client_invalid_grant(op, actors):
    web, web2, spa, user = actors["web"], actors["web2"], actors["spa"], actors["user"]
    code, verifier = get_code(op, web, user)
    assert_oauth_error(redeem(op.url, web2, code, verifier), 400, "invalid_grant")
    code, verifier = get_code(op, web, user)
    assert_oauth_error(redeem(op.url, spa, code, verifier), 400, "invalid_grant")


@pytest.mark.parametrize("case", ["equal", "other-registered", "trailing-slash", "absent"])
def test_tk12_redirect_uri_at_token_endpoint(op, actors, case):
    """Sent: must equal the authorization request's; absent: accepted (OAuth 2.1 §10.2, the
    checklist's sketch: PKCE, not redirect_uri, binds the code)."""
    user = actors["user"]
    first, second = "https://rp.test/cb", "https://rp.test/other-cb"
    client = op.factory.gen_client(redirect_uris=[first, second])
    if case == "equal":
        code, verifier = get_code(op, client, user)
        assert redeem(op.url, client, code, verifier).status_code == 200
    elif case == "other-registered":
        code, verifier = get_code(op, client, user, redirect_uri=second)
        wrong = redeem(op.url, client, code, verifier, redirect_uri=first)
        assert_oauth_error(wrong, 400, "invalid_grant")
    elif case == "trailing-slash":
        code, verifier = get_code(op, client, user)
        wrong = redeem(op.url, client, code, verifier, redirect_uri=first + "/")
        assert_oauth_error(wrong, 400, "invalid_grant")
    else:
        code, verifier = get_code(op, client, user)
        absent = redeem(op.url, client, code, verifier, redirect_uri=None)
        assert absent.status_code == 200, absent.text


@pytest.mark.parametrize(
    "verifier_kind",
    ["missing", "wrong", "too-short-42", "too-long-129", "reserved-chars"],
)
def test_tk13_pkce_verifier_checked(op, actors, verifier_kind):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user)
    bad: str | None = {
        "missing": None,
        "wrong": pkce()[0],
        "too-short-42": verifier[:42],
        "too-long-129": (verifier * 3)[:129],
        "reserved-chars": verifier[:40] + "+/=" + verifier[40:],
    }[verifier_kind]
    resp = redeem(op.url, web, code, verifier, code_verifier=bad)
    assert_oauth_error(resp, 400, "invalid_grant")


def test_tk14_pkce_downgrade_rejected(op, actors):
    web, user = actors["web"], actors["user"]
    # Front door: an authorization request without a challenge yields no code.
    _verifier, challenge = pkce()
    params = auth_params(web, challenge, code_challenge=None, code_challenge_method=None)
    result = Browser(op.url).authorize(params, user)
    assert result.code is None and result.params.get("error") == "invalid_request", result
    # Token endpoint: a code stored without a challenge, then a code_verifier → refused.
    code = _inject_code(op, web, user, challenge=None)
    resp = redeem(op.url, web, code, pkce()[0])
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] in ("invalid_request", "invalid_grant")
    assert "access_token" not in resp.json()


@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_tk15_code_without_challenge_rejected(op, actors, kind):
    """No client is exempt from PKCE in idp, so a code without a stored challenge must never
    be redeemable. /authorize never issues one (AZ-18); this stores one directly to check that
    the token endpoint enforces the rule too."""
    client, user = actors["web" if kind == "confidential" else "spa"], actors["user"]
    code = _inject_code(op, client, user, challenge=None)
    resp = redeem(op.url, client, code, "", code_verifier=None)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] in ("invalid_request", "invalid_grant")


# --- TK-16 .. TK-19 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["missing", "password", "unknown-urn", "cc-for-web-app", "code-for-m2m"]
)
def test_tk16_grant_type_errors(op, actors, case):
    web, user = actors["web"], actors["user"]
    if case == "missing":
        resp = token_post(op, {"code": "x", "redirect_uri": web.redirect_uri}, web)
        assert_oauth_error(resp, 400, "invalid_request")
    elif case == "password":
        resp = token_post(
            op, {"grant_type": "password", "username": user.email, "password": user.password}, web
        )
        assert_oauth_error(resp, 400, "unsupported_grant_type")
    elif case == "unknown-urn":
        resp = token_post(op, {"grant_type": "urn:example:no-such-grant"}, web)
        assert_oauth_error(resp, 400, "unsupported_grant_type")
    elif case == "cc-for-web-app":
        resp = client_credentials(op, web)
        assert_oauth_error(resp, 400, "unauthorized_client")
    else:
        m2m, _audience = op.factory.m2m()
        resp = token_post(
            op,
            {
                "grant_type": "authorization_code",
                "code": secrets.token_urlsafe(32),
                "redirect_uri": "https://rp.test/cb",
                "code_verifier": pkce()[0],
            },
            m2m,
        )
        assert_oauth_error(resp, 400, "unauthorized_client")


def test_tk17_unknown_ignored_duplicates_refused_empty_omitted(op, actors):
    web, user = actors["web"], actors["user"]
    # Unknown parameters are ignored.
    code, verifier = get_code(op, web, user)
    ok = redeem(op.url, web, code, verifier, extra_param="foobar", another="")
    assert ok.status_code == 200, ok.text
    # A repeated parameter is invalid_request (and does not consume the code).
    code, verifier = get_code(op, web, user)
    body = (
        f"grant_type=authorization_code&code={quote_plus(code)}&code={quote_plus(code)}"
        f"&redirect_uri={quote_plus(web.redirect_uri)}&code_verifier={verifier}"
    )
    dup = requests.post(
        _token_url(op),
        data=body,
        auth=web.basic,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(dup, 400, "invalid_request")
    dup_grant = requests.post(
        _token_url(op),
        data="grant_type=client_credentials&grant_type=client_credentials",
        auth=web.basic,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(dup_grant, 400, "invalid_request")
    # Empty values count as omitted: empty scope → the granted scopes; empty audience → the
    # client's only grant.
    m2m, audience = op.factory.m2m(["read:things", "write:things"])
    empty = client_credentials(op, m2m, scope="", audience="")
    assert empty.status_code == 200, empty.text
    assert sorted(empty.json()["scope"].split()) == ["read:things", "write:things"]
    assert jwt_parts(empty.json()["access_token"])[1]["aud"] == audience


def _neg_invalid_grant(op: Any, a: dict[str, Any]) -> requests.Response:
    return token_post(
        op,
        {
            "grant_type": "authorization_code",
            "code": "nope",
            "redirect_uri": a["web"].redirect_uri,
            "code_verifier": pkce()[0],
        },
        a["web"],
    )


def _neg_invalid_client(op: Any, a: dict[str, Any]) -> requests.Response:
    return token_post(
        op, {"grant_type": "refresh_token", "refresh_token": "x"}, auth=(a["web"].client_id, "x")
    )


def _neg_unsupported(op: Any, a: dict[str, Any]) -> requests.Response:
    return token_post(op, {"grant_type": "implicit"}, a["web"])


def _neg_invalid_request(op: Any, a: dict[str, Any]) -> requests.Response:
    return token_post(op, {"grant_type": "refresh_token"}, a["web"])


def _neg_invalid_scope(op: Any, a: dict[str, Any]) -> requests.Response:
    m2m, audience = op.factory.m2m(["read:things"])
    return client_credentials(op, m2m, audience=audience, scope="write:things")


def _neg_access_denied(op: Any, a: dict[str, Any]) -> requests.Response:
    m2m, _audience = op.factory.m2m()
    return client_credentials(op, m2m, audience=op.factory.gen_api())


NEGATIVE: dict[str, tuple[Callable[[Any, dict[str, Any]], requests.Response], int, str]] = {
    "invalid_grant": (_neg_invalid_grant, 400, "invalid_grant"),
    "invalid_client": (_neg_invalid_client, 401, "invalid_client"),
    "unsupported_grant_type": (_neg_unsupported, 400, "unsupported_grant_type"),
    "invalid_request": (_neg_invalid_request, 400, "invalid_request"),
    "invalid_scope": (_neg_invalid_scope, 400, "invalid_scope"),
    "access_denied": (_neg_access_denied, 403, "access_denied"),
}


@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_tk18_error_response_shape(op, actors, case):
    call, status, error = NEGATIVE[case]
    resp = call(op, actors)
    assert_oauth_error(resp, status, error)
    assert_no_store(resp)
    assert set(resp.json()) <= {"error", "error_description", "error_uri"}, resp.json()
    assert not any(c in resp.json().get("error_description", "") for c in "\r\n\t")


def test_tk19_access_tokens_unguessable(op, actors, clock):
    m2m, audience = op.factory.m2m()
    tokens = []
    for _ in range(20):
        resp = client_credentials(op, m2m, audience=audience)
        assert resp.status_code == 200
        tokens.append(resp.json()["access_token"])
        clock.advance(op.app.config["CC_TOKEN_REUSE_SECONDS"])  # past any reuse window
    tokens.append(code_tokens(op, actors["web"], actors["user"])["access_token"])
    assert len(set(tokens)) == len(tokens)
    jtis = []
    for token in tokens:
        assert VSCHAR.match(token), token
        claims = jwt_parts(token)[1]
        jtis.append(claims["jti"])
    assert len(set(jtis)) == len(jtis)
    # The unpredictable part of a JWT access token is its jti: ≥ 128 bits of base64url.
    for jti in jtis:
        assert B64URL.match(jti) and len(jti) * 6 >= 128, jti
    assert shannon_bits(jtis) >= 96
    assert shannon_bits(tokens) >= 96


# --- TK-20 .. TK-25 ------------------------------------------------------------------------


# TK-20 (private_key_jwt, client_secret_jwt): tests/conformance/test_client_jwt_auth.py


@pytest.mark.parametrize("assertion_kind", ["alg-none", "hs256-real-secret", "hs256-forged"])
def test_tk21_client_assertions_refused(op, actors, assertion_kind):
    """A client registered for client_secret_basic authenticates with its secret only: any
    client assertion (even HMAC-keyed with that very secret), and certainly an unsigned one,
    fails client authentication (the JWT methods are per client, RFC 7523 §2.2)."""
    web, user = actors["web"], actors["user"]
    now = int(time.time())
    claims = {
        "iss": web.client_id,
        "sub": web.client_id,
        "aud": _token_url(op),
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 60,
    }
    assert web.client_secret
    assertion = {
        "alg-none": unsigned_jwt({"typ": "JWT"}, claims),
        "hs256-real-secret": hs256_jwt({"typ": "JWT"}, claims, web.client_secret.encode()),
        "hs256-forged": hs256_jwt({"typ": "JWT"}, claims, b"attacker-guess"),
    }[assertion_kind]
    code, verifier = get_code(op, web, user)
    resp = requests.post(
        _token_url(op),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": web.redirect_uri,
            "code_verifier": verifier,
            "client_id": web.client_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        },
    )
    assert_oauth_error(resp, (400, 401), "invalid_client")


def test_tk22_public_client(op, actors):
    spa, user = actors["spa"], actors["user"]
    # client_id + verifier, no secret → 200.
    code, verifier = get_code(op, spa, user)
    ok = redeem(op.url, spa, code, verifier)
    assert ok.status_code == 200, ok.text

    def data_for(code: str, verifier: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": spa.redirect_uri,
            "code_verifier": verifier,
        }

    # Without client_id → client authentication fails.
    code, verifier = get_code(op, spa, user)
    no_id = requests.post(_token_url(op), data=data_for(code, verifier))
    assert_oauth_error(no_id, (400, 401), "invalid_client")
    # A public client has no secret: presenting one fails.
    code, verifier = get_code(op, spa, user)
    with_secret = requests.post(
        _token_url(op),
        data={**data_for(code, verifier), "client_id": spa.client_id, "client_secret": "x" * 43},
    )
    assert_oauth_error(with_secret, (400, 401), "invalid_client")
    # PKCE is mandatory: no verifier → refused.
    code, _verifier = get_code(op, spa, user)
    no_verifier = requests.post(
        _token_url(op),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": spa.redirect_uri,
            "client_id": spa.client_id,
        },
    )
    assert_oauth_error(no_verifier, 400, "invalid_grant")


def test_tk23_client_credentials_confidential_only(op, actors):
    m2m, audience = op.factory.m2m()
    ok = client_credentials(op, m2m, audience=audience)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert "refresh_token" not in body and "id_token" not in body
    assert body["token_type"] == "Bearer" and body["access_token"]
    public = client_credentials(op, actors["spa"], audience=audience)
    assert public.status_code in (400, 401), public.text
    assert public.json()["error"] in ("unauthorized_client", "invalid_client")
    assert "access_token" not in public.json()


def test_tk24_confidential_client_must_authenticate(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope="openid offline_access")
    code, verifier = get_code(op, web, user)
    unauth_code = requests.post(
        _token_url(op),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": web.redirect_uri,
            "code_verifier": verifier,
            "client_id": web.client_id,
        },
    )
    assert_oauth_error(unauth_code, 401, "invalid_client")
    unauth_refresh = requests.post(
        _token_url(op),
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": web.client_id,
        },
    )
    assert_oauth_error(unauth_refresh, 401, "invalid_client")
    unauth_cc = requests.post(
        _token_url(op), data={"grant_type": "client_credentials", "client_id": web.client_id}
    )
    assert_oauth_error(unauth_cc, 401, "invalid_client")


def test_tk25_client_secret_brute_force(op):
    """50 bad attempts from one IP → 429 with Retry-After (OAuth 2.1 §2.4.1). Only failures
    are counted, so the hot path of a correct client pays nothing; secrets are 256-bit, so the
    throttle is about load and noise rather than guessability."""
    m2m, audience = op.factory.m2m()
    statuses = []
    for i in range(50):
        resp = requests.post(
            f"{op.url}/oauth/token",
            auth=(m2m.client_id, f"guess-{i}"),
            data={"grant_type": "client_credentials", "audience": audience},
        )
        statuses.append(resp.status_code)
    assert set(statuses[:49]) == {401} and statuses[49] == 429
    assert int(resp.headers["Retry-After"]) > 0 and resp.json()["error"] == "invalid_client"
    assert "no-store" in resp.headers["Cache-Control"]


# --- SECURITY.md §2.2 PKCE -------------------------------------------------------------------


def test_s_pk03_verifier_without_stored_challenge_invalid_grant(op, actors):
    web, spa, user = actors["web"], actors["spa"], actors["user"]
    for client in (web, spa):
        code = _inject_code(op, client, user, challenge=None)
        assert_oauth_error(redeem(op.url, client, code, pkce()[0]), 400, "invalid_grant")


def test_s_pk04_missing_verifier_invalid_grant(op, actors):
    for client in (actors["web"], actors["spa"]):
        code, verifier = get_code(op, client, actors["user"])
        resp = redeem(op.url, client, code, verifier, code_verifier=None)
        assert_oauth_error(resp, 400, "invalid_grant")
        # The failed attempt burned the code.
        assert_oauth_error(redeem(op.url, client, code, verifier), 400, "invalid_grant")


def test_s_pk05_wrong_verifier_burns_code(op, actors):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user)
    for _ in range(3):
        assert_oauth_error(
            redeem(op.url, web, code, verifier, code_verifier=pkce()[0]), 400, "invalid_grant"
        )
    assert_oauth_error(redeem(op.url, web, code, verifier), 400, "invalid_grant")
    # Control: the same steps with the right verifier first succeed.
    code, verifier = get_code(op, web, user)
    assert redeem(op.url, web, code, verifier).status_code == 200


# --- SECURITY.md §2.3 authorization codes --------------------------------------------------


def test_s_cd01_replay_revokes_first_tokens(op, actors, clock):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user, scope="openid offline_access")
    first = redeem(op.url, web, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert is_active(op, web, tokens["access_token"])
    assert is_active(op, web, tokens["refresh_token"])
    clock.advance(1)
    assert_oauth_error(redeem(op.url, web, code, verifier), 400, "invalid_grant")
    assert introspect_body(op, web, tokens["access_token"]) == {"active": False}
    assert introspect_body(op, web, tokens["refresh_token"]) == {"active": False}
    assert_oauth_error(refresh(op, web, tokens["refresh_token"]), 400, "invalid_grant")


def introspect_body(op: Any, client: Any, token: str) -> dict[str, Any]:
    resp = requests.post(f"{op.url}/oauth/introspect", auth=client.basic, data={"token": token})
    assert resp.status_code == 200
    return dict(resp.json())


def test_s_cd03_cross_client_code_invalid_grant(op, actors):
    web, web2, user = actors["web"], actors["web2"], actors["user"]
    code, verifier = get_code(op, web, user)
    assert_oauth_error(redeem(op.url, web2, code, verifier), 400, "invalid_grant")


def test_s_cd04_redirect_uri_mismatch_invalid_grant(op, actors):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user)
    resp = redeem(op.url, web, code, verifier, redirect_uri="https://rp.test/evil")
    assert_oauth_error(resp, 400, "invalid_grant")


def test_s_cd05_code_expires_after_60s(op, actors, clock):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user)
    clock.advance(61)
    assert_oauth_error(redeem(op.url, web, code, verifier), 400, "invalid_grant")


def test_s_cd06_code_injection_other_verifier(op, actors):
    web, user, user2 = actors["web"], actors["user"], actors["user2"]
    victim_code, _victim_verifier = get_code(op, web, user)
    _attacker_code, attacker_verifier = get_code(op, web, user2)
    resp = redeem(op.url, web, victim_code, attacker_verifier)
    assert_oauth_error(resp, 400, "invalid_grant")


@pytest.mark.slow  # 200 authorizations: ~15 s
def test_s_cd07_code_entropy(op, actors):
    web, user = actors["web"], actors["user"]
    browser = Browser(op.url)
    codes = []
    for _ in range(200):
        _verifier, challenge = pkce()
        result = browser.authorize(auth_params(web, challenge), user)
        assert result.code, result
        codes.append(result.code)
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert VSCHAR.match(code), code
        assert B64URL.match(code) and len(code) * 6 >= 128, code
    assert shannon_bits(codes) >= 128
    # Not sequential: consecutive codes share no meaningful prefix, and no code is a simple
    # increment of the previous one.
    assert max(common_prefix(a, b) for a, b in itertools.pairwise(codes)) < 6
    as_ints = [int.from_bytes(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4))) for c in codes]
    deltas = {b - a for a, b in itertools.pairwise(as_ints)}
    assert len(deltas) == len(as_ints) - 1


# --- SECURITY.md §2.5 client authentication ------------------------------------------------


def test_s_ca02_no_plaintext_client_secrets(op, actors):
    from idp.extensions import db

    secrets_known = [c.client_secret for c in (actors["web"], actors["web2"], actors["post"])]
    secrets_known += [op.factory.gen_client().client_secret for _ in range(3)]
    with op.app.app_context():
        rows = [dict(r) for r in db.session.execute(text("SELECT * FROM clients")).mappings()]
    assert rows
    dump = repr(rows)
    for secret in secrets_known:
        assert secret
        encodings = {
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
            secret.encode().hex(),
            hashlib.sha256(secret.encode()).hexdigest(),  # unkeyed digest: a lookup table
            hashlib.md5(secret.encode()).hexdigest(),
        }
        for value in encodings:
            assert value not in dump, "client secret stored in a recoverable form"


def test_s_ca04_public_client_on_client_credentials(op, actors):
    spa = actors["spa"]
    _m2m, audience = op.factory.m2m()
    resp = client_credentials(op, spa, audience=audience)
    assert resp.status_code in (400, 401), resp.text
    assert resp.json()["error"] in ("unauthorized_client", "invalid_client"), resp.json()
    assert "access_token" not in resp.json()
    # Sending a made-up secret does not help either.
    resp = token_post(
        op,
        {
            "grant_type": "client_credentials",
            "audience": audience,
            "client_id": spa.client_id,
            "client_secret": "x" * 43,
        },
    )
    assert resp.status_code in (400, 401) and "access_token" not in resp.json()
