"""The admin console (``/admin``): admins sign in through idp's own login with a second
factor; the console's writes go through the management API (ETags, validation, the tenant
log with the admin's name); CSRF, stale ETags, non-admins and ended sessions are refused."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_plus

from sqlalchemy import select

from tests.actions.test_lifecycle import idp, idp_fails
from tests.console.helpers import admin, console_login
from tests.helpers import Browser, hidden_inputs


def sent(page: str) -> dict[str, Any]:
    """What a browser sends of a form's hidden inputs and checkboxes as rendered."""
    fields: dict[str, Any] = dict(hidden_inputs(page))
    for tag in re.findall(r'<input type="checkbox"[^>]*>', page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and " checked" in tag:
            fields.setdefault(name.group(1), []).append(value.group(1) if value else "on")
    return fields


def test_admins_are_added_listed_and_removed_from_the_cli(op: Any) -> None:
    user = admin(op)
    assert user.email in [a["email"] for a in idp(op, "admins", "list")]
    idp(op, "admins", "add", "--email", user.email)  # again: nothing changes
    assert idp(op, "admins", "remove", "--email", user.email)["email"] == user.email
    assert user.email not in [a["email"] for a in idp(op, "admins", "list")]
    assert "is not an admin" in idp_fails(op, "admins", "remove", "--email", user.email)
    assert "no user has the email" in idp_fails(op, "admins", "add", "--email", "x@nowhere.test")


def test_an_admin_signs_in_with_a_second_factor_and_a_user_is_refused(op: Any) -> None:
    browser, page = console_login(op, admin(op))
    assert "Overview" in page and "Sign out" in page
    # the console's session cookie is scoped to /admin and HttpOnly
    cookie = next(c for c in browser.http.cookies if c.name == "idp_console")
    assert cookie.path == "/admin" and cookie.has_nonstandard_attr("HttpOnly")

    _, refused = console_login(op, op.factory.gen_user())  # enrols TOTP, but is no admin
    assert "Not an admin" in refused and "Overview" not in refused


def test_a_post_without_a_console_session_or_csrf_token_is_refused(op: Any) -> None:
    signed_out = Browser(op.url).http.post(f"{op.url}/admin/applications/new", data={})
    assert signed_out.status_code in (400, 401)  # CSRF first, or the session
    browser, _ = console_login(op, admin(op))
    forged = browser.http.post(f"{op.url}/admin/applications/new", data={"name": "Evil"})
    assert forged.status_code == 400
    listed = browser.http.get(f"{op.url}/admin/applications").text
    assert "Evil" not in listed


def test_applications_are_created_edited_rotated_and_deleted_through_the_api(op: Any) -> None:
    user = admin(op)
    browser, _ = console_login(op, user)
    form = browser.http.get(f"{op.url}/admin/applications/new").text
    made = browser.http.post(f"{op.url}/admin/applications/new", data={
        **hidden_inputs(form), "name": "Console app", "app_type": "regular_web",
        "callbacks": "https://app.test/cb\r\n", "is_first_party": "on",
        "token_endpoint_auth_method": "client_secret_post",
    })  # fmt: skip
    assert made.status_code == 200, made.text[:500]
    client_id = re.search(r'id="client-id">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    secret = re.search(r'id="client-secret">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    with op.app.app_context():
        from idp.extensions import services

        stored = services().clients.get(client_id)
        assert stored and stored.redirect_uris == ("https://app.test/cb",)
        assert stored.check_client_secret(secret)
    page = browser.http.get(f"{op.url}/admin/applications/{client_id}").text
    assert secret not in page  # shown once

    # a refused write shows the API's reason on the form, nothing saved
    bad = browser.http.post(f"{op.url}/admin/applications/{client_id}", data={
        **sent(page), "name": "Console app", "callbacks": "http://app.test/cb"})  # fmt: skip
    alert = re.search(r'role="alert"[^>]*>([^<]+)<', bad.text)
    assert bad.status_code == 400 and alert, bad.text[:300]
    assert "loopback only" in alert.group(1), alert.group(1)

    saved = browser.http.post(f"{op.url}/admin/applications/{client_id}", data={
        **sent(page), "name": "Renamed", "callbacks": "https://app.test/cb2"})  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text and "Renamed" in saved.text
    # the first page's ETag is stale now: a second admin's form cannot overwrite unseen
    stale = browser.http.post(f"{op.url}/admin/applications/{client_id}", data={
        **sent(page), "name": "Lost", "callbacks": ""})  # fmt: skip
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text
    assert "Renamed" in browser.http.get(f"{op.url}/admin/applications").text

    fresh = browser.http.get(f"{op.url}/admin/applications/{client_id}").text
    rotated = browser.http.post(f"{op.url}/admin/applications/{client_id}/rotate-secret",
                                data={"csrf_token": hidden_inputs(fresh)["csrf_token"]})  # fmt: skip
    new_secret = re.search(r'id="client-secret">([^<]+)<', rotated.text).group(1)  # type: ignore[union-attr]
    assert new_secret != secret

    from idp.audit.models import LogEvent
    from idp.extensions import db

    with op.app.app_context():
        writes = db.session.scalars(select(LogEvent).where(LogEvent.type == "management.write")
                                    .order_by(LogEvent.id)).all()  # fmt: skip
        mine = [e for e in writes if (e.details or {}).get("target") == client_id]
        assert {e.details["admin"] for e in mine} == {user.email}
        assert {e.client_id for e in mine} == {"idp-console"}

    fresh = browser.http.get(f"{op.url}/admin/applications/{client_id}").text
    deleted = browser.http.post(f"{op.url}/admin/applications/{client_id}/delete",
                                data=hidden_inputs(fresh))  # fmt: skip
    assert deleted.status_code == 200 and client_id not in deleted.text
    assert browser.http.get(f"{op.url}/admin/applications/{client_id}").status_code == 404


def test_the_console_session_ends_when_idle_when_the_role_goes_or_the_login_ends(
    op: Any, clock: Any
) -> None:
    user = admin(op)
    browser, _ = console_login(op, user)
    assert browser.http.get(f"{op.url}/admin/", allow_redirects=False).status_code == 200
    clock.advance(901)  # CONSOLE_IDLE_SECONDS
    assert browser.http.get(f"{op.url}/admin/", allow_redirects=False).status_code == 303
    clock.reset()

    browser, _ = console_login(op, user := admin(op))
    idp(op, "admins", "remove", "--email", user.email)
    assert browser.http.get(f"{op.url}/admin/", allow_redirects=False).status_code == 303


def test_no_header_or_cookie_from_outside_passes_for_the_console_at_the_api(op: Any) -> None:
    http = Browser(op.url).http
    for headers in ({"idp.console.admin": "x"}, {"Idp-Console-Admin": "admin@example.test"}):
        resp = http.get(f"{op.url}/api/v2/clients", headers=headers)
        assert resp.status_code == 401
    # a console cookie not signed by this instance is no session
    http.cookies.set("idp_console", "W10.x.y", path="/admin")
    assert http.get(f"{op.url}/admin/", allow_redirects=False).status_code == 303


def test_an_admin_who_cannot_have_a_second_factor_is_refused_with_a_page(op: Any) -> None:
    from idp.extensions import db
    from idp.tenant.settings import tenant

    kinds = ("TOTP", "PHONE", "EMAIL", "PUSH", "WEBAUTHN", "RECOVERY")
    with op.app.app_context():
        tenant().write(db.session, {f"MFA_FACTOR_{k}": False for k in kinds})
        db.session.commit()
        tenant().invalidate()
    try:
        user = admin(op)
        browser = Browser(op.url)
        start = browser.http.get(f"{op.url}/admin/", allow_redirects=False)
        query = dict(p.split("=", 1) for p in start.headers["Location"].split("?", 1)[1].split("&"))
        result = browser.authorize({k: unquote_plus(v) for k, v in query.items()}, user)
        assert result.status == 200, (result.status, result.location)
        # the login stops at its MFA step with the reason: no code reaches the console
        assert "No second step can be set up here" in result.page
        assert "Overview" not in result.page and "Sign out" not in result.page
        assert browser.http.get(f"{op.url}/admin/", allow_redirects=False).status_code == 303
    finally:
        with op.app.app_context():
            tenant().write(db.session, {f"MFA_FACTOR_{k}": True for k in kinds})
            db.session.commit()
            tenant().invalidate()


def test_an_applications_grant_types_mfa_policy_and_connections(op: Any) -> None:
    from tests.connections.social import SocialBrowser
    from tests.management.conftest import ALL, Mgmt, grant

    held = Mgmt(op, grant(op, ALL), ALL, [])
    social = held.call("POST", "/connections", json={
        "name": "gitlab-apps", "strategy": "gitlab", "display_name": "GitLab Apps",
        "options": {"client_id": "idp", "client_secret": "s3cret-gitlab"}}).json()  # fmt: skip
    database = held.call("GET", "/connections/database").json()
    browser, _ = console_login(op, admin(op))
    http, url = browser.http, op.url
    form = http.get(f"{url}/admin/applications/new").text
    assert 'name="mfa_policy"' in form and 'name="grant_types"' not in form
    made = http.post(f"{url}/admin/applications/new", data={
        **hidden_inputs(form), "name": "Policy app", "app_type": "regular_web",
        "callbacks": "http://127.0.0.1:9/cb", "mfa_policy": "always"})  # fmt: skip
    client_id = re.search(r'id="client-id">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    app = held.call("GET", f"/clients/{client_id}").json()
    assert app["mfa_policy"] == "always"
    assert client_id in held.call("GET", "/connections/database").json()["enabled_clients"]

    page = http.get(f"{url}/admin/applications/{client_id}").text
    assert 'value="always" selected' in page
    assert re.search(r'value="refresh_token" checked', page)
    assert f'value="{social["id"]}" >' in page and f'value="{database["id"]}" checked' in page
    # no grant type: the API's refusal, the connections checked kept
    refused = http.post(f"{url}/admin/applications/{client_id}", data={
        **hidden_inputs(page), "name": "Policy app", "callbacks": "http://127.0.0.1:9/cb",
        "mfa_policy": "adaptive", "connections": [social["id"]]})  # fmt: skip
    assert refused.status_code == 400 and "grant_types" in refused.text
    assert f'value="{social["id"]}" checked' in refused.text
    assert f'value="{database["id"]}" >' in refused.text
    assert held.call("GET", f"/clients/{client_id}").json() == app

    saved = http.post(f"{url}/admin/applications/{client_id}", data={
        **hidden_inputs(page), "name": "Policy app", "callbacks": "http://127.0.0.1:9/cb",
        "mfa_policy": "adaptive", "grant_types": ["authorization_code"],
        "connections": [social["id"]]})  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text, saved.text[:500]
    now = held.call("GET", f"/clients/{client_id}").json()
    assert now["mfa_policy"] == "adaptive" and now["grant_types"] == ["authorization_code"]
    assert client_id in held.call("GET", f"/connections/{social['id']}").json()["enabled_clients"]
    assert client_id not in held.call("GET", "/connections/database").json()["enabled_clients"]
    client = SimpleNamespace(client_id=client_id, redirect_uri="http://127.0.0.1:9/cb")
    login = SocialBrowser(op, client).authorize().page  # type: ignore[arg-type]
    assert "Continue with GitLab Apps" in login and 'name="password"' not in login

    # back to the tenant's policy, the database again
    saved = http.post(f"{url}/admin/applications/{client_id}", data={
        **sent(saved.text), "name": "Policy app", "callbacks": "http://127.0.0.1:9/cb",
        "mfa_policy": "", "connections": [database["id"]]})  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text
    assert held.call("GET", f"/clients/{client_id}").json()["mfa_policy"] is None
    assert client_id in held.call("GET", "/connections/database").json()["enabled_clients"]
    assert client_id not in held.call("GET", f"/connections/{social['id']}").json()[
        "enabled_clients"]  # fmt: skip

    machine = held.call("POST", "/clients", json={"name": "Policy m2m",
                                                  "app_type": "non_interactive"}).json()  # fmt: skip
    page = http.get(f"{url}/admin/applications/{machine['client_id']}").text
    assert 'value="client_credentials" checked' in page
    assert 'name="mfa_policy"' not in page and 'name="connections"' not in page
