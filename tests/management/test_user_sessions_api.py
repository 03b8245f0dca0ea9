"""A user's sessions, grants and MFA enrolments through ``/api/v2`` (issue 14); ``blocked``
refusing every login (password, SSO) and token refresh; ``DELETE /users/{id}`` leaving no row
of the user behind (SQLite and PostgreSQL: the foreign keys' cascades, and the token tables
that have none)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select, text

from idp.audit.models import LogEvent
from idp.consent.models import Consent
from idp.core.db import Base
from idp.extensions import db, services
from idp.identity import tokens
from idp.mfa import service as mfa
from idp.mfa.models import Factor
from idp.oauth.models import AccessTokenRecord
from tests import factories
from tests.helpers import Browser, auth_params, pkce, redeem
from tests.management.conftest import ALL, Mgmt, grant
from tests.management.test_clients_api import problem

LOGS = {"log_events", "action_executions"}  # logs keep the user id of what happened


def sign_in(op: Any, client: factories.TestClient, user: factories.TestUser, browser: Browser | None = None,
            scope: str = "openid offline_access") -> tuple[Browser, dict[str, Any]]:  # fmt: skip
    browser = browser or Browser(op.url)
    verifier, challenge = pkce()
    done = browser.authorize(auth_params(client, challenge, scope=scope), user, consent="allow")
    assert done.code, (done.params, done.page[:300])
    resp = redeem(op.url, client, done.code, verifier)
    assert resp.status_code == 200, resp.text
    return browser, dict(resp.json())


def refresh(op: Any, client: factories.TestClient, token: str) -> requests.Response:
    return requests.post(f"{op.url}/oauth/token", auth=client.basic, timeout=30,
                         data={"grant_type": "refresh_token", "refresh_token": token})  # fmt: skip


def test_sessions_list_and_end(mgmt: Mgmt, op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    _b1, first = sign_in(op, client, user, scope="openid")
    _b2, second = sign_in(op, client, user)  # offline_access: outlives its session
    listed = mgmt.call("GET", f"/users/{user.user_id}/sessions")
    assert listed.status_code == 200, listed.text
    sessions = listed.json()["sessions"]
    assert len(sessions) == 2 and {s["user_id"] for s in sessions} == {user.user_id}
    one = sessions[0]
    assert one["clients"] == [{"client_id": client.client_id}]
    assert one["authentication"]["methods"][0]["name"] == "pwd"
    assert one["authenticated_at"].endswith("Z") and one["expires_at"] > one["created_at"]
    assert mgmt.call("GET", f"/sessions/{one['id']}").json() == one
    assert mgmt.call("DELETE", f"/sessions/{one['id']}").status_code == 204
    problem(mgmt.call("GET", f"/sessions/{one['id']}"), 404, "no session")
    problem(mgmt.call("DELETE", f"/sessions/{one['id']}"), 404, "no session")
    assert len(mgmt.call("GET", f"/users/{user.user_id}/sessions").json()["sessions"]) == 1
    assert mgmt.call("DELETE", f"/users/{user.user_id}/sessions").status_code == 204
    assert mgmt.call("GET", f"/users/{user.user_id}/sessions").json() == {"sessions": []}
    assert refresh(op, client, second["refresh_token"]).status_code == 200  # offline_access
    problem(mgmt.call("GET", "/users/usr_nobody/sessions"), 404, "no user")
    with op.app.app_context():
        kinds = db.session.scalars(select(LogEvent.type).where(
            LogEvent.user_id == user.user_id, LogEvent.type == "session.ended")).all()  # fmt: skip
    assert len(kinds) == 2
    assert first["access_token"]


def test_grants_list_and_delete(mgmt: Mgmt, op: Any) -> None:
    partner, user = op.factory.gen_client(first_party=False), op.factory.gen_user()
    _browser, got = sign_in(op, partner, user)
    grants = mgmt.call("GET", "/grants", params={"user_id": user.user_id}).json()
    assert len(grants) == 1
    [mine] = grants
    assert mine["clientID"] == partner.client_id and mine["user_id"] == user.user_id
    assert mine["audience"] == f"{op.url}/userinfo"
    assert set(mine["scope"]) == {"openid", "offline_access"}
    page = mgmt.call("GET", "/grants", params={"client_id": partner.client_id,
                                               "include_totals": "true"}).json()  # fmt: skip
    assert page["total"] == 1 and page["grants"] == [mine]
    assert mgmt.call("GET", "/grants", params={"audience": "https://other.test/"}).json() == []
    assert mgmt.call("DELETE", f"/grants/{mine['id']}").status_code == 204
    assert mgmt.call("GET", "/grants", params={"user_id": user.user_id}).json() == []
    assert refresh(op, partner, got["refresh_token"]).status_code == 400  # revoked with it
    problem(mgmt.call("DELETE", f"/grants/{mine['id']}"), 404, "no grant")
    sign_in(op, partner, user)
    assert mgmt.call("DELETE", "/grants", params={"user_id": user.user_id}).status_code == 204
    assert mgmt.call("GET", "/grants", params={"user_id": user.user_id}).json() == []
    problem(mgmt.call("DELETE", "/grants"), 400, "Missing required property: user_id")


def test_enrollments_list_and_delete(mgmt: Mgmt, op: Any) -> None:
    user = op.factory.gen_user()
    with op.app.app_context():
        svc = services()
        started = mfa.start_totp(db.session, svc.box, user.user_id, user.email, "idp")
        pending = mfa.start_totp(db.session, svc.box, user.user_id, user.email, "idp")
        db.session.get_one(Factor, pending.factor_id).confirmed = False
        mfa.email_factor(db.session, user.user_id)  # derived: never an enrolment
        db.session.commit()
        db.session.get(Factor, started.factor_id)
    listed = mgmt.call("GET", f"/users/{user.user_id}/enrollments")
    assert listed.status_code == 200, listed.text
    [only] = listed.json()  # start_totp replaces a pending one
    assert only["auth_method"] == "authenticator" and only["status"] == "pending"
    with op.app.app_context():
        db.session.get_one(Factor, only["id"]).confirmed = True
        db.session.commit()
    assert mgmt.call("GET", f"/users/{user.user_id}/enrollments").json()[0]["status"] == (
        "confirmed")  # fmt: skip
    assert mgmt.call("DELETE", f"/guardian/enrollments/{only['id']}").status_code == 204
    assert mgmt.call("GET", f"/users/{user.user_id}/enrollments").json() == []
    problem(mgmt.call("DELETE", f"/guardian/enrollments/{only['id']}"), 404, "no enrollment")
    with op.app.app_context():
        email = db.session.scalar(select(Factor.id).where(Factor.user_id == user.user_id))
        assert email is not None
    problem(mgmt.call("DELETE", f"/guardian/enrollments/{email}"), 404, "no enrollment")


def test_a_blocked_user_cannot_sign_in_nor_refresh(mgmt: Mgmt, op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser, got = sign_in(op, client, user)
    resp = mgmt.call("PATCH", f"/users/{user.user_id}", json={"blocked": True})
    assert resp.status_code == 200 and resp.json()["blocked"] is True
    assert mgmt.call("GET", f"/users/{user.user_id}/sessions").json() == {"sessions": []}
    bad = refresh(op, client, got["refresh_token"])
    assert bad.status_code == 400 and bad.json()["error_description"] == "user is blocked"
    _verifier, challenge = pkce()
    sso = browser.authorize(auth_params(client, challenge), None)
    assert sso.login_shown  # the session ended: no SSO
    done = browser.authorize(auth_params(client, challenge), user)
    assert done.params.get("error") == "access_denied" and not done.code
    assert done.params["error_description"] == "user is blocked"
    none = browser.authorize(auth_params(client, challenge, prompt="none"), None)
    assert none.params.get("error") == "login_required"
    resp = mgmt.call("PATCH", f"/users/{user.user_id}", json={"blocked": False})
    assert resp.json()["blocked"] is False
    assert refresh(op, client, got["refresh_token"]).status_code == 200  # kept through a block
    sign_in(op, client, user, browser)
    with op.app.app_context():
        kinds = db.session.scalars(select(LogEvent.type).where(
            LogEvent.user_id == user.user_id).order_by(LogEvent.id)).all()  # fmt: skip
    assert "account.blocked" in kinds and "login.blocked" in kinds
    assert kinds.index("account.unblocked") > kinds.index("login.blocked")


def test_a_block_set_behind_a_live_session_is_refused_at_the_code(op: Any) -> None:
    """A session older than the block (set in the database by hand, say): /authorize treats
    it as none, and a code already issued is refused at the token endpoint."""
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser, _ = sign_in(op, client, user, scope="openid")
    verifier, challenge = pkce()
    done = browser.authorize(auth_params(client, challenge), None)
    assert done.code  # SSO
    with op.app.app_context():
        db.session.execute(text("UPDATE users SET blocked = true WHERE id = :id"),
                           {"id": user.user_id})  # fmt: skip
        db.session.commit()
    assert redeem(op.url, client, done.code, verifier).json()["error"] == "invalid_grant"
    assert browser.authorize(auth_params(client, challenge), None).login_shown


def _rows_of(user_id: str) -> dict[str, int]:
    found = {}
    for table in Base.metadata.sorted_tables:
        if "user_id" in table.c and table.name not in LOGS:
            count = db.session.scalar(
                select(text("count(*)")).select_from(table).where(table.c.user_id == user_id)
            )
            found[table.name] = int(count or 0)
    return found


def test_delete_leaves_no_row_of_the_user(mgmt: Mgmt, op: Any) -> None:
    partner, user = op.factory.gen_client(first_party=False), op.factory.gen_user()
    _browser, got = sign_in(op, partner, user)  # a session, a code, tokens, a consent
    with op.app.app_context():
        svc = services()
        factor = mfa.start_totp(db.session, svc.box, user.user_id, user.email, "idp")
        db.session.get_one(Factor, factor.factor_id).confirmed = True
        mfa.new_recovery_codes(db.session, svc.box, user.user_id)
        mfa.remember_browser(db.session, svc.box, user.user_id, 30)
        tokens.issue(db.session, tokens.VERIFY_EMAIL, user.user_id, 3600)
        db.session.commit()
        before = _rows_of(user.user_id)
        jtis = db.session.scalars(select(AccessTokenRecord.jti).where(
            AccessTokenRecord.user_id == user.user_id)).all()  # fmt: skip
    expected = {"login_sessions", "identities", "mfa_factors", "mfa_recovery_codes",
                "mfa_remembered_browsers", "consents", "refresh_tokens", "authorization_codes",
                "email_tokens", "access_tokens"}  # fmt: skip
    assert {name for name, n in before.items() if n} >= expected, before
    assert mgmt.call("DELETE", f"/users/{user.user_id}").status_code == 204
    with op.app.app_context():
        after = _rows_of(user.user_id)
        assert not {name: n for name, n in after.items() if n}, after
        assert db.session.scalar(select(Consent.id).where(Consent.user_id == user.user_id)) is None
        kept = db.session.scalars(select(AccessTokenRecord).where(AccessTokenRecord.jti.in_(jtis)))
        assert all(r.revoked and r.user_id is None for r in kept)  # a revoked jti stays known
    assert refresh(op, partner, got["refresh_token"]).status_code == 400
    userinfo = requests.get(f"{op.url}/userinfo", timeout=30,
                            headers={"Authorization": f"Bearer {got['access_token']}"})  # fmt: skip
    assert userinfo.status_code == 401


ROUTES = [
    ("GET", "/users/{id}/sessions", "read:sessions"),
    ("DELETE", "/users/{id}/sessions", "delete:sessions"),
    ("GET", "/grants", "read:grants"),
    ("DELETE", "/grants?user_id={id}", "delete:grants"),
    ("GET", "/users/{id}/enrollments", "read:users"),
    ("DELETE", "/guardian/enrollments/fac_none", "delete:guardian_enrollments"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_each_route_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    path = path.format(id=op.factory.gen_user().user_id)
    problem(mgmt.call(method, path, token="", headers={"Authorization": ""}), 401,
            "Missing authentication")  # fmt: skip
    others = " ".join(s for s in ALL if s != scope)
    problem(mgmt.call(method, path, token=mgmt.token(others)), 403,
            f"Insufficient scope, expected any of: {scope}", "insufficient_scope")  # fmt: skip
    narrow = Mgmt(op, grant(op, [scope]), [scope], [])
    assert narrow.call(method, path).status_code in (200, 204, 404)  # the one scope is enough
