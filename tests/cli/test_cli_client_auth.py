"""``idp clients create --auth-method private_key_jwt --jwks-uri U | --jwks-file F``,
``--signing-alg``, ``--require-par`` and ``client_secret_jwt`` (RFC 7523, RFC 9126 §6); the
client so made authenticates at the token endpoint with its assertion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from tests.actions.test_lifecycle import idp, idp_fails
from tests.conformance._jwt_client_helpers import (
    API,
    assertion,
    hmac_key,
    jwks_of,
    rsa_key,
    token_form,
)


def _grant(op: Any, client_id: str) -> None:
    if not any(a["identifier"] == API for a in idp(op, "apis", "list")):
        idp(op, "apis", "create", "--identifier", API, "--name", "cli-jwt", "--scope", "read")
    idp(op, "client-grants", "create", "--client-id", client_id, "--audience", API,
        "--scope", "read")  # fmt: skip


def test_private_key_jwt_from_a_jwks_file(op: Any, tmp_path: Path) -> None:
    key = rsa_key()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(jwks_of(key)))
    made = idp(op, "clients", "create", "--name", "cli-pkj", "--type", "m2m", "--auth-method",
               "private_key_jwt", "--jwks-file", str(keys), "--signing-alg", "RS256")  # fmt: skip
    assert made["token_endpoint_auth_method"] == "private_key_jwt"
    assert made["jwks"]["keys"][0]["kid"] == key.kid and made["jwks_uri"] is None
    _grant(op, made["client_id"])
    resp = requests.post(f"{op.url}/oauth/token", timeout=10,
                         data=token_form(assertion(key, made["client_id"], op.url)))  # fmt: skip
    assert resp.status_code == 200, resp.text


def test_jwks_uri_require_par_and_refusals(op: Any, tmp_path: Path) -> None:
    made = idp(op, "clients", "create", "--name", "cli-par", "--type", "regular_web",
               "--redirect-uri", "https://cli.test/cb", "--auth-method", "private_key_jwt",
               "--jwks-uri", "https://cli.test/jwks.json", "--require-par")  # fmt: skip
    assert made["jwks_uri"] == "https://cli.test/jwks.json"
    assert made["require_pushed_authorization_requests"] is True
    refused = idp_fails(op, "clients", "create", "--name", "cli-bad", "--type", "m2m",
                        "--auth-method", "private_key_jwt")  # fmt: skip
    assert "needs the client's jwks or jwks_uri" in refused
    refused = idp_fails(op, "clients", "create", "--name", "cli-bad2", "--type", "m2m",
                        "--jwks-uri", "http://keys.example/jwks")  # fmt: skip
    assert "jwks_uri must be" in refused
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [rsa_key().as_dict(private=True)]}))
    refused = idp_fails(op, "clients", "create", "--name", "cli-bad3", "--type", "m2m",
                        "--auth-method", "private_key_jwt", "--jwks-file", str(private))  # fmt: skip
    assert "public keys only" in refused


def test_client_secret_jwt(op: Any) -> None:
    made = idp(op, "clients", "create", "--name", "cli-csj", "--type", "m2m",
               "--auth-method", "client_secret_jwt")  # fmt: skip
    secret = made["client_secret"]
    _grant(op, made["client_id"])
    signed = assertion(hmac_key(secret), made["client_id"], op.url, alg="HS256")
    resp = requests.post(f"{op.url}/oauth/token", data=token_form(signed), timeout=10)
    assert resp.status_code == 200, resp.text
