"""Helpers shared by the token, refresh, revocation/introspection and userinfo/ID-token
conformance tests: endpoint calls, error-shape checks, entropy estimates and forged JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
from collections import Counter
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.factories import TestClient, TestUser
from tests.helpers import Browser, auth_params, pkce, redeem

# RFC 6749 §5.2 / OAuth 2.1 §3.2.4: error and error_description characters.
ERROR_CHARS = re.compile(r"^[\x20-\x21\x23-\x5B\x5D-\x7E]+$")
VSCHAR = re.compile(r"^[\x20-\x7E]+$")
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


# --- endpoint calls ------------------------------------------------------------------------


def token_post(
    op: Any, data: dict[str, Any], client: TestClient | None = None, **kwargs: Any
) -> requests.Response:
    """POST to the token endpoint; a confidential ``client`` authenticates with Basic, a public
    one sends its ``client_id`` in the body."""
    data = dict(data)
    auth = kwargs.pop("auth", None)
    if client is not None and auth is None:
        if client.client_secret is not None:
            auth = client.basic
        else:
            data.setdefault("client_id", client.client_id)
    return requests.post(f"{op.url}/oauth/token", data=data, auth=auth, **kwargs)


def refresh(op: Any, client: TestClient, refresh_token: str, **extra: Any) -> requests.Response:
    return token_post(
        op, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}, client
    )


def client_credentials(op: Any, client: TestClient, **extra: Any) -> requests.Response:
    return token_post(op, {"grant_type": "client_credentials", **extra}, client)


def _endpoint_post(
    op: Any, path: str, client: TestClient | None, data: dict[str, Any], **kwargs: Any
) -> requests.Response:
    data = dict(data)
    auth = kwargs.pop("auth", None)
    if client is not None and auth is None:
        if client.client_secret is not None:
            auth = client.basic
        else:
            data.setdefault("client_id", client.client_id)
    return requests.post(f"{op.url}{path}", data=data, auth=auth, **kwargs)


def revoke(op: Any, client: TestClient | None, token: str, **extra: Any) -> requests.Response:
    return _endpoint_post(op, "/oauth/revoke", client, {"token": token, **extra})


def introspect(op: Any, client: TestClient | None, token: str, **extra: Any) -> requests.Response:
    return _endpoint_post(op, "/oauth/introspect", client, {"token": token, **extra})


def userinfo(op: Any, access_token: str, method: str = "GET") -> requests.Response:
    return requests.request(
        method, f"{op.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )


def get_code(
    op: Any,
    client: TestClient,
    user: TestUser,
    browser: Browser | None = None,
    **extra: Any,
) -> tuple[str, str]:
    """Run an authorization and return (code, verifier)."""
    browser = browser or Browser(op.url)
    verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge, **extra), user)
    assert result.code, (result.status, result.params, result.page[:300])
    return result.code, verifier


def redeem_code(
    op: Any, client: TestClient, code: str, verifier: str, secret_in_body: bool = False
) -> requests.Response:
    """``redeem`` with the client's registered method: ``secret_in_body`` for
    client_secret_post clients."""
    if not secret_in_body:
        return redeem(op.url, client, code, verifier)
    return requests.post(
        f"{op.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )


def code_tokens(
    op: Any,
    client: TestClient,
    user: TestUser,
    scope: str = "openid",
    browser: Browser | None = None,
    secret_in_body: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    code, verifier = get_code(op, client, user, browser, scope=scope, **extra)
    resp = redeem_code(op, client, code, verifier, secret_in_body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def keyset(op: Any) -> KeySet:
    return KeySet.import_key_set(requests.get(f"{op.url}/.well-known/jwks.json").json())


def verify_jwt(op: Any, token: str, algorithms: list[str] | None = None) -> Any:
    return jwt.decode(token, keyset(op), algorithms=algorithms or ["RS256"])


def is_active(op: Any, client: TestClient, token: str) -> bool:
    resp = introspect(op, client, token)
    assert resp.status_code == 200, resp.text
    return bool(resp.json()["active"])


# --- assertions ----------------------------------------------------------------------------


def cache_directives(resp: requests.Response) -> set[str]:
    return {p.strip().lower() for p in resp.headers.get("Cache-Control", "").split(",")}


def assert_no_store(resp: requests.Response) -> None:
    assert "no-store" in cache_directives(resp), (resp.status_code, resp.headers)


def assert_oauth_error(resp: requests.Response, status: int | tuple[int, ...], error: str) -> None:
    """An RFC 6749 §5.2 error response: status, JSON body, the exact ``error`` code, valid
    characters (OAuth 2.1 §3.2.4) and no CR/LF/TAB in the description."""
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status_code in statuses, (resp.status_code, resp.text)
    assert resp.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", (
        resp.headers
    )
    body = resp.json()
    assert body.get("error") == error, body
    assert ERROR_CHARS.match(body["error"]), body
    description = body.get("error_description")
    if description is not None:
        assert isinstance(description, str) and ERROR_CHARS.match(description), body
    if "error_uri" in body:
        assert isinstance(body["error_uri"], str) and ERROR_CHARS.match(body["error_uri"]), body
    assert "access_token" not in body and "refresh_token" not in body, body


def assert_bearer_error(resp: requests.Response, status: int, error: str | None) -> None:
    """RFC 6750 §3: status and the ``WWW-Authenticate: Bearer`` challenge (``error`` only
    when given)."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("bearer"), resp.headers
    if error is None:
        assert "error=" not in challenge, challenge
    else:
        assert f'error="{error}"' in challenge, challenge


# --- entropy -------------------------------------------------------------------------------


def shannon_bits(samples: list[str]) -> float:
    """Shannon entropy of one sample, estimated from the character distribution of all of
    them (what the OpenID suite's Ensure*Entropy conditions measure), times its length."""
    counts = Counter("".join(samples))
    total = sum(counts.values())
    per_char = -sum(c / total * math.log2(c / total) for c in counts.values())
    return per_char * min(len(s) for s in samples)


def common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# --- forged JWTs ---------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj: dict[str, Any]) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """``alg: none`` with an empty signature (RFC 7519 §6.1)."""
    return f"{b64u_json({**header, 'alg': 'none'})}.{b64u_json(claims)}."


def hs256_jwt(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """HS256 by hand (joserfc refuses a PEM as an HMAC key, which is the attack)."""
    signing_input = f"{b64u_json({**header, 'alg': 'HS256'})}.{b64u_json(claims)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64u(mac)}"


def attacker_jwt(
    header: dict[str, Any],
    claims: dict[str, Any],
    kid: str | None = None,
    embed_jwk: bool = True,
) -> tuple[str, RSAKey]:
    """RS256 by a fresh attacker key, by default naming itself in an embedded ``jwk`` header
    (RFC 7515 §4.1.3); ``header`` may add ``jku``/``x5u`` pointing at the attacker."""
    key = RSAKey.generate_key(2048, parameters={"kid": kid or secrets.token_hex(6)})
    public = key.as_dict(private=False)
    hdr = {**header, "alg": "RS256", "kid": public["kid"]}
    if embed_jwk:
        hdr["jwk"] = public
    return jwt.encode(hdr, claims, key, algorithms=["RS256"]), key
