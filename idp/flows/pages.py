"""Pages shown from more than one place: the error page (for people; apps get OAuth errors
at a validated redirect URI instead) and the login form, answered by ``/authorize`` itself and
again by ``/interaction/<uid>/login`` (after a wrong password, or a reload)."""

from __future__ import annotations

from typing import Any

from flask import make_response, render_template
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.connections import strategies
from idp.connections.models import Connection
from idp.connections.strategies import DATABASE
from idp.extensions import db, services
from idp.i18n import gettext
from idp.tenant.branding import brand


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


def login_buttons(client: Any) -> list[dict[str, Any]]:
    """A "Continue with ..." button per upstream connection enabled for ``client``, in the
    operator's order (one read, only for an application that has such connections)."""
    names = [n for n in getattr(client, "connections", ()) if n != DATABASE]
    if not names:
        return []
    rows = db.session.execute(
        select(Connection.name, Connection.display_name, Connection.options)
        .where(Connection.name.in_(names))
        .order_by(Connection.position, Connection.name)
    )
    return [
        {
            "name": name, "label": display or name,
            "icon": _icon((options or {}).get("icon_url")),
            "domains": bool((options or {}).get("domains")),
        }
        for name, display, options in rows
    ]  # fmt: skip


def _icon(url: object) -> str:
    """An icon shown only from https (the page's CSP names its host)."""
    if isinstance(url, str) and strategies.plain_https_host(url):
        return url
    return ""


def login_page(
    uid: str, client_id: str, email: str, error: str | None = None, status: int = 200,
    buttons: list[dict[str, Any]] | None = None,
) -> Response:  # fmt: skip
    """The login page for interaction ``uid``: the database connection's form (it always
    posts to ``/interaction/<uid>/login`` whatever URL shows it) when the application has it
    enabled, and a button per upstream connection (``buttons``: :func:`login_buttons`, read
    by the caller in its transaction; else read here)."""
    client = services().clients.get(client_id)
    app_name = client.name if client else gettext("the application")
    if buttons is None:
        buttons = login_buttons(client)
    # an address routed to a company's IdP needs no password here (Home Realm Discovery)
    home_realms = any(b["domains"] for b in buttons)
    page = render_template(
        "login.html", uid=uid, email=email, error=error, app_name=app_name,
        buttons=buttons, database=DATABASE in getattr(client, "connections", ()),
        home_realms=home_realms,
    )  # fmt: skip
    resp = make_response(page, status)
    resp.headers["Cache-Control"] = "no-store"
    icon_hosts = sorted({strategies.plain_https_host(b["icon"]) for b in buttons if b["icon"]})
    if icon_hosts:  # the strict CSP, with images from the buttons' icon hosts only
        csp = brand().csp  # with the tenant's logo host
        extra = " ".join(f"https://{host}" for host in icon_hosts)
        resp.headers["Content-Security-Policy"] = csp.replace("img-src ", f"img-src {extra} ", 1)
    return resp
