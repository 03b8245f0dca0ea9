"""The demo API (``https://api.example.com``), served by the demo app at ``/api/things``.

A resource server as RFC 9068 and RFC 6750 describe it: a Bearer access token, a JWT of type
``at+jwt`` signed by a key in idp's JWKS, for this issuer and this audience, not expired, with
the ``read:things`` scope. It answers with the claims it verified, so custom claims that an
action adds (``api.access_token.set_custom_claim``) show on the demo app's page.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from werkzeug.wrappers import Response

from idp.demo.seed import DEMO_API_SCOPE

PATH = "/api/things"
ALGORITHMS = ["RS256", "ES256"]


class TokenRejected(Exception):
    """Why the access token is refused (safe to show)."""


def verify(client: Any, raw: str, issuer: str, audience: str) -> dict[str, Any]:
    """The verified claims of ``raw``; the JWKS is fetched again once for an unknown key."""
    try:
        try:
            token = jwt.decode(raw, KeySet.import_key_set(client.fetch_jwk_set()), ALGORITHMS)
        except InvalidKeyIdError:
            keys = KeySet.import_key_set(client.fetch_jwk_set(force=True))
            token = jwt.decode(raw, keys, ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise TokenRejected(f"not a valid token from {issuer}: {exc}") from None
    if str(token.header.get("typ", "")).lower() not in {"at+jwt", "application/at+jwt"}:
        raise TokenRejected("not an access token (typ at+jwt, RFC 9068)")
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(token.claims)
    except JoseError as exc:
        raise TokenRejected(f"claims refused: {exc}") from None
    return dict(token.claims)


def _refuse(status: int, error: str, description: str) -> Response:
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = status
    resp.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return resp


def register(app: Flask, client: Any, issuer: str, audience: str) -> None:
    @app.get(PATH)
    def things() -> Response:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            return _refuse(401, "invalid_request", "send a Bearer access token (RFC 6750)")
        try:
            claims = verify(client, raw.strip(), issuer, audience)
        except TokenRejected as exc:
            return _refuse(401, "invalid_token", str(exc))
        except OSError as exc:
            return _refuse(503, "temporarily_unavailable", f"idp's JWKS: {type(exc).__name__}")
        if DEMO_API_SCOPE not in str(claims.get("scope", "")).split():
            return _refuse(403, "insufficient_scope", f"the token lacks {DEMO_API_SCOPE}")
        return jsonify(
            {
                "api": audience,
                "message": f"Hello {claims['sub']}: the access token checks out.",
                "things": ["a teapot", "a lantern", "an orchard"],
                "verified_claims": claims,
            }
        )
