"""Revocation (RFC 7009) and introspection (RFC 7662): CONFORMANCE.md §2.7 REV-01..07,
INT-01..05.

idp's policy: public clients may revoke their own tokens with ``client_id`` only; only
confidential clients may introspect, and only their own tokens or access tokens whose ``aud``
is an API they hold a client grant for.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import requests

from tests.conformance._token_helpers import (
    assert_bearer_error,
    assert_no_store,
    assert_oauth_error,
    client_credentials,
    code_tokens,
    get_code,
    introspect,
    is_active,
    refresh,
    revoke,
    userinfo,
)
from tests.helpers import jwt_parts, redeem

OFFLINE = "openid email offline_access"
INACTIVE = {"active": False}


@pytest.fixture(scope="module")
def actors(live: Any) -> dict[str, Any]:
    f = live.factory
    return {
        "web": f.gen_client(),
        "web2": f.gen_client(),
        "post": f.gen_client(auth_method="client_secret_post"),
        "spa": f.gen_client("spa"),
        "user": f.gen_user(),
    }


def _form(op: Any, path: str, body: str, auth: Any) -> requests.Response:
    return requests.post(
        f"{op.url}{path}",
        data=body,
        auth=auth,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


# --- revocation ----------------------------------------------------------------------------


def test_rev01_request_format_and_client_auth(op, actors):
    web, post, spa, user = actors["web"], actors["post"], actors["spa"], actors["user"]
    url = f"{op.url}/oauth/revoke"
    missing = requests.post(url, auth=web.basic, data={"token_type_hint": "refresh_token"})
    assert_oauth_error(missing, 400, "invalid_request")
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    as_json = requests.post(url, auth=web.basic, json={"token": tokens["refresh_token"]})
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"
    got = requests.get(url, auth=web.basic, params={"token": tokens["refresh_token"]})
    assert got.status_code in (400, 405)
    assert is_active(op, web, tokens["refresh_token"])
    # Duplicated token parameter → invalid_request, nothing revoked.
    dup = _form(
        op,
        "/oauth/revoke",
        f"token={tokens['refresh_token']}&token={tokens['access_token']}",
        web.basic,
    )
    assert_oauth_error(dup, 400, "invalid_request")
    assert is_active(op, web, tokens["refresh_token"])
    # client_secret_basic, no hint.
    assert revoke(op, web, tokens["refresh_token"]).status_code == 200
    assert not is_active(op, web, tokens["refresh_token"])
    # client_secret_post.
    post_tokens = code_tokens(op, post, user, scope=OFFLINE, secret_in_body=True)
    resp = requests.post(
        url,
        data={
            "token": post_tokens["refresh_token"],
            "client_id": post.client_id,
            "client_secret": post.client_secret,
        },
    )
    assert resp.status_code == 200, resp.text
    after = requests.post(
        f"{op.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": post_tokens["refresh_token"],
            "client_id": post.client_id,
            "client_secret": post.client_secret,
        },
    )
    assert_oauth_error(after, 400, "invalid_grant")
    # Public client: client_id only.
    spa_tokens = code_tokens(op, spa, user, scope=OFFLINE)
    resp = revoke(op, spa, spa_tokens["refresh_token"], token_type_hint="refresh_token")
    assert resp.status_code == 200, resp.text
    assert_oauth_error(refresh(op, spa, spa_tokens["refresh_token"]), 400, "invalid_grant")


@pytest.mark.parametrize("case", ["valid", "unknown", "malformed-jwt", "already-revoked"])
def test_rev02_revocation_answers_200(op, actors, case):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    token = {
        "valid": tokens["refresh_token"],
        "unknown": secrets.token_urlsafe(32),
        "malformed-jwt": "eyJhbGciOiJub25lIn0.e30.!!",
        "already-revoked": tokens["refresh_token"],
    }[case]
    if case == "already-revoked":
        assert revoke(op, web, token).status_code == 200
    resp = revoke(op, web, token)
    assert resp.status_code == 200, resp.text
    assert "error" not in resp.text
    if case in ("valid", "already-revoked"):
        assert not is_active(op, web, token)
    else:
        assert is_active(op, web, tokens["refresh_token"])


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        ("refresh_token", "access_token"),
        ("access_token", "refresh_token"),
        ("refresh_token", "no_such_hint"),
    ],
)
def test_rev03_wrong_hint_still_revokes(op, actors, kind, hint):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    resp = revoke(op, web, tokens[kind], token_type_hint=hint)
    assert resp.status_code == 200, resp.text
    if kind == "refresh_token":
        assert_oauth_error(refresh(op, web, tokens["refresh_token"]), 400, "invalid_grant")
    else:
        assert_bearer_error(userinfo(op, tokens["access_token"]), 401, "invalid_token")


@pytest.mark.parametrize(
    ("attacker", "kind"),
    [
        ("web2", "refresh_token"),
        ("web2", "access_token"),
        ("spa", "refresh_token"),
        ("spa", "access_token"),
        ("m2m", "refresh_token"),
    ],
)
def test_rev04_other_clients_token_refused_not_revoked(op, actors, attacker, kind):
    web, user = actors["web"], actors["user"]
    other = op.factory.m2m()[0] if attacker == "m2m" else actors[attacker]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    resp = revoke(op, other, tokens[kind])
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] in ("invalid_request", "invalid_grant", "unauthorized_client")
    assert is_active(op, web, tokens["access_token"])
    assert is_active(op, web, tokens["refresh_token"])
    assert userinfo(op, tokens["access_token"]).status_code == 200
    assert refresh(op, web, tokens["refresh_token"]).status_code == 200


def test_rev05_revoking_refresh_token_kills_access_tokens(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    refreshed = refresh(op, web, tokens["refresh_token"]).json()
    assert revoke(op, web, refreshed["refresh_token"]).status_code == 200
    for access in (tokens["access_token"], refreshed["access_token"]):
        assert introspect(op, web, access).json() == INACTIVE
        assert_bearer_error(userinfo(op, access), 401, "invalid_token")


@pytest.mark.parametrize("case", ["wrong-secret", "unknown-client", "confidential-id-only"])
def test_rev06_client_auth_failure(op, actors, case):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    url = f"{op.url}/oauth/revoke"
    if case == "wrong-secret":
        resp = requests.post(
            url, auth=(web.client_id, "wrong"), data={"token": tokens["refresh_token"]}
        )
        assert_oauth_error(resp, 401, "invalid_client")
        assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")
    elif case == "unknown-client":
        resp = requests.post(
            url, auth=("no-such-client", "x"), data={"token": tokens["refresh_token"]}
        )
        assert_oauth_error(resp, 401, "invalid_client")
        assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")
    else:
        resp = requests.post(
            url, data={"token": tokens["refresh_token"], "client_id": web.client_id}
        )
        assert_oauth_error(resp, (400, 401), "invalid_client")
    assert is_active(op, web, tokens["refresh_token"])


def test_rev07_revoked_tokens_unusable(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    assert revoke(op, web, tokens["access_token"]).status_code == 200
    assert_bearer_error(userinfo(op, tokens["access_token"]), 401, "invalid_token")
    assert revoke(op, web, tokens["refresh_token"]).status_code == 200
    assert_oauth_error(refresh(op, web, tokens["refresh_token"]), 400, "invalid_grant")
    # A client-credentials token too.
    m2m, audience = op.factory.m2m()
    access = client_credentials(op, m2m, audience=audience).json()["access_token"]
    assert is_active(op, m2m, access)
    assert revoke(op, m2m, access).status_code == 200
    assert introspect(op, m2m, access).json() == INACTIVE


# --- introspection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["no-auth", "public-client", "wrong-secret", "get", "missing-token", "json-body"]
)
def test_int01_request_and_caller_authorization(op, actors, case):
    web, spa, user = actors["web"], actors["spa"], actors["user"]
    tokens = code_tokens(op, web, user)
    url = f"{op.url}/oauth/introspect"
    token = tokens["access_token"]
    if case == "no-auth":
        resp = requests.post(url, data={"token": token})
        assert resp.status_code == 401, resp.text
    elif case == "public-client":
        resp = requests.post(url, data={"token": token, "client_id": spa.client_id})
        assert resp.status_code == 401, resp.text
        spa_token = code_tokens(op, spa, user)["access_token"]
        resp = requests.post(url, data={"token": spa_token, "client_id": spa.client_id})
        assert resp.status_code == 401, resp.text
    elif case == "wrong-secret":
        resp = requests.post(url, data={"token": token}, auth=(web.client_id, "wrong"))
        assert_oauth_error(resp, 401, "invalid_client")
        assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")
    elif case == "get":
        resp = requests.get(url, params={"token": token}, auth=web.basic)
        assert resp.status_code in (400, 405)
    elif case == "missing-token":
        resp = requests.post(url, data={"token_type_hint": "access_token"}, auth=web.basic)
        assert_oauth_error(resp, 400, "invalid_request")
    else:
        resp = requests.post(url, json={"token": token}, auth=web.basic)
        assert resp.status_code == 400
    assert "active" not in resp.text


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        ("refresh_token", "access_token"),
        ("access_token", "refresh_token"),
        ("access_token", "no_such_hint"),
    ],
)
def test_int01_hint_is_only_a_hint(op, actors, kind, hint):
    """RFC 7662 §2.1: a hint that does not match (or is unknown) must not stop the lookup."""
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    resp = introspect(op, web, tokens[kind], token_type_hint=hint)
    assert resp.status_code == 200, resp.text
    assert resp.json()["active"] is True


def test_int02_active_token_metadata(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    resp = introspect(op, web, tokens["access_token"], token_type_hint="access_token")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    body = resp.json()
    claims = jwt_parts(tokens["access_token"])[1]
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == web.client_id
    assert body["sub"] == user.user_id
    assert body["iss"] == op.url
    assert body["scope"] == claims["scope"] and "openid" in body["scope"].split()
    for key in ("exp", "iat", "jti", "aud"):
        assert body[key] == claims[key], key
    assert isinstance(body["exp"], int) and body["exp"] > body["iat"]

    rt = introspect(op, web, tokens["refresh_token"]).json()
    assert rt["active"] is True
    assert rt["token_type"] == "refresh_token"
    assert rt["client_id"] == web.client_id and rt["sub"] == user.user_id
    assert sorted(rt["scope"].split()) == sorted(OFFLINE.split())
    assert rt["iss"] == op.url
    assert isinstance(rt["exp"], int) and isinstance(rt["iat"], int) and rt["exp"] > rt["iat"]

    m2m, audience = op.factory.m2m()
    access = client_credentials(op, m2m, audience=audience).json()["access_token"]
    cc = introspect(op, m2m, access).json()
    assert cc["active"] is True and cc["client_id"] == m2m.client_id
    assert cc["sub"] == m2m.client_id and cc["aud"] == audience
    assert cc["scope"] == "read:things"


@pytest.mark.parametrize(
    "case",
    [
        "expired-access",
        "revoked-access",
        "expired-refresh",
        "revoked-refresh",
        "rotated-refresh",
        "unknown",
        "malformed",
        "used-code",
        "id-token",
    ],
)
def test_int03_inactive_is_exactly_active_false(op, actors, clock, case):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user, scope=OFFLINE)
    tokens = redeem(op.url, web, code, verifier).json()
    token = tokens["access_token"]
    if case == "expired-access":
        clock.advance(int(op.app.config["ACCESS_TOKEN_TTL"]) + 1)
    elif case == "revoked-access":
        assert revoke(op, web, token).status_code == 200
    elif case == "expired-refresh":
        token = tokens["refresh_token"]
        clock.advance(int(op.app.config["REFRESH_TOKEN_IDLE_TTL"]) + 1)
    elif case == "revoked-refresh":
        token = tokens["refresh_token"]
        assert revoke(op, web, token).status_code == 200
    elif case == "rotated-refresh":
        token = tokens["refresh_token"]
        assert refresh(op, web, token).status_code == 200
    elif case == "unknown":
        token = secrets.token_urlsafe(32)
    elif case == "malformed":
        token = "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln"
    elif case == "used-code":
        token = code
    else:
        token = tokens["id_token"]
    resp = introspect(op, web, token)
    assert resp.status_code == 200, resp.text
    assert resp.json() == INACTIVE


def test_int01_empty_token_is_a_missing_token(op, actors):
    """OAuth 2.1 §3.2: a parameter sent without a value is treated as omitted → invalid_request."""
    resp = introspect(op, actors["web"], "")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_int04_introspection_no_store(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user)
    active = introspect(op, web, tokens["access_token"])
    inactive = introspect(op, web, "nope")
    assert active.json()["active"] is True and inactive.json() == INACTIVE
    assert_no_store(active)
    assert_no_store(inactive)


def test_int05_who_may_introspect_what(op, actors):
    web, web2, spa, user = actors["web"], actors["web2"], actors["spa"], actors["user"]
    api = op.factory.gen_api()
    tokens = code_tokens(op, web, user, scope="openid read:things offline_access", audience=api)
    assert api in jwt_parts(tokens["access_token"])[1]["aud"]
    # The owner sees its tokens.
    assert is_active(op, web, tokens["access_token"])
    assert is_active(op, web, tokens["refresh_token"])
    # Another confidential client with no relation sees nothing.
    assert introspect(op, web2, tokens["access_token"]).json() == INACTIVE
    assert introspect(op, web2, tokens["refresh_token"]).json() == INACTIVE
    # The API (an m2m client holding a grant for the token's audience) may introspect the
    # access token, but never the client's refresh token.
    resource = op.factory.gen_client("m2m")
    op.factory.gen_client_grant(resource.client_id, api, ["read:things"])
    seen = introspect(op, resource, tokens["access_token"]).json()
    assert seen["active"] is True and seen["sub"] == user.user_id
    assert introspect(op, resource, tokens["refresh_token"]).json() == INACTIVE
    # An m2m client with a grant on another API sees nothing.
    stranger, _other_api = op.factory.m2m()
    assert introspect(op, stranger, tokens["access_token"]).json() == INACTIVE
    # Public clients may not introspect at all, not even their own tokens.
    spa_token = code_tokens(op, spa, user)["access_token"]
    assert introspect(op, spa, spa_token).status_code == 401
