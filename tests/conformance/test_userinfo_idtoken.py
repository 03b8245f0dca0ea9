"""ID tokens (CONFORMANCE.md §2.4 IDT-01..04, 06, 10..12), JWT access tokens (JAT-01..03),
UserInfo (§2.5 UI-01..05) and the JOSE attacks of SECURITY.md §2.4 (S-TK-01..03)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from joserfc.jwk import RSAKey

from tests.conformance._token_helpers import (
    assert_bearer_error,
    attacker_jwt,
    b64u_json,
    client_credentials,
    code_tokens,
    hs256_jwt,
    introspect,
    keyset,
    refresh,
    revoke,
    unsigned_jwt,
    userinfo,
    verify_jwt,
)
from tests.helpers import Browser, auth_params, jwt_parts, pkce, redeem

USERINFO_CLAIMS = {"email", "email_verified", "name", "updated_at", "profile", "picture"}


@pytest.fixture(scope="module")
def actors(live: Any) -> dict[str, Any]:
    f = live.factory
    return {
        "web": f.gen_client(),
        "web2": f.gen_client(),
        "user": f.gen_user(),
    }


def _now() -> int:
    return int(time.time())


# --- ID token ------------------------------------------------------------------------------


def test_idt01_signed_rs256_with_kid(op, actors):
    tokens = code_tokens(op, actors["web"], actors["user"])
    header, _claims = jwt_parts(tokens["id_token"])
    assert header["alg"] == "RS256"
    jwks = requests.get(f"{op.url}/.well-known/jwks.json").json()["keys"]
    assert header["kid"] in {k["kid"] for k in jwks}
    decoded = verify_jwt(op, tokens["id_token"], algorithms=["RS256"])
    assert decoded.claims["sub"] == actors["user"].user_id
    # A flipped signature bit does not verify.
    head, payload, sig = tokens["id_token"].split(".")
    tampered = f"{head}.{payload}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    with pytest.raises(Exception):  # noqa: B017 - joserfc raises BadSignatureError
        verify_jwt(op, tampered)


def test_idt02_required_claims(op, actors):
    web, user = actors["web"], actors["user"]
    before = _now()
    claims = verify_jwt(op, code_tokens(op, web, user)["id_token"]).claims
    assert claims["iss"] == op.url
    sub = claims["sub"]
    assert isinstance(sub, str) and 0 < len(sub) <= 255 and sub.isascii()
    assert sub == user.user_id
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert web.client_id in aud
    for key in ("exp", "iat"):
        assert type(claims[key]) is int, key
    assert abs(claims["iat"] - before) <= 300
    assert claims["exp"] > _now()
    assert claims["exp"] < _now() + 50 * 365 * 86400  # seconds, not milliseconds


def test_idt03_nonce(op, actors):
    web, user = actors["web"], actors["user"]
    browser = Browser(op.url)
    verifier, challenge = pkce()
    params = auth_params(web, challenge, nonce="n-0S6_WzA2Mj")
    result = browser.authorize(params, user)
    with_nonce = redeem(op.url, web, result.code, verifier).json()["id_token"]
    assert verify_jwt(op, with_nonce).claims["nonce"] == "n-0S6_WzA2Mj"
    verifier, challenge = pkce()
    result = browser.authorize(auth_params(web, challenge, nonce=None), user)
    without = redeem(op.url, web, result.code, verifier).json()["id_token"]
    assert "nonce" not in verify_jwt(op, without).claims


def test_idt04_auth_time_is_real_login_time(op, actors, clock):
    web, user = actors["web"], actors["user"]
    browser = Browser(op.url)
    before = _now()
    first = verify_jwt(op, code_tokens(op, web, user, browser=browser)["id_token"]).claims
    assert type(first["auth_time"]) is int
    assert before - 2 <= first["auth_time"] <= first["iat"]
    clock.advance(120)
    # Same session, later authorization (with max_age, which makes auth_time REQUIRED).
    second = verify_jwt(
        op, code_tokens(op, web, user, browser=browser, max_age="3600")["id_token"]
    ).claims
    assert second["auth_time"] == first["auth_time"]
    assert second["iat"] >= first["iat"] + 120
    # A forced re-login moves auth_time.
    third = verify_jwt(
        op, code_tokens(op, web, user, browser=browser, prompt="login")["id_token"]
    ).claims
    assert third["auth_time"] >= first["auth_time"] + 120


def test_idt06_acr_amr(op, actors):
    claims = verify_jwt(op, code_tokens(op, actors["web"], actors["user"])["id_token"]).claims
    if "acr" in claims:
        assert isinstance(claims["acr"], str) and claims["acr"] != ""
    # idp knows how the user authenticated (a password), so it says so (RFC 8176 "pwd").
    assert isinstance(claims["amr"], list) and claims["amr"]
    assert all(isinstance(v, str) and v for v in claims["amr"])
    assert "pwd" in claims["amr"]


def test_idt10_standard_claim_types(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope="openid email profile")
    claims = verify_jwt(op, tokens["id_token"]).claims
    types: dict[str, type | tuple[type, ...]] = {
        "iss": str,
        "sub": str,
        "aud": (str, list),
        "exp": int,
        "iat": int,
        "auth_time": int,
        "nonce": str,
        "at_hash": str,
        "sid": str,
        "acr": str,
        "amr": list,
        "azp": str,
        "email": str,
        "email_verified": bool,
        "name": str,
        "updated_at": int,
    }
    for key, value in claims.items():
        if key in types:
            assert isinstance(value, types[key]) and not (
                types[key] is int and isinstance(value, bool)
            ), key
    info = userinfo(op, tokens["access_token"]).json()
    assert isinstance(info["email_verified"], bool)
    assert type(info["updated_at"]) is int
    assert isinstance(info["email"], str) and "@" in info["email"]
    if "name" in info:
        assert isinstance(info["name"], str)
    for key in ("address",):
        if key in info:
            assert isinstance(info[key], dict)


def test_idt11_scope_claims_in_userinfo_not_id_token(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope="openid email profile")
    claims = verify_jwt(op, tokens["id_token"]).claims
    assert not USERINFO_CLAIMS & set(claims), claims
    info = userinfo(op, tokens["access_token"]).json()
    assert info["email"] == user.email and info["email_verified"] is True


def test_idt12_sub_stable(op, actors):
    web, web2, user = actors["web"], actors["web2"], actors["user"]
    tokens = code_tokens(op, web, user, scope="openid offline_access")
    sub = verify_jwt(op, tokens["id_token"]).claims["sub"]
    assert userinfo(op, tokens["access_token"]).json()["sub"] == sub
    refreshed = refresh(op, web, tokens["refresh_token"]).json()
    assert verify_jwt(op, refreshed["id_token"]).claims["sub"] == sub
    later = code_tokens(op, web, user)  # a new browser: a new login
    assert verify_jwt(op, later["id_token"]).claims["sub"] == sub
    # Two public clients (the default subject type) see the same sub (pairwise ones do not:
    # tests/conformance/test_pairwise.py).
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    assert "public" in doc["subject_types_supported"]
    assert verify_jwt(op, code_tokens(op, web2, user)["id_token"]).claims["sub"] == sub
    # And another user has another sub.
    other = op.factory.gen_user()
    assert verify_jwt(op, code_tokens(op, web, other)["id_token"]).claims["sub"] != sub


# --- JWT access tokens ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "client_credentials"])
def test_jat01_jwt_access_token_claims(op, actors, kind):
    if kind == "user":
        token = code_tokens(op, actors["web"], actors["user"], scope="openid email")["access_token"]
        client_id, sub = actors["web"].client_id, actors["user"].user_id
    else:
        m2m, audience = op.factory.m2m()
        token = client_credentials(op, m2m, audience=audience).json()["access_token"]
        client_id, sub = m2m.client_id, m2m.client_id
    decoded = verify_jwt(op, token, algorithms=["RS256"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["alg"] == "RS256" and decoded.header["kid"]
    claims = decoded.claims
    for key in ("iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope"):
        assert key in claims, key
    assert claims["iss"] == op.url
    assert claims["client_id"] == client_id and claims["sub"] == sub
    assert type(claims["exp"]) is int and claims["exp"] > _now()
    assert type(claims["iat"]) is int and abs(claims["iat"] - _now()) <= 300
    assert isinstance(claims["scope"], str) and claims["scope"]


@pytest.mark.parametrize("case", ["default", "audience-with-openid", "audience-only", "m2m"])
def test_jat02_audience(op, actors, case):
    web, user = actors["web"], actors["user"]
    userinfo_aud = f"{op.url}/userinfo"
    if case == "default":
        token = code_tokens(op, web, user)["access_token"]
        assert jwt_parts(token)[1]["aud"] in (userinfo_aud, [userinfo_aud])
    elif case in ("audience-with-openid", "audience-only"):
        api = op.factory.gen_api()
        scope = "openid read:things" if case == "audience-with-openid" else "read:things"
        token = code_tokens(op, web, user, scope=scope, audience=api)["access_token"]
        aud = jwt_parts(token)[1]["aud"]
        aud = aud if isinstance(aud, list) else [aud]
        expected = {api, userinfo_aud} if case == "audience-with-openid" else {api}
        assert set(aud) == expected
        assert "read:things" in jwt_parts(token)[1]["scope"].split()
    else:
        m2m, api = op.factory.m2m()
        for param in ("audience", "resource"):
            token = client_credentials(op, m2m, **{param: api}).json()["access_token"]
            assert jwt_parts(token)[1]["aud"] in (api, [api])


def test_jat03_id_token_and_access_token_not_interchangeable(op, actors):
    web, user = actors["web"], actors["user"]
    browser = Browser(op.url)
    tokens = code_tokens(op, web, user, browser=browser)
    # ID token as a bearer token → 401.
    for method in ("GET", "POST"):
        assert_bearer_error(userinfo(op, tokens["id_token"], method), 401, "invalid_token")
    assert introspect(op, web, tokens["id_token"]).json() == {"active": False}
    # Access token as an id_token_hint → refused, no code.
    _verifier, challenge = pkce()
    result = browser.authorize(
        auth_params(web, challenge, prompt="none", id_token_hint=tokens["access_token"])
    )
    assert result.code is None
    assert result.params.get("error") == "invalid_request", result


# --- UserInfo ------------------------------------------------------------------------------


def test_ui01_get_bearer(op, actors):
    tokens = code_tokens(op, actors["web"], actors["user"], scope="openid email")
    resp = userinfo(op, tokens["access_token"], "GET")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    assert resp.json()["sub"] == jwt_parts(tokens["id_token"])[1]["sub"]


def test_ui02_post_bearer_header(op, actors):
    tokens = code_tokens(op, actors["web"], actors["user"], scope="openid email")
    resp = userinfo(op, tokens["access_token"], "POST")
    assert resp.status_code == 200
    assert resp.json()["sub"] == jwt_parts(tokens["id_token"])[1]["sub"]
    assert resp.json()["email"] == actors["user"].email


def test_ui03_form_body_yes_query_no(op, actors):
    tokens = code_tokens(op, actors["web"], actors["user"])
    body = requests.post(f"{op.url}/userinfo", data={"access_token": tokens["access_token"]})
    assert body.status_code == 200, body.text
    assert body.json()["sub"] == actors["user"].user_id
    for method in ("GET", "POST"):
        query = requests.request(
            method, f"{op.url}/userinfo", params={"access_token": tokens["access_token"]}
        )
        assert query.status_code == 401, (method, query.text)
        assert "sub" not in query.json()


@pytest.mark.parametrize(
    "case",
    [
        "no-token",
        "garbage",
        "tampered",
        "expired",
        "revoked",
        "no-openid-scope",
        "api-audience-only",
        "m2m-token",
    ],
)
def test_ui04_userinfo_errors(op, actors, clock, case):
    web, user = actors["web"], actors["user"]
    if case == "no-token":
        resp = requests.get(f"{op.url}/userinfo")
        assert_bearer_error(resp, 401, None)
        assert 'realm="idp"' in resp.headers["WWW-Authenticate"]
        return
    if case in ("no-openid-scope", "api-audience-only", "m2m-token"):
        if case == "no-openid-scope":
            token = code_tokens(op, web, user, scope="email")["access_token"]
        elif case == "api-audience-only":
            api = op.factory.gen_api()
            token = code_tokens(op, web, user, scope="read:things", audience=api)["access_token"]
        else:
            m2m, api = op.factory.m2m()
            token = client_credentials(op, m2m, audience=api).json()["access_token"]
        assert_bearer_error(userinfo(op, token), 403, "insufficient_scope")
        return
    token = code_tokens(op, web, user)["access_token"]
    if case == "garbage":
        token = "not-a-token"
    elif case == "tampered":
        header, _payload, sig = token.split(".")
        claims = jwt_parts(token)[1]
        claims["sub"] = op.factory.gen_user().user_id
        token = f"{header}.{b64u_json(claims)}.{sig}"
    elif case == "expired":
        clock.advance(int(op.app.config["ACCESS_TOKEN_TTL"]) + 1)
    else:
        assert revoke(op, web, token).status_code == 200
    assert_bearer_error(userinfo(op, token), 401, "invalid_token")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("openid", {"sub"}),
        ("openid email", {"sub", "email", "email_verified"}),
    ],
)
def test_ui05_claims_limited_to_scope(op, actors, scope, expected):
    tokens = code_tokens(op, actors["web"], actors["user"], scope=scope)
    info = userinfo(op, tokens["access_token"]).json()
    assert set(info) == expected, info
    assert "name" not in info


# --- SECURITY.md §2.4 JOSE attacks ---------------------------------------------------------


def _claims_of_valid_access_token(op: Any, actors: dict[str, Any]) -> dict[str, Any]:
    token = code_tokens(op, actors["web"], actors["user"], scope="openid email")["access_token"]
    return jwt_parts(token)[1]


def test_s_tk01_alg_none_rejected(op, actors):
    web, user = actors["web"], actors["user"]
    browser = Browser(op.url)
    tokens = code_tokens(op, web, user, browser=browser)
    # alg:none id_token_hint naming the logged-in user, with prompt=none → no code.
    id_claims = jwt_parts(tokens["id_token"])[1]
    forged_hint = unsigned_jwt({"kid": jwt_parts(tokens["id_token"])[0]["kid"]}, id_claims)
    _verifier, challenge = pkce()
    result = browser.authorize(
        auth_params(web, challenge, prompt="none", id_token_hint=forged_hint)
    )
    assert result.code is None
    assert result.params.get("error") == "invalid_request", result
    # Control: the genuine hint works.
    _verifier, challenge = pkce()
    genuine = browser.authorize(
        auth_params(web, challenge, prompt="none", id_token_hint=tokens["id_token"])
    )
    assert genuine.code, genuine
    # alg:none access token (valid claims of a real one) → refused everywhere.
    at_header = jwt_parts(tokens["access_token"])[0]
    at_claims = jwt_parts(tokens["access_token"])[1]
    for variant in (
        unsigned_jwt({"typ": "at+jwt", "kid": at_header["kid"]}, at_claims),
        unsigned_jwt({"typ": "at+jwt"}, at_claims),
        unsigned_jwt({"typ": "at+jwt", "kid": at_header["kid"]}, at_claims)[:-1]
        + tokens["access_token"].split(".")[2],
    ):
        assert_bearer_error(userinfo(op, variant), 401, "invalid_token")
        assert introspect(op, web, variant).json() == {"active": False}


def test_s_tk02_hs256_keyed_with_rsa_public_key(op, actors):
    web = actors["web"]
    claims = _claims_of_valid_access_token(op, actors)
    jwks = requests.get(f"{op.url}/.well-known/jwks.json").json()["keys"]
    rsa = next(k for k in jwks if k["kty"] == "RSA")
    public = RSAKey.import_key(rsa)
    pem = public.as_pem(private=False)
    candidates = [
        pem,
        pem.strip(),
        pem.replace(b"-----BEGIN PUBLIC KEY-----", b"-----BEGIN RSA PUBLIC KEY-----"),
        public.as_der(private=False),
        rsa["n"].encode(),
    ]
    header = {"typ": "at+jwt", "kid": rsa["kid"]}
    for key in candidates:
        forged = hs256_jwt(header, claims, key)
        assert_bearer_error(userinfo(op, forged), 401, "invalid_token")
        assert introspect(op, web, forged).json() == {"active": False}


@pytest.mark.parametrize("kid", ["attacker-kid", "our-kid"])
def test_s_tk03_embedded_jwk_rejected(op, actors, kid):
    web = actors["web"]
    claims = _claims_of_valid_access_token(op, actors)
    our_kid = next(iter(keyset(op).keys)).kid
    forged, _key = attacker_jwt(
        {"typ": "at+jwt"}, claims, kid=our_kid if kid == "our-kid" else None
    )
    assert jwt_parts(forged)[0]["jwk"]["n"]
    assert_bearer_error(userinfo(op, forged), 401, "invalid_token")
    assert_bearer_error(userinfo(op, forged, "POST"), 401, "invalid_token")
    assert introspect(op, web, forged).json() == {"active": False}
    # Same with jku/x5u pointing at a key set the attacker controls.
    for extra in ({"jku": "https://attacker.test/jwks.json"}, {"x5u": "https://attacker.test/c"}):
        variant, _key = attacker_jwt(
            {"typ": "at+jwt", **extra},
            claims,
            kid=our_kid if kid == "our-kid" else None,
            embed_jwk=False,
        )
        assert_bearer_error(userinfo(op, variant), 401, "invalid_token")
        assert introspect(op, web, variant).json() == {"active": False}
