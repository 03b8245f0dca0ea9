"""Concurrency: one code redeemed by 16 requests at once, benign refresh races, grace depth.

SECURITY.md S-CD-02, S-RT-02, S-RT-03, S-FT-01, S-FT-03 (§3.1-§3.3). The live server is
werkzeug's threaded server in this process, so the requests released by the barrier really
run at the same time against the same database (SQLite, or PostgreSQL when
``IDP_TEST_DATABASE_URL`` says so).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from sqlalchemy import func, select

from idp.core.crypto import sha256_hex
from idp.extensions import db
from idp.oauth.models import AccessTokenRecord, AuthorizationCode, RefreshToken
from tests.helpers import Browser, auth_params, pkce

CODE_RACERS = 16
REFRESH_RACERS = 8


def _race(n: int, call: Any) -> list[requests.Response]:
    """Run ``call()`` in ``n`` threads released together by a barrier."""
    barrier = threading.Barrier(n)

    def worker(_: int) -> requests.Response:
        session = requests.Session()  # own connection per racer
        barrier.wait(timeout=30)
        return call(session)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


def _code(op: Any, client: Any, user: Any, scope: str = "openid") -> tuple[str, str]:
    verifier, challenge = pkce()
    result = Browser(op.url).authorize(auth_params(client, challenge, scope=scope), user)
    assert result.code, (result.status, result.params, result.page[:300])
    return result.code, verifier


def _refresh(op: Any, client: Any, token: str, http: Any = requests) -> requests.Response:
    return http.post(
        f"{op.url}/oauth/token",
        auth=client.basic,
        data={"grant_type": "refresh_token", "refresh_token": token},
    )


def _introspect(op: Any, client: Any, token: str) -> dict[str, Any]:
    resp = requests.post(f"{op.url}/oauth/introspect", auth=client.basic, data={"token": token})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _offline_tokens(op: Any, client: Any, user: Any) -> dict[str, Any]:
    code, verifier = _code(op, client, user, scope="openid offline_access")
    resp = requests.post(
        f"{op.url}/oauth/token",
        auth=client.basic,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert resp.status_code == 200, resp.text
    assert "refresh_token" in resp.json()
    return dict(resp.json())


def _family_statuses(op: Any, refresh_token: str) -> Counter[str]:
    with op.app.app_context():
        family = db.session.scalar(
            select(RefreshToken.family_id).where(
                RefreshToken.token_hash == sha256_hex(refresh_token)
            )
        )
        assert family is not None
        rows = db.session.scalars(
            select(RefreshToken.status).where(RefreshToken.family_id == family)
        ).all()
    return Counter(rows)


def test_concurrent_code_redemption_yields_exactly_one_token(op):
    """S-CD-02 / S-FT-01: 16 parallel redemptions of one code → one 200, fifteen
    ``invalid_grant``, no 5xx, exactly one access-token row for the code's grant."""
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    code, verifier = _code(op, client, user)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }

    responses = _race(
        CODE_RACERS,
        lambda http: http.post(f"{op.url}/oauth/token", auth=client.basic, data=data),
    )

    statuses = Counter(r.status_code for r in responses)
    assert not [r for r in responses if r.status_code >= 500], statuses
    assert statuses == {200: 1, 400: CODE_RACERS - 1}, statuses
    for resp in responses:
        if resp.status_code == 400:
            assert resp.json()["error"] == "invalid_grant", resp.text
    winner = next(r for r in responses if r.status_code == 200).json()
    assert winner["access_token"] and winner["id_token"]

    with op.app.app_context():
        row = db.session.get(AuthorizationCode, sha256_hex(code))
        assert row is not None and row.used_at is not None
        issued = db.session.scalar(
            select(func.count())
            .select_from(AccessTokenRecord)
            .where(AccessTokenRecord.grant_id == row.grant_id)
        )
    assert issued == 1


def test_concurrent_code_redemption_public_client(op):
    """The same race for a public client (no client secret to check, so the requests are
    faster and overlap more)."""
    client = op.factory.gen_client("spa")
    user = op.factory.gen_user()
    code, verifier = _code(op, client, user)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
        "client_id": client.client_id,
    }

    responses = _race(CODE_RACERS, lambda http: http.post(f"{op.url}/oauth/token", data=data))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 400: CODE_RACERS - 1}, statuses
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    with op.app.app_context():
        row = db.session.get(AuthorizationCode, sha256_hex(code))
        assert row is not None
        issued = db.session.scalar(
            select(func.count())
            .select_from(AccessTokenRecord)
            .where(AccessTokenRecord.grant_id == row.grant_id)
        )
    assert issued == 1


def test_concurrent_refresh_in_grace_window_does_not_revoke_family(op):
    """S-RT-02 / S-FT-03: 8 parallel refreshes of R1 → all 200 in the same family, no
    revocation; the new refresh tokens and access tokens stay valid afterwards."""
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    tokens = _offline_tokens(op, client, user)
    r1 = tokens["refresh_token"]

    responses = _race(REFRESH_RACERS, lambda http: _refresh(op, client, r1, http))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: REFRESH_RACERS}, [(r.status_code, r.text[:200]) for r in responses]
    bodies = [r.json() for r in responses]
    assert all(b["refresh_token"] != r1 for b in bodies)

    # No spurious family revocation: nothing in the family is revoked ...
    assert _family_statuses(op, r1)["revoked"] == 0
    # ... every access token just issued is live ...
    for body in bodies:
        assert _introspect(op, client, body["access_token"])["active"] is True
    # ... and every refresh token handed out still works (the winner's included).
    for new_rt in {b["refresh_token"] for b in bodies}:
        again = _refresh(op, client, new_rt)
        assert again.status_code == 200, again.text
    assert _family_statuses(op, r1)["revoked"] == 0


def test_grace_covers_only_the_immediately_previous_token(op):
    """S-RT-03: R1 → R2 → R3, then R1 (inside the grace window) → ``invalid_grant`` and the
    whole family, R3 included, is revoked."""
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    tokens = _offline_tokens(op, client, user)
    r1 = tokens["refresh_token"]
    second = _refresh(op, client, r1)
    assert second.status_code == 200, second.text
    r2 = second.json()["refresh_token"]
    third = _refresh(op, client, r2)
    assert third.status_code == 200, third.text
    r3 = third.json()["refresh_token"]
    at3 = third.json()["access_token"]

    reuse = _refresh(op, client, r1)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant", reuse.text

    after = _refresh(op, client, r3)
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant", after.text
    assert _introspect(op, client, r3) == {"active": False}
    assert _introspect(op, client, at3) == {"active": False}
    statuses = _family_statuses(op, r1)
    assert set(statuses) == {"revoked"}, statuses


def test_grace_reuse_of_previous_token_is_served(op):
    """Control for the test above: R1 → R2, then R1 again inside the window is served in the
    same family (a lost response), and R2 keeps working."""
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    r1 = _offline_tokens(op, client, user)["refresh_token"]
    first = _refresh(op, client, r1)
    assert first.status_code == 200, first.text
    retry = _refresh(op, client, r1)
    assert retry.status_code == 200, retry.text
    assert _refresh(op, client, first.json()["refresh_token"]).status_code == 200
    assert _family_statuses(op, r1)["revoked"] == 0
