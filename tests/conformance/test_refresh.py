"""Refresh tokens (CONFORMANCE.md §2.6 RT-01..05, RT-07..10) and the refresh attacks of
SECURITY.md §2.6 (S-RT-01, S-RT-03..05). RT-06 (concurrency) lives in tests/security.

idp rotates on every use; the immediately previous token is served again for
``REFRESH_GRACE_SECONDS`` (10 s) while its child is unused; any other reuse is refused and
revokes the whole family with its access tokens.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance._token_helpers import (
    B64URL,
    VSCHAR,
    assert_no_store,
    assert_oauth_error,
    code_tokens,
    get_code,
    is_active,
    refresh,
    shannon_bits,
    userinfo,
    verify_jwt,
)
from tests.helpers import jwt_parts, redeem

OFFLINE = "openid email offline_access"


@pytest.fixture(scope="module")
def actors(live: Any) -> dict[str, Any]:
    f = live.factory
    return {
        "web": f.gen_client(),
        "web2": f.gen_client(),
        "spa": f.gen_client("spa"),
        "spa2": f.gen_client("spa"),
        "native": f.gen_client("native", redirect_uris=["http://127.0.0.1/callback"]),
        "user": f.gen_user(),
    }


def _setting(op: Any, key: str, default: int) -> int:
    return int(op.app.config.get(key, default))


def _ok(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_rt01_refresh_grant(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    resp = refresh(op, web, tokens["refresh_token"])
    body = _ok(resp)
    assert_no_store(resp)
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    assert body["token_type"] == "Bearer"
    assert type(body["expires_in"]) is int and 0 < body["expires_in"] <= 31_536_000
    assert body["access_token"] and body["access_token"] != tokens["access_token"]
    assert body["refresh_token"] and body["refresh_token"] != tokens["refresh_token"]
    info = userinfo(op, body["access_token"])
    assert info.status_code == 200 and info.json()["sub"] == user.user_id


@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_rt02_bound_to_client(op, actors, kind):
    owner, thief = (
        (actors["web"], actors["web2"])
        if kind == "confidential"
        else (actors["spa"], actors["spa2"])
    )
    tokens = code_tokens(op, owner, actors["user"], scope=OFFLINE)
    assert_oauth_error(refresh(op, thief, tokens["refresh_token"]), 400, "invalid_grant")


@pytest.mark.parametrize("case", ["wider", "omitted", "narrower-keeps-original"])
def test_rt03_refresh_scope(op, actors, case):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    original = OFFLINE.split()
    if case == "wider":
        resp = refresh(op, web, tokens["refresh_token"], scope=OFFLINE + " profile")
        assert_oauth_error(resp, 400, "invalid_scope")
    elif case == "omitted":
        body = _ok(refresh(op, web, tokens["refresh_token"]))
        assert sorted(body.get("scope", OFFLINE).split()) == sorted(original)
        assert sorted(jwt_parts(body["access_token"])[1]["scope"].split()) == sorted(original)
    else:
        narrow = _ok(refresh(op, web, tokens["refresh_token"], scope="openid"))
        assert narrow["scope"].split() == ["openid"]
        assert jwt_parts(narrow["access_token"])[1]["scope"].split() == ["openid"]
        assert "email" not in userinfo(op, narrow["access_token"]).json()
        # The new refresh token still carries the original grant.
        again = _ok(refresh(op, web, narrow["refresh_token"]))
        assert sorted(jwt_parts(again["access_token"])[1]["scope"].split()) == sorted(original)
        assert userinfo(op, again["access_token"]).json()["email"] == user.email


@pytest.mark.parametrize("kind", ["spa", "native"])
def test_rt04_public_client_rotation(op, actors, clock, kind):
    client, user = actors[kind], actors["user"]
    tokens = code_tokens(op, client, user, scope=OFFLINE)
    seen = {tokens["refresh_token"]}
    current = tokens["refresh_token"]
    for _ in range(3):
        body = _ok(refresh(op, client, current))
        assert body["refresh_token"] not in seen
        seen.add(body["refresh_token"])
        current = body["refresh_token"]
    # A rotated-out token is dead once the grace window is over.
    clock.advance(_setting(op, "REFRESH_GRACE_SECONDS", 10) + 1)
    assert_oauth_error(refresh(op, client, tokens["refresh_token"]), 400, "invalid_grant")


def test_rt05_reuse_revokes_family(op, actors, clock):
    web, user = actors["web"], actors["user"]
    rt1 = code_tokens(op, web, user, scope=OFFLINE)["refresh_token"]
    second = _ok(refresh(op, web, rt1))
    rt2, at2 = second["refresh_token"], second["access_token"]
    clock.advance(_setting(op, "REFRESH_GRACE_SECONDS", 10) + 1)
    assert_oauth_error(refresh(op, web, rt1), 400, "invalid_grant")
    assert_oauth_error(refresh(op, web, rt2), 400, "invalid_grant")
    assert userinfo(op, at2).status_code == 401
    assert not is_active(op, web, at2)


def test_rt07_refreshed_id_token(op, actors, clock):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    before = verify_jwt(op, tokens["id_token"]).claims
    assert before["nonce"]
    clock.advance(5)
    body = _ok(refresh(op, web, tokens["refresh_token"]))
    decoded = verify_jwt(op, body["id_token"])
    after = decoded.claims
    for claim in ("iss", "sub", "aud", "auth_time"):
        assert after[claim] == before[claim], claim
    assert after["iat"] > before["iat"]
    assert after["exp"] > after["iat"]
    assert "nonce" not in after or after["nonce"] == before["nonce"]
    aud = after["aud"] if isinstance(after["aud"], list) else [after["aud"]]
    if len(aud) > 1 or "azp" in after:
        assert after["azp"] == web.client_id
    assert decoded.header["alg"] == "RS256" and decoded.header["kid"]


def test_rt08_refresh_token_entropy(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = [code_tokens(op, web, user, scope=OFFLINE)["refresh_token"] for _ in range(3)]
    current = tokens[-1]
    for _ in range(12):
        current = _ok(refresh(op, web, current))["refresh_token"]
        tokens.append(current)
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert VSCHAR.match(token), token
        assert B64URL.match(token) and len(token) * 6 >= 128, token
    assert shannon_bits(tokens) >= 128


@pytest.mark.parametrize("case", ["expired", "revoked", "code-replayed", "family-revoked"])
def test_rt09_dead_refresh_tokens_invalid_grant(op, actors, clock, case):
    web, user = actors["web"], actors["user"]
    code, verifier = get_code(op, web, user, scope=OFFLINE)
    tokens = _ok(redeem(op.url, web, code, verifier))
    rt = tokens["refresh_token"]
    if case == "expired":
        clock.advance(_setting(op, "REFRESH_TOKEN_IDLE_TTL", 14 * 86400) + 1)
    elif case == "revoked":
        import requests

        revoked = requests.post(f"{op.url}/oauth/revoke", auth=web.basic, data={"token": rt})
        assert revoked.status_code == 200
    elif case == "code-replayed":
        assert_oauth_error(redeem(op.url, web, code, verifier), 400, "invalid_grant")
    else:
        child = _ok(refresh(op, web, rt))["refresh_token"]
        _ok(refresh(op, web, child))  # rt's child moved on: rt is now plain reuse
        assert_oauth_error(refresh(op, web, rt), 400, "invalid_grant")
        rt = child
    assert_oauth_error(refresh(op, web, rt), 400, "invalid_grant")


def test_rt10_idle_expiry_and_absolute_cap(op, actors, clock):
    web, user = actors["web"], actors["user"]
    idle = _setting(op, "REFRESH_TOKEN_IDLE_TTL", 14 * 86400)
    absolute = _setting(op, "REFRESH_TOKEN_ABSOLUTE_TTL", 90 * 86400)
    assert idle < absolute
    # Idle: used just before the idle TTL → fine (and the clock restarts); unused past it → dead.
    rt = code_tokens(op, web, user, scope=OFFLINE)["refresh_token"]
    clock.advance(idle - 60)
    rt = _ok(refresh(op, web, rt))["refresh_token"]
    clock.advance(idle - 60)
    rt = _ok(refresh(op, web, rt))["refresh_token"]
    clock.advance(idle + 1)
    assert_oauth_error(refresh(op, web, rt), 400, "invalid_grant")
    clock.reset()

    # Absolute: rotating within the idle TTL keeps the family alive only up to the cap.
    rt = code_tokens(op, web, user, scope=OFFLINE)["refresh_token"]
    step = idle - 3600
    elapsed = 0
    while elapsed + step < absolute:
        clock.advance(step)
        elapsed += step
        rt = _ok(refresh(op, web, rt))["refresh_token"]
    clock.advance(step)
    assert elapsed + step > absolute
    assert_oauth_error(refresh(op, web, rt), 400, "invalid_grant")


# --- SECURITY.md §2.6 ----------------------------------------------------------------------


def test_s_rt01_reuse_after_grace_revokes_family(op, actors, clock):
    web, user = actors["web"], actors["user"]
    first = code_tokens(op, web, user, scope=OFFLINE)
    r1, at1 = first["refresh_token"], first["access_token"]
    second = _ok(refresh(op, web, r1))
    r2, at2 = second["refresh_token"], second["access_token"]
    assert is_active(op, web, r2) and is_active(op, web, at2)
    clock.advance(_setting(op, "REFRESH_GRACE_SECONDS", 10) + 1)
    assert_oauth_error(refresh(op, web, r1), 400, "invalid_grant")
    assert_oauth_error(refresh(op, web, r2), 400, "invalid_grant")
    for token in (at1, at2):
        assert userinfo(op, token).status_code == 401
        assert not is_active(op, web, token)
    assert not is_active(op, web, r2)


def test_s_rt03_grace_covers_only_previous_token(op, actors):
    web, user = actors["web"], actors["user"]
    r1 = code_tokens(op, web, user, scope=OFFLINE)["refresh_token"]
    r2 = _ok(refresh(op, web, r1))["refresh_token"]
    third = _ok(refresh(op, web, r2))
    r3, at3 = third["refresh_token"], third["access_token"]
    # Inside the grace window, but r1 is two generations old: reuse.
    assert_oauth_error(refresh(op, web, r1), 400, "invalid_grant")
    assert_oauth_error(refresh(op, web, r3), 400, "invalid_grant")
    assert userinfo(op, at3).status_code == 401
    assert not is_active(op, web, at3)


@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_s_rt04_cross_client_refresh(op, actors, kind):
    owner, thief = (
        (actors["web"], actors["web2"])
        if kind == "confidential"
        else (actors["spa"], actors["spa2"])
    )
    tokens = code_tokens(op, owner, actors["user"], scope=OFFLINE)
    assert_oauth_error(refresh(op, thief, tokens["refresh_token"]), 400, "invalid_grant")


def test_s_rt05_scope_escalation(op, actors):
    web, user = actors["web"], actors["user"]
    tokens = code_tokens(op, web, user, scope=OFFLINE)
    resp = refresh(op, web, tokens["refresh_token"], scope="openid admin")
    assert_oauth_error(resp, 400, "invalid_scope")
