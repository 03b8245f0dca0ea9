"""Client-credentials token reuse (idp's design; see idp/oauth/token_reuse.py)."""

from __future__ import annotations

import requests

from tests.helpers import jwt_parts


def _token(op, client, audience, **extra):
    resp = requests.post(
        f"{op.url}/oauth/token",
        auth=client.basic,
        data={"grant_type": "client_credentials", "audience": audience, **extra},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_same_request_within_window_gets_same_token_with_true_expires_in(op, clock):
    client, audience = op.factory.m2m(["read:things"])
    first = _token(op, client, audience)
    clock.advance(2)
    second = _token(op, client, audience)
    assert second["access_token"] == first["access_token"]
    exp = jwt_parts(second["access_token"])[1]["exp"]
    assert second["expires_in"] == exp - clock.now()
    assert second["expires_in"] < first["expires_in"]


def test_window_end_scope_and_client_give_fresh_tokens(op, clock):
    client, audience = op.factory.m2m(["read:things", "write:things"])
    other, _ = op.factory.m2m(["read:things"])
    op.factory.gen_client_grant(other.client_id, audience, ["read:things"])
    base = _token(op, client, audience)["access_token"]
    assert _token(op, client, audience, scope="read:things")["access_token"] != base
    assert _token(op, other, audience)["access_token"] != base
    clock.advance(op.app.config["CC_TOKEN_REUSE_SECONDS"])
    assert _token(op, client, audience)["access_token"] != base


def test_revoked_token_is_not_handed_out_again(op):
    client, audience = op.factory.m2m()
    token = _token(op, client, audience)["access_token"]
    assert (
        requests.post(
            f"{op.url}/oauth/revoke", auth=client.basic, data={"token": token}
        ).status_code
        == 200
    )
    fresh = _token(op, client, audience)["access_token"]
    assert fresh != token
    active = requests.post(
        f"{op.url}/oauth/introspect", auth=client.basic, data={"token": fresh}
    ).json()
    assert active["active"] is True
