"""OAuth 2.0 Form Post Response Mode (OAuth 2.0 Multiple Response Type Encoding Practices'
``response_mode``; Form Post Response Mode §2): the authorization response, success or error,
delivered as an HTML form that the browser posts to the redirect URI, rather than in its query.

The page runs no inline script (the pages' CSP has ``script-src 'self'``): a static script,
``idp/static/form_post.js``, submits the form, and a visible button does it without JavaScript.
Its CSP allows ``form-action`` to that redirect URI only. The form is used only once the
redirect URI is validated (the callers' rule for every redirect).
"""

from __future__ import annotations

from typing import Any

from flask import make_response, render_template
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from idp.extensions import Services
from idp.oauth.discovery import contributes
from idp.tenant.branding import brand

FORM_POST = "form_post"


def requested(source: MultiDict[str, str] | dict[str, str]) -> str | None:
    """The request's ``response_mode`` when it is the single, supported ``form_post``."""
    if isinstance(source, MultiDict):
        modes = source.getlist("response_mode")
        return FORM_POST if modes == [FORM_POST] else None
    return FORM_POST if source.get("response_mode") == FORM_POST else None


def _csp_source(uri: str) -> str:
    """``uri`` as a CSP source expression: the characters that end a directive or a source
    list (``;``, ``,``, white space) percent-encoded, and the query left out (CSP matches
    paths only)."""
    base = uri.split("?", 1)[0].split("#", 1)[0]
    return "".join(f"%{ord(c):02X}" if c in ";, \t\r\n'" else c for c in base)


def form_post(redirect_uri: str, params: dict[str, str]) -> Response:
    """Form Post Response Mode §2: the parameters as hidden fields posted to ``redirect_uri``."""
    page = render_template("form_post.html", action=redirect_uri, fields=params)
    resp = make_response(page, 200)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    resp.headers["Content-Security-Policy"] = (
        f"{brand().csp}; form-action {_csp_source(redirect_uri)}"
    )
    return resp


@contributes
def _discovery(document: dict[str, Any], svc: Services) -> None:
    """OIDC Discovery §3 ``response_modes_supported``."""
    modes = document.setdefault("response_modes_supported", ["query"])
    if FORM_POST not in modes:
        modes.append(FORM_POST)
