"""``/api/v2/resource-servers`` (issue 14): every route's success, its 400s naming the property
(including the per-API token settings idp cannot honour), 401, 403 naming the scope, 404, 409
on a taken identifier, 412 on a stale ``If-Match``; the management API itself readable but
neither deletable nor stripped of its scopes; removed scopes leave the API's client grants;
each write a ``management.write`` tenant log event naming the calling client."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db
from idp.management.service import SCOPES, management_audience
from tests.management.conftest import ALL, Mgmt, grant
from tests.management.test_clients_api import problem

API = {"identifier": "https://shop.test/api", "name": "Shop API",
       "scopes": [{"value": "read:orders", "description": "Read orders"},
                  {"value": "write:orders", "description": ""}]}  # fmt: skip
TENANT = {"signing_alg": "RS256", "token_lifetime": 3600, "token_lifetime_for_web": 3600,
          "allow_offline_access": True, "token_dialect": "rfc9068_profile",
          "skip_consent_for_verifiable_first_party_clients": True}  # fmt: skip


def make(mgmt: Mgmt, body: dict[str, Any]) -> dict[str, Any]:
    resp = mgmt.call("POST", "/resource-servers", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_create_read_list(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, API)
    assert made == {**API, **TENANT, "id": made["id"], "is_system": False}
    assert made["id"].startswith("api_")
    got = mgmt.call("GET", f"/resource-servers/{made['id']}")
    assert got.json() == made and got.headers["ETag"].startswith('"')
    by_identifier = mgmt.call("GET", "/resource-servers/" + quote(API["identifier"], safe=""))
    assert by_identifier.json() == made  # Auth0 takes the id or the audience
    listed = mgmt.call("GET", "/resource-servers").json()
    assert made in listed
    [system] = [a for a in listed if a["is_system"]]
    assert system["identifier"] == management_audience(op.url)
    assert {s["value"] for s in system["scopes"]} == set(SCOPES)
    only = mgmt.call("GET", "/resource-servers", params={"identifiers": API["identifier"]})
    assert only.json() == [made]
    page = mgmt.call("GET", "/resource-servers",
                     params={"include_totals": "true", "per_page": 1}).json()  # fmt: skip
    assert page["total"] == len(listed) and page["resource_servers"] == [listed[0]]
    some = mgmt.call("GET", f"/resource-servers/{made['id']}",
                     params={"fields": "identifier,scopes", "include_fields": "true"})  # fmt: skip
    assert some.json() == {"identifier": API["identifier"], "scopes": API["scopes"]}
    bare = make(mgmt, {"identifier": "urn:bare"})
    assert bare["name"] == "urn:bare" and bare["scopes"] == []
    # the tenant's own values pass (an SDK or Terraform sending them is not refused)
    make(mgmt, {"identifier": "https://same.test/", **TENANT})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'Missing required property: identifier'."),
        ({"identifier": 5}, "'Expected type string but found type integer' on property identifier."),
        ({"identifier": "not a uri"}, "absolute URI"),
        ({"identifier": "https://x.test/", "name": ""}, "on property name."),
        ({"identifier": "https://x.test/", "scopes": "read"}, "on property scopes."),
        ({"identifier": "https://x.test/", "scopes": [{"description": "d"}]},
         "'Missing required property: value' on property scopes[0]."),
        ({"identifier": "https://x.test/", "scopes": [{"value": "a b"}]}, "on property scopes[0].value."),
        ({"identifier": "https://x.test/", "scopes": [{"value": "a"}, {"value": "a"}]},
         "each scope value appears once"),
        ({"identifier": "https://x.test/", "signing_alg": "HS256"},
         "'idp applies 'RS256' to every API (tenant-wide), not 'HS256'' on property signing_alg."),
        ({"identifier": "https://x.test/", "signing_alg": "none"}, "No enum match for: 'none'"),
        ({"identifier": "https://x.test/", "token_lifetime": 86400}, "on property token_lifetime."),
        ({"identifier": "https://x.test/", "token_lifetime": "3600"}, "found type string' on property token_lifetime."),
        ({"identifier": "https://x.test/", "allow_offline_access": False},
         "on property allow_offline_access."),
        ({"identifier": "https://x.test/", "skip_consent_for_verifiable_first_party_clients": False},
         "on property skip_consent_for_verifiable_first_party_clients."),
        ({"identifier": "https://x.test/", "token_dialect": "access_token_authz"},
         "on property token_dialect."),
        ({"identifier": "https://x.test/", "enforce_policies": True},
         "'Additional properties not allowed: enforce_policies'."),
    ],
)  # fmt: skip
def test_bad_creations_name_the_property(mgmt: Mgmt, body: dict[str, Any], message: str) -> None:
    problem(mgmt.call("POST", "/resource-servers", json=body), 400, message, "invalid_body")


def test_update_and_scopes_leave_the_grants(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, {**API, "identifier": "https://update.test/"})
    path = f"/resource-servers/{made['id']}"
    robot = op.factory.gen_client("m2m")
    op.factory.gen_client_grant(
        robot.client_id, made["identifier"], ["read:orders", "write:orders"]
    )
    scopes = [{"value": "read:orders", "description": "Read them"},
              {"value": "ship:orders", "description": "Ship"}]  # fmt: skip
    resp = mgmt.call("PATCH", path, json={"name": "Renamed", "scopes": scopes,
                                          "token_lifetime": 3600})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json() == {**made, "name": "Renamed", "scopes": scopes}
    assert mgmt.call("GET", path).json() == resp.json()
    [grant_row] = mgmt.call("GET", "/client-grants",
                            params={"client_id": robot.client_id}).json()  # fmt: skip
    assert grant_row["scope"] == ["read:orders"]  # the dropped scope left the grant
    for body, message in [
        ({}, "send at least one of"),
        ({"identifier": "https://other.test/"}, "Additional properties not allowed: identifier"),
        ({"name": None, "token_lifetime_for_web": 60}, "on property token_lifetime_for_web."),
        ({"scopes": [{"value": "x", "description": 5}]}, "on property scopes[0].description."),
    ]:
        problem(mgmt.call("PATCH", path, json=body), 400, message)
    assert mgmt.call("GET", path).json() == resp.json()  # none of those changed anything


def test_the_management_api_is_a_system_api(mgmt: Mgmt, op: Any) -> None:
    path = "/resource-servers/" + quote(management_audience(op.url), safe="")
    system = mgmt.call("GET", path).json()
    assert system["is_system"] is True and system["name"] == "idp Management API"
    problem(mgmt.call("DELETE", path), 400, "system API: it cannot be deleted")
    problem(mgmt.call("DELETE", f"/resource-servers/{system['id']}"), 400, "system API")
    kept = [{"value": s["value"], "description": ""} for s in system["scopes"][1:]]
    problem(mgmt.call("PATCH", path, json={"scopes": kept}), 400,
            f"its scopes cannot be removed ({system['scopes'][0]['value']})")  # fmt: skip
    described = [{"value": s["value"], "description": f"may {s['value']}"}
                 for s in system["scopes"]]  # fmt: skip
    resp = mgmt.call("PATCH", path, json={"scopes": described, "name": "Ops API"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["scopes"] == described and resp.json()["name"] == "Ops API"
    assert mgmt.call("GET", "/resource-servers").status_code == 200  # still let in


def test_duplicate_identifiers_are_409(mgmt: Mgmt, op: Any) -> None:
    make(mgmt, {"identifier": "https://twin.test/"})
    problem(mgmt.call("POST", "/resource-servers", json={"identifier": "https://twin.test/"}),
            409, "an API with identifier 'https://twin.test/' exists", "conflict")  # fmt: skip
    problem(mgmt.call("POST", "/resource-servers",
                      json={"identifier": management_audience(op.url)}), 409, "exists")  # fmt: skip


def test_if_match_refuses_a_stale_write(mgmt: Mgmt) -> None:
    made = make(mgmt, {"identifier": "https://contested.test/"})
    path = f"/resource-servers/{made['id']}"
    tag = mgmt.call("GET", path).headers["ETag"]
    assert mgmt.call("GET", path, headers={"If-None-Match": tag}).status_code == 304
    first = mgmt.call("PATCH", path, json={"name": "first"}, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    second = mgmt.call("PATCH", path, json={"name": "second"}, headers={"If-Match": tag})
    problem(second, 412, "If-Match", "precondition_failed")
    problem(mgmt.call("DELETE", path, headers={"If-Match": tag}), 412, "If-Match")
    assert mgmt.call("GET", path).json()["name"] == "first"
    assert mgmt.call("DELETE", path, headers={"If-Match": first.headers["ETag"]}).status_code == 204


def test_delete_takes_the_grants_and_then_404(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, {**API, "identifier": "https://gone.test/"})
    robot = op.factory.gen_client("m2m")
    op.factory.gen_client_grant(robot.client_id, made["identifier"], ["read:orders"])
    assert mgmt.call("DELETE", f"/resource-servers/{made['id']}").status_code == 204
    assert mgmt.call("GET", "/client-grants", params={"client_id": robot.client_id}).json() == []
    for method in ("GET", "PATCH", "DELETE"):
        resp = mgmt.call(method, f"/resource-servers/{made['id']}", json={"name": "x"})
        problem(resp, 404, "no resource server", "inexistent_resource")


ROUTES = [
    ("GET", "/resource-servers", "read:resource_servers"),
    ("POST", "/resource-servers", "create:resource_servers"),
    ("GET", "/resource-servers/{id}", "read:resource_servers"),
    ("PATCH", "/resource-servers/{id}", "update:resource_servers"),
    ("DELETE", "/resource-servers/{id}", "delete:resource_servers"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_each_route_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    target = make(mgmt, {"identifier": f"https://scoped-{method.lower()}-{len(path)}.test/"})
    path = path.format(id=target["id"])
    body = {"identifier": f"https://new-{method.lower()}.test/", "name": "y"}
    if method == "PATCH":
        body = {"name": "y"}
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


def test_writes_are_tenant_log_events(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, {**API, "identifier": "https://audited.test/"})
    mgmt.call("PATCH", f"/resource-servers/{made['id']}", json={"name": "Audited"})
    mgmt.call("DELETE", f"/resource-servers/{made['id']}")
    mgmt.call("POST", "/resource-servers", json={"identifier": 5})  # refused: no event
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == "management.write").order_by(LogEvent.id)
        ).all()
        mine = [r for r in rows if r.details.get("target") == made["id"]]
        assert [r.details["operation"] for r in mine] == [
            "create_resource_server", "update_resource_server", "delete_resource_server"]  # fmt: skip
        assert {r.client_id for r in mine} == {mgmt.client.client_id}
        assert mine[0].details["resource"] == "resource-servers"
        assert mine[0].details["fields"] == ["identifier", "name", "scopes"]
        assert "Read orders" not in json.dumps([r.details for r in mine])  # names, not values
