"""``/authorize`` (RFC 6749 §4.1.1, OIDC Core §3.1.2, OAuth 2.1 §4.1).

Authlib validates client, redirect URI, response type, scope and PKCE. This module adds what
Authlib leaves out: prompt/max_age/id_token_hint handling through the login prompt checks,
audience and scope narrowing, ``iss`` on every response (RFC 9207), and the rule that an error
is redirected only to a redirect URI that has been validated; otherwise the browser gets a page.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from flask import make_response, redirect, render_template, request
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.actions.login import LoginActionError, NeedsMfa, run_post_login
from idp.consent import service as consent
from idp.core import fastsql
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.pages import login_page
from idp.flows.prompts import ConsentContext, PromptContext, consent_reasons, login_reasons
from idp.identity.models import User
from idp.mfa import flow as mfa_flow
from idp.mfa.policy import MFA_ACR
from idp.oauth.grants import AuthenticatedUser
from idp.oauth.models import ResourceServer
from idp.oauth.server import authorization_server
from idp.oauth.tokens import OIDC_SCOPES

SUPPORTED_RESPONSE_MODES = ("query",)
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
)


class AuthorizeError(Exception):
    """An error to send back to a validated redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def error_page(title: str, description: str, status: int = 400) -> Response:
    resp = make_response(
        render_template("error.html", title=title, description=description), status
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _redirect_with(redirect_uri: str, params: dict[str, str], code: int = 302) -> Response:
    params = {k: v for k, v in params.items() if v}
    params["iss"] = services().issuer.issuer
    sep = "&" if "?" in redirect_uri else "?"
    resp = redirect(redirect_uri + sep + urlencode(params), code=code)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def error_redirect(
    redirect_uri: str, error: str, description: str, state: str | None, code: int = 302
) -> Response:
    """RFC 6749 §4.1.2.1 error response; 303 after a POST (OAuth 2.1 §7.5.3)."""
    return _redirect_with(
        redirect_uri,
        {"error": error, "error_description": description, "state": state or ""},
        code,
    )


def request_params() -> dict[str, str]:
    """The authorization request (GET query or form POST, OIDC Core §3.1.2.1); empty values
    count as omitted (OAuth 2.1 §3.1)."""
    source = request.form if request.method == "POST" else request.args
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


def _trusted_redirect_uri() -> str | None:
    """The request's redirect URI if it is single-valued and registered for a known client;
    only such a URI may receive an error (OAuth 2.1 §4.1.2.1, BCP §4.11.2)."""
    source = request.form if request.method == "POST" else request.args
    client_ids, uris = source.getlist("client_id"), source.getlist("redirect_uri")
    if len(client_ids) != 1 or len(uris) != 1:
        return None
    client = services().clients.get(client_ids[0])
    if client is None or not client.check_redirect_uri(uris[0]):
        return None
    return uris[0]


def _repeated_parameter() -> str | None:
    """OAuth 2.1 §3.1: request parameters MUST NOT be included more than once."""
    source = request.form if request.method == "POST" else request.args
    for key in SINGLE_VALUED_PARAMS:
        if len([v for v in source.getlist(key) if v != ""]) > 1:
            return key
    return None


def _early_error(error: str, description: str) -> Response:
    """Redirect to the validated redirect URI if there is one; otherwise show a page."""
    uri = _trusted_redirect_uri()
    if uri is None:
        return error_page("Invalid authorization request", description)
    source = request.form if request.method == "POST" else request.args
    states = source.getlist("state")
    return error_redirect(uri, error, description, states[0] if len(states) == 1 else None)


def authorize() -> Response:
    params = request_params()
    if params.get("response_mode", "query") not in SUPPORTED_RESPONSE_MODES:
        return error_page("Unsupported response mode", "Only response_mode=query is supported.")
    repeated = _repeated_parameter()
    if repeated:
        return _early_error("invalid_request", f"Parameter {repeated!r} is repeated.")
    server = authorization_server()
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as err:
        if err.redirect_uri:
            return error_redirect(err.redirect_uri, err.error, err.description or "", err.state)
        return error_page("Invalid authorization request", err.description or err.error)
    except ValueError:
        # Authlib refuses to build an error whose description would echo characters that RFC
        # 6749 §5.2 forbids (it raises ValueError instead); answer with our own wording.
        bad_type = params.get("response_type") != "code"
        return _early_error(
            "unsupported_response_type" if bad_type else "invalid_request",
            "The response type is not supported." if bad_type else "Invalid request parameters.",
        )
    redirect_uri: str = grant.redirect_uri
    state = params.get("state")
    try:
        _precheck(params)
        return _continue(server, grant, params, redirect_uri, state)
    except AuthorizeError as err:
        return error_redirect(redirect_uri, err.error, err.description, state)


def _continue(
    server: Any, grant: Any, params: dict[str, str], redirect_uri: str, state: str | None
) -> Response:
    services().keys.refresh()
    session_row = flows.current_session(db.session, request.cookies.get(cookies.session()))
    completed = flows.take_completed_interaction(
        db.session, request.cookies.get(cookies.interaction()), params
    )
    resp = _decide(server, grant, params, redirect_uri, session_row, completed, resume=False)
    assert resp is not None
    return resp


def finish_after_login(
    params: dict[str, str], session_row: flows.LoginSession, completed: flows.Interaction
) -> Response | None:
    """Answer the interaction's authorization request from the login POST that completed it,
    saving the browser the round trip back through ``/authorize``; the login must be
    committed already. The request goes through exactly what ``/authorize`` would do with it
    (Authlib's validation again, since the client may have changed meanwhile, then the prompt
    and consent rules, then the post-login Actions, whose refusal or redirect is answered
    here since going back would run them again) and the code is issued in one transaction.
    Any other outcome (consent to ask, an error to report, a hint for someone else) returns
    None, writes nothing, and the caller sends the browser to ``/authorize``, which answers it
    as before."""
    svc = services()
    svc.keys.refresh()
    server = authorization_server()
    # An Authlib request built from the stored parameters, not from this POST's form
    stored = OAuth2Request("GET", f"{svc.issuer.issuer}/authorize?{urlencode(params)}")
    stored.payload = BasicOAuth2Payload(params)
    try:
        grant = server.get_consent_grant(request=stored, end_user=None)
        _precheck(params)
        resp = _decide(
            server, grant, params, grant.redirect_uri, session_row, completed, resume=True
        )
    except (OAuth2Error, ValueError, AuthorizeError):
        resp = None
    if resp is None:
        db.session.rollback()  # only reads happened; end the transaction now
    return resp


def _decide(
    server: Any,
    grant: Any,
    params: dict[str, str],
    redirect_uri: str,
    session_row: flows.LoginSession | None,
    completed: flows.Interaction | None,
    *,
    resume: bool,
) -> Response | None:
    """Ask for what is missing (login, consent) or issue the code. ``resume``: called by the
    login POST, which answers only "issue the code" (None otherwise) and spends the
    interaction itself."""
    done = set(completed.prompt.split()) if completed is not None else set()
    fresh_login = (
        completed is not None
        and session_row is not None
        and (session_row.auth_time >= completed.created_at or "login_done" in done)
    )
    ctx = PromptContext(
        session=session_row,
        prompts=frozenset(params.get("prompt", "").split()),
        max_age=_parse_max_age(params),
        hint_sub=_hint_subject(params),
        fresh_login=fresh_login,
    )
    reasons = login_reasons(ctx)
    if reasons:
        if resume:
            return None
        if "none" in ctx.prompts or (fresh_login and reasons == ["id_token_hint_mismatch"]):
            # OIDC Core §3.1.2.2: someone other than the hinted user just logged in
            raise AuthorizeError("login_required", "End-user authentication is required.")
        return _start_interaction(grant.client.client_id, params, "login")
    assert session_row is not None
    user = db.session.get(User, session_row.user_id)
    if user is None:
        return None if resume else _start_interaction(grant.client.client_id, params, "login")
    scope, audience = narrow_scope(params)
    consent_ctx = ConsentContext(
        first_party=grant.client.first_party,
        prompts=ctx.prompts,
        missing=()
        if grant.client.first_party  # first-party apps never ask: skip the lookup
        else tuple(
            consent.missing_grants(
                db.session,
                user.id,
                grant.client.client_id,
                consent.requested_grants(scope, audience),
            )
        ),
        fresh_consent="consent_done" in done,
    )
    if consent_reasons(consent_ctx):
        if resume:
            return None
        if "none" in ctx.prompts:
            raise AuthorizeError("consent_required", "The user has not consented to this request.")
        tags = "consent login_done" if fresh_login else "consent"
        return _start_interaction(grant.client.client_id, params, tags)
    mfa_reasons = mfa_flow.needed(user.id, grant.client, params, session_row)
    if mfa_reasons:
        if "none" in ctx.prompts:
            raise AuthorizeError("interaction_required", "Multi-factor authentication is required.")
        if resume:
            return None
        return mfa_flow.start(grant.client.client_id, params, _tags(done, fresh_login),
                              user.id, session_row.sid)  # fmt: skip
    try:
        effects = run_post_login(
            user, grant.client, params, session_row, scope, audience, completed,
            _tags(done, fresh_login),
        )  # fmt: skip
    except NeedsMfa as need:
        if "none" in ctx.prompts:
            raise AuthorizeError(need.error, need.description) from None
        options = {"allow_remember_browser": bool((need.effects.mfa or {}).get(
            "allow_remember_browser", False))}  # fmt: skip
        return mfa_flow.start(
            grant.client.client_id, params, _tags(done, fresh_login), user.id,
            session_row.sid, data={"post_login": {"effects": need.effects.as_dict()}},
            options=options,
        )  # fmt: skip
    except LoginActionError as err:
        if resume:  # answer now: going back through /authorize would run the chain again
            state = params.get("state")
            return error_redirect(redirect_uri, err.error, err.description, state, code=303)
        raise AuthorizeError(err.error, err.description) from None
    if isinstance(effects, Response):
        return effects  # a redirect action paused the chain
    who = AuthenticatedUser(
        user=user,
        auth_time=session_row.auth_time,
        sid=session_row.sid,
        amr=list(session_row.amr),
        scope=scope,
        audience=audience,
        acr=MFA_ACR if mfa_flow.session_has_mfa(session_row) else None,
        action_effects=effects,
    )
    # the grant's own request: Authlib would otherwise build a second one from the HTTP request
    response = server.create_authorization_response(
        request=grant.request, grant=grant, grant_user=who
    )
    location = response.headers.get("Location", "")
    if response.status_code != 302 or not location.startswith(redirect_uri):
        db.session.rollback()
        return (
            None
            if resume
            else error_page("Authorization failed", "The request could not be completed.")
        )
    if resume and completed is not None:
        fastsql.delete(db.session, completed)  # spent, as take_completed_interaction would have
    db.session.commit()
    # 303 after the login POST, so the form is never re-posted (OAuth 2.1 §7.5.3)
    resp = _redirect_with(location, {}, code=303 if resume else 302)
    if completed is not None:
        resp.delete_cookie(cookies.interaction(), path="/")
    return resp


def _tags(done: set[str], fresh_login: bool) -> set[str]:
    """What a follow-up interaction (MFA, a paused chain) must remember was already done."""
    return done | ({"login_done"} if fresh_login else set())


def _start_interaction(client_id: str, params: dict[str, str], prompt: str) -> Response:
    """Persist the request and show the page of its first prompt. The login form is answered
    right here (as Keycloak does), a round trip fewer on every login; it posts to
    ``/interaction/<uid>/login``, which also serves it again. Consent is a redirect."""
    svc = services()
    browser_secret, row = flows.create_interaction(
        db.session, client_id, params, prompt, svc.config["INTERACTION_TTL"]
    )
    db.session.commit()
    if prompt.startswith("consent"):
        resp = redirect(f"/interaction/{row.uid}/consent", code=303)
    else:
        resp = login_page(row.uid, client_id, params.get("login_hint", ""))
    cookies.put(resp, cookies.interaction(), browser_secret, svc.config["INTERACTION_TTL"])
    resp.headers["Cache-Control"] = "no-store"
    return resp
