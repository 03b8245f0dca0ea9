"""``/api/v2/client-grants`` (issue 14): every route's success, its 400s naming the property,
401, 403 naming the scope, 404 (the grant, an unknown client or audience), 409 on a second
grant for the same (client, audience), 412 on a stale ``If-Match``; a grant made here is what
the client-credentials grant issues, and a narrowed one narrows the next token; each write a
``management.write`` tenant log event naming the calling client."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db
from idp.management.service import management_audience
from tests.management.conftest import ALL, Mgmt, grant
from tests.management.test_clients_api import problem


def api(op: Any) -> str:
    return str(op.factory.gen_api(scopes=["read:things", "write:things", "admin:things"]))


def robot(op: Any) -> Any:
    return op.factory.gen_client("m2m")


def make(mgmt: Mgmt, body: dict[str, Any]) -> dict[str, Any]:
    resp = mgmt.call("POST", "/client-grants", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def token_scope(op: Any, client: Any, audience: str) -> str:
    resp = requests.post(f"{op.url}/oauth/token", auth=client.basic, timeout=30,
                         data={"grant_type": "client_credentials", "audience": audience})  # fmt: skip
    assert resp.status_code == 200, resp.text
    return str(resp.json().get("scope", ""))


def test_create_list_read_and_the_token_follows(mgmt: Mgmt, op: Any) -> None:
    audience, client = api(op), robot(op)
    body = {"client_id": client.client_id, "audience": audience,
            "scope": ["read:things", "write:things"]}  # fmt: skip
    made = make(mgmt, body)
    assert made == {**body, "id": made["id"]} and made["id"].startswith("cgr_")
    assert set(token_scope(op, client, audience).split()) == {"read:things", "write:things"}
    got = mgmt.call("GET", f"/client-grants/{made['id']}")
    assert got.json() == made and got.headers["ETag"].startswith('"')
    assert made in mgmt.call("GET", "/client-grants").json()
    assert mgmt.call("GET", "/client-grants", params={"audience": audience}).json() == [made]
    mine = mgmt.call("GET", "/client-grants", params={"client_id": client.client_id}).json()
    assert mine == [made]
    both = {"client_id": client.client_id, "audience": management_audience(op.url)}
    assert mgmt.call("GET", "/client-grants", params=both).json() == []
    assert (
        mgmt.call("GET", "/client-grants", params={"allow_any_organization": "true"}).json() == []
    )
    page = mgmt.call("GET", "/client-grants", params={"include_totals": "true", "per_page": 1,
                                                      "audience": audience}).json()  # fmt: skip
    assert page == {"start": 0, "limit": 1, "length": 1, "total": 1, "client_grants": [made]}
    onto_mgmt = make(mgmt, {"client_id": client.client_id, "audience": management_audience(op.url),
                            "scope": ["read:clients"]})  # fmt: skip
    assert onto_mgmt["scope"] == ["read:clients"]


def test_update_narrows_the_next_token(mgmt: Mgmt, op: Any) -> None:
    audience, client = api(op), robot(op)
    made = make(mgmt, {"client_id": client.client_id, "audience": audience,
                       "scope": ["read:things", "write:things"]})  # fmt: skip
    path = f"/client-grants/{made['id']}"
    resp = mgmt.call("PATCH", path, json={"scope": ["admin:things"]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {**made, "scope": ["admin:things"]} and resp.headers["ETag"]
    assert token_scope(op, client, audience) == "admin:things"
    for body, message in [
        ({}, "'Missing required property: scope'."),
        ({"scope": "read:things"}, "'Expected type array but found type string' on property scope."),
        ({"scope": [5]}, "on property scope[0]."),
        ({"scope": ["a b"]}, "on property scope[0]."),
        ({"scope": ["delete:things"]}, f"scopes not defined on {audience}: delete:things"),
        ({"scope": [], "audience": audience}, "'Additional properties not allowed: audience'."),
    ]:  # fmt: skip
        problem(mgmt.call("PATCH", path, json=body), 400, message, "invalid_body")
    assert mgmt.call("GET", path).json()["scope"] == ["admin:things"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"audience": "https://x.test", "scope": []}, "'Missing required property: client_id'."),
        ({"client_id": "c", "scope": []}, "'Missing required property: audience'."),
        ({"client_id": "c", "audience": "https://x.test"}, "'Missing required property: scope'."),
        ({"client_id": 5, "audience": "a", "scope": []}, "found type integer' on property client_id."),
        ({"client_id": "c", "audience": "", "scope": []}, "on property audience."),
        ({"client_id": "c", "audience": "a", "scope": [None]}, "on property scope[0]."),
        ({"client_id": "c", "audience": "a", "scope": [], "organization_usage": "deny"},
         "'Additional properties not allowed: organization_usage'."),
    ],
)  # fmt: skip
def test_bad_creations_name_the_property(mgmt: Mgmt, body: dict[str, Any], message: str) -> None:
    problem(mgmt.call("POST", "/client-grants", json=body), 400, message, "invalid_body")


def test_rules_of_the_domain(mgmt: Mgmt, op: Any) -> None:
    audience, client = api(op), robot(op)
    web = op.factory.gen_client("regular_web")
    for body, status, message in [
        ({"client_id": web.client_id, "audience": audience, "scope": []}, 400,
         "client grants are for m2m applications"),
        ({"client_id": client.client_id, "audience": audience, "scope": ["nope"]}, 400,
         f"scopes not defined on {audience}: nope"),
        ({"client_id": "no-such-client", "audience": audience, "scope": []}, 404, "no client"),
        ({"client_id": client.client_id, "audience": "https://nowhere.test", "scope": []}, 404,
         "no API with identifier"),
    ]:  # fmt: skip
        problem(mgmt.call("POST", "/client-grants", json=body), status, message)
    make(mgmt, {"client_id": client.client_id, "audience": audience, "scope": []})
    again = {"client_id": client.client_id, "audience": audience, "scope": ["read:things"]}
    problem(mgmt.call("POST", "/client-grants", json=again), 409,
            "this client already has a grant for this API", "conflict")  # fmt: skip


def test_if_match_refuses_a_stale_write(mgmt: Mgmt, op: Any) -> None:
    made = make(mgmt, {"client_id": robot(op).client_id, "audience": api(op), "scope": []})
    path = f"/client-grants/{made['id']}"
    tag = mgmt.call("GET", path).headers["ETag"]
    assert mgmt.call("GET", path, headers={"If-None-Match": tag}).status_code == 304
    first = mgmt.call("PATCH", path, json={"scope": ["read:things"]}, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    stale = mgmt.call("PATCH", path, json={"scope": ["write:things"]}, headers={"If-Match": tag})
    problem(stale, 412, "If-Match", "precondition_failed")
    problem(mgmt.call("DELETE", path, headers={"If-Match": tag}), 412, "If-Match")
    assert mgmt.call("GET", path).json()["scope"] == ["read:things"]
    assert mgmt.call("DELETE", path, headers={"If-Match": first.headers["ETag"]}).status_code == 204


def test_delete_then_404_and_no_token(mgmt: Mgmt, op: Any) -> None:
    audience, client = api(op), robot(op)
    made = make(mgmt, {"client_id": client.client_id, "audience": audience, "scope": []})
    assert mgmt.call("DELETE", f"/client-grants/{made['id']}").status_code == 204
    resp = requests.post(f"{op.url}/oauth/token", auth=client.basic, timeout=30,
                         data={"grant_type": "client_credentials", "audience": audience})  # fmt: skip
    assert resp.status_code == 403, resp.text
    for method in ("GET", "PATCH", "DELETE"):
        resp = mgmt.call(method, f"/client-grants/{made['id']}", json={"scope": []})
        problem(resp, 404, "no client grant", "inexistent_resource")


ROUTES = [
    ("GET", "/client-grants", "read:client_grants"),
    ("POST", "/client-grants", "create:client_grants"),
    ("GET", "/client-grants/{id}", "read:client_grants"),
    ("PATCH", "/client-grants/{id}", "update:client_grants"),
    ("DELETE", "/client-grants/{id}", "delete:client_grants"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_each_route_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    audience = api(op)
    target = make(mgmt, {"client_id": robot(op).client_id, "audience": audience, "scope": []})
    path = path.format(id=target["id"])
    body: dict[str, Any] = {"scope": ["read:things"]}
    if method == "POST":
        body = {"client_id": robot(op).client_id, "audience": audience, "scope": []}
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
    made = make(mgmt, {"client_id": robot(op).client_id, "audience": api(op), "scope": []})
    mgmt.call("PATCH", f"/client-grants/{made['id']}", json={"scope": ["read:things"]})
    mgmt.call("DELETE", f"/client-grants/{made['id']}")
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == "management.write").order_by(LogEvent.id)
        ).all()
        mine = [r for r in rows if r.details.get("target") == made["id"]]
        assert [r.details["operation"] for r in mine] == [
            "create_client_grant", "update_client_grant", "delete_client_grant"]  # fmt: skip
        assert {r.client_id for r in mine} == {mgmt.client.client_id}
        assert mine[0].details["fields"] == ["audience", "client_id", "scope"]
        assert mine[1].details["resource"] == "client-grants"
        assert "read:things" not in str([r.details for r in mine])  # names, not values
