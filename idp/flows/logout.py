"""RP-Initiated Logout 1.0: ``end_session_endpoint``.

A redirect happens only to a ``post_logout_redirect_uri`` registered exactly for the client
named by a valid ``id_token_hint`` (OIDC RP-Initiated Logout §3). Without a hint that matches
the current session, the user is asked to confirm through a CSRF-protected form (§2).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import make_response, redirect, render_template, request, session
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.extensions import csrf, db, services
from idp.flows import cookies, saml_logout
from idp.flows import service as flows
from idp.flows.pages import error_page
from idp.flows.views import bp, request_origin
from idp.i18n import N_, use_ui_locales
from idp.oauth.authorize import is_id_token
from idp.oauth.subjects import subject_for

_PENDING = "logout_pending"


def _verify_hint(hint: str) -> dict[str, Any] | None:
    svc = services()
    svc.keys.refresh()
    try:
        header, claims = svc.keys.verify(hint)  # an expired hint is still fine (§2)
    except ValueError:
        return None
    if not is_id_token(header, claims):
        return None
    return claims


def _resolve_target(params: dict[str, str], claims: dict[str, Any] | None) -> str | None:
    """The validated redirect target, or raise ``ValueError`` with a user-safe reason."""
    uri = params.get("post_logout_redirect_uri")
    client_id = params.get("client_id")
    aud = claims.get("aud") if claims else None
    hint_client = aud[0] if isinstance(aud, list) and aud else aud
    if client_id and hint_client and client_id != hint_client:
        raise ValueError(N_("client_id does not match the id_token_hint."))
    if not uri:
        return None
    if not hint_client:
        raise ValueError(N_("A post_logout_redirect_uri needs a valid id_token_hint."))
    client = services().clients.get(str(hint_client))
    if client is None or uri not in client.post_logout_redirect_uris:
        raise ValueError(N_("post_logout_redirect_uri is not registered for this application."))
    state = params.get("state")
    return uri + (("&" if "?" in uri else "?") + urlencode({"state": state}) if state else "")


def _subject(claims: dict[str, Any], user_id: str) -> str:
    """The session user's ``sub`` as the hint's client sees it (pairwise, OIDC Core §8)."""
    aud = claims.get("aud")
    client_id = aud[0] if isinstance(aud, list) and aud else aud
    return subject_for(str(client_id), user_id) if client_id else user_id


@bp.route("/oidc/logout", methods=["GET", "POST"])
@csrf.exempt  # an RP's form POST (§2) cannot carry our token; the confirmation POST does
def end_session() -> Response:
    params = {
        k: v for k, v in (request.form if request.method == "POST" else request.args).items() if v
    }
    use_ui_locales(params.get("ui_locales"), login=False)  # RP-Initiated Logout §2
    claims = None
    if "id_token_hint" in params:
        claims = _verify_hint(params["id_token_hint"])
        if claims is None:
            return error_page("Logout failed", "The id_token_hint is not valid.")
    try:
        target = _resolve_target(params, claims)
    except ValueError as exc:
        return error_page("Logout failed", str(exc))
    current = flows.current_session(db.session, request.cookies.get(cookies.session()))
    hint_matches = claims is not None and (
        current is None or _subject(claims, current.user_id) == claims.get("sub")
    )
    if hint_matches:
        return _finish(target)
    session[_PENDING] = target or ""
    resp = make_response(render_template("logout_confirm.html"))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/oidc/logout/confirm", methods=["POST"])
def end_session_confirm() -> Response:
    target = session.pop(_PENDING, None)
    if request.form.get("decision") != "logout":
        return _page("logout_done.html", logged_out=False)
    return _finish(target or None)


def _finish(target: str | None) -> Response:
    ended = flows.end_session(db.session, request.cookies.get(cookies.session()))
    if ended is not None:
        audit.record(
            db.session, events.LOGOUT, "Logged out", request_origin(), user_id=ended.user_id
        )
    db.session.commit()
    upstream = saml_logout.after_logout(ended, target) if ended is not None else None
    if upstream is not None:  # the IdP's single logout next, then the target
        resp = upstream
    elif target:
        resp = redirect(target, code=303)
    else:
        resp = _page("logout_done.html", logged_out=True)
    resp.delete_cookie(cookies.session(), path="/")
    return resp


def _page(template: str, **ctx: Any) -> Response:
    resp = make_response(render_template(template, **ctx))
    resp.headers["Cache-Control"] = "no-store"
    return resp
