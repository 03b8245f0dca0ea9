"""Request objects by value (JAR, RFC 9101): ``request`` at ``/authorize`` and at
``/oauth/par``, a JWT signed with a key of the client's ``jwks`` / ``jwks_uri``.

Authlib's :class:`JWTAuthenticationRequest` does RFC 9101's checks (``request`` and
``request_uri`` mutually exclusive, the signature with an allowed algorithm, ``client_id``
present and equal to the query's, §6.3; no nested ``request``/``request_uri``, §4). It is
called directly, not registered as a hook on every authorization grant, because idp keeps the
validated parameters and must not decode (nor spend) the same object again when the code is
issued. idp adds what RFC 9101 §10.2 and FAPI 2.0 Message Signing ask of the server:
``iss`` = client_id, ``aud`` = the issuer, ``exp`` required and at most an hour ahead,
``nbf``/``iat`` not in the future, ``jti`` required and single use until ``exp`` (so a
captured request object cannot be replayed); alg ``none`` and HMAC are never accepted.

The request object's parameters replace the query's (§6.3): only ``client_id`` is taken from
outside it, and must match.
"""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc9101 import JWTAuthenticationRequest
from authlib.oauth2.rfc9101.errors import InvalidRequestObjectError
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key

from idp.core import clock
from idp.extensions import Services, services
from idp.oauth.client_jwt import LEEWAY, remember_jti
from idp.oauth.client_keys import ASYMMETRIC_ALGS, KeysUnavailable, verification_key
from idp.oauth.discovery import contributes
from idp.oauth.server import authorization_server

MAX_LIFETIME = 3600  # FAPI 2.0 Message Signing §5.3.1: exp at most 60 minutes after nbf
MAX_REQUEST_BYTES = 16 * 1024
JWT_CLAIMS = ("iss", "aud", "exp", "nbf", "iat", "jti")  # the JWT's, not request parameters


class RequestObjectError(Exception):
    """A refused request object: RFC 9101 §6.3's (or RFC 6749's) error code and why."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class _RequestObjects(JWTAuthenticationRequest):
    def __init__(self) -> None:
        super().__init__(support_request=True, support_request_uri=False)

    def get_server_metadata(self) -> dict[str, Any]:
        return {"request_object_signing_alg_values_supported": list(ASYMMETRIC_ALGS)}

    def get_client_require_signed_request_object(self, client: Any) -> bool:
        return True  # never alg none (Authlib drops it from the algorithms then)

    def resolve_client_public_key(self, client: Any) -> Any:
        def key_for(obj: Any) -> Key:
            try:
                return verification_key(client, obj.headers())
            except KeysUnavailable as exc:
                raise InvalidRequestObjectError(description=str(exc)) from exc

        return key_for


_OBJECTS = _RequestObjects()


def unpack(params: dict[str, str]) -> dict[str, str]:
    """The parameters of the request object in ``params["request"]``, checked and its ``jti``
    spent; raises :class:`RequestObjectError`."""
    raw = params.get("request", "")
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestObjectError("invalid_request_object", "The request object is too large.")
    if _header_alg(raw) not in ASYMMETRIC_ALGS:  # none, HMAC, or not a JWS at all
        raise RequestObjectError(
            "invalid_request_object", "The request object must be signed with the client's key."
        )
    req = OAuth2Request("GET", f"{services().issuer.issuer}/authorize")
    req.payload = BasicOAuth2Payload(params)
    try:
        _OBJECTS.parse_authorization_request(authorization_server(), req)
    except OAuth2Error as err:
        raise RequestObjectError(err.error, err.description or "") from None
    except ValueError:  # a description Authlib will not echo (RFC 6749 §5.2 characters)
        raise RequestObjectError("invalid_request_object", "Invalid request object.") from None
    claims: dict[str, Any] = dict(req.payload.data)
    _check_claims(claims, str(params.get("client_id", "")))
    out: dict[str, str] = {}
    for name, value in claims.items():
        if name in JWT_CLAIMS or value is None:
            continue
        out[name] = value if isinstance(value, str) else json.dumps(value)
    return {k: v for k, v in out.items() if v != ""}


def _header_alg(raw: str) -> str | None:
    try:
        alg = jws.extract_compact(raw.encode()).headers().get("alg")
    except (JoseError, ValueError, UnicodeError):
        return None
    return alg if isinstance(alg, str) else None


def _check_claims(claims: dict[str, Any], client_id: str) -> None:
    """RFC 9101 §10.2 (the audience), RFC 7519 §4.1 (times, with a small leeway), §10.8
    (replay)."""
    issuer = services().issuer.issuer
    now = clock.now()

    def refuse(description: str) -> RequestObjectError:
        return RequestObjectError("invalid_request_object", description)

    if claims.get("iss") != client_id:
        raise refuse("The request object's iss must be the client_id.")
    aud = claims.get("aud")
    if not (aud == issuer or (isinstance(aud, list) and issuer in aud)):
        raise refuse("The request object's aud must be this issuer.")
    exp, jti = claims.get("exp"), claims.get("jti")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise refuse("The request object needs exp.")
    if exp <= now - LEEWAY:
        raise refuse("The request object has expired.")
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise refuse(f"The request object expires more than {MAX_LIFETIME} seconds ahead.")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, int | float) or value > now + LEEWAY):
            raise refuse(f"The request object's {name} is in the future or not a number.")
    if not isinstance(jti, str) or not 0 < len(jti) <= 512:
        raise refuse("The request object needs a jti.")
    if not remember_jti("request_object", client_id, jti, int(exp)):
        raise refuse("The request object was used before (its jti).")


@contributes
def _discovery(document: dict[str, Any], svc: Services) -> None:
    """RFC 9101 §9 (OIDC Discovery's names): request objects by value, signed by these."""
    document["request_parameter_supported"] = True
    document["request_object_signing_alg_values_supported"] = list(ASYMMETRIC_ALGS)
