"""OpenID Connect Back-Channel Logout 1.0 §2.5, "when a session ends", for every way an idp
session ends besides those of tests/conformance/test_backchannel_logout.py: the user's password
change (their other sessions), a password reset, an operator's password (API and CLI), a block
(API and console), a deletion (API and CLI), another user signing in in the same browser; an operator ending them all. Each
cause is triggered over HTTP or the CLI; a loopback receiver gets one Logout Token per session
and client, verified against the JWKS with the ended session's ``sid`` and the client's ``sub``.
A session that had already expired gets none (expiry sends no logout), though its
session-bound refresh tokens are revoked with the others, and the same user
signing in again (``prompt=login``) keeps the session, so nothing is sent then either."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import update

from idp.backchannel import delivery
from idp.core.crypto import sha256_hex
from idp.extensions import db
from idp.flows.models import LoginSession
from idp.identity import tokens as email_tokens
from idp.oauth.models import RefreshToken
from tests.actions.test_lifecycle import idp
from tests.conformance._loopback import Site
from tests.conformance._token_helpers import assert_oauth_error
from tests.conformance.test_backchannel_logout import SETTINGS, bcl_client, verify, wait_for
from tests.conftest import LiveServer, build_app, serving
from tests.console.helpers import admin, console_login
from tests.console.test_users import form_of
from tests.helpers import Browser, hidden_inputs, jwt_parts, login_and_redeem
from tests.management.conftest import ALL, Mgmt, grant

NEW_PASSWORD = "violet-harbour-tractor-91"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, **SETTINGS)) as server:
        loop = delivery.for_app(server.app)
        loop.start()
        yield server
        loop.stop()


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site().start()
    yield running
    running.stop()


@pytest.fixture
def mgmt(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ALL), ALL, [])


def refresh(op: Any, client: Any, token: str, **extra: str) -> requests.Response:
    return requests.post(f"{op.url}/oauth/token", auth=client.basic, timeout=30,
                         data={"grant_type": "refresh_token", "refresh_token": token, **extra})  # fmt: skip


def sign_in(op: Any, client: Any, user: Any, browser: Browser | None = None, **extra: Any) -> str:
    """A code flow with ``openid`` in a browser of its own (a session each); the ID token's
    ``sid``."""
    got = login_and_redeem(op.url, client, user, browser=browser or Browser(op.url), **extra)
    return str(jwt_parts(got["id_token"])[1]["sid"])


def logged_out(op: Any, site: Site, client: Any, count: int) -> dict[str, str]:
    """The Logout Tokens received, verified: ``{sid: sub}``, exactly ``count`` of them."""
    posts = wait_for(site, count)
    assert len(posts) == count, [p[0] for p in posts]
    found = {}
    for _path, _headers, form in posts:
        claims = verify(op, form["logout_token"][0], client.client_id)
        found[claims["sid"]] = claims["sub"]
    return found


def test_a_password_change_logs_out_the_other_sessions_only(op: Any, site: Site) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/change"), op.factory.gen_user()
    here = Browser(op.url)
    sign_in(op, client, user, here)
    other = sign_in(op, client, user)
    page = here.http.get(f"{op.url}/account/password")
    done = here.http.post(f"{op.url}/account/password", data=hidden_inputs(page.text) | {
        "current_password": user.password, "new_password": NEW_PASSWORD})  # fmt: skip
    assert done.status_code == 200, done.text[:300]
    assert logged_out(op, site, client, 1) == {other: user.user_id}  # not the session it kept


def test_a_password_reset_logs_out_every_session(op: Any, site: Site) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/reset"), op.factory.gen_user()
    sids = {sign_in(op, client, user) for _ in range(2)}
    with op.app.app_context():  # the link the mail would carry
        link = email_tokens.issue(db.session, email_tokens.RESET_PASSWORD, user.user_id, 600)
        db.session.commit()
    browser = Browser(op.url)
    page = browser.http.get(f"{op.url}/password/reset", params={"token": link})
    done = browser.http.post(f"{op.url}/password/reset",
                             data=hidden_inputs(page.text) | {"password": NEW_PASSWORD})  # fmt: skip
    assert done.status_code == 200 and "Password changed" in done.text
    assert logged_out(op, site, client, 2) == dict.fromkeys(sids, user.user_id)


def test_an_operator_setting_the_password_logs_out(op: Any, site: Site, mgmt: Mgmt) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/set"), op.factory.gen_user()
    sid = sign_in(op, client, user)
    answer = mgmt.call("PATCH", f"/users/{user.user_id}", json={"password": NEW_PASSWORD})
    assert answer.status_code == 200, answer.text
    assert logged_out(op, site, client, 1) == {sid: user.user_id}


def test_blocking_a_user_through_the_api_logs_out(op: Any, site: Site, mgmt: Mgmt) -> None:
    client = bcl_client(op, f"{site.base}/bcl/block", pairwise_sub=True, host="block.test")
    user = op.factory.gen_user()
    got = login_and_redeem(op.url, client, user)
    claims = jwt_parts(got["id_token"])[1]
    answer = mgmt.call("PATCH", f"/users/{user.user_id}", json={"blocked": True})
    assert answer.status_code == 200 and answer.json()["blocked"] is True
    assert logged_out(op, site, client, 1) == {claims["sid"]: claims["sub"]}  # pairwise sub
    assert claims["sub"] != user.user_id


def test_blocking_a_user_in_the_console_logs_out(op: Any, site: Site) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/console"), op.factory.gen_user()
    sid = sign_in(op, client, user)
    console, _ = console_login(op, admin(op))
    base = f"/admin/users/{user.user_id}"
    page = console.http.get(f"{op.url}{base}").text
    done = console.http.post(f"{op.url}{base}/block", data=form_of(page, f"{base}/block"))
    assert "Unblock this user" in done.text
    assert logged_out(op, site, client, 1) == {sid: user.user_id}


def test_deleting_a_user_through_the_api_logs_out(op: Any, site: Site, mgmt: Mgmt) -> None:
    client = bcl_client(op, f"{site.base}/bcl/delete", pairwise_sub=True, host="delete.test")
    user = op.factory.gen_user()
    claims = jwt_parts(login_and_redeem(op.url, client, user)["id_token"])[1]
    assert mgmt.call("DELETE", f"/users/{user.user_id}").status_code == 204
    # the user is gone; the token still names the session and the sub the client knew
    assert logged_out(op, site, client, 1) == {claims["sid"]: claims["sub"]}


def test_the_cli_setting_a_password_logs_out(op: Any, site: Site) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/cli-pw"), op.factory.gen_user()
    sid = sign_in(op, client, user)
    idp(op, "users", "set-password", "--email", user.email, "--password", NEW_PASSWORD)
    assert logged_out(op, site, client, 1) == {sid: user.user_id}


def test_the_cli_deleting_a_user_logs_out(op: Any, site: Site) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/cli-del"), op.factory.gen_user()
    sid = sign_in(op, client, user)
    assert idp(op, "users", "delete", user.user_id) == {"deleted": user.user_id}
    assert logged_out(op, site, client, 1) == {sid: user.user_id}


def test_another_user_signing_in_in_the_browser_ends_its_session(op: Any, site: Site) -> None:
    client = bcl_client(op, f"{site.base}/bcl/replaced")
    first, second, browser = op.factory.gen_user(), op.factory.gen_user(), Browser(op.url)
    sid = sign_in(op, client, first, browser)
    new_sid = sign_in(op, client, second, browser, prompt="login")
    assert new_sid != sid
    assert logged_out(op, site, client, 1) == {sid: first.user_id}


def test_the_same_user_signing_in_again_keeps_the_session(op: Any, site: Site) -> None:
    """``prompt=login`` by the same user: a new cookie, the same ``sid``; nothing is sent, and
    the later logout reaches both clients of the session."""
    one = bcl_client(op, f"{site.base}/bcl/again-one")
    two = bcl_client(op, f"{site.base}/bcl/again-two", host="two.test")
    user, browser = op.factory.gen_user(), Browser(op.url)
    sid = sign_in(op, one, user, browser)
    cookie = browser.http.cookies.get("idp_session")
    assert sign_in(op, two, user, browser, prompt="login") == sid
    assert browser.http.cookies.get("idp_session") not in (None, cookie)  # S-SS-03
    stale = Browser(op.url)
    stale.http.cookies.set("idp_session", cookie)
    assert stale.http.get(f"{op.url}/account/sessions").status_code == 401
    assert wait_for(site, 1, seconds=1.0) == []
    out = browser.http.get(f"{op.url}/oidc/logout", allow_redirects=False)
    page = browser.http.post(f"{op.url}/oidc/logout/confirm",
                             data=hidden_inputs(out.text) | {"decision": "logout"})  # fmt: skip
    assert page.status_code == 200
    posts = wait_for(site, 2)
    assert sorted(p[0] for p in posts) == ["/bcl/again-one", "/bcl/again-two"]
    for path, _headers, form in posts:
        client = one if path.endswith("-one") else two
        assert verify(op, form["logout_token"][0], client.client_id)["sid"] == sid


def test_a_session_that_expired_gets_no_logout(op: Any, site: Site) -> None:
    client, user = bcl_client(op, f"{site.base}/bcl/expired"), op.factory.gen_user()
    old, live_sid = sign_in(op, client, user), sign_in(op, client, user)
    with op.app.app_context():  # its absolute lifetime is over
        db.session.execute(update(LoginSession).where(LoginSession.sid == old).values(expires_at=0))
        db.session.commit()
    idp(op, "users", "set-password", "--email", user.email, "--password", NEW_PASSWORD)
    assert logged_out(op, site, client, 1) == {live_sid: user.user_id}


def test_signing_out_of_the_console_logs_out_the_sso_session(op: Any, site: Site) -> None:
    client, boss = bcl_client(op, f"{site.base}/bcl/console-out"), admin(op)
    console, page = console_login(op, boss)
    sid = sign_in(op, client, boss, console)  # the same browser: single sign-on, one session
    out = console.http.post(f"{op.url}/admin/logout", data=hidden_inputs(page))
    assert out.status_code == 200 and "signed out" in out.text
    assert logged_out(op, site, client, 1) == {sid: boss.user_id}


def _session_bound(op: Any, client: Any, user: Any, browser: Browser) -> tuple[str, str]:
    """A login's ``sid`` and a refresh token bound to its session: one without
    ``offline_access`` in its scope. No grant mints one today (the code and device grants
    issue a refresh token only for ``offline_access``), so the login's token is rewritten
    into one, as a grant without that rule would store it."""
    got = login_and_redeem(op.url, client, user, "openid offline_access", browser=browser)
    with op.app.app_context():
        db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == sha256_hex(got["refresh_token"]))
            .values(scope="openid")
        )
        db.session.commit()
    return str(jwt_parts(got["id_token"])[1]["sid"]), str(got["refresh_token"])


def test_ending_sessions_revokes_the_refresh_tokens_an_expired_one_left(
    op: Any, site: Site, mgmt: Mgmt
) -> None:
    """A session-bound refresh token outlives its session's expiry (its family has its own
    lifetime). An operator ending the user's sessions revokes it too, sending no Logout Token
    for the expired session; an ``offline_access`` one still outlives them (OIDC BCL §2.7)."""
    client, user = bcl_client(op, f"{site.base}/bcl/expired-rt"), op.factory.gen_user()
    old_sid, old_rt = _session_bound(op, client, user, Browser(op.url))
    browser = Browser(op.url)
    live_sid, live_rt = _session_bound(op, client, user, browser)
    offline = login_and_redeem(op.url, client, user, "openid offline_access", browser=browser)
    with op.app.app_context():  # its absolute lifetime is over
        db.session.execute(
            update(LoginSession).where(LoginSession.sid == old_sid).values(expires_at=0)
        )
        db.session.commit()
    still = refresh(op, client, old_rt)  # expiry alone leaves it usable
    assert still.status_code == 200 and still.json()["scope"] == "openid", still.text
    assert mgmt.call("DELETE", f"/users/{user.user_id}/sessions").status_code == 204
    assert logged_out(op, site, client, 1) == {live_sid: user.user_id}  # not the expired one
    for token in (still.json()["refresh_token"], live_rt):
        assert_oauth_error(refresh(op, client, token), 400, "invalid_grant")
    assert refresh(op, client, offline["refresh_token"]).status_code == 200
