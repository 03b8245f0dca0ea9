"""SAML single logout, the browser's side (the protocol is ``idp.connections.saml.slo``).

- idp's RP-initiated logout (``/oidc/logout``) ends a session that came through a SAML
  connection and then sends the browser to the IdP with a signed LogoutRequest for the
  NameID and session index of that login (:func:`after_logout`); the IdP's LogoutResponse
  comes back to ``/samlp/logout/<name>``, which finishes where the logout was going.
- The IdP's own signed LogoutRequest at ``/samlp/logout/<name>`` ends the user's idp
  sessions that came through that connection, and is answered with a signed
  LogoutResponse. An unsigned or untrusted request ends nothing.
"""

from __future__ import annotations

from flask import make_response, redirect, render_template, request, session
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.connections import service as connections
from idp.connections import strategies
from idp.connections.models import Connection
from idp.connections.upstream import UpstreamError
from idp.core.crypto import random_token
from idp.extensions import db, services
from idp.flows import federation
from idp.flows import service as flows
from idp.flows.models import LoginSession
from idp.flows.origin import request_origin
from idp.flows.pages import error_page
from idp.flows.views import bp

_PENDING = "saml_logout_pending"  # the browser's own (signed) Flask session: where to go after


def _samlp(name: str) -> Connection | None:
    found = db.session.scalar(select(Connection).where(Connection.name == name[:63]))
    if found is None or strategies.protocol(found.strategy) != strategies.SAMLP:
        return None
    return found


def after_logout(ended: LoginSession, target: str | None) -> Response | None:
    """The redirect to the IdP's single logout, when the session came through a SAML
    connection whose IdP has one; None otherwise (the caller finishes as before)."""
    connection = _samlp(ended.connection or "") if ended.connection else None
    if connection is None:
        return None
    login = next(
        (i.profile or {} for i, c in connections.identities_of(db.session, ended.user_id)
         if c.id == connection.id),
        None,
    )  # fmt: skip
    if not login or not login.get("name_id"):
        return None
    from idp.connections.saml import slo  # pysaml2: only once a SAML connection is used

    options = strategies.unseal(services().box, connection.options)
    name = connection.name
    db.session.commit()  # the local logout is done and kept, whatever the IdP says
    relay = random_token(16)
    try:
        started = federation.call_upstream(
            lambda: slo.logout_request(
                options, sp=federation.sp_of(name), name_id=str(login["name_id"]),
                name_id_format=login.get("name_id_format"),
                session_index=login.get("session_index"), relay_state=relay,
                settings=federation.settings(),
            )
        )  # fmt: skip
    except UpstreamError:
        return None  # idp's own logout stands; the IdP's session is its own affair then
    if started is None:
        return None
    session[_PENDING] = {"relay": relay, "target": target or ""}
    return redirect(started.url, 303)


def _done(target: str | None) -> Response:
    if target:
        return redirect(target, 303)
    resp = make_response(render_template("logout_done.html", logged_out=True))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/samlp/logout/<name>", methods=["GET"])
def single_logout(name: str) -> Response:
    """The SP's SingleLogoutService (HTTP-Redirect binding)."""
    connection = _samlp(name)
    if connection is None:
        return error_page("Not found", "There is no such SAML connection.", 404)
    if "SAMLResponse" in request.args:  # the IdP's answer to idp's LogoutRequest
        pending = session.pop(_PENDING, None) or {}
        same = pending.get("relay") and pending.get("relay") == request.args.get("RelayState")
        return _done(str(pending.get("target") or "") if same else None)
    from idp.connections.saml import slo  # pysaml2: only once a SAML connection is used

    query = {k: v[:16384] for k, v in request.args.items() if len(k) <= 32}
    options = strategies.unseal(services().box, connection.options)
    db.session.commit()
    try:
        asked = federation.call_upstream(
            lambda: slo.parse_logout_request(
                options, sp=federation.sp_of(name), query=query, settings=federation.settings()
            )
        )  # fmt: skip
    except UpstreamError as exc:
        audit.record(
            db.session, events.CONNECTION_LOGIN_FAILURE,
            f"Single logout from {name} refused: {exc.reason}", request_origin(),
            details={"connection": name, "reason": exc.reason, "detail": exc.detail[:500]},
        )  # fmt: skip
        db.session.commit()
        return error_page("Logout failed", "This logout request could not be verified.", 400)
    found = connections.find_identity(db.session, connection, asked.name_id)
    if found is not None:
        ended = flows.end_connection_sessions(db.session, found.user_id, name)
        audit.record(
            db.session, events.LOGOUT, f"Logged out by {name} (single logout)",
            request_origin(), user_id=found.user_id, details={"sessions": ended},
        )  # fmt: skip
    db.session.commit()
    relay = query.get("RelayState")
    try:
        answer = federation.call_upstream(
            lambda: slo.logout_response(
                options, sp=federation.sp_of(name), asked=asked, relay_state=relay,
                settings=federation.settings(),
            )
        )  # fmt: skip
    except UpstreamError:
        answer = None
    return redirect(answer.url, 303) if answer is not None else _done(None)
