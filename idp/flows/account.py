"""A user's own account page: their sessions (end any of them), the applications they
allowed, and their sign-in methods (remove one, never the last)."""

from __future__ import annotations

from flask import make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.connections import accounts
from idp.connections import service as connections
from idp.connections.models import Connection, Identity
from idp.consent import service as consent
from idp.core.errors import ConflictError, NotFoundError
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
        owned = connections.identities_of(db.session, current.user_id)
        methods = [
            (i.id, c.display_name or c.name, len(owned) > 1 and c.name != connections.DATABASE)
            for i, c in owned
        ]
        resp = make_response(
            render_template(
                "sessions.html", rows=rows, current=current.sid, apps=apps, methods=methods
            )
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


@bp.route("/account/identities/<identity_id>/unlink", methods=["POST"])
def unlink_account_identity(identity_id: str) -> Response:
    """The user removes one of their sign-in methods (never the last one); their user id,
    and everything attached to it, stays."""
    current = flows.account_session(db.session, request.cookies.get(cookies.session()))
    if current is None:
        return redirect(url_for("flows.account_sessions"), code=303)
    identity_id = identity_id[:40]
    if accounts.unlinkable(db.session, current.user_id, identity_id) is not None:
        db.session.rollback()
        return redirect(url_for("flows.account_sessions"), code=303)
    identity = db.session.get(Identity, identity_id)
    connection = db.session.get(Connection, identity.connection_id) if identity else None
    assert identity is not None and connection is not None  # unlinkable() found them
    try:  # again with the user's row locked: two removals at once never take the last one
        connections.unlink_identity(
            db.session, current.user_id, connection.name, identity.upstream_user_id
        )
    except (ConflictError, NotFoundError):
        db.session.rollback()
        return redirect(url_for("flows.account_sessions"), code=303)
    audit.record(
        db.session, events.IDENTITY_UNLINKED, "Sign-in method removed by its user",
        request_origin(), user_id=current.user_id,
        details={"connection_id": identity.connection_id},
    )  # fmt: skip
    db.session.commit()
    return redirect(url_for("flows.account_sessions"), code=303)
