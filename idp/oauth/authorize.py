"""The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2, OAuth 2.1 §4.1), protocol only.

Authlib validates client, redirect URI, response type, scope and PKCE. This module adds what
Authlib leaves out (prompt, max_age and id_token_hint parsing, audience and scope narrowing,
``iss`` on every response per RFC 9207) and the rule that an error is redirected only to a
redirect URI that has been validated; otherwise the caller shows a page. It renders nothing:
the browser-facing ``/authorize`` and the login pipeline live in ``idp.flows``, which call
:func:`validate` once per interaction and :func:`issue_code` at its end.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from flask import redirect
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from idp.extensions import db, services
from idp.oauth import claims_request, request_source, response_mode
from idp.oauth.device_models import DEVICE_GRANT
from idp.oauth.grants import AuthenticatedUser
from idp.oauth.models import ResourceServer
from idp.oauth.server import authorization_server
from idp.oauth.tokens import OIDC_SCOPES

SUPPORTED_RESPONSE_MODES = ("query", response_mode.FORM_POST)
# What we store must fit its column; the rest of the request is bounded by MAX_CONTENT_LENGTH.
PARAM_LIMITS = {
    "nonce": 512,
    "state": 2048,
    "login_hint": 320,
    "scope": 2048,
    "audience": 512,
    "acr_values": 255,
    "id_token_hint": 8192,
}
SINGLE_VALUED_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "id_token_hint",
    "audience",
    "resource",
    "response_mode",
    "acr_values",
    "display",
    "ui_locales",
    "request",
    "request_uri",
    "claims",
)
INVALID_REQUEST_TITLE = "Invalid authorization request"


class AuthorizeError(Exception):
    """An error to send back to a validated redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AuthorizationRequest:
    """A request :func:`validate` accepted, kept with its interaction as JSON so that the
    pages finishing the login never validate it again (only what can change is re-checked
    when the code is issued: the client, its redirect URI and its response type)."""

    client_id: str
    redirect_uri: str
    params: dict[str, str]  # as received, empty values dropped
    scope: str  # narrowed to the OIDC scopes and the requested API's
    audience: str | None
    prompts: tuple[str, ...]
    max_age: int | None
    hint_sub: str | None  # the subject of id_token_hint
    # RFC 8628: the device authorization this login decides (idp.flows.device), set by
    # /device, never by a parameter; the login ends in its approval, not in a code
    device: str | None = None

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    @property
    def prompt_none(self) -> bool:
        return "none" in self.prompts

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "prompts": list(self.prompts)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(**{**data, "prompts": tuple(data.get("prompts") or ())})


@dataclass(frozen=True)
class Rejection:
    """An authorization request refused: to the validated ``redirect_uri`` when there is one
    (RFC 6749 §4.1.2.1), else a page for the person (never an unvalidated redirect)."""

    error: str
    description: str
    redirect_uri: str | None
    state: str | None
    title: str = INVALID_REQUEST_TITLE
    # form_post when the request (its request object or pushed request, once resolved) asked
    response_mode: str | None = None


def redirect_with(
    redirect_uri: str, params: dict[str, str], code: int = 302, mode: str | None = None
) -> Response:
    """The response to ``redirect_uri``: in its query, or by ``form_post``."""
    params = {k: v for k, v in params.items() if v}
    params["iss"] = services().issuer.issuer
    if mode == response_mode.FORM_POST:
        return response_mode.form_post(redirect_uri, params)
    sep = "&" if "?" in redirect_uri else "?"
    resp = redirect(redirect_uri + sep + urlencode(params), code=code)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def error_redirect(
    redirect_uri: str,
    error: str,
    description: str,
    state: str | None,
    code: int = 302,
    mode: str | None = None,
) -> Response:
    """RFC 6749 §4.1.2.1 error response; 303 after a POST (OAuth 2.1 §7.5.3)."""
    return redirect_with(
        redirect_uri,
        {"error": error, "error_description": description, "state": state or ""},
        code,
        mode,
    )


def request_params(source: MultiDict[str, str]) -> dict[str, str]:
    """The authorization request (GET query or form POST, OIDC Core §3.1.2.1); empty values
    count as omitted (OAuth 2.1 §3.1)."""
    return {k: v for k, v in source.items() if v != ""}


