"""The console's users pages (``/admin/users``): search through the API's ``q``, create, and a
user's page (profile, metadata, block, MFA reset, sessions, grants, delete), each change then
read back through ``/api/v2``."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from idp.extensions import db, services
from idp.mfa import service as mfa
from tests.console.helpers import admin, console_login
from tests.console.test_logs import audit_pages
from tests.helpers import Browser, hidden_inputs
from tests.management.conftest import ALL, Mgmt, grant
from tests.management.test_user_sessions_api import sign_in


@pytest.fixture
def mgmt(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ALL), ALL, [])


@pytest.fixture
def console(op: Any) -> Browser:
    browser, _ = console_login(op, admin(op))
    return browser


def form_of(page: str, action: str, **fields: str) -> dict[str, str]:
    """The hidden inputs of the form posting to ``action`` (a user's page has many)."""
    start = page.index(f'action="{action}"')
    return {**hidden_inputs(page[start : page.index("</form>", start)]), **fields}


def alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]+)<', page)
    assert found, page[:1000]
    return html.unescape(found.group(1))


def create(op: Any, console: Browser, email: str) -> tuple[str, str]:
    """A user created through the console's form: its id and its page."""
    form = console.http.get(f"{op.url}/admin/users/new").text
    made = console.http.post(f"{op.url}/admin/users/new", data={
        **hidden_inputs(form), "email": email, "password": "correct horse battery 9",
        "email_verified": "on"})  # fmt: skip
    assert made.status_code == 200 and "The user was created." in made.text, made.text[:500]
    user_id = re.search(r"User ID <code>([^<]+)</code>", made.text).group(1)  # type: ignore[union-attr]
    return user_id, made.text


def test_a_user_created_is_found_by_email_and_by_app_metadata(
    op: Any, console: Browser, mgmt: Mgmt
) -> None:
    user_id, page = create(op, console, "search-me@example.test")
    assert mgmt.call("GET", f"/users/{user_id}").json()["email_verified"] is True
    base = f"/admin/users/{user_id}"
    saved = console.http.post(f"{op.url}{base}/metadata", data=form_of(page, f"{base}/metadata",
        app_metadata='{"plan": "gold"}', user_metadata='{"theme": "dark"}'))  # fmt: skip
    assert "Saved." in saved.text
    held = mgmt.call("GET", f"/users/{user_id}").json()
    assert held["app_metadata"] == {"plan": "gold"} and held["user_metadata"] == {"theme": "dark"}

    by_email = console.http.get(f"{op.url}/admin/users", params={"q": "email:search-me*"}).text
    assert "search-me@example.test" in by_email and "1-1 of 1 user" in by_email
    by_plan = console.http.get(f"{op.url}/admin/users", params={"q": "app_metadata.plan:gold"})
    assert "search-me@example.test" in by_plan.text
    none = console.http.get(f"{op.url}/admin/users", params={"q": "app_metadata.plan:silver"})
    assert "search-me@example.test" not in none.text and "No user found." in none.text
    bad = console.http.get(f"{op.url}/admin/users", params={"q": "email:(oops"})
    assert bad.status_code == 400 and "Query validation error" in alert(bad.text)
    assert 'value="email:(oops"' in bad.text  # the query kept

    # a key removed from the textarea is removed from the user (sent as null)
    page = console.http.get(f"{op.url}{base}").text
    console.http.post(f"{op.url}{base}/metadata", data=form_of(page, f"{base}/metadata",
        app_metadata="{}", user_metadata='{"theme": "dark"}'))  # fmt: skip
    assert mgmt.call("GET", f"/users/{user_id}").json()["app_metadata"] == {}


def test_paging_through_the_results(op: Any, console: Browser) -> None:
    for n in range(3):
        op.factory.gen_user(email=f"pager-{n}@example.test")
    first = console.http.get(f"{op.url}/admin/users", params={
        "q": "email:pager-*", "per_page": "20", "sort": "email:1"}).text  # fmt: skip
    assert first.index("pager-0@") < first.index("pager-1@") < first.index("pager-2@")
    assert "Next page" not in first
    down = console.http.get(f"{op.url}/admin/users", params={"q": "email:pager-*",
                                                             "sort": "email:-1"}).text  # fmt: skip
    assert down.index("pager-2@") < down.index("pager-0@")


