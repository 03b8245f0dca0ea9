"""Blueprint, Bearer-token protection and the error shape of the management API.

Tokens are our own RFC 9068 JWT access tokens: signed by a key of our key ring with an allowed
algorithm, ``typ`` at+jwt (§2.1, so an ID token is never taken for an access token), ``iss``
ours, ``aud`` naming the management API, ``exp``/``nbf``/``iat`` checked with a small leeway
(§4), not revoked (RFC 7009), from a client still granted the API. Each route names the one
scope it needs. Refusals follow RFC 6750 §3 (``WWW-Authenticate``; 401 ``invalid_token``, 403
``insufficient_scope``) with Auth0's JSON body ``{statusCode, error, message, errorCode}``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from authlib.oauth2.rfc6749 import ResourceProtector
from authlib.oauth2.rfc6749.errors import MissingAuthorizationError, UnsupportedTokenTypeError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError, InvalidTokenError
from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from idp.actions.service import ActionError, NotFound
from idp.core import clock
from idp.core.errors import ConflictError, NotFoundError, ValidationError
from idp.extensions import csrf, db, services
from idp.keys.service import SUPPORTED_ALGS
from idp.management.service import Conflict, management_audience
from idp.management.validation import SchemaError
from idp.oauth.endpoints import access_token_revoked

log = logging.getLogger(__name__)

bp = Blueprint("management", __name__, url_prefix="/api/v2")
csrf.exempt(bp)  # Bearer tokens in a header, never cookies: nothing for CSRF to ride on

LEEWAY = 30  # seconds of clock skew tolerated on exp/nbf/iat (RFC 7519 §4.1.4)
MAX_BODY = 1024 * 1024
AT_JWT = {"at+jwt", "application/at+jwt"}
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 412: "Precondition Failed",
            413: "Payload Too Large",
            415: "Unsupported Media Type", 429: "Too Many Requests"}  # fmt: skip

F = TypeVar("F", bound=Callable[..., Any])


def problem(status: int, message: str, code: str | None = None) -> Response:
    """Auth0's error body; ``Cache-Control: no-store`` like every answer of this API."""
    body: dict[str, Any] = {
        "statusCode": status,
        "error": _REASONS.get(status, "Internal Server Error" if status >= 500 else "Error"),
        "message": message,
    }
    if code:
        body["errorCode"] = code
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def verify_claims(token: str, audience: str) -> dict[str, Any]:
    """RFC 9068 §4 validation of a presented access token. Raises :class:`InvalidTokenError`."""
    if not token or len(token) > 8192 or token.count(".") != 2:
        raise InvalidTokenError("Malformed token.")
    svc = services()
    svc.keys.refresh()
    try:
        header, claims = svc.keys.verify(token)  # our keys only, RS256/ES256 only
    except ValueError:
        raise InvalidTokenError("Invalid token signature.") from None
    if header.get("alg") not in SUPPORTED_ALGS:
        raise InvalidTokenError("Token algorithm not allowed.")
    if str(header.get("typ", "")).lower() not in AT_JWT:
        raise InvalidTokenError("Not an access token.")
    if claims.get("iss") != svc.issuer.issuer:
        raise InvalidTokenError("Token issuer not accepted.")
    aud = claims.get("aud")
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise InvalidTokenError("Token audience is not the management API.")
    now = clock.now()
    exp, nbf, iat = claims.get("exp"), claims.get("nbf", 0), claims.get("iat", 0)
    for value in (exp, nbf, iat):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidTokenError("Invalid token times.")
    assert isinstance(exp, int)
    if now >= exp + LEEWAY:
        raise InvalidTokenError("Expired token.")
    if nbf > now + LEEWAY or iat > now + LEEWAY:
        raise InvalidTokenError("Token not yet valid.")
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("client_id"), str):
        raise InvalidTokenError("Token lacks jti or client_id.")
    if access_token_revoked(claims["jti"]):
        raise InvalidTokenError("Revoked token.")
    if "cnf" in claims:  # RFC 9449 §7.2: a DPoP-bound token is never a Bearer token
        raise InvalidTokenError("DPoP-bound token: this API takes Bearer tokens only.")
    return claims


