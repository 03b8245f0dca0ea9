"""Who may call ``/api/v2``: our own RFC 9068 access tokens for the management audience with
the route's scope; every other token is refused as RFC 6750 §3 says, in Auth0's error shape."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from idp.extensions import services
from tests.management.conftest import Mgmt, grant

TRIGGERS = "/actions/triggers"


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(mgmt: Mgmt, **over: Any) -> dict[str, Any]:
    from idp.core import clock

    now = clock.now()
    base = {
        "iss": mgmt.op.url,
        "sub": mgmt.client.client_id,
        "aud": mgmt.audience,
        "exp": now + 600,
        "iat": now,
        "jti": "jti-" + str(now),
        "client_id": mgmt.client.client_id,
        "scope": "read:actions",
    }
    return {k: v for k, v in (base | over).items() if v is not None}


def signed(mgmt: Mgmt, typ: str | None = "at+jwt", **over: Any) -> str:
    with mgmt.op.app.app_context():
        keys = services().keys
        keys.refresh(force=True)
        return keys.sign(claims(mgmt, **over), typ=typ)


def assert_refused(resp: requests.Response, code: str | None = "invalid_token") -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body["statusCode"] == 401
    assert body["error"] == "Unauthorized"
    assert body["message"]
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{resp.url.split("/api/v2")[0]}/api/v2/"' in challenge
    if code is None:
        assert "error=" not in challenge  # RFC 6750 §3.1: no error without credentials
    else:
        assert f'error="{code}"' in challenge
    assert resp.headers["Cache-Control"] == "no-store"


def test_a_token_with_the_scope_is_accepted(mgmt: Mgmt) -> None:
    resp = mgmt.call("GET", TRIGGERS)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in resp.headers  # a machine path: no Flask session


def test_a_hand_signed_token_with_every_claim_right_is_accepted(mgmt: Mgmt) -> None:
    """The control for the forgeries below: only the one thing each of them changes matters."""
    assert mgmt.call("GET", TRIGGERS, token=signed(mgmt)).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Token abc"],
    ids=["absent", "empty", "no-token", "basic", "other-scheme"],
)
def test_no_bearer_token_is_a_bare_challenge(mgmt: Mgmt, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = requests.get(f"{mgmt.op.url}/api/v2{TRIGGERS}", headers=headers, timeout=10)
    assert_refused(resp, None)


def test_an_expired_token_is_refused(mgmt: Mgmt, clock: Any) -> None:
    token = mgmt.token()
    assert mgmt.call("GET", TRIGGERS, token=token).status_code == 200
    clock.advance(mgmt.op.app.config["ACCESS_TOKEN_TTL"] + 31)
    assert_refused(mgmt.call("GET", TRIGGERS, token=token))


def test_expiry_has_a_small_leeway_only(mgmt: Mgmt) -> None:
    from idp.core import clock

    assert mgmt.call("GET", TRIGGERS, token=signed(mgmt, exp=clock.now() - 5)).status_code == 200
    assert_refused(mgmt.call("GET", TRIGGERS, token=signed(mgmt, exp=clock.now() - 60)))


def test_a_token_not_yet_valid_is_refused(mgmt: Mgmt) -> None:
    from idp.core import clock

    assert_refused(mgmt.call("GET", TRIGGERS, token=signed(mgmt, nbf=clock.now() + 600)))
    assert_refused(mgmt.call("GET", TRIGGERS, token=signed(mgmt, iat=clock.now() + 600)))


def test_a_token_for_another_api_is_refused(mgmt: Mgmt) -> None:
    client, audience = mgmt.op.factory.m2m(["read:things"])
    resp = requests.post(
        f"{mgmt.op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=client.basic,
        timeout=30,
    )
    assert_refused(mgmt.call("GET", TRIGGERS, token=resp.json()["access_token"]))
    assert_refused(mgmt.call("GET", TRIGGERS, token=signed(mgmt, aud="https://other.test/")))
    assert_refused(mgmt.call("GET", TRIGGERS, token=signed(mgmt, aud=None)))


def test_a_token_from_another_issuer_is_refused(mgmt: Mgmt) -> None:
    assert_refused(mgmt.call("GET", TRIGGERS, token=signed(mgmt, iss="https://evil.test")))


def test_alg_none_is_refused(mgmt: Mgmt) -> None:
    token = b64({"alg": "none", "typ": "at+jwt"}) + "." + b64(claims(mgmt)) + "."
    assert_refused(mgmt.call("GET", TRIGGERS, token=token))


def test_forged_signatures_are_refused(mgmt: Mgmt) -> None:
    good = signed(mgmt)
    header, _payload, signature = good.split(".")
    # the payload changed under a valid signature
    tampered = header + "." + b64(claims(mgmt, scope="read:actions delete:actions")) + "."
    assert_refused(mgmt.call("GET", TRIGGERS, token=tampered + signature))
    # a key of the attacker's, named with our kid
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    foreign = RSAKey.generate_key(2048, parameters={"kid": kid})
    forged = jwt.encode({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, claims(mgmt), foreign)
    assert_refused(mgmt.call("GET", TRIGGERS, token=forged))


def test_hmac_with_the_public_key_as_secret_is_refused(mgmt: Mgmt) -> None:
    jwks = requests.get(f"{mgmt.op.url}/.well-known/jwks.json", timeout=10).json()
    secret = OctKey.import_key(json.dumps(jwks["keys"][0]).encode())
    token = jwt.encode(
        {"alg": "HS256", "typ": "at+jwt"}, claims(mgmt), secret, algorithms=["HS256"]
    )
    assert_refused(mgmt.call("GET", TRIGGERS, token=token))


def test_an_id_token_is_not_an_access_token(mgmt: Mgmt) -> None:
    """Same key, same issuer, even the right audience: without ``typ: at+jwt`` it is refused
    (RFC 9068 §4 step 3 / §5)."""
    assert_refused(mgmt.call("GET", TRIGGERS, token=signed(mgmt, typ=None)))
    assert_refused(mgmt.call("GET", TRIGGERS, token=signed(mgmt, typ="JWT")))


def test_a_revoked_token_is_refused(mgmt: Mgmt) -> None:
    token = mgmt.token("read:actions")
    assert mgmt.call("GET", TRIGGERS, token=token).status_code == 200
    resp = requests.post(
        f"{mgmt.op.url}/oauth/revoke", data={"token": token}, auth=mgmt.client.basic, timeout=10
    )
    assert resp.status_code == 200
    assert_refused(mgmt.call("GET", TRIGGERS, token=token))


def test_a_deleted_grant_stops_its_tokens_at_once(op: Any) -> None:
    """Tokens outlive nothing: narrowing the client grant narrows them, deleting it ends them
    (client cache is off in tests; in production it bounds the delay)."""
    from sqlalchemy import select

    from idp.extensions import db
    from idp.oauth.models import ClientGrant

    mgmt = Mgmt(op, grant(op, ["read:actions", "create:actions"]), [], [])
    token = mgmt.token()
    assert mgmt.call("POST", "/actions/actions", token=token, json={}).status_code == 400
    with op.app.app_context():
        row = db.session.scalar(
            select(ClientGrant).where(ClientGrant.client_id == mgmt.client.client_id)
        )
        assert row is not None
        row.scopes = ["read:actions"]
        db.session.commit()
        assert mgmt.call("POST", "/actions/actions", token=token, json={}).status_code == 403
        assert mgmt.call("GET", TRIGGERS, token=token).status_code == 200
        db.session.delete(row)
        db.session.commit()
    assert_refused(mgmt.call("GET", TRIGGERS, token=token))


def test_garbage_is_refused(mgmt: Mgmt) -> None:
    for token in ("x", "a.b.c", "a" * 9000, "é.é.é"):
        assert_refused(mgmt.call("GET", TRIGGERS, token=token))


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("POST", "/actions/actions", "create:actions"),
        ("PATCH", "/actions/actions/act_x", "update:actions"),
        ("DELETE", "/actions/actions/act_x", "delete:actions"),
        ("POST", "/actions/actions/act_x/deploy", "create:actions"),
        ("POST", "/actions/actions/act_x/test", "create:actions"),
        ("PATCH", "/actions/triggers/post-login/bindings", "update:actions"),
        ("POST", "/actions/triggers/post-login/bindings", "update:actions"),
        ("GET", "/logs", "read:logs"),
    ],
)
def test_each_route_needs_its_scope(op: Any, method: str, path: str, needed: str) -> None:
    reader = Mgmt(op, grant(op, ["read:actions"]), ["read:actions"], [])
    resp = reader.call(method, path, json={})
    assert resp.status_code == 403, resp.text
    assert resp.json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": f"Insufficient scope, expected any of: {needed}",
        "errorCode": "insufficient_scope",
    }
    challenge = resp.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and f'scope="{needed}"' in challenge


def test_a_narrower_token_of_a_broad_client_is_narrow(mgmt: Mgmt) -> None:
    token = mgmt.token("read:actions")
    assert mgmt.call("GET", TRIGGERS, token=token).status_code == 200
    assert mgmt.call("POST", "/actions/actions", token=token, json={}).status_code == 403


def test_the_cli_grants_a_client_onto_the_management_api(tmp_path: Any) -> None:
    """``idp client-grants create --audience <ISSUER>/api/v2/`` works on a fresh instance: the
    management API's resource server is created with its scopes on that first grant."""
    from click.testing import CliRunner

    from idp.cli import main

    def idp(*argv: str) -> Any:
        result = CliRunner().invoke(main, ["--instance", str(tmp_path), "--json", *argv])
        assert result.exit_code == 0, result.output
        return json.loads(result.output) if result.output.strip().startswith(("{", "[")) else None

    idp("init")
    client = idp("clients", "create", "--name", "ops", "--type", "m2m")
    audience = "http://localhost:5000/api/v2/"
    scopes = ["--scope", "read:actions", "--scope", "create:actions"]
    grant_row = idp("client-grants", "create", "--client-id", client["client_id"],
                    "--audience", audience, *scopes)  # fmt: skip
    assert grant_row["audience"] == audience
    apis = idp("apis", "list")
    [api] = [a for a in apis if a["identifier"] == audience]
    assert set(api["scopes"].split()) == {
        "read:actions", "create:actions", "update:actions", "delete:actions", "read:logs",
        "read:connections", "create:connections", "update:connections", "delete:connections",
        "read:users", "create:users", "update:users", "delete:users",
        "read:sessions", "delete:sessions", "read:grants", "delete:grants",
        "delete:guardian_enrollments",
        "read:clients", "create:clients", "update:clients", "delete:clients",
        "read:branding", "update:branding", "read:attack_protection", "update:attack_protection",
        "read:guardian_factors", "update:guardian_factors",
        "read:tenant_settings", "update:tenant_settings", "read:stats",
        "read:log_streams", "create:log_streams", "update:log_streams", "delete:log_streams",
        "read:resource_servers", "create:resource_servers", "update:resource_servers",
        "delete:resource_servers",
        "read:client_grants", "create:client_grants", "update:client_grants",
        "delete:client_grants",
        "read:signing_keys", "create:signing_keys", "update:signing_keys",
    }  # fmt: skip
