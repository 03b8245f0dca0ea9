"""A user's own sessions: see them and end any of them (Universal Login)."""

from __future__ import annotations

from flask import make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.consent import service as consent
from idp.core.errors import NotFoundError
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.views import bp, request_origin


@bp.route("/account/sessions", methods=["GET"])
def account_sessions() -> Response:
    current = flows.account_session(db.session, request.cookies.get(cookies.session()))
    if current is None:
        resp = make_response(render_template("account_signed_out.html"), 401)
    else:
        rows = flows.user_sessions(db.session, current.user_id)
        apps = [
            (c.client_id, getattr(services().clients.get(c.client_id), "name", c.client_id))
            for c in consent.list_for_user(db.session, current.user_id)
        ]
        resp = make_response(
            render_template("sessions.html", rows=rows, current=current.sid, apps=apps)
        )
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/account/sessions/<sid>/end", methods=["POST"])
def end_account_session(sid: str) -> Response:
    current = flows.account_session(db.session, request.cookies.get(cookies.session()))
    if current is None:
        return redirect(url_for("flows.account_sessions"), code=303)
    if flows.end_one_session(db.session, current.user_id, sid[:64]):
        audit.record(
            db.session,
            events.SESSION_ENDED,
            "Session ended by its user",
            request_origin(),
            user_id=current.user_id,
            details={"sid": sid[:64]},
        )
    db.session.commit()
    return redirect(url_for("flows.account_sessions"), code=303)


@bp.route("/account/consents/<client_id>/revoke", methods=["POST"])
def revoke_account_consent(client_id: str) -> Response:
    """The user withdraws an application's access; its tokens stop working."""
    current = flows.account_session(db.session, request.cookies.get(cookies.session()))
    if current is None:
        return redirect(url_for("flows.account_sessions"), code=303)
    try:
        consent.revoke(db.session, current.user_id, client_id[:64])
    except NotFoundError:
        db.session.rollback()
        return redirect(url_for("flows.account_sessions"), code=303)
    audit.record(
        db.session,
        events.CONSENT_REVOKED,
        "Consent revoked by its user",
        request_origin(),
        user_id=current.user_id,
        client_id=client_id[:64],
    )
    db.session.commit()
    return redirect(url_for("flows.account_sessions"), code=303)
