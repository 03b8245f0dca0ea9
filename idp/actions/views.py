"""``/continue``: where a post-login redirect action sends the user back (Auth0's path)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, redirect, request
from werkzeug.wrappers import Response

from idp.actions import login
from idp.extensions import csrf, db
from idp.flows import cookies
from idp.flows import service as flows
from idp.oauth.authorize import error_page

bp = Blueprint("actions", __name__)


@bp.route("/continue", methods=["GET", "POST"])
@csrf.exempt  # bound to the interaction cookie and an unguessable state instead
def continue_login() -> Response:
    """Resume the paused chain, then let ``/authorize`` issue the code from its outcome."""
    state = (request.values.get("state") or "")[:64]
    row = flows.get_interaction(db.session, state, request.cookies.get(cookies.interaction()))
    if row is None or login.PAUSED not in row.prompt.split() or row.completed_at is not None:
        return error_page(
            "This login cannot be continued",
            "The link is invalid or has expired. Go back to the application and sign in again.",
        )
    session_row = flows.current_session(db.session, request.cookies.get(cookies.session()))
    paused_again = login.resume(row, session_row)
    if paused_again is not None:
        return paused_again
    resp = redirect("/authorize?" + urlencode(row.params), code=303)
    resp.headers["Cache-Control"] = "no-store"
    return resp
