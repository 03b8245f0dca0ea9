"""Shared by the console's tests: an admin, and a browser signed in to the console."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from tests.actions.test_lifecycle import idp
from tests.helpers import Browser
from tests.mfa.test_totp import enrol, follow


def console_login(op: Any, user: Any) -> tuple[Browser, str]:
    """Open /admin/ signed out, log in (enrolling TOTP on the way), land on the console.
    Returns the browser (``browser.http`` is a requests session holding the cookies) and the
    console page reached. ``hidden_inputs(page)`` (tests.helpers) gives a form's CSRF token."""
    browser = Browser(op.url)
    start = browser.http.get(f"{op.url}/admin/", allow_redirects=False)
    assert start.status_code == 303 and "/authorize?" in start.headers["Location"]
    assert "acr_values=" in start.headers["Location"]  # the console asks for MFA
    query = start.headers["Location"].split("?", 1)[1]
    params = dict(p.split("=", 1) for p in query.split("&"))
    result = browser.authorize({k: unquote_plus(v) for k, v in params.items()}, user)
    assert result.status == 200, (result.status, result.location)
    enrol(browser, result.page)
    _, page = follow(browser, browser.http.get(f"{op.url}/admin/", allow_redirects=False))
    return browser, page


def admin(op: Any) -> Any:
    """A new user holding the admin role (``idp admins add``)."""
    user = op.factory.gen_user()
    assert idp(op, "admins", "add", "--email", user.email)["user_id"] == user.user_id
    return user
