"""The consent page for third-party applications (OIDC Core §3.1.2.4, RFC 6749 §4.1.2.1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.consent import service as consent
from idp.core import clock
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.views import bp, interaction_or_page, request_origin
from idp.oauth.authorize import AuthorizeError, error_page, error_redirect, narrow_scope

SCOPE_TEXT = {
    "openid": "Know who you are",
    "profile": "See your name and profile",
    "email": "See your email address",
    "offline_access": "Stay signed in to it when you are away",
}


def _describe(grants: list[str]) -> list[str]:
    out = []
    for item in grants:
        if "\t" in item:
            audience, scope = item.split("\t", 1)
            out.append(f"{scope} on {audience}")
        else:
            out.append(SCOPE_TEXT.get(item, item))
    return out


def _expired() -> Response:
    return error_page(
        "Request expired",
        "This page is no longer valid. Go back to the application and sign in again.",
    )


@bp.route("/interaction/<uid>/consent", methods=["GET", "POST"])
def consent_page(uid: str) -> Response:
    row, _page = interaction_or_page(uid)
    if row is None or not row.prompt.startswith("consent"):
        return _expired()
    session_row = flows.current_session(db.session, request.cookies.get(cookies.session()))
    client = services().clients.get(row.client_id)
    if session_row is None or client is None:
        return _expired()
    try:
        scope, audience = narrow_scope(row.params)
    except AuthorizeError:
        return _expired()
    wanted = consent.requested_grants(scope, audience)
    if request.method == "POST":
        if request.form.get("decision") == "allow":
            consent.record(db.session, session_row.user_id, row.client_id, wanted)
            audit.record(
                db.session,
                events.CONSENT_GIVEN,
                "Consent given",
                request_origin(),
                user_id=session_row.user_id,
                client_id=row.client_id,
                details={"scope": scope, "audience": audience},
            )
            row.completed_at = clock.now()
            if "consent_done" not in row.prompt.split():  # a double submit adds nothing
                row.prompt = f"{row.prompt} consent_done"
            params = dict(row.params)
            db.session.commit()
            return redirect("/authorize?" + urlencode(params), code=303)
        params = dict(row.params)
        db.session.delete(row)
        audit.record(
            db.session,
            events.CONSENT_DENIED,
            "Consent denied",
            request_origin(),
            user_id=session_row.user_id,
            client_id=row.client_id,
        )
        db.session.commit()
        return _denied(params, client)
    # Ask only for what is new; on prompt=consent with nothing new, show everything.
    missing = consent.missing_grants(db.session, session_row.user_id, row.client_id, wanted)
    items = _describe(missing or wanted)
    resp = make_response(
        render_template("consent.html", uid=uid, app_name=client.name, items=items)
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _denied(params: dict[str, str], client: Any) -> Response:
    """RFC 6749 §4.1.2.1 access_denied, to the redirect URI validated again right now."""
    uri = params.get("redirect_uri", "")
    if not client.check_redirect_uri(uri):
        return _expired()
    return error_redirect(
        uri, "access_denied", "The user denied the request.", params.get("state"), code=303
    )
