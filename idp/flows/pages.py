"""Pages shown from more than one place: the error page (for people; apps get OAuth errors
at a validated redirect URI instead) and the login form, answered by ``/authorize`` itself and
again by ``/interaction/<uid>/login`` (after a wrong password, or a reload)."""

from __future__ import annotations

from flask import make_response, render_template
from werkzeug.wrappers import Response

from idp.extensions import services


def error_page(title: str, description: str, status: int = 400) -> Response:
    resp = make_response(
        render_template("error.html", title=title, description=description), status
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def expired_page() -> Response:
    return error_page(
        "Login link expired",
        "This login page is no longer valid. Go back to the application and sign in again.",
    )


def login_page(
    uid: str, client_id: str, email: str, error: str | None = None, status: int = 200
) -> Response:
    """The database connection's form for interaction ``uid``; it always posts to
    ``/interaction/<uid>/login`` whatever URL shows it."""
    client = services().clients.get(client_id)
    app_name = client.name if client else "the application"
    page = render_template("login.html", uid=uid, email=email, error=error, app_name=app_name)
    resp = make_response(page, status)
    resp.headers["Cache-Control"] = "no-store"
    return resp