def test_block_and_unblock(op: Any, console: Browser, mgmt: Mgmt) -> None:
    user = op.factory.gen_user()
    base = f"/admin/users/{user.user_id}"
    page = console.http.get(f"{op.url}{base}").text
    blocked = console.http.post(f"{op.url}{base}/block", data=form_of(page, f"{base}/block"))
    assert 'id="blocked"' in blocked.text and "Unblock this user" in blocked.text
    assert mgmt.call("GET", f"/users/{user.user_id}").json()["blocked"] is True
    unblocked = console.http.post(f"{op.url}{base}/block",
                                  data=form_of(blocked.text, f"{base}/block"))  # fmt: skip
    assert "The user is unblocked." in unblocked.text and 'id="blocked"' not in unblocked.text
    assert mgmt.call("GET", f"/users/{user.user_id}").json()["blocked"] is False


def test_reset_mfa_revoke_a_session_and_a_grant(op: Any, console: Browser, mgmt: Mgmt) -> None:
    user = op.factory.gen_user()
    with op.app.app_context():
        mfa.start_totp(db.session, services().box, user.user_id, user.email, "idp")
        db.session.commit()
    partner = op.factory.gen_client(first_party=False)
    sign_in(op, partner, user, scope="openid")
    sign_in(op, partner, user, scope="openid")
    base = f"/admin/users/{user.user_id}"
    page = console.http.get(f"{op.url}{base}").text
    assert "authenticator" in page and partner.client_id in page

    reset = console.http.post(f"{op.url}{base}/enrollments/delete",
                              data=form_of(page, f"{base}/enrollments/delete"))  # fmt: skip
    assert "The MFA enrolment was removed." in reset.text and "No MFA enrolment." in reset.text
    assert mgmt.call("GET", f"/users/{user.user_id}/enrollments").json() == []

    sessions = mgmt.call("GET", f"/users/{user.user_id}/sessions").json()["sessions"]
    assert len(sessions) == 2
    one = console.http.post(f"{op.url}{base}/sessions/delete",
                            data=form_of(reset.text, f"{base}/sessions/delete"))  # fmt: skip
    assert "The session was revoked." in one.text
    left = mgmt.call("GET", f"/users/{user.user_id}/sessions").json()["sessions"]
    assert len(left) == 1 and left[0]["id"] in {s["id"] for s in sessions}
    every = console.http.post(f"{op.url}{base}/sessions/delete", data={
        "csrf_token": hidden_inputs(one.text)["csrf_token"]})  # fmt: skip
    assert "Every session of the user was revoked." in every.text
    assert "No open session." in every.text
    assert mgmt.call("GET", f"/users/{user.user_id}/sessions").json() == {"sessions": []}

    revoked = console.http.post(f"{op.url}{base}/grants/delete",
                                data=form_of(every.text, f"{base}/grants/delete"))  # fmt: skip
    assert "The grant was revoked." in revoked.text and "No grant." in revoked.text
    assert mgmt.call("GET", "/grants", params={"user_id": user.user_id}).json() == []


def test_metadata_and_profile_errors_are_shown_on_the_form(
    op: Any, console: Browser, mgmt: Mgmt
) -> None:
    user = op.factory.gen_user()
    base = f"/admin/users/{user.user_id}"
    page = console.http.get(f"{op.url}{base}").text
    broken = console.http.post(f"{op.url}{base}/metadata", data=form_of(page, f"{base}/metadata",
        app_metadata='{"plan": gold}', user_metadata="{}"))  # fmt: skip
    assert broken.status_code == 400
    assert "app_metadata is not valid JSON" in alert(broken.text)
    assert "{&#34;plan&#34;: gold}" in broken.text  # the text kept
    not_object = console.http.post(f"{op.url}{base}/metadata", data=form_of(
        page, f"{base}/metadata", app_metadata="[1, 2]", user_metadata="{}"))  # fmt: skip
    assert not_object.status_code == 400 and "app_metadata" in alert(not_object.text)
    bad_claim = console.http.post(f"{op.url}{base}/profile", data=form_of(
        page, f"{base}/profile", email=user.email, website="not a url"))  # fmt: skip
    assert bad_claim.status_code == 400 and "website" in alert(bad_claim.text)
    assert 'value="not a url"' in bad_claim.text
    assert mgmt.call("GET", f"/users/{user.user_id}").json()["app_metadata"] == {}