def _parse_max_age(params: dict[str, str]) -> int | None:
    raw = params.get("max_age")
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]{1,10}", raw):  # not str.isdigit: "²" is a digit to it
        raise AuthorizeError("invalid_request", "max_age must be a non-negative integer")
    return int(raw)


def _hint_subject(params: dict[str, str]) -> str | None:
    hint = params.get("id_token_hint")
    if not hint:
        return None
    try:
        header, claims = services().keys.verify(hint)
    except ValueError:
        raise AuthorizeError(
            "invalid_request", "id_token_hint is not an ID token from this issuer"
        ) from None
    if not is_id_token(header, claims):
        raise AuthorizeError("invalid_request", "id_token_hint is not an ID token from this issuer")
    return str(claims.get("sub", "")) or None


def is_id_token(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """Our own ID token (not an access token, which carries ``typ: at+jwt``, RFC 9068 §2.1)."""
    typ = str(header.get("typ", "JWT")).lower()
    return (
        typ in {"jwt", "application/jwt"}
        and claims.get("iss") == services().issuer.issuer
        and bool(claims.get("sub"))
        and "client_id" not in claims
    )


def narrow_scope(params: dict[str, str]) -> tuple[str, str | None]:
    """Keep the OIDC scopes and the scopes the requested API defines; drop the rest."""
    requested = list(dict.fromkeys(params.get("scope", "").split()))
    audience = params.get("audience") or params.get("resource")
    allowed = set(OIDC_SCOPES)
    if audience:
        api = db.session.scalar(select(ResourceServer).where(ResourceServer.identifier == audience))
        if api is None:
            raise AuthorizeError("invalid_request", "The audience is not a registered API.")
        allowed |= set(api.scopes)
    return " ".join(s for s in requested if s in allowed), audience


def _precheck(params: dict[str, str]) -> None:
    """Checks Authlib does not make, done after the redirect URI is known good."""
    if "request" in params:
        raise AuthorizeError("request_not_supported", "Request objects are not supported.")
    if "request_uri" in params:
        raise AuthorizeError("request_uri_not_supported", "request_uri is not supported.")
    prompts = params.get("prompt", "").split()
    if "none" in prompts and len(prompts) > 1:
        raise AuthorizeError("invalid_request", "prompt=none cannot be combined with other values")
    for name, limit in PARAM_LIMITS.items():
        if len(params.get(name, "")) > limit:
            raise AuthorizeError("invalid_request", f"{name} is longer than {limit} characters")
    try:
        claims_request.parse(params.get("claims"))  # OIDC Core §5.5
    except claims_request.ClaimsError as err:
        raise AuthorizeError("invalid_request", str(err)) from None


def _trusted_redirect_uri(source: MultiDict[str, str]) -> str | None:
    """The request's redirect URI if it is single-valued and registered for a known client;
    only such a URI may receive an error (OAuth 2.1 §4.1.2.1, BCP §4.11.2)."""
    client_ids, uris = source.getlist("client_id"), source.getlist("redirect_uri")
    if len(client_ids) != 1 or len(uris) != 1:
        return None
    client = services().clients.get(client_ids[0])
    if client is None or not client.check_redirect_uri(uris[0]):
        return None
    return uris[0]


def _repeated_parameter(source: MultiDict[str, str]) -> str | None:
    """OAuth 2.1 §3.1: request parameters MUST NOT be included more than once."""
    for key in SINGLE_VALUED_PARAMS:
        if len([v for v in source.getlist(key) if v != ""]) > 1:
            return key
    return None


def _early(source: MultiDict[str, str], error: str, description: str) -> Rejection:
    """To the validated redirect URI if there is one; otherwise a page."""
    states = source.getlist("state")
    return Rejection(
        error, description, _trusted_redirect_uri(source), states[0] if len(states) == 1 else None
    )


def validate(
    source: MultiDict[str, str], method: str, pushed: bool = False
) -> AuthorizationRequest | Rejection:
    """Validate the request once: Authlib's checks, then ours. ``source`` is the query (GET)
    or the form (POST), or the body of a pushed request (``pushed``, RFC 9126 §2.1); a request
    object or a pushed request's ``request_uri`` stands for its parameters (RFC 9101 §6.3)."""
    resolved = request_source.resolve(source, pushed)
    if isinstance(resolved, tuple):
        return _with_mode(_early(source, *resolved), source)
    checked = _validate_resolved(resolved, method)
    return _with_mode(checked, resolved) if isinstance(checked, Rejection) else checked


def _with_mode(rejection: Rejection, source: MultiDict[str, str]) -> Rejection:
    """The response mode of an error (form_post only to a validated redirect URI), from the
    parameters that stand for the request (RFC 9101 §6.3: a request object's, not the query's)."""
    return replace(rejection, response_mode=response_mode.requested(source))


def _validate_resolved(
    source: MultiDict[str, str], method: str
) -> AuthorizationRequest | Rejection:
    params = request_params(source)
    if params.get("response_mode", "query") not in SUPPORTED_RESPONSE_MODES:
        return Rejection(
            "invalid_request",
            "Only response_mode=query or form_post is supported.",
            None,
            None,
            "Unsupported response mode",
        )
    repeated = _repeated_parameter(source)
    if repeated:
        return _early(source, "invalid_request", f"Parameter {repeated!r} is repeated.")
    try:
        grant = authorization_server().get_consent_grant(
            request=_oauth2_request(params, method), end_user=None
        )
    except OAuth2Error as err:
        return Rejection(err.error, err.description or "", err.redirect_uri, err.state)
    except ValueError:
        # Authlib refuses to build an error whose description would echo characters that RFC
        # 6749 §5.2 forbids (it raises ValueError instead); answer with our own wording.
        bad_type = params.get("response_type") != "code"
        return _early(
            source,
            "unsupported_response_type" if bad_type else "invalid_request",
            "The response type is not supported." if bad_type else "Invalid request parameters.",
        )
    redirect_uri: str = grant.redirect_uri
    try:
        _precheck(params)
        max_age, hint_sub = _parse_max_age(params), _hint_subject(params)
        # OIDC Core §5.5.1: a sub value asked for binds the login as id_token_hint does
        hint_sub = hint_sub or claims_request.subject_value(params)
        scope, audience = narrow_scope(params)
    except AuthorizeError as err:
        return Rejection(err.error, err.description, redirect_uri, params.get("state"))
    return AuthorizationRequest(
        client_id=grant.client.client_id,
        redirect_uri=redirect_uri,
        params=params,
        scope=scope,
        audience=audience,
        prompts=tuple(params.get("prompt", "").split()),
        max_age=max_age,
        hint_sub=hint_sub,
    )


def _oauth2_request(params: dict[str, str], method: str) -> OAuth2Request:
    """An Authlib request over ``params`` (the stored parameters, or this request's)."""
    req = OAuth2Request(method, f"{services().issuer.issuer}/authorize?{urlencode(params)}")
    req.payload = BasicOAuth2Payload(params)
    return req


def _allows(client: Any, req: AuthorizationRequest) -> bool:
    if req.device is not None:  # no redirect URI: the client must still allow the grant
        return bool(client.check_grant_type(DEVICE_GRANT))
    return bool(
        client.check_redirect_uri(req.redirect_uri)
        and client.check_response_type("code")
        and client.check_grant_type("authorization_code")
    )


def still_allowed(req: AuthorizationRequest) -> bool:
    """What can change since validation has not: the client exists and still allows the
    redirect URI, the code response type and the authorization code grant."""
    client = services().clients.get(req.client_id)
    return client is not None and _allows(client, req)


def issue_code(req: AuthorizationRequest, who: AuthenticatedUser) -> str | None:
    """Mint the code (RFC 6749 §4.1.2) in the caller's transaction and return the redirect
    location, without validating the request again; None, having written nothing, if what
    can change since validation did (the client is gone, or no longer allows the redirect URI,
    the code response type or the authorization code grant)."""
    client = services().clients.get(req.client_id)
    if client is None or not _allows(client, req):
        return None
    stored = _oauth2_request(req.params, "GET")
    stored.client = client
    grant = authorization_server().get_authorization_grant(stored)
    _status, _body, headers = grant.create_authorization_response(req.redirect_uri, who)
    return str(dict(headers)["Location"])