def granted_scopes(claims: dict[str, Any], audience: str) -> list[str]:
    """The token's scopes that the client still holds: deleting the client or its grant (or
    narrowing it) takes effect at once, not when the token expires (cached per worker until the
    clients' version moves, :mod:`idp.core.versions`)."""
    client = services().clients.get(str(claims["client_id"]))
    granted = set(client.client_grants.get(audience, ())) if client else set()
    if not granted:
        raise InvalidTokenError("The client is no longer granted the management API.")
    scope = claims.get("scope", "")
    return [s for s in (scope.split() if isinstance(scope, str) else []) if s in granted]


class _Validator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> dict[str, Any]:
        return verify_claims(token_string, management_audience(services().issuer.issuer))

    def validate_token(self, token: dict[str, Any], scopes: list[str], request: Any) -> None:
        audience = management_audience(services().issuer.issuer)
        if self.scope_insufficient(granted_scopes(token, audience), scopes):
            raise InsufficientScopeError()


_protector = ResourceProtector()
_protector.register_token_validator(_Validator())


def _challenge(status: int, message: str, code: str | None, scope: str) -> Response:
    realm = management_audience(services().issuer.issuer)
    params = [f'realm="{realm}"']
    if code:  # RFC 6750 §3.1: no error code when the request had no credentials at all
        params.append(f'error="{code}"')
        params.append(f'error_description="{message}"')
    if code == "insufficient_scope":
        params.append(f'scope="{scope}"')
    resp = problem(status, message, code)
    resp.headers["WWW-Authenticate"] = "Bearer " + ", ".join(params)
    return resp


# set by idp.console.internal (not imported: the console depends on the API, not back)
CONSOLE_PRINCIPAL = "idp.console.admin"


def require(scope: str) -> Callable[[F], F]:
    """Protect a route: a valid management token carrying ``scope``; claims in ``g``."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            admin = request.environ.get(CONSOLE_PRINCIPAL)
            if admin is not None:  # the console, in-process (idp.console.internal)
                g.management_token = admin
                return view(*args, **kwargs)
            try:
                g.management_token = _protector.validate_request([scope], request)
            except (MissingAuthorizationError, UnsupportedTokenTypeError):
                return _challenge(401, "Missing authentication.", None, scope)
            except InvalidTokenError as exc:
                return _challenge(401, exc.description or "Invalid token.", "invalid_token", scope)
            except InsufficientScopeError:
                message = f"Insufficient scope, expected any of: {scope}"
                return _challenge(403, message, "insufficient_scope", scope)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def operator() -> str:
    """Who did it, for version history: the machine client of the token, or the admin."""
    admin = g.management_token.get("admin")
    if admin:
        return f"admin:{admin}"[:255]
    return f"api:{g.management_token['client_id']}"[:255]


def body() -> dict[str, Any]:
    """The request's JSON object (an absent body is ``{}``)."""
    if (request.content_length or 0) > MAX_BODY:
        raise SchemaError("the request body is too large", status=413)
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        raise SchemaError("the request body is too large", status=413)
    if not raw.strip():
        return {}
    if request.mimetype and request.mimetype != "application/json":
        raise SchemaError("send the body as application/json", status=415)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise SchemaError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise SchemaError("the body must be a JSON object")
    return data


def reply(data: Any, status: int = 200) -> Response:
    resp = jsonify(data)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def no_content() -> Response:
    return Response(status=204, headers={"Cache-Control": "no-store"})


@bp.errorhandler(SchemaError)
def _schema(exc: SchemaError) -> Response:
    db.session.rollback()
    return problem(exc.status, f"Payload validation error: {exc}", "invalid_body")


@bp.errorhandler(ActionError)
@bp.errorhandler(ValidationError)
def _invalid(exc: Exception) -> Response:
    db.session.rollback()
    return problem(400, str(exc), "invalid_body")


@bp.errorhandler(NotFound)
@bp.errorhandler(NotFoundError)
def _not_found(exc: Exception) -> Response:
    db.session.rollback()
    return problem(404, str(exc), "inexistent_resource")


@bp.errorhandler(Conflict)
@bp.errorhandler(ConflictError)
def _conflict(exc: Exception) -> Response:
    db.session.rollback()
    return problem(409, str(exc), "conflict")


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Response:
    return problem(exc.code or 500, exc.description or exc.name)