def test_a_stale_etag_is_refused_and_the_user_deleted(
    op: Any, console: Browser, mgmt: Mgmt
) -> None:
    user = op.factory.gen_user()
    base = f"/admin/users/{user.user_id}"
    page = console.http.get(f"{op.url}{base}").text
    saved = console.http.post(f"{op.url}{base}/profile", data=form_of(
        page, f"{base}/profile", email=user.email, email_verified="on", name="Ada"))  # fmt: skip
    assert "Saved." in saved.text and 'value="Ada"' in saved.text
    assert mgmt.call("GET", f"/users/{user.user_id}").json()["name"] == "Ada"
    stale = console.http.post(f"{op.url}{base}/profile", data=form_of(
        page, f"{base}/profile", email=user.email, email_verified="on", name="Lost"))  # fmt: skip
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text
    stale_block = console.http.post(f"{op.url}{base}/block", data=form_of(page, f"{base}/block"))
    assert stale_block.status_code == 412
    assert mgmt.call("GET", f"/users/{user.user_id}").json()["blocked"] is False

    deleted = console.http.post(f"{op.url}{base}/delete",
                                data=form_of(saved.text, f"{base}/delete"))  # fmt: skip
    assert deleted.status_code == 200 and user.email not in deleted.text
    assert mgmt.call("GET", f"/users/{user.user_id}").status_code == 404
    assert console.http.get(f"{op.url}{base}").status_code == 404


def test_an_identity_is_unlinked(op: Any, console: Browser, mgmt: Mgmt) -> None:
    from tests.management.test_connections_api import OIDC, make

    make(mgmt, {**OIDC, "name": "okta-console"})
    user = op.factory.gen_user()
    linked = mgmt.call("POST", f"/users/{user.user_id}/identities", json={
        "connection": "okta-console", "user_id": "sub/with slash%2F"})  # fmt: skip
    assert linked.status_code == 201, linked.text
    base = f"/admin/users/{user.user_id}"
    page = console.http.get(f"{op.url}{base}").text
    assert "okta-console" in page and page.count(f'action="{base}/identities/unlink"') == 1
    unlinked = console.http.post(f"{op.url}{base}/identities/unlink",
                                 data=form_of(page, f"{base}/identities/unlink"))  # fmt: skip
    assert "The identity was unlinked." in unlinked.text and "okta-console" not in unlinked.text
    left = mgmt.call("GET", f"/users/{user.user_id}/identities").json()
    assert [i["connection"] for i in left] == ["database"]
    own = console.http.post(f"{op.url}{base}/identities/unlink", data={
        **form_of(page, f"{base}/identities/unlink"), "connection": "database",
        "upstream_user_id": user.user_id})  # fmt: skip
    assert own.status_code == 409 and "Not unlinked" in own.text  # the API's refusal


@pytest.mark.browser
def test_the_users_pages_pass_the_accessibility_audit(op: Any, console: Browser) -> None:
    user = op.factory.gen_user()
    with op.app.app_context():
        mfa.start_totp(db.session, services().box, user.user_id, user.email, "idp")
        db.session.commit()
    sign_in(op, op.factory.gen_client(first_party=False), user, scope="openid")
    base = f"/admin/users/{user.user_id}"
    page = console.http.get(f"{op.url}{base}").text
    console.http.post(f"{op.url}{base}/metadata", data=form_of(page, f"{base}/metadata",
        app_metadata='{"plan": "gold", "roles": ["a", "b"]}', user_metadata="{}"))  # fmt: skip
    audit_pages(op, console, ["/admin/users", "/admin/users?q=email:(", "/admin/users/new",
                              base])  # fmt: skip
