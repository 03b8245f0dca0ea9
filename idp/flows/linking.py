"""Account linking during a login, safe by default: an upstream login whose verified email
is an existing user's is *offered* a link, and the identity is added only once the person
proves that account (its password), in the same transaction as the new session. Declining
ends the login (``access_denied``); nothing is created silently.

The pending upstream profile waits in the interaction, sealed (it may hold the upstream's
tokens), never in the browser.
"""

from __future__ import annotations

from flask import make_response, render_template, request
from werkzeug.wrappers import Response

from idp.connections import service as connections
from idp.connections.models import Connection
from idp.extensions import db, services
from idp.flows import connection as via_connection
from idp.flows import federation, pipeline
from idp.flows.pages import expired_page
from idp.flows.step import Step, fail
from idp.flows.views import bp, check_password, request_origin, throttled_page
from idp.i18n import N_
from idp.identity.models import User

WRONG_PASSWORD = N_("Wrong password.")


def _page(step: Step, user: User, connection: Connection, error: str | None = None,
          status: int = 200) -> Response:  # fmt: skip
    assert step.row is not None
    page = render_template(
        "link_account.html", uid=step.row.uid, email=user.email, error=error,
        provider=connection.display_name or connection.name,
        has_password=bool(user.password_hash),
        proofs=[(c.name, c.display_name or c.name) for c in proofs(step, user, connection)],
    )  # fmt: skip
    resp = make_response(page, status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/interaction/<uid>/link", methods=["GET", "POST"])
def link_account(uid: str) -> Response:
    step, page = pipeline.open_step(uid)
    if step is None:
        assert page is not None
        return page
    pending = step.state.link
    if step.state.prompt != via_connection.LINK_PROMPT or pending is None:
        return pipeline.resend(step) or expired_page()
    user = db.session.get(User, str(pending.get("user_id")))
    connection = federation.social_connection(step.client, str(pending.get("connection")))
    if user is None or connection is None:
        return fail(step, "access_denied", "This sign-in can no longer be linked.")
    if request.method == "GET":
        return _page(step, user, connection)
    if request.form.get("action") != "link":
        return fail(step, "access_denied", "The user declined to link the accounts.")
    origin = request_origin()
    gate = services().shields.gate(user.email, origin.ip or "")
    if gate.ip_retry_after:
        return throttled_page(origin, step.request.client_id, gate.ip_retry_after)
    password = request.form.get("password", "")[:1024]
    proved = check_password(user.email, password, origin, step.request.client_id, gate)
    if proved is None or proved.id != user.id:
        return _page(step, user, connection, WRONG_PASSWORD, 401)
    amr = [via_connection.FEDERATED, "pwd"]
    return via_connection.link_pending(step, proved, "after the password was proved", amr)


def proofs(step: Step, user: User, pending: Connection) -> list[Connection]:
    """The account's own upstream connections enabled for this app: signing in through one
    proves the account as well as its password does (the way for users without one)."""
    found = []
    for _identity, owned in connections.identities_of(db.session, user.id):
        usable = federation.social_connection(step.client, owned.name)
        if usable is not None and usable.name != pending.name:
            found.append(usable)
    return found


@bp.route("/interaction/<uid>/link/connection/<name>", methods=["POST"])
def prove_with_connection(uid: str, name: str) -> Response:
    step, page = pipeline.open_step(uid)
    if step is None:
        assert page is not None
        return page
    pending = step.state.link
    if step.state.prompt != via_connection.LINK_PROMPT or pending is None:
        return pipeline.resend(step) or expired_page()
    user = db.session.get(User, str(pending.get("user_id")))
    waiting = via_connection.pending_link(step)
    if user is None or waiting is None:
        return fail(step, "access_denied", "This sign-in can no longer be linked.")
    chosen = next((c for c in proofs(step, user, waiting[0]) if c.name == name[:63]), None)
    if chosen is None:
        return _page(step, user, waiting[0], N_("That sign-in method is not available."), 400)
    return federation.go_upstream(step, chosen, via_connection.LINK_PROMPT)
