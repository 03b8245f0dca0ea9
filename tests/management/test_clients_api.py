"""``/api/v2/clients`` (issue 14): every route's success, its 400s naming the property and
the reason, 401, 403 naming the scope, 404, 409 on a taken name, 412 on a stale ``If-Match``;
``client_secret`` shown on create and rotate only; each write a ``management.write`` tenant log
event naming the calling client and carrying no secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db, services
from idp.management.service import management_audience
from idp.oauth.models import Client
from tests.management.conftest import ALL, Mgmt, grant

WEB = {"name": "shop", "app_type": "regular_web", "callbacks": ["https://shop.test/cb"],
       "allowed_logout_urls": ["https://shop.test/bye"],
       "initiate_login_uri": "https://shop.test/login"}  # fmt: skip


def problem(resp: Any, status: int, text: str, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = dict(resp.json())
    assert body["statusCode"] == status and text in body["message"], body
    if code:
        assert body["errorCode"] == code, body
    assert resp.headers["Cache-Control"] == "no-store"
    return body


def make(mgmt: Mgmt, body: dict[str, Any]) -> dict[str, Any]:
    resp = mgmt.call("POST", "/clients", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def stored(op: Any, client_id: str) -> Client:
    with op.app.app_context():
        row = db.session.get(Client, client_id)
        assert row is not None
        db.session.expunge(row)
        return row


def test_create_read_list_a_web_app(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, WEB)
    secret = made.pop("client_secret")
    assert len(secret) >= 32
    assert made == {**WEB, "client_id": made["client_id"], "is_first_party": True,
                    "grant_types": ["authorization_code", "refresh_token"],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "subject_type": "public", "sector_identifier_uri": None,
                    "backchannel_logout_uri": None, "backchannel_logout_session_required": False,
                    "jwks": None, "jwks_uri": None, "token_endpoint_auth_signing_alg": None,
                    "require_pushed_authorization_requests": False,
                    "mfa_policy": None, "dpop_bound_access_tokens": False,
                    "id_token_signed_response_alg": None}  # fmt: skip
    row = stored(op, made["client_id"])
    assert row.redirect_uris == WEB["callbacks"] and secret not in str(row.secret_digest)
    with op.app.app_context():
        assert services().box.verify(secret, str(row.secret_digest))
    got = mgmt.call("GET", f"/clients/{made['client_id']}")
    assert got.json() == made and "client_secret" not in got.json()  # never again
    assert got.headers["ETag"].startswith('"')
    listed = mgmt.call("GET", "/clients").json()
    assert made in listed and not [c for c in listed if "client_secret" in c]
    page = mgmt.call("GET", "/clients", params={"include_totals": "true", "per_page": 1,
                                                "page": 1}).json()  # fmt: skip
    assert page["start"] == 1 and page["limit"] == 1 and page["length"] == 1
    assert page["total"] == len(listed) and page["clients"] == [listed[1]]
    some = mgmt.call("GET", f"/clients/{made['client_id']}",
                     params={"fields": "name,app_type", "include_fields": "true"})  # fmt: skip
    assert some.json() == {"name": "shop", "app_type": "regular_web"}
    mine = mgmt.call("GET", "/clients", params={"app_type": "regular_web,spa"}).json()
    assert made in mine and {c["app_type"] for c in mine} <= {"regular_web", "spa"}


def test_public_and_machine_clients(mgmt: Mgmt, op: Any) -> None:
    spa = make(mgmt, {"name": "spa-app", "app_type": "spa", "callbacks": ["https://spa.test/"]})
    assert "client_secret" not in spa and spa["token_endpoint_auth_method"] == "none"
    m2m = make(mgmt, {"name": "robot", "app_type": "non_interactive",
                      "token_endpoint_auth_method": "client_secret_post"})  # fmt: skip
    assert m2m["app_type"] == "non_interactive" and m2m["grant_types"] == ["client_credentials"]
    assert m2m["token_endpoint_auth_method"] == "client_secret_post" and m2m["client_secret"]
    assert stored(op, m2m["client_id"]).app_type == "m2m"  # Auth0's non_interactive is idp's m2m
    only = make(mgmt, {"name": "no-refresh", "grant_types": ["authorization_code"]})
    assert only["grant_types"] == ["authorization_code"]
    for body, message in [
        ({"name": "bad", "app_type": "spa", "token_endpoint_auth_method": "client_secret_basic"},
         "authenticate with 'none'"),
        ({"name": "bad", "app_type": "non_interactive", "callbacks": ["https://x.test/"]},
         "no redirect URIs"),
        ({"name": "bad", "app_type": "spa", "grant_types": ["client_credentials"]},
         "grant_types of a spa app"),
    ]:  # fmt: skip
        problem(mgmt.call("POST", "/clients", json=body), 400, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": 7}, "'Expected type string but found type integer' on property name."),
        ({}, "'Missing required property: name'."),
        ({"name": ""}, "'String is too short (0 chars), minimum 1' on property name."),
        ({"name": "<b>"}, "on property name."),
        ({"name": "x", "app_type": "m2m"}, "'No enum match for: 'm2m'"),
        ({"name": "x", "callbacks": "https://a.test"}, "found type string' on property callbacks."),
        ({"name": "x", "callbacks": [1]}, "found type integer' on property callbacks[0]."),
        ({"name": "x", "callbacks": ["javascript:alert(1)"]}, "scheme not allowed"),
        ({"name": "x", "callbacks": ["http://evil.test/cb"]}, "loopback only"),
        ({"name": "x", "is_first_party": "yes"}, "boolean but found type string' on property is_first_party"),
        ({"name": "x", "grant_types": ["password"]}, "on property grant_types[0]."),
        ({"name": "x", "logo_uri": "https://x.test/l.png"}, "'Additional properties not allowed: logo_uri'."),
        ({"name": "x", "initiate_login_uri": "ftp://app.test/"}, "initiate_login_uri must be"),
        ({"name": "x", "mfa_policy": "sometimes"}, "'always' or 'adaptive'' on property mfa_policy."),
        ({"name": "x", "app_type": "non_interactive", "mfa_policy": "always"}, "no mfa_policy"),
    ],
)  # fmt: skip
def test_bad_creations_name_the_property(mgmt: Mgmt, body: dict[str, Any], message: str) -> None:
    body_ = problem(mgmt.call("POST", "/clients", json=body), 400, message, "invalid_body")
    assert body_["error"] == "Bad Request"
    assert body_["message"].startswith("Payload validation error: ") or "validation" not in message


def test_bad_query_strings(mgmt: Mgmt) -> None:
    resp = mgmt.call("GET", "/clients", params={"per_page": 101})
    problem(resp, 400, "Query validation error: 'Value 101 is greater than maximum 100' on "
                       "property per_page.", "invalid_query_string")  # fmt: skip
    problem(mgmt.call("GET", "/clients", params={"page": "x"}), 400, "on property page.")
    problem(mgmt.call("GET", "/clients", params={"sort": "name:1"}), 400,
            "Additional properties not allowed: sort")  # fmt: skip


def test_update(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, {**WEB, "name": "shop-to-update"})
    path = f"/clients/{made['client_id']}"
    resp = mgmt.call("PATCH", path, json={
        "name": "shop2", "callbacks": ["https://shop.test/cb2", "http://127.0.0.1/cb"],
        "allowed_logout_urls": [], "initiate_login_uri": None, "is_first_party": False,
        "grant_types": ["authorization_code"], "token_endpoint_auth_method": "client_secret_post",
        "app_type": "regular_web"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    changed = resp.json()
    assert changed["name"] == "shop2" and changed["callbacks"][1] == "http://127.0.0.1/cb"
    assert changed["allowed_logout_urls"] == [] and changed["initiate_login_uri"] is None
    assert changed["is_first_party"] is False and changed["grant_types"] == ["authorization_code"]
    assert changed["token_endpoint_auth_method"] == "client_secret_post"
    assert "client_secret" not in changed and resp.headers["ETag"]
    assert mgmt.call("GET", path).json() == changed
    row = stored(op, made["client_id"])
    assert (row.name, row.first_party, row.initiate_login_uri) == ("shop2", False, None)
    for body, message in [
        ({}, "send at least one of"),
        ({"app_type": "spa"}, "app_type is fixed at creation"),
        ({"name": None, "callbacks": ["ftp://x.test/"]}, "scheme not allowed"),
        ({"client_id": "other"}, "Additional properties not allowed: client_id"),
        ({"grant_types": []}, "on property grant_types"),
        ({"callbacks": ["https://x.test/"] * 101}, "Array is too long (101), maximum 100"),
    ]:
        problem(mgmt.call("PATCH", path, json=body), 400, message)
    assert mgmt.call("GET", path).json() == changed  # none of those changed anything


def test_mfa_policy_is_set_per_application_and_null_follows_the_tenant(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, {**WEB, "name": "shop-mfa", "mfa_policy": "always"})
    assert made["mfa_policy"] == "always" and stored(op, made["client_id"]).mfa_policy == "always"
    path = f"/clients/{made['client_id']}"
    resp = mgmt.call("PATCH", path, json={"mfa_policy": "adaptive"})
    assert resp.status_code == 200 and resp.json()["mfa_policy"] == "adaptive"
    assert mgmt.call("PATCH", path, json={"name": "shop-mfa2"}).json()["mfa_policy"] == "adaptive"
    resp = mgmt.call("PATCH", path, json={"mfa_policy": None})
    assert resp.status_code == 200 and resp.json()["mfa_policy"] is None
    assert stored(op, made["client_id"]).mfa_policy is None  # idp.mfa.flow: MFA_POLICY
    problem(mgmt.call("PATCH", path, json={"mfa_policy": "sometimes"}), 400,
            "on property mfa_policy.")  # fmt: skip


def test_duplicate_names_are_409(mgmt: Mgmt) -> None:
    first = make(mgmt, {"name": "twin"})
    problem(mgmt.call("POST", "/clients", json={"name": "twin"}), 409, "already exists", "conflict")
    other = make(mgmt, {"name": "sibling"})
    problem(mgmt.call("PATCH", f"/clients/{other['client_id']}", json={"name": "twin"}), 409,
            "a client named 'twin' already exists")  # fmt: skip
    resp = mgmt.call("PATCH", f"/clients/{first['client_id']}", json={"name": "twin"})
    assert resp.status_code == 200  # its own name is not a collision


def test_if_match_refuses_a_stale_write(mgmt: Mgmt) -> None:
    made = make(mgmt, {"name": "contested"})
    path = f"/clients/{made['client_id']}"
    tag = mgmt.call("GET", path).headers["ETag"]
    assert mgmt.call("GET", path, headers={"If-None-Match": tag}).status_code == 304
    first = mgmt.call("PATCH", path, json={"name": "first"}, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    second = mgmt.call("PATCH", path, json={"name": "second"}, headers={"If-Match": tag})
    problem(second, 412, "If-Match", "precondition_failed")
    assert second.json()["error"] == "Precondition Failed"
    assert mgmt.call("GET", path).json()["name"] == "first"
    assert mgmt.call("GET", path).headers["ETag"] == first.headers["ETag"]
    problem(mgmt.call("DELETE", path, headers={"If-Match": tag}), 412, "If-Match")
    problem(mgmt.call("DELETE", path, headers={"If-Match": 'W/' + first.headers["ETag"]}), 412,
            "If-Match")  # fmt: skip
    resp = mgmt.call("PATCH", path, json={"is_first_party": False}, headers={"If-Match": "*"})
    assert resp.status_code == 200
    assert mgmt.call("DELETE", path, headers={"If-Match": resp.headers["ETag"]}).status_code == 204


def test_rotate_secret_and_delete(mgmt: Mgmt, op: Any) -> None:
    robot = make(mgmt, {"name": "rotating", "app_type": "non_interactive"})
    op.factory.gen_client_grant(robot["client_id"], management_audience(op.url), ["read:clients"])

    def token(secret: str) -> int:
        return requests.post(f"{op.url}/oauth/token", timeout=30, auth=(robot["client_id"], secret),
                             data={"grant_type": "client_credentials",
                                   "audience": management_audience(op.url)}).status_code  # fmt: skip

    old = robot["client_secret"]
    assert token(old) == 200
    resp = mgmt.call("POST", f"/clients/{robot['client_id']}/rotate-secret")
    assert resp.status_code == 200, resp.text
    new = resp.json()["client_secret"]
    assert new != old and resp.json()["client_id"] == robot["client_id"]
    assert token(new) == 200 and token(old) == 401
    assert "client_secret" not in mgmt.call("GET", f"/clients/{robot['client_id']}").json()
    spa = make(mgmt, {"name": "public", "app_type": "spa"})
    problem(mgmt.call("POST", f"/clients/{spa['client_id']}/rotate-secret"), 400, "no secret")
    assert mgmt.call("DELETE", f"/clients/{robot['client_id']}").status_code == 204
    assert token(new) == 401
    for method, suffix in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/rotate-secret")]:
        resp = mgmt.call(method, f"/clients/{robot['client_id']}{suffix}", json={"name": "x"})
        problem(resp, 404, "no client", "inexistent_resource")


ROUTES = [
    ("GET", "/clients", "read:clients"),
    ("POST", "/clients", "create:clients"),
    ("GET", "/clients/{id}", "read:clients"),
    ("PATCH", "/clients/{id}", "update:clients"),
    ("DELETE", "/clients/{id}", "delete:clients"),
    ("POST", "/clients/{id}/rotate-secret", "update:clients"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_each_route_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    target = make(mgmt, {"name": f"scoped {method} {path}", "app_type": "non_interactive"})
    path = path.format(id=target["client_id"])
    resp = mgmt.call(method, path, token="", json={"name": "y"}, headers={"Authorization": ""})
    problem(resp, 401, "Missing authentication")
    problem(mgmt.call(method, path, token="not.a.jwt", json={"name": "y"}), 401, "",
            "invalid_token")  # fmt: skip
    others = " ".join(s for s in ALL if s != scope)
    resp = mgmt.call(method, path, token=mgmt.token(others), json={"name": "y"})
    problem(resp, 403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope")
    assert f'scope="{scope}"' in resp.headers["WWW-Authenticate"]
    assert mgmt.call("GET", f"/clients/{target['client_id']}").json()["name"] == target["name"]
    narrow = Mgmt(op, grant(op, [scope]), [scope], [])
    body = {"name": f"renamed {method} {path}"} if method in ("POST", "PATCH") else None
    resp = narrow.call(method, path, json=body)
    assert resp.status_code in (200, 201, 204), resp.text  # the one scope is enough


def test_writes_are_tenant_log_events_naming_the_client_without_secrets(
    mgmt: Mgmt, op: Any
) -> None:
    made = make(mgmt, {**WEB, "name": "audited"})
    cid = made["client_id"]
    mgmt.call("PATCH", f"/clients/{cid}", json={"callbacks": ["https://shop.test/x"]})
    rotated = mgmt.call("POST", f"/clients/{cid}/rotate-secret").json()["client_secret"]
    mgmt.call("DELETE", f"/clients/{cid}")
    mgmt.call("PATCH", f"/clients/{cid}", json={"name": 5})  # refused: no event
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == "management.write").order_by(LogEvent.id)
        ).all()
        mine = [r for r in rows if r.details.get("target") == cid]
        dumped = json.dumps([(r.description, r.details, r.client_id) for r in rows])
    assert [r.details["operation"] for r in mine] == [
        "create_client", "update_client", "rotate_client_secret", "delete_client"]  # fmt: skip
    assert {r.client_id for r in mine} == {mgmt.client.client_id}
    assert mine[0].description == f"Create a client ({cid})"
    assert mine[0].details["resource"] == "clients" and mine[0].details["method"] == "POST"
    assert mine[0].details["fields"] == sorted(WEB)
    assert mine[1].details["fields"] == ["callbacks"]
    assert made["client_secret"] not in dumped and rotated not in dumped
    assert "shop.test" not in json.dumps([r.details for r in mine])  # names, never values
