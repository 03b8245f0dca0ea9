"""``/api/v2/users`` and ``/users-by-email`` (issue 14): every route's success, 400 naming the
property (bad email, weak password, bad claim, unknown field, null where nothing can be
removed), 401, 403 naming the scope, 404, 409 on a taken email, 412 on a stale ``If-Match``;
the search through the route (q forms, sort, paging, totals, an injection attempt); metadata
merged one level deep as Auth0 does; each write a ``management.write`` tenant log event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db, services
from idp.identity.models import User
from tests.management.conftest import ALL, Mgmt, grant
from tests.management.test_clients_api import problem

STRONG = "violet-harbour-tractor-91"
BASE = {"connection": "database", "email": "Ada@Example.test", "password": STRONG}


def make(mgmt: Mgmt, **body: Any) -> dict[str, Any]:
    resp = mgmt.call("POST", "/users", json={**BASE, **body})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def stored(op: Any, user_id: str) -> User | None:
    with op.app.app_context():
        row = db.session.get(User, user_id)
        if row is not None:
            db.session.expunge(row)
        return row


def test_create_read_list_delete(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, email="ada@create.test", email_verified=True, name="Ada Lovelace",
                given_name="Ada", picture="https://pics.test/ada.png", locale="en-GB",
                app_metadata={"plan": "pro"}, user_metadata={"theme": "dark"})  # fmt: skip
    uid = made["user_id"]
    assert made["email"] == "ada@create.test" and made["email_verified"] is True
    assert made["name"] == "Ada Lovelace" and made["given_name"] == "Ada"
    assert made["locale"] == "en-GB" and made["blocked"] is False and made["logins_count"] == 0
    assert made["app_metadata"] == {"plan": "pro"} and made["user_metadata"] == {"theme": "dark"}
    assert made["identities"] == [{"connection": "database", "provider": "database",
                                   "user_id": uid, "isSocial": False}]  # fmt: skip
    assert made["created_at"].endswith("Z") and "password" not in json.dumps(made)
    assert "family_name" not in made  # absent claims are left out, never null
    with op.app.app_context():  # the password works, and is idp's argon2id
        row = db.session.get(User, uid)
        assert row is not None and services().passwords.verify(row.password_hash, STRONG)
    got = mgmt.call("GET", f"/users/{uid}")
    assert got.status_code == 200 and got.json() == made and got.headers["ETag"]
    some = mgmt.call("GET", f"/users/{uid}", params={"fields": "email,name"}).json()
    assert some == {"email": "ada@create.test", "name": "Ada Lovelace"}
    by_email = mgmt.call("GET", "/users-by-email", params={"email": " ADA@create.TEST "})
    assert by_email.json() == [made]
    assert mgmt.call("GET", "/users-by-email", params={"email": "no@one.test"}).json() == []
    assert mgmt.call("DELETE", f"/users/{uid}").status_code == 204
    assert stored(op, uid) is None
    for method in ("GET", "PATCH", "DELETE"):
        resp = mgmt.call(method, f"/users/{uid}", json={"name": "x"})
        problem(resp, 404, "no user", "inexistent_resource")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email": "not-an-email"}, "format email: not-an-email' on property email."),
        ({"password": "password1"}, "PasswordStrengthError"),
        ({"password": "short"}, "' on property password."),
        ({"connection": "google-oauth2"}, "on property connection."),
        ({"picture": "javascript:alert(1)"}, "http(s) URL: 'javascript:alert(1)'' on property picture."),
        ({"birthdate": "1815-13-10"}, "on property birthdate."),
        ({"zoneinfo": "Mars/Olympus"}, "on property zoneinfo."),
        ({"phone_number_verified": True}, "needs a phone_number' on property phone_number_verified."),
        ({"address": {"planet": "Earth"}}, "unknown member(s) planet; allowed"),
        ({"name": 7}, "'Expected type string but found type integer' on property name."),
        ({"blocked": "yes"}, "on property blocked."),
        ({"app_metadata": []}, "Expected type object but found type array' on property app_metadata."),
        ({"app_metadata": {"big": "x" * 17000}}, "larger than 16384 bytes' on property app_metadata."),
        ({"username": "ada"}, "'Additional properties not allowed: username'."),
        ({"verify_email": True}, "'Additional properties not allowed: verify_email'."),
    ],
)  # fmt: skip
def test_bad_creations_name_the_property(mgmt: Mgmt, body: dict[str, Any], message: str) -> None:
    problem(mgmt.call("POST", "/users", json={**BASE, **body}), 400, message, "invalid_body")


def test_required_properties(mgmt: Mgmt) -> None:
    for missing in ("connection", "email", "password"):
        body = {k: v for k, v in BASE.items() if k != missing}
        problem(
            mgmt.call("POST", "/users", json=body), 400, f"Missing required property: {missing}"
        )


def test_a_taken_email_is_409(mgmt: Mgmt) -> None:
    first = make(mgmt, email="twin@users.test")
    problem(mgmt.call("POST", "/users", json={**BASE, "email": "TWIN@users.test"}), 409,
            "The user already exists.", "conflict")  # fmt: skip
    other = make(mgmt, email="other@users.test")
    problem(mgmt.call("PATCH", f"/users/{other['user_id']}", json={"email": "twin@users.test"}),
            409, "The user already exists.")  # fmt: skip
    resp = mgmt.call("PATCH", f"/users/{first['user_id']}", json={"email": "Twin@users.test"})
    assert resp.status_code == 200  # its own address is not a collision


def test_update(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, email="upd@users.test", email_verified=True, nickname="ada",
                app_metadata={"plan": "free", "roles": ["a"], "keep": 1},
                user_metadata={"lang": "en"})  # fmt: skip
    path = f"/users/{made['user_id']}"
    resp = mgmt.call("PATCH", path, json={
        "email": "new@users.test", "family_name": "Lovelace", "nickname": None,
        "app_metadata": {"plan": "pro", "roles": ["b"], "keep": None, "tier": {"x": 1}},
        "user_metadata": {"lang": None}, "phone_number": "+14155550100"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    changed = resp.json()
    assert changed["email"] == "new@users.test" and changed["email_verified"] is False
    assert changed["family_name"] == "Lovelace" and "nickname" not in changed
    assert changed["app_metadata"] == {"plan": "pro", "roles": ["b"], "tier": {"x": 1}}
    assert changed["user_metadata"] == {}
    assert changed["phone_number"] == "+14155550100"
    assert changed["phone_number_verified"] is False
    resp = mgmt.call("PATCH", path, json={"app_metadata": {"tier": {"y": 2}},
                                          "email_verified": True})  # fmt: skip
    assert resp.json()["app_metadata"]["tier"] == {"y": 2}  # nested objects replaced whole
    assert resp.json()["email_verified"] is True
    assert mgmt.call("GET", path).json() == resp.json()
    for body, message in [
        ({}, "send at least one of"),
        ({"email": None}, "Expected type string but found type null' on property email."),
        ({"blocked": None}, "on property blocked."),
        ({"app_metadata": None}, "on property app_metadata."),
        ({"email": "nope"}, "on property email."),
        ({"password": "qwerty"}, "on property password."),
        ({"connection": "acme"}, "on property connection."),
        ({"website": "ftp://x.test"}, "on property website."),
        ({"user_id": "usr_other"}, "Additional properties not allowed: user_id"),
    ]:
        problem(mgmt.call("PATCH", path, json=body), 400, message)
    assert mgmt.call("GET", path).json() == resp.json()  # none of those changed anything


def test_if_match_refuses_a_stale_write(mgmt: Mgmt) -> None:
    path = f"/users/{make(mgmt, email='contested@users.test')['user_id']}"
    tag = mgmt.call("GET", path).headers["ETag"]
    assert mgmt.call("GET", path, headers={"If-None-Match": tag}).status_code == 304
    first = mgmt.call("PATCH", path, json={"name": "First"}, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    problem(mgmt.call("PATCH", path, json={"name": "Second"}, headers={"If-Match": tag}), 412,
            "If-Match", "precondition_failed")  # fmt: skip
    problem(mgmt.call("DELETE", path, headers={"If-Match": tag}), 412, "If-Match")
    assert mgmt.call("GET", path).json()["name"] == "First"
    assert mgmt.call("DELETE", path, headers={"If-Match": first.headers["ETag"]}).status_code == 204


def test_search_through_the_route(mgmt: Mgmt) -> None:
    ids = {}
    for i, (plan, verified) in enumerate([("pro", True), ("free", False), ("pro", False)]):
        made = make(mgmt, email=f"search{i}@find.test", name=f"Finder {i}",
                    email_verified=verified, app_metadata={"plan": plan})  # fmt: skip
        ids[i] = made["user_id"]

    def found(**params: Any) -> list[str]:
        resp = mgmt.call("GET", "/users", params={"search_engine": "v3", **params})
        assert resp.status_code == 200, resp.text
        return [u["user_id"] for u in resp.json()]

    assert found(q="email:search*", sort="email:1") == [ids[0], ids[1], ids[2]]
    assert found(q='email:"SEARCH1@find.test"') == [ids[1]]
    assert found(q="email:search* AND app_metadata.plan:pro", sort="email:1") == [ids[0], ids[2]]
    assert found(q="email:search* AND NOT email_verified:true", sort="email:-1") == [
        ids[2], ids[1]]  # fmt: skip
    assert found(q='name:"Finder 1" OR name:"Finder 2"', sort="name:1") == [ids[1], ids[2]]
    assert found(q="identities.connection:database AND name:Finder*", sort="name:1", per_page=1,
                 page=1) == [ids[1]]  # fmt: skip
    page = mgmt.call("GET", "/users", params={"q": "name:Finder*", "include_totals": "true",
                                              "per_page": 2, "sort": "name:1"}).json()  # fmt: skip
    assert page["total"] == 3 and page["length"] == 2 and page["start"] == 0
    assert [u["user_id"] for u in page["users"]] == [ids[0], ids[1]]
    slim = mgmt.call("GET", "/users", params={"q": "name:Finder*", "fields": "user_id,email",
                                              "sort": "email:1"})  # fmt: skip
    assert slim.json()[0] == {"user_id": ids[0], "email": "search0@find.test"}
    # an injection attempt is data: no match, no error, the table still there
    assert found(q="email:\"x' OR '1'='1\"") == []
    assert found(q='name:"a\\" OR 1=1; DROP TABLE users; --"') == []
    assert len(found(q="name:Finder*")) == 3
    for params, message in [
        ({"q": "email:"}, "on property q."),
        ({"q": "(email:a"}, "on property q."),
        ({"q": "password:x"}, "on property q."),
        ({"sort": "password:1"}, "on property sort."),
        ({"per_page": 100, "page": 10}, "only the first 1000 results"),
        ({"per_page": 101}, "on property per_page."),
        ({"search_engine": "v2"}, "on property search_engine."),
        ({"connection": "database"}, "Additional properties not allowed: connection"),
    ]:
        problem(mgmt.call("GET", "/users", params=params), 400, message, "invalid_query_string")
    problem(mgmt.call("GET", "/users-by-email"), 400, "Missing required property: email")


ROUTES = [
    ("GET", "/users", "read:users"),
    ("POST", "/users", "create:users"),
    ("GET", "/users-by-email?email=x@y.test", "read:users"),
    ("GET", "/users/{id}", "read:users"),
    ("PATCH", "/users/{id}", "update:users"),
    ("DELETE", "/users/{id}", "delete:users"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_each_route_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    target = make(mgmt, email=f"scoped-{method.lower()}-{len(path)}@users.test")
    path = path.format(id=target["user_id"])
    body = {**BASE, "email": f"by-{method.lower()}@scope.test"} if method == "POST" else (
        {"name": "Scoped"})  # fmt: skip
    resp = mgmt.call(method, path, token="", json=body, headers={"Authorization": ""})
    problem(resp, 401, "Missing authentication")
    problem(mgmt.call(method, path, token="not.a.jwt", json=body), 401, "", "invalid_token")
    others = " ".join(s for s in ALL if s != scope)
    resp = mgmt.call(method, path, token=mgmt.token(others), json=body)
    problem(resp, 403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope")
    assert f'scope="{scope}"' in resp.headers["WWW-Authenticate"]
    narrow = Mgmt(op, grant(op, [scope]), [scope], [])
    resp = narrow.call(method, path, json=body if method in ("POST", "PATCH") else None)
    assert resp.status_code in (200, 201, 204), resp.text  # the one scope is enough


def test_writes_are_tenant_log_events_without_values(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, email="audited@users.test", app_metadata={"secret_plan": "galaxy"})
    uid = made["user_id"]
    mgmt.call("PATCH", f"/users/{uid}", json={"password": "another-Strong-pass-77"})
    mgmt.call("PATCH", f"/users/{uid}", json={"blocked": True})
    mgmt.call("PATCH", f"/users/{uid}", json={"blocked": False})
    mgmt.call("PATCH", f"/users/{uid}", json={"name": 5})  # refused: no event
    mgmt.call("DELETE", f"/users/{uid}")
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.user_id == uid).order_by(LogEvent.id)
        ).all()
        seen = [(r.type, r.details.get("operation"), r.client_id) for r in rows]
        dumped = json.dumps([(r.description, r.details) for r in rows])
    writes = [s for s in seen if s[0] == "management.write"]
    assert [w[1] for w in writes] == ["update_user"] * 3 + ["delete_user"]
    assert {w[2] for w in writes} == {mgmt.client.client_id}
    assert [s[0] for s in seen if s[0] != "management.write"] == [
        "password.reset", "account.blocked", "account.unblocked"]  # fmt: skip
    assert "another-Strong-pass-77" not in dumped and STRONG not in dumped
    with op.app.app_context():
        created = db.session.scalar(
            select(LogEvent).where(LogEvent.type == "management.write",
                                   LogEvent.details["target"].as_string() == uid)
            .order_by(LogEvent.id)
        )  # fmt: skip
        assert created is not None and created.details["operation"] == "create_user"
        assert created.details["fields"] == ["app_metadata", "connection", "email", "password"]
        assert "galaxy" not in json.dumps(created.details)
