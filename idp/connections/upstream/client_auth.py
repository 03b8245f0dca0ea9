"""How idp proves itself to an upstream: PKCE (RFC 7636), client authentication at the token
endpoint (RFC 6749 §2.3.1, OIDC Core §9, RFC 7523) and Apple's client secret JWT.

Nothing here ever puts a secret or a key in an exception text.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import warnings
from typing import Any
from urllib.parse import quote_plus

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from idp.connections.upstream.contract import UpstreamError
from idp.core import clock

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
APPLE_AUDIENCE = "https://appleid.apple.com"
ASSERTION_SECONDS = 60
APPLE_SECRET_SECONDS = 300  # Apple allows up to six months; one is minted per token request
_EC_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

SigningKey = RSAKey | ECKey | OKPKey


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge): RFC 7636 §4.1-4.2; 64 characters of 43-128."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _config_error(detail: str) -> UpstreamError:
    return UpstreamError(
        "bad_configuration", "This sign-in method is not configured correctly.", detail
    )


def load_key(pem: str) -> tuple[SigningKey, str]:
    """The private key of a PEM (PKCS#8, or SEC1/PKCS#1) and the JWS ``alg`` it signs with."""
    for kind in (RSAKey, ECKey, OKPKey):
        try:
            key = kind.import_key(pem)
        except (JoseError, ValueError, TypeError):
            continue
        if not key.is_private:
            raise _config_error("private_key: the PEM holds no private key")
        if isinstance(key, RSAKey):
            return key, "RS256"
        if isinstance(key, ECKey) and key.curve_name in _EC_ALGS:
            return key, _EC_ALGS[key.curve_name]
        if isinstance(key, OKPKey) and key.curve_name == "Ed25519":
            return key, "EdDSA"
        raise _config_error("private_key: unsupported key type or curve")
    raise _config_error("private_key: not a PEM private key")


def sign(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    with warnings.catch_warnings():
        # joserfc flags the name "EdDSA" (RFC 9864 prefers "Ed25519"); upstreams know EdDSA.
        warnings.simplefilter("ignore")
        return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def apple_client_secret(options: dict[str, Any]) -> str:
    """Apple's client secret: an ES256 JWT signed with the team's key (``private_key``,
    ``key_id``), ``iss`` the team id, ``sub`` the client (Services) id, ``aud``
    https://appleid.apple.com, ``exp`` within six months (here minutes: one per request).
    See "Creating a client secret", Sign in with Apple REST API."""
    key, alg = load_key(options["private_key"])
    if alg != "ES256":
        raise _config_error("apple: private_key must be a P-256 key (ES256)")
    now = clock.now()
    header = {"alg": "ES256", **({"kid": options["key_id"]} if options.get("key_id") else {})}
    claims = {
        "iss": options["team_id"], "sub": options["client_id"], "aud": APPLE_AUDIENCE,
        "iat": now, "exp": now + APPLE_SECRET_SECONDS,
    }  # fmt: skip
    return sign(header, claims, key)


def client_secret(options: dict[str, Any]) -> str | None:
    """The secret to present: Apple's signed JWT when the options carry ``team_id`` and
    ``private_key``, else ``client_secret``."""
    if options.get("team_id") and options.get("private_key"):
        return apple_client_secret(options)
    secret = options.get("client_secret")
    return secret if isinstance(secret, str) else None


def auth_method(options: dict[str, Any]) -> str:
    method = options.get("token_endpoint_auth_method")
    if isinstance(method, str):
        return method
    # Apple takes its JWT secret in the body (its metadata lists client_secret_post only).
    return "client_secret_post" if options.get("team_id") else "client_secret_basic"


def basic_header(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: id and secret each form-urlencoded (Appendix B), then joined by ``:``
    and base64-encoded; a secret holding ``:`` or ``%`` would be misread otherwise."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def client_assertion(options: dict[str, Any], audience: str) -> str:
    """RFC 7523 §3 / OIDC Core §9 ``private_key_jwt``: ``iss`` = ``sub`` = client id, a fresh
    ``jti``, a one-minute ``exp``. ``aud`` is the URL the assertion is posted to (the token
    endpoint), so it cannot be replayed at another endpoint or server (the 2025 audience
    injection attacks on RFC 7523 rely on an ``aud`` other than the recipient)."""
    key, alg = load_key(options["private_key"])
    now = clock.now()
    header = {"alg": alg, "typ": "JWT"}
    if options.get("key_id"):
        header["kid"] = options["key_id"]
    claims = {
        "iss": options["client_id"], "sub": options["client_id"], "aud": audience,
        "jti": secrets.token_urlsafe(24), "iat": now, "exp": now + ASSERTION_SECONDS,
    }  # fmt: skip
    return sign(header, claims, key)


def authenticate(
    options: dict[str, Any], form: dict[str, str], token_endpoint: str
) -> dict[str, str]:
    """Add the client's authentication to the token request ``form``; return the headers to
    send (``Authorization`` for ``client_secret_basic``)."""
    method = auth_method(options)
    client_id = options["client_id"]
    if method == "private_key_jwt":
        if not options.get("private_key"):
            raise _config_error("private_key_jwt without private_key")
        form.update(
            client_id=client_id, client_assertion_type=ASSERTION_TYPE,
            client_assertion=client_assertion(options, token_endpoint),
        )  # fmt: skip
        return {}
    secret = client_secret(options)
    if secret is None:
        raise _config_error(f"{method} without client_secret")
    if method == "client_secret_post":
        form.update(client_id=client_id, client_secret=secret)
        return {}
    if method == "client_secret_basic":
        return {"Authorization": basic_header(client_id, secret)}
    raise _config_error("unknown token_endpoint_auth_method")
