"""A first happy path through every endpoint (detailed cases live beside this file)."""

from __future__ import annotations

import requests

from tests.helpers import Browser, auth_params, jwt_parts, login_and_redeem, pkce, redeem


def test_discovery_and_jwks(op):
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    assert doc["issuer"] == op.url
    keys = requests.get(doc["jwks_uri"]).json()["keys"]
    assert keys and all("kid" in k and "d" not in k for k in keys)


def test_code_flow_userinfo_refresh_revoke(op):
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    tokens = login_and_redeem(op.url, client, user, scope="openid email offline_access")
    header, claims = jwt_parts(tokens["id_token"])
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["sub"] == user.user_id and claims["aud"] == client.client_id
    info = requests.get(
        f"{op.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 200 and info.json()["email"] == user.email
    refreshed = requests.post(
        f"{op.url}/oauth/token",
        auth=client.basic,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    revoked = requests.post(
        f"{op.url}/oauth/revoke",
        auth=client.basic,
        data={"token": refreshed.json()["refresh_token"]},
    )
    assert revoked.status_code == 200
    after = requests.post(
        f"{op.url}/oauth/introspect",
        auth=client.basic,
        data={"token": refreshed.json()["access_token"]},
    )
    assert after.json() == {"active": False}


def test_client_credentials(op):
    client, audience = op.factory.m2m()
    resp = requests.post(
        f"{op.url}/oauth/token",
        auth=client.basic,
        data={"grant_type": "client_credentials", "audience": audience},
    )
    assert resp.status_code == 200, resp.text
    header, claims = jwt_parts(resp.json()["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["aud"] == audience and claims["sub"] == client.client_id


def test_code_replay_is_refused(op):
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    verifier, challenge = pkce()
    result = Browser(op.url).authorize(auth_params(client, challenge), user)
    assert redeem(op.url, client, result.code, verifier).status_code == 200
    again = redeem(op.url, client, result.code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
