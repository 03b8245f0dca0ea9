"""Protocol endpoints: token, revocation, introspection, userinfo, discovery and JWKS."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from idp.core.net import client_ip
from idp.extensions import csrf, db, services
from idp.identity.models import User
from idp.identity.profile import STANDARD_CLAIMS
from idp.oauth.endpoints import access_token_revoked, verify_access_token
from idp.oauth.server import authorization_server
from idp.oauth.tokens import OIDC_SCOPES, user_claims

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
    "audience",
    "token",
    "token_type_hint",
)


@bp.after_request
def _cors(resp: Response) -> Response:
    if request.headers.get("Origin") and request.path.startswith(CORS_PATHS):
        resp.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST"
            resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            resp.headers["Access-Control-Max-Age"] = "600"
    return resp


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = status
    resp.headers.update(NO_STORE)
    return resp


def _form_problem() -> Response | None:
    """RFC 6749 §3.2 / OAuth 2.1 §3.2: form-encoded POST, no repeated parameters, and at most
    one client authentication mechanism (OAuth 2.1 §3.2.4 → invalid_request)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return _oauth_error("invalid_request", "Use application/x-www-form-urlencoded.")
    form: MultiDict[str, str] = request.form
    for key in _SINGLE_VALUED:
        if len(form.getlist(key)) > 1:
            return _oauth_error("invalid_request", f"Parameter {key!r} is repeated.")
    if request.authorization is not None and form.get("client_secret"):
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
    if not request.form.get("grant_type"):
        return _oauth_error("invalid_request", "Missing 'grant_type'.")
    services().keys.refresh()
    return _finish(authorization_server().create_token_response())


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


def _presented_token() -> str | None:
    """RFC 6750 §2.1 header, or §2.2 form body on POST; never the query (OAuth 2.1 §5.1)."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("access_token")
    return None


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OIDC Core §5.3."""
    raw = _presented_token()
    if not raw:
        return _bearer_challenge()
    claims = verify_access_token(raw)
    if claims is None or access_token_revoked(str(claims["jti"])):
        return _bearer_challenge("invalid_token")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    scope = str(claims.get("scope", ""))
    if services().issuer.userinfo_audience not in audiences or "openid" not in scope.split():
        return _bearer_challenge("insufficient_scope", 403)
    user = db.session.get(User, claims["sub"])
    if user is None:
        return _bearer_challenge("invalid_token")
    resp = jsonify(user_claims(user, scope))
    resp.headers.update(NO_STORE)
    return resp


def discovery_document() -> dict[str, Any]:
    svc = services()
    iss = svc.issuer.issuer
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/oauth/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/.well-known/jwks.json",
        "revocation_endpoint": f"{iss}/oauth/revoke",
        "introspection_endpoint": f"{iss}/oauth/introspect",
        "end_session_endpoint": f"{iss}/oidc/logout",
        "scopes_supported": list(OIDC_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": svc.keys.algorithms,
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "acr",
            "amr",
            "at_hash",
            # OIDC Core §5.1, released at /userinfo by scope (§5.4)
            *STANDARD_CLAIMS,
        ],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }


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
    resp = Response(svc.keys.jwks_json, mimetype="application/json")
    # Short enough that a rotated-in key is seen well before it signs anything relied upon.
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp
