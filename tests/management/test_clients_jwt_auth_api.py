"""``/api/v2/clients``'s authentication fields (OIDC Registration §2 names, RFC 7523, RFC 9126
§6): token_endpoint_auth_method private_key_jwt / client_secret_jwt, jwks, jwks_uri,
token_endpoint_auth_signing_alg, require_pushed_authorization_requests. Each refusal is a 400
naming the reason; client_secret_jwt's secret is shown when the client moves to it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from idp.extensions import db
from idp.oauth.models import Client
from tests.conformance._jwt_client_helpers import (
    ASSERTION_TYPE,
    assertion,
    ec_key,
    hmac_key,
    jwks_of,
    rsa_key,
)
from tests.management.conftest import Mgmt


def make(mgmt: Mgmt, body: dict[str, Any]) -> dict[str, Any]:
    resp = mgmt.call("POST", "/clients", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def bad(resp: requests.Response, text: str) -> None:
    assert resp.status_code == 400, resp.text
    assert text in resp.json()["message"], resp.json()


def introspect_with(op: Any, client_id: str, signed: str) -> requests.Response:
    return requests.post(
        f"{op.url}/oauth/introspect",
        data={"token": "x", "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed},
        timeout=10,
    )


def test_private_key_jwt_client_with_jwks(mgmt: Mgmt, op: Any) -> None:
    key = rsa_key()
    made = make(mgmt, {"name": "pkj-api", "app_type": "non_interactive",
                       "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(key),
                       "token_endpoint_auth_signing_alg": "RS256"})  # fmt: skip
    assert made["token_endpoint_auth_method"] == "private_key_jwt"
    assert made["jwks"]["keys"][0]["kid"] == key.kid and "d" not in made["jwks"]["keys"][0]
    assert made["jwks_uri"] is None and made["token_endpoint_auth_signing_alg"] == "RS256"
    assert made["require_pushed_authorization_requests"] is False
    got = mgmt.call("GET", f"/clients/{made['client_id']}").json()
    assert got["jwks"] == made["jwks"]
    resp = introspect_with(op, made["client_id"], assertion(key, made["client_id"], op.url))
    assert resp.status_code == 200 and resp.json() == {"active": False}, resp.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"token_endpoint_auth_method": "private_key_jwt"}, "needs the client's jwks or jwks_uri"),
        ({"jwks": {"keys": [rsa_key().as_dict(private=True)]}}, "public keys only"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "no 'oct' key"),
        ({"jwks": {"keys": []}}, "between 1 and 20 keys"),
        ({"jwks": {"keys": [{"kty": "RSA", "n": "x"}]}}, "not a valid JWK"),
        ({"jwks": ["not", "a", "set"]}, "on property jwks"),
        ({"jwks_uri": "ftp://keys.test/jwks"}, "jwks_uri must be"),
        ({"jwks_uri": "http://keys.test/jwks"}, "jwks_uri must be"),
        ({"jwks": jwks_of(rsa_key()), "jwks_uri": "https://keys.test/jwks"}, "not both"),
        ({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(rsa_key()),
          "token_endpoint_auth_signing_alg": "HS256"}, "private_key_jwt signs with one of"),
        ({"token_endpoint_auth_method": "client_secret_jwt",
          "token_endpoint_auth_signing_alg": "RS256"}, "client_secret_jwt signs with one of"),
        ({"token_endpoint_auth_signing_alg": "RS256"}, "is for private_key_jwt"),
        ({"token_endpoint_auth_signing_alg": "none"}, "on property token_endpoint_auth_signing_alg"),
        ({"token_endpoint_auth_method": "tls_client_auth"}, "token_endpoint_auth_method"),
    ],
)  # fmt: skip
def test_bad_authentication_settings(mgmt: Mgmt, body: dict[str, Any], message: str) -> None:
    bad(mgmt.call("POST", "/clients", json={"name": "bad-auth", **body}), message)


def test_moving_to_client_secret_jwt_shows_a_new_secret(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, {"name": "csj-api", "app_type": "non_interactive"})
    old = made["client_secret"]
    patched = mgmt.call("PATCH", f"/clients/{made['client_id']}",
                        json={"token_endpoint_auth_method": "client_secret_jwt"})  # fmt: skip
    assert patched.status_code == 200, patched.text
    secret = patched.json()["client_secret"]
    assert secret and secret != old
    client_id = made["client_id"]
    signed = assertion(hmac_key(secret), client_id, op.url, alg="HS256")
    assert introspect_with(op, client_id, signed).status_code == 200
    signed = assertion(hmac_key(old), client_id, op.url, alg="HS256")
    assert introspect_with(op, client_id, signed).json()["error"] == "invalid_client"
    with op.app.app_context():  # kept encrypted, never in the clear
        row = db.session.get(Client, client_id)
        assert (
            row is not None and row.secret_encrypted and secret.encode() not in row.secret_encrypted
        )
    # a later PATCH of something else shows no secret; rotation re-keys the HMAC
    again = mgmt.call("PATCH", f"/clients/{client_id}", json={"name": "csj-api-2"}).json()
    assert "client_secret" not in again or again["client_secret"] is None
    rotated = mgmt.call("POST", f"/clients/{client_id}/rotate-secret").json()["client_secret"]
    signed = assertion(hmac_key(rotated), client_id, op.url, alg="HS256")
    assert introspect_with(op, client_id, signed).status_code == 200
    # moving away drops the encrypted copy
    mgmt.call("PATCH", f"/clients/{client_id}", json={"token_endpoint_auth_method":
              "client_secret_post"})  # fmt: skip
    with op.app.app_context():
        row = db.session.get(Client, client_id)
        assert row is not None and row.secret_encrypted is None


def test_created_client_secret_jwt_keys_with_the_shown_secret(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, {"name": "csj-new", "app_type": "regular_web",
                       "callbacks": ["https://csj.test/cb"],
                       "token_endpoint_auth_method": "client_secret_jwt",
                       "token_endpoint_auth_signing_alg": "HS512"})  # fmt: skip
    key = hmac_key(made["client_secret"])
    signed = assertion(key, made["client_id"], op.url, alg="HS512")
    assert introspect_with(op, made["client_id"], signed).status_code == 200
    signed = assertion(key, made["client_id"], op.url, alg="HS256")  # not the registered alg
    assert introspect_with(op, made["client_id"], signed).json()["error"] == "invalid_client"


def test_jwks_uri_and_require_par(mgmt: Mgmt) -> None:
    made = make(mgmt, {"name": "par-api", "callbacks": ["https://par.test/cb"],
                       "token_endpoint_auth_method": "private_key_jwt",
                       "jwks_uri": "https://par.test/jwks.json",
                       "require_pushed_authorization_requests": True})  # fmt: skip
    assert made["jwks_uri"] == "https://par.test/jwks.json" and made["jwks"] is None
    assert made["require_pushed_authorization_requests"] is True
    patched = mgmt.call("PATCH", f"/clients/{made['client_id']}",
                        json={"require_pushed_authorization_requests": False,
                              "jwks_uri": None, "jwks": jwks_of(ec_key())})  # fmt: skip
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["require_pushed_authorization_requests"] is False and body["jwks_uri"] is None
    bad(mgmt.call("PATCH", f"/clients/{made['client_id']}", json={"jwks": None}),
        "needs the client's jwks or jwks_uri")  # fmt: skip
    spa = make(mgmt, {"name": "par-spa", "app_type": "spa", "callbacks": ["https://spa.test/"]})
    bad(mgmt.call("PATCH", f"/clients/{spa['client_id']}",
                  json={"token_endpoint_auth_method": "private_key_jwt"}),
        "authenticate with 'none'")  # fmt: skip
