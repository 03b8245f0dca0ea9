"""``/api/v2/connections`` and ``/api/v2/users/{id}/identities`` (issue 12, "Operators"): each
kind of connection created, presets filled in and overridden, secrets sealed at rest and never
answered, PATCH merging and validating again, ``enabled_clients`` round trip, the delete rules,
linking and unlinking, each route's scope, and bad bodies answered as 400 problems."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, select

from idp.connections import service as connections
from idp.connections import strategies
from idp.connections.models import Connection, Identity
from idp.extensions import db
from tests.connections.test_connections_cli import stored
from tests.management.conftest import ALL, Mgmt, grant

SECRET = "api-upstream-secret-7Hq2LmV9"  # looked for in every answer
OIDC = {"name": "okta", "strategy": "oidc", "display_name": "Okta",
        "options": {"issuer": "https://okta.test", "client_id": "idp", "client_secret": SECRET,
                    "scopes": ["openid", "email"]}}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_secret_answered(mgmt: Mgmt) -> Iterator[None]:
    yield
    assert not [seen for seen in mgmt.seen if SECRET in seen or strategies.SEALED in seen]


def make(mgmt: Mgmt, body: dict[str, Any]) -> dict[str, Any]:
    resp = mgmt.call("POST", "/connections", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def problem(resp: Any, status: int, text: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["statusCode"] == status and text in body["message"], body
    assert resp.headers["Cache-Control"] == "no-store"


def test_create_oidc_read_and_list(mgmt: Mgmt, op: Any) -> None:
    client = op.factory.gen_client()
    made = make(mgmt, {**OIDC, "enabled_clients": [client.client_id], "position": 4})
    assert made["id"].startswith("con_") and made["name"] == "okta"
    assert made["strategy"] == "oidc" and made["display_name"] == "Okta"
    assert made["options"] == {"issuer": "https://okta.test", "client_id": "idp",
                               "scopes": ["openid", "email"]}  # secret omitted  # fmt: skip
    assert made["enabled_clients"] == [client.client_id] and made["position"] == 4
    assert made["callback_url"] == f"{op.url}/login/callback/okta"  # to register upstream
    raw, opened = stored(op, "okta")
    assert SECRET not in raw and opened["client_secret"] == SECRET  # sealed, and opens
    assert mgmt.call("GET", f"/connections/{made['id']}").json() == made
    assert mgmt.call("GET", "/connections/okta").json() == made  # by name too
    listed = mgmt.call("GET", "/connections").json()
    assert listed[0]["name"] == "database" and made in listed
    only = mgmt.call("GET", "/connections", params={"strategy": "oidc", "name": "okta"}).json()
    assert only == [made]
    totals = mgmt.call("GET", "/connections", params={"include_totals": "true", "per_page": 1})
    assert totals.json()["total"] == len(listed) and len(totals.json()["connections"]) == 1
    problem(mgmt.call("GET", "/connections/con_nope"), 404, "no connection")
    problem(mgmt.call("GET", "/connections", params={"per_page": "x"}), 400, "per_page")


def test_create_oauth2_and_a_preset(mgmt: Mgmt) -> None:
    oauth2 = make(mgmt, {"name": "forge-api", "strategy": "oauth2", "options": {
        "client_id": "c", "client_secret": SECRET,
        "authorization_url": "https://forge.test/a", "token_url": "https://forge.test/t",
        "profile_url": "https://forge.test/me", "map": {"user_id": "id", "email": "mail"}}})  # fmt: skip
    assert oauth2["options"]["map"] == {"user_id": "id", "email": "mail"}
    github = make(mgmt, {"name": "gh-api", "strategy": "github", "options": {
        "client_id": "c", "client_secret": SECRET,
        "profile_url": "http://127.0.0.1:9/user"}})  # fmt: skip
    preset = strategies.PRESETS["github"][1]
    assert github["options"]["profile_url"] == "http://127.0.0.1:9/user"  # the override wins
    assert github["options"]["token_url"] == preset["token_url"]  # the preset fills the rest
    assert github["options"]["map"] == preset["map"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "bad1", "strategy": "ldap"}, 400, "strategy must be one of"),
        ({"name": "Bad_Name", "strategy": "google", "options": {"client_id": "c"}}, 400,
         "a connection name is"),
        ({"name": "bad2", "strategy": "google", "options": {"client_id": "c", "tenant": "x"}},
         400, "unknown option(s) for google: tenant"),
        ({"name": "bad3", "strategy": "oidc", "options": {"client_id": "c"}}, 400,
         "needs option(s): issuer"),
        ({"name": "bad4", "strategy": "google", "options": {"client_id": "c",
          "client_secret": {strategies.SEALED: "x"}}}, 400, "client_secret must be"),
        ({"name": "bad5", "strategy": "google", "options": ["client_id"]}, 400,
         "'Expected type object but found type array' on property options"),
        ({"name": "bad6", "strategy": "google", "options": {"client_id": "c"},
          "enabled_clients": ["no-such-client"]}, 400, "no client(s): no-such-client"),
        ({"name": "bad7", "strategy": "google", "is_domain_connection": True}, 400,
         "'Additional properties not allowed: is_domain_connection'"),
        ({"strategy": "google"}, 400, "'Missing required property: name'"),
        ({"name": "database", "strategy": "database"}, 409, "already exists"),
    ],
)  # fmt: skip
def test_bad_creations(mgmt: Mgmt, body: dict[str, Any], status: int, message: str) -> None:
    problem(mgmt.call("POST", "/connections", json=body), status, message)
    names = {c["name"] for c in mgmt.call("GET", "/connections").json()}
    assert not {n for n in names if n.startswith("bad") or n == "Bad_Name"}


@pytest.mark.parametrize(
    ("data", "headers", "status", "message"),
    [
        ("{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        ("[1, 2]", {"Content-Type": "application/json"}, 400, "must be a JSON object"),
        ("name=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    ],
)
def test_bad_bodies_are_problems_not_500s(
    mgmt: Mgmt, op: Any, data: str, headers: dict[str, str], status: int, message: str
) -> None:
    user = op.factory.gen_user()
    for method, path in [("POST", "/connections"), ("PATCH", "/connections/database"),
                         ("POST", f"/users/{user.user_id}/identities")]:  # fmt: skip
        problem(mgmt.call(method, path, data=data, headers=headers), status, message)


def test_patch_merges_validates_and_sets_enabled_clients(mgmt: Mgmt, op: Any) -> None:
    app1, app2 = op.factory.gen_client(), op.factory.gen_client()
    made = make(mgmt, {**OIDC, "name": "patchy"})
    path = f"/connections/{made['id']}"
    raw_before, _ = stored(op, "patchy")
    resp = mgmt.call("PATCH", path, json={"options": {"client_id": "two", "scopes": None},
                                          "display_name": None,
                                          "enabled_clients": [app1.client_id, app2.client_id]})  # fmt: skip
    assert resp.status_code == 200, resp.text
    changed = resp.json()
    assert changed["options"] == {"issuer": "https://okta.test", "client_id": "two"}
    assert changed["display_name"] is None
    assert changed["enabled_clients"] == sorted([app1.client_id, app2.client_id])
    raw, opened = stored(op, "patchy")
    assert opened["client_secret"] == SECRET and SECRET not in raw  # kept, still sealed
    assert json.loads(raw)["client_secret"] == json.loads(raw_before)["client_secret"]
    assert mgmt.call("GET", path).json() == changed  # enabled_clients round trip
    resp = mgmt.call("PATCH", path, json={"options": {"client_secret": "new-value-123456"},
                                          "enabled_clients": [app2.client_id]})  # fmt: skip
    assert resp.json()["enabled_clients"] == [app2.client_id]
    raw, opened = stored(op, "patchy")
    assert opened["client_secret"] == "new-value-123456" and "new-value-123456" not in raw
    for body, message in [
        ({"name": "renamed"}, "name cannot be changed"),
        ({"strategy": "oauth2"}, "strategy cannot be changed"),
        ({"options": {"response_mode": "fragment"}}, "response_mode must be"),
        ({"options": {"issuer": None}}, "needs option(s): issuer"),
        ({"options": {"token_url": "https://x.test"}}, "unknown option(s) for oidc: token_url"),
        ({"position": -1}, "'Value -1 is less than minimum 0' on property position"),
        ({"enabled_clients": "all"}, "found type string' on property enabled_clients"),
        ({}, "send at least one of"),
    ]:
        problem(mgmt.call("PATCH", path, json=body), 400, message)
    assert mgmt.call("GET", path).json() == resp.json()  # none of those changed anything
    emptied = mgmt.call("PATCH", path, json={"enabled_clients": []}).json()
    assert emptied["enabled_clients"] == [] and emptied["options"] == resp.json()["options"]
    problem(mgmt.call("PATCH", "/connections/nope", json={"position": 1}), 404, "no connection")


def social_user(op: Any, *links: tuple[str, str]) -> str:
    """A user holding identities at ``links`` (connection, upstream id) and none at database."""
    user = op.factory.gen_user()
    with op.app.app_context():
        for name, upstream in links:
            connections.link_identity(db.session, user.user_id, name, upstream)
        db.session.execute(delete(Identity).where(
            Identity.user_id == user.user_id, Identity.connection_id == "con_database"))  # fmt: skip
        db.session.commit()
    return user.user_id


def test_delete_rules(mgmt: Mgmt, op: Any) -> None:
    problem(mgmt.call("DELETE", "/connections/con_database?force=true"), 409, "cannot be deleted")
    made = make(mgmt, {**OIDC, "name": "goner"})
    path = f"/connections/{made['id']}"
    kept = op.factory.gen_user()
    mgmt.call("POST", f"/users/{kept.user_id}/identities",
              json={"connection": "goner", "user_id": "g|1"})  # fmt: skip
    problem(mgmt.call("DELETE", path), 409, "1 identity at 'goner'")
    stranded = social_user(op, ("goner", "g|2"))
    resp = mgmt.call("DELETE", path + "?force=true")
    problem(resp, 409, "no identity")
    assert stranded in resp.json()["message"] and kept.user_id not in resp.json()["message"]
    problem(mgmt.call("DELETE", path + "?force=maybe"), 400, "on property force")
    _drop(op, stranded)  # the user who held only that identity goes first
    assert mgmt.call("DELETE", path + "?force=true").status_code == 204
    assert mgmt.call("GET", f"/users/{kept.user_id}/identities").json() == [
        {"connection": "database", "provider": "database", "user_id": kept.user_id,
         "isSocial": False}
    ]  # fmt: skip
    with op.app.app_context():
        assert db.session.scalar(select(Connection).where(Connection.name == "goner")) is None
    problem(mgmt.call("DELETE", path), 404, "no connection")


def _drop(op: Any, user_id: str) -> None:
    from idp.identity import service

    with op.app.app_context():
        service.delete_user(db.session, user_id)
        db.session.commit()


def test_link_list_and_unlink(mgmt: Mgmt, op: Any) -> None:
    make(mgmt, {**OIDC, "name": "ent-a"})
    make(mgmt, {**OIDC, "name": "ent-b"})
    user, other = op.factory.gen_user(), op.factory.gen_user()
    base = f"/users/{user.user_id}/identities"
    resp = mgmt.call("POST", base, json={"connection": "ent-a", "user_id": "sub/with/slashes",
                                         "provider": "oidc", "profileData": {"name": "A"}})  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert resp.json() == [
        {"connection": "database", "provider": "database", "user_id": user.user_id,
         "isSocial": False},
        {"connection": "ent-a", "provider": "oidc", "user_id": "sub/with/slashes",
         "isSocial": True, "profileData": {"name": "A"}},
    ]  # fmt: skip
    assert mgmt.call("GET", base).json() == resp.json()
    made_b = mgmt.call("GET", "/connections/ent-b").json()
    linked = mgmt.call("POST", base, json={"connection_id": made_b["id"], "user_id": 42})
    assert linked.json()[-1]["user_id"] == "42"
    taken = {"connection": "ent-a", "user_id": "sub/with/slashes"}
    problem(mgmt.call("POST", f"/users/{other.user_id}/identities", json=taken), 409,
            "already linked to another user")  # fmt: skip
    for body, status, message in [
        ({"connection": "ent-a", "user_id": "x", "provider": "github"}, 400, "'provider'"),
        ({"connection": "ent-a", "user_id": "x", "link_with": "jwt"}, 400, "link_with"),
        ({"connection": "ent-a"}, 400, "Missing required property: user_id"),
        ({"user_id": "x"}, 400, "'connection' or 'connection_id'"),
        (
            {"connection": "ent-a", "user_id": "x", "profileData": []},
            400,
            "on property profileData",
        ),
        ({"connection": "nope", "user_id": "x"}, 404, "no connection"),
    ]:
        problem(mgmt.call("POST", base, json=body), status, message)
    problem(mgmt.call("POST", "/users/usr_nobody/identities", json=taken), 404, "no user")
    problem(mgmt.call("GET", "/users/usr_nobody/identities"), 404, "no user")
    # the same upstream id at two connections of one strategy: the provider is ambiguous
    mgmt.call("POST", base, json={"connection": "ent-b", "user_id": "sub/with/slashes"})
    problem(mgmt.call("DELETE", f"{base}/oidc/sub/with/slashes"), 409, "name the connection")
    left = mgmt.call("DELETE", f"{base}/ent-b/sub/with/slashes")
    assert left.status_code == 200, left.text
    assert [(i["connection"], i["user_id"]) for i in left.json()] == [
        ("database", user.user_id), ("ent-a", "sub/with/slashes"), ("ent-b", "42")
    ]  # fmt: skip
    left = mgmt.call("DELETE", f"{base}/oidc/sub/with/slashes")  # Auth0's {provider}/{user_id}
    assert [i["connection"] for i in left.json()] == ["database", "ent-b"]
    problem(mgmt.call("DELETE", f"{base}/oidc/sub/with/slashes"), 404, "has no identity")
    problem(mgmt.call("DELETE", f"{base}/database/{user.user_id}"), 409, "primary")
    social = social_user(op, ("ent-a", "s-1"))
    problem(mgmt.call("DELETE", f"/users/{social}/identities/oidc/s-1"), 409, "last identity")
    assert mgmt.call("GET", f"/users/{social}/identities").json()[0]["user_id"] == "s-1"


ROUTES = [
    ("GET", "/connections", "read:connections"),
    ("GET", "/connections/database", "read:connections"),
    ("POST", "/connections", "create:connections"),
    ("PATCH", "/connections/database", "update:connections"),
    ("DELETE", "/connections/database", "delete:connections"),
    ("GET", "/users/{user}/identities", "read:users"),
    ("POST", "/users/{user}/identities", "update:users"),
    ("DELETE", "/users/{user}/identities/database/{user}", "update:users"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_each_route_needs_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    user = op.factory.gen_user()
    path = path.format(user=user.user_id)
    others = " ".join(s for s in ALL if s != scope)
    resp = mgmt.call(method, path, token=mgmt.token(others), json={"position": 1})
    problem(resp, 403, f"expected any of: {scope}")
    assert f'scope="{scope}"' in resp.headers["WWW-Authenticate"]
    assert mgmt.call("GET", "/connections/database").json()["position"] == 0  # unchanged
    narrow = Mgmt(op, grant(op, [scope]), [scope], [])
    resp = narrow.call(method, path, json={"display_name": "x"} if method == "PATCH" else {})
    assert resp.status_code not in (401, 403), resp.text  # the one scope is enough
    if method == "PATCH":
        mgmt.call("PATCH", path, json={"display_name": None})


def test_if_match_and_the_tenant_log_of_writes(mgmt: Mgmt, op: Any) -> None:
    """On the registry like every resource: a stale If-Match is 412, each write a
    management.write event naming the calling client, with no option value in it."""
    made = make(mgmt, {**OIDC, "name": "logged"})
    path = f"/connections/{made['id']}"
    tag = mgmt.call("GET", path).headers["ETag"]
    fresh = mgmt.call("PATCH", path, json={"options": {"client_secret": SECRET + "2"}},
                      headers={"If-Match": tag})  # fmt: skip
    assert fresh.status_code == 200 and fresh.headers["ETag"] == tag  # secrets are not shown
    moved = mgmt.call("PATCH", path, json={"position": 9}, headers={"If-Match": tag})
    assert moved.status_code == 200 and moved.headers["ETag"] != tag
    problem(mgmt.call("PATCH", path, json={"position": 1}, headers={"If-Match": tag}), 412,
            "If-Match")  # fmt: skip
    problem(mgmt.call("DELETE", path, headers={"If-Match": tag}), 412, "If-Match")
    assert mgmt.call("DELETE", path, headers={"If-Match": moved.headers["ETag"]}).status_code == 204
    with op.app.app_context():
        from idp.audit.models import LogEvent

        rows = [
            (e.client_id, e.description, e.details)
            for e in db.session.scalars(select(LogEvent).where(LogEvent.type == "management.write"))
            if e.details.get("target") == made["id"]
        ]
    assert [r[2]["operation"] for r in rows] == [
        "create_connection", "update_connection", "update_connection", "delete_connection"
    ]  # fmt: skip
    assert {r[0] for r in rows} == {mgmt.client.client_id}
    assert rows[1][2]["fields"] == ["options"] and SECRET not in json.dumps(rows)
