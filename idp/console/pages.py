"""What every console page uses: the blueprint, ``page`` and ``refused`` (rendered, never
cached), ``signed_in`` (an admin's page), ``api`` (one management API operation in-process,
as the signed-in admin), and the ETag round trip of edit forms (``if_match``,
``stale_or_refused``).

The console at ``/admin`` is server-rendered pages over the management API (each operation an
in-process ``/api/v2`` request, ``idp.console.internal``). Every page needs a signed-in admin
(``idp.console.auth``); every form is a POST carrying the CSRF token; an edit form carries the
ETag it was rendered from, sent as ``If-Match``, so that two admins cannot overwrite each other
unseen (412: a page says so). Each area of the console is a module of this package
registering its routes on ``bp`` (``idp.console.routes`` imports them all).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, make_response, render_template, request
from werkzeug.wrappers import Response

from idp.console import auth
from idp.console.internal import Answer, dispatch

bp = Blueprint("console", __name__, url_prefix="/admin")


@bp.after_request
def _forms_post_here(resp: Response) -> Response:
    """The console's forms post to the console: ``form-action 'self'`` (CSP Level 2; it does
    not fall back to default-src), so injected markup could not send a form elsewhere."""
    csp = resp.headers.get("Content-Security-Policy") or g.get("idp_csp")
    csp = csp or current_app.extensions["idp.csp"]
    if "form-action" not in csp:
        resp.headers["Content-Security-Policy"] = f"{csp}; form-action 'self'"
    return resp


def page(template: str, status: int = 200, **context: Any) -> Response:
    resp = make_response(render_template(template, admin=g.get("console_admin"), **context),
                         status)  # fmt: skip
    resp.headers["Cache-Control"] = "no-store"
    return resp


def refused(status: int, title: str, text: str) -> Response:
    return page("console/refused.html", status, title=title, text=text)


def signed_in(view: Callable[..., Response]) -> Callable[..., Response]:
    """An admin's page: without a console session, a GET starts the sign-in (and comes back),
    a POST is refused (its form may be stale)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        admin = auth.current_admin()
        if admin is None:
            if request.method == "GET":
                return auth.begin_login(request.path)
            return refused(401, "Signed out", "Your console session ended. Sign in again.")
        g.console_admin = admin
        resp = view(*args, **kwargs)
        auth.refresh(resp, admin)
        return resp

    return wrapped


def api(method: str, path: str, **kwargs: Any) -> Answer:
    return dispatch(method, "/api/v2" + path, principal=g.console_admin.principal, **kwargs)


def if_match() -> dict[str, str]:
    """The ETag the form was rendered from, as ``If-Match`` (none: the write is not checked)."""
    etag = request.form.get("etag", "")
    return {"If-Match": etag} if etag else {}


def stale_or_refused(answer: Answer) -> Response | None:
    """A page for what a form cannot show: a stale ETag, a missing item."""
    if answer.status == 412:
        return refused(412, "Changed meanwhile",
                       "Someone changed this item after you opened it. Nothing was saved: "
                       "open it again to see the current values.")  # fmt: skip
    if answer.status == 404:
        return refused(404, "Not found", answer.message)
    return None
