"""Attacks on the console and on the admins behind it (a review's findings, each reproduced):
a machine client with ``update:users`` taking an admin's account over, a console cookie kept
after signing out, a stale login reused for the console, a path smuggling a query into an
inner API call, the log naming the admin; and the console's CSP."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.actions.test_lifecycle import idp
from tests.console.helpers import admin, console_login
from tests.helpers import Browser, hidden_inputs
from tests.management.conftest import ALL, Mgmt, grant


def test_a_machine_client_cannot_change_an_admins_credentials(op: Any) -> None:
    boss, user = admin(op), op.factory.gen_user()
    robot = Mgmt(op, grant(op, ["update:users", "delete:users", "delete:guardian_enrollments",
                                "read:users"]), ALL, [])  # fmt: skip
    for body in ({"email": "attacker@evil.test"}, {"password": "a-new-long-password-9"},
                 {"email_verified": False}, {"blocked": True}):  # fmt: skip
        refused = robot.call("PATCH", f"/users/{boss.user_id}", json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"].startswith("The user is an admin")
    assert robot.call("DELETE", f"/users/{boss.user_id}").status_code == 403
    link = {"provider": "database", "user_id": "x", "connection_id": "database"}
    assert robot.call("POST", f"/users/{boss.user_id}/identities", json=link).status_code == 403
    # metadata is no credential; a user who is no admin is managed as before
    meta = robot.call("PATCH", f"/users/{boss.user_id}", json={"user_metadata": {"a": 1}})
    assert meta.status_code == 200
    fine = robot.call("PATCH", f"/users/{user.user_id}", json={"email": "new@example.test"})
    assert fine.status_code == 200

    # the admin's second factor cannot be removed by the robot either
    console_login(op, boss)  # enrols TOTP
    factors = robot.call("GET", f"/users/{boss.user_id}/enrollments").json()
    assert factors
    gone = robot.call("DELETE", f"/guardian/enrollments/{factors[0]['id']}")
    assert gone.status_code == 403
    # without the role, the same operations work again
    idp(op, "admins", "remove", "--email", boss.email)
    assert robot.call("DELETE", f"/guardian/enrollments/{factors[0]['id']}").status_code == 204


def test_signing_out_ends_the_console_and_the_idp_session(op: Any) -> None:
    browser, page = console_login(op, admin(op))
    stolen = dict(browser.http.cookies.get_dict(path="/admin"))
    out = browser.http.post(f"{op.url}/admin/logout", data=hidden_inputs(page))
    assert out.status_code == 200 and "signed out" in out.text
    replay = Browser(op.url)
    for name, value in stolen.items():
        replay.http.cookies.set(name, value, path="/admin")
    assert replay.http.get(f"{op.url}/admin/applications", allow_redirects=False).status_code == 303
    # and the next visit asks for the password again: the idp session ended too
    again = browser.http.get(f"{op.url}/admin/", allow_redirects=True)
    assert 'name="password"' in again.text


def test_an_old_login_is_asked_again_for_the_console(op: Any, clock: Any) -> None:
    user = admin(op)
    browser, _ = console_login(op, user)
    clock.advance(700)  # past CONSOLE_REAUTH_SECONDS, within the idp session's lifetime
    for cookie in list(browser.http.cookies):  # the console cookie idled out meanwhile
        if cookie.path == "/admin":
            browser.http.cookies.clear(cookie.domain, cookie.path, cookie.name)
    again = browser.http.get(f"{op.url}/admin/", allow_redirects=True)
    assert 'name="password"' in again.text and "Overview" not in again.text


def test_a_path_cannot_smuggle_a_query_into_the_inner_api_call(op: Any) -> None:
    browser, _ = console_login(op, admin(op))
    made = op.factory.gen_client()
    page = browser.http.get(f"{op.url}/admin/applications/{made.client_id}").text
    smuggled = browser.http.post(
        f"{op.url}/admin/applications/{made.client_id}%3Ffields=name/delete",
        data={"csrf_token": hidden_inputs(page)["csrf_token"]},
    )
    assert smuggled.status_code == 404
    assert browser.http.get(f"{op.url}/admin/applications/{made.client_id}").status_code == 200


def test_console_writes_name_the_admin_by_id_and_the_pages_post_only_to_the_console(
    op: Any,
) -> None:
    user = admin(op)
    browser, _ = console_login(op, user)
    page = browser.http.get(f"{op.url}/admin/applications/new")
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    browser.http.post(f"{op.url}/admin/applications/new", data={
        **hidden_inputs(page.text), "name": "Logged app", "app_type": "non_interactive"})  # fmt: skip
    from idp.audit.models import LogEvent
    from idp.extensions import db

    with op.app.app_context():
        event = db.session.scalars(select(LogEvent).where(LogEvent.type == "management.write")
                                   .order_by(LogEvent.id.desc())).first()  # fmt: skip
        assert event is not None and event.details["admin_id"] == user.user_id
        assert event.details["admin"] == user.email and event.client_id == "idp-console"


def test_under_an_https_issuer_the_console_cookies_are_secure_and_prefixed(
    tmp_path: Any,
) -> None:
    from tests.conftest import build_app

    app = build_app(tmp_path, 5999, ISSUER="https://idp.example.test")
    start = app.test_client().get("/admin/", base_url="https://idp.example.test")
    assert start.status_code == 303
    cookie = start.headers["Set-Cookie"]
    assert cookie.startswith("__Secure-idp_console_login=") and "Secure" in cookie
