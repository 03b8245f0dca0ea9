"""Protocol endpoints: token, revocation, introspection, userinfo, discovery and JWKS."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from idp.core.crypto import sha256_hex
from idp.core.net import client_ip
from idp.extensions import csrf, db, services
from idp.identity.models import User
from idp.keys.service import jwks_max_age
from idp.oauth import dpop_http
from idp.oauth.discovery import discovery_document
from idp.oauth.endpoints import access_token_revoked, verify_access_token
from idp.oauth.models import AccessTokenRecord
from idp.oauth.server import authorization_server, token_endpoint_request
from idp.oauth.tokens import user_claims

bp = Blueprint("oauth", __name__)
csrf.exempt(bp)  # OAuth endpoints authenticate clients, not browser sessions

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Browser apps (SPAs) call these directly; no cookie is involved, so any origin may. The
# authorization endpoint is a navigation, never a CORS request (OAuth 2.1 §3.1).
CORS_PATHS = ("/oauth/token", "/oauth/revoke", "/userinfo", "/.well-known/")
_SINGLE_VALUED = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "audience",
    "token",
    "token_type_hint",
    "device_code",
)


@bp.after_request
def _cors(resp: Response) -> Response:
    if request.headers.get("Origin") and request.path.startswith(CORS_PATHS):
        resp.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST"
            resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, DPoP"
            resp.headers["Access-Control-Max-Age"] = "600"
        else:  # RFC 9449 §8, §7.1: a browser client must be able to read these
            resp.headers["Access-Control-Expose-Headers"] = "DPoP-Nonce, WWW-Authenticate"
    return resp


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = status
    resp.headers.update(NO_STORE)
    return resp


def _sent(form: MultiDict[str, str], key: str) -> bool:
    """``bool(form.get(key))`` without the exception a missing key raises inside ``get``."""
    values = form.getlist(key)
    return bool(values and values[0])


def _form_problem() -> Response | None:
    """RFC 6749 §3.2 / OAuth 2.1 §3.2: form-encoded POST, no repeated parameters, and at most
    one client authentication mechanism (OAuth 2.1 §3.2.4 → invalid_request)."""
    # one context look-up, not one per read (the token endpoint's hot path)
    req = request._get_current_object()  # type: ignore[attr-defined]
    if req.mimetype != "application/x-www-form-urlencoded":
        return _oauth_error("invalid_request", "Use application/x-www-form-urlencoded.")
    form: MultiDict[str, str] = req.form
    repeated = {key for key, values in form.lists() if len(values) > 1}
    for key in _SINGLE_VALUED if repeated else ():  # the first repeated one, in this order
        if key in repeated:
            return _oauth_error("invalid_request", f"Parameter {key!r} is repeated.")
    in_form = _sent(form, "client_secret") + _sent(form, "client_assertion")
    # the Authorization header is parsed only when it could be a second method
    if in_form > 1 or (in_form and req.authorization is not None):
        return _oauth_error("invalid_request", "Use one client authentication method only.")
    return None


def _finish(resp: Response) -> Response:
    """Commit whatever the endpoint did. On an OAuth error this persists only the deliberate
    side effects (a burned code, a revoked family); tokens are added only on success."""
    if resp.status_code == 401:
        resp = _count_client_failure(resp)
    db.commit_if_used()
    resp.headers.update(NO_STORE)
    return resp


def _count_client_failure(resp: Response) -> Response:
    """After too many failed client authentications from one IP, answer 429 instead of 401."""
    auth = request.authorization
    client_id = (auth.username if auth else None) or request.form.get("client_id") or ""
    if not client_id:
        return resp
    svc = services()
    ip = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"), svc.trusted_proxies)
    retry_after = svc.shields.client_auth_failed(client_id[:128], ip)
    if not retry_after:
        return resp
    throttled = _oauth_error("invalid_client", "Too many failed client authentications.", 429)
    throttled.headers["Retry-After"] = str(retry_after)
    return throttled


@bp.route("/oauth/token", methods=["POST"])
def token() -> Response:
    problem = _form_problem()
    if problem is not None:
        return problem
    if not _sent(request.form, "grant_type"):
        return _oauth_error("invalid_request", "Missing 'grant_type'.")
    services().keys.refresh()
    problem = dpop_http.token_request_problem()  # RFC 9449 §5, before any grant runs
    if problem is not None:
        return problem
    response = authorization_server().create_token_response(token_endpoint_request())
    return dpop_http.add_nonce(_finish(response))


@bp.route("/oauth/revoke", methods=["POST"])
def revoke() -> Response:
    problem = _form_problem()
    if problem is not None:
        return problem
    return _finish(authorization_server().create_endpoint_response("revocation"))


@bp.route("/oauth/introspect", methods=["POST"])
def introspect() -> Response:
    problem = _form_problem()
    if problem is not None:
        return problem
    return _finish(authorization_server().create_endpoint_response("introspection"))


def _bearer_challenge(error: str | None = None, status: int = 401) -> Response:
    value = 'Bearer realm="idp"'
    if error:
        value += f', error="{error}"'
    resp = Response(
        json.dumps({"error": error} if error else {}), status=status, mimetype="application/json"
    )
    resp.headers["WWW-Authenticate"] = value
    resp.headers.update(NO_STORE)
    return resp


def _live_claims(token: str) -> dict[str, Any] | None:
    """Claims of a valid access token of ours that is not revoked."""
    claims = verify_access_token(token)
    if claims is None or access_token_revoked(str(claims["jti"])):
        return None
    return claims


def local_user(claims: dict[str, Any]) -> str:
    """The local user id behind a verified access token's claims: its record's (a pairwise
    ``sub`` cannot be reversed), else the ``sub`` itself (a public client's)."""
    record = db.session.get(AccessTokenRecord, str(claims.get("jti", "")))
    if record is not None and record.user_id:
        return record.user_id
    return str(claims["sub"])


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OIDC Core §5.3, with a Bearer token (RFC 6750) or a DPoP-bound one (RFC 9449 §7)."""
    claims, refusal = dpop_http.resource_claims(_live_claims)
    if claims is None:
        return refusal or _bearer_challenge()
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    scope = str(claims.get("scope", ""))
    if services().issuer.userinfo_audience not in audiences or "openid" not in scope.split():
        return _bearer_challenge("insufficient_scope", 403)
    user = db.session.get(User, local_user(claims))
    if user is None:
        return _bearer_challenge("invalid_token")
    record = db.session.get(AccessTokenRecord, str(claims["jti"]))  # read by the check above
    requested = record.claims if record is not None else None  # OIDC Core §5.5
    # the access token's sub: the client's pairwise one where it has one (OIDC Core §5.3.2)
    resp = jsonify(user_claims(user, scope, requested) | {"sub": claims["sub"]})
    resp.headers.update(NO_STORE)
    return dpop_http.add_nonce(resp)


@bp.route("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    services().keys.refresh()
    resp = jsonify(discovery_document())
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.route("/.well-known/oauth-authorization-server")
def oauth_metadata() -> Response:
    """RFC 8414 §3: the same metadata (our issuer has no path component)."""
    return openid_configuration()


@bp.route("/.well-known/jwks.json")
def jwks() -> Response:
    svc = services()
    svc.keys.refresh()
    body = svc.keys.jwks_json
    resp = Response(body, mimetype="application/json")
    # Short enough that a rotated-in key is seen before it signs (idp.keys.service).
    resp.headers["Cache-Control"] = f"public, max-age={jwks_max_age(svc.config)}"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.set_etag(sha256_hex(body)[:32])
    return resp.make_conditional(request)
