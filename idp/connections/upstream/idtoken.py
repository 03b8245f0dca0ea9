"""ID token validation (OIDC Core §3.1.3.7) with joserfc.

The signing algorithm must be one the provider's metadata announces
(``id_token_signing_alg_values_supported``) *and* asymmetric (RSA, RSA-PSS, ECDSA, EdDSA):

- never ``none`` (RFC 7518 §3.6: an unsigned token proves nothing);
- never ``HS*``. An HMAC key is a shared secret, but the keys idp has for an upstream are its
  *public* keys: a verifier that accepted ``HS256`` and used the key material it has would
  take an RSA public key (which anyone can download from ``jwks_uri``) as the HMAC secret, so
  anyone could forge tokens (the classic algorithm confusion, CVE-2015-9235 and kin). With a
  client secret as HMAC key (§10.1) the upstream's signature would only prove what the secret
  proves, and idp never signs anything with that secret for this purpose. So symmetric
  algorithms are refused before any key is chosen, and a key is only used with the algorithm
  family of its ``kty``.

The key is chosen by ``kid`` from the provider's JWKS; an unknown ``kid`` refetches the JWKS
once (rate-limited in :mod:`discovery`), which is how key rotation is followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import warnings
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import extract_compact

from idp.connections.upstream.contract import UpstreamError
from idp.core import clock

LEEWAY = 30  # seconds of clock skew tolerated for exp, iat and nbf
_FAMILY = {  # alg -> (the JWK kty it needs, the hash of at_hash, §3.1.3.6)
    "RS256": ("RSA", "sha256"), "RS384": ("RSA", "sha384"), "RS512": ("RSA", "sha512"),
    "PS256": ("RSA", "sha256"), "PS384": ("RSA", "sha384"), "PS512": ("RSA", "sha512"),
    "ES256": ("EC", "sha256"), "ES384": ("EC", "sha384"), "ES512": ("EC", "sha512"),
    "EdDSA": ("OKP", "sha512"), "Ed25519": ("OKP", "sha512"),
}  # fmt: skip
ASYMMETRIC = frozenset(_FAMILY)
_IMPORT: dict[str, type[RSAKey] | type[ECKey] | type[OKPKey]] = {
    "RSA": RSAKey, "EC": ECKey, "OKP": OKPKey,
}  # fmt: skip


def bad(detail: str) -> UpstreamError:
    return UpstreamError(
        "bad_id_token", "The sign-in provider's ID token could not be verified.", detail
    )


def allowed_algs(announced: tuple[str, ...]) -> frozenset[str]:
    """The provider's announced algorithms that idp accepts: the asymmetric ones only."""
    return frozenset(a for a in announced if a in ASYMMETRIC)


def _candidates(keys: list[dict[str, Any]], kid: str | None, alg: str) -> list[dict[str, Any]]:
    kty = _FAMILY[alg][0]
    return [
        k for k in keys
        if k.get("kty") == kty
        and k.get("use", "sig") == "sig"
        and k.get("alg", alg) == alg
        and (kid is None or k.get("kid") == kid)
    ]  # fmt: skip


def _verify(token: str, keys: list[dict[str, Any]], alg: str) -> dict[str, Any] | None:
    for jwk in keys:
        try:
            key = _IMPORT[jwk["kty"]].import_key({k: v for k, v in jwk.items() if k != "d"})
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # joserfc warns on the name "EdDSA"
                claims = jwt.decode(token, key, algorithms=[alg]).claims
        except (JoseError, ValueError):
            continue
        return dict(claims)
    return None


def _header(token: str) -> dict[str, Any]:
    if token.count(".") != 2:  # five parts would be an encrypted token (JWE), not handled
        raise bad("id_token: not a compact JWS")
    try:
        return dict(extract_compact(token.encode("ascii")).protected)
    except (JoseError, ValueError, UnicodeError):
        raise bad("id_token: unreadable header") from None


def _number(claims: dict[str, Any], name: str) -> int | float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"id_token: {name} is not a number")
    return value


def _check_claims(
    claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str, access_token: str | None,
    alg: str,
) -> None:  # fmt: skip
    if claims.get("iss") != issuer:
        raise bad("id_token: iss is not the issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise bad("id_token: aud does not name this client")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise bad("id_token: azp is not this client")
    now = clock.now()
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf")
    if exp is None or iat is None:
        raise bad("id_token: exp or iat missing")
    if now > exp + LEEWAY:
        raise bad("id_token: expired")
    if iat > now + LEEWAY:
        raise bad("id_token: iat in the future")
    if nbf is not None and nbf > now + LEEWAY:
        raise bad("id_token: not yet valid (nbf)")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise bad("id_token: nonce does not match this login")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise bad("id_token: sub missing or invalid")
    at_hash = claims.get("at_hash")
    if at_hash is not None and access_token is not None:
        # §3.1.3.8 / §3.3.2.11: left half of the hash of the access token, base64url.
        digest = hashlib.new(_FAMILY[alg][1], access_token.encode("ascii")).digest()
        expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
        if not isinstance(at_hash, str) or not hmac.compare_digest(at_hash, expected):
            raise bad("id_token: at_hash does not match the access token")


def validate(
    token: Any,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    announced_algs: tuple[str, ...],
    jwks: Callable[[bool], list[dict[str, Any]]],
    access_token: str | None = None,
) -> dict[str, Any]:
    """The ID token's claims once signature and claims check out; ``jwks(unknown_kid)`` gives
    the provider's keys (refetched when asked and allowed)."""
    if not isinstance(token, str) or not token:
        raise bad("token response: no id_token")
    header = _header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algs(announced_algs):
        shown = alg if isinstance(alg, str) and alg.isalnum() and len(alg) < 16 else "?"
        raise bad(f"id_token: alg {shown} is not allowed")
    if "crit" in header:
        raise bad("id_token: critical header parameters are not understood")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise bad("id_token: kid is not a string")
    candidates = _candidates(jwks(False), kid, alg)
    if not candidates and kid is not None:
        candidates = _candidates(jwks(True), kid, alg)  # the upstream may have rotated keys
    if not candidates:
        raise bad("id_token: signed with a key the provider does not publish (unknown kid)")
    claims = _verify(token, candidates, alg)
    if claims is None:
        raise bad("id_token: bad signature")
    _check_claims(
        claims, issuer=issuer, client_id=client_id, nonce=nonce, access_token=access_token,
        alg=alg,
    )  # fmt: skip
    return claims
