"""actions, bindings, logs and log-streams on the route registry (issue 14): every ``/api/v2``
route is in the OpenAPI document with its scope; an action, a binding and a log stream carry
an ``ETag`` and refuse a stale ``If-Match`` (412); each write is a ``management.write`` tenant
log event naming the calling client, with field names only (no secret, no value)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db
from idp.management.base import bp
from tests.conftest import LiveServer, build_app, serving
from tests.logstreams.conftest import STREAM_SETTINGS
from tests.management.conftest import Mgmt
from tests.management.test_actions_api import CX, create

pytestmark = pytest.mark.usefixtures("fresh_chain")

SECRET = "s3cr3t-registry-77aa"
NOOP = "def on_execute_credentials_exchange(event, api):\n    pass\n"
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Log streams may name a loopback endpoint here (never called: no delivery runs)."""
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, **STREAM_SETTINGS)) as server:
        yield server


@pytest.fixture
def fresh_chain(op: Any) -> Any:
    op.factory.clear_actions()
    yield
    op.factory.clear_actions()


def events(op: Any, after: int = 0) -> list[LogEvent]:
    with op.app.app_context():
        rows = db.session.scalars(
            select(LogEvent).where(LogEvent.type == "management.write", LogEvent.id > after)
            .order_by(LogEvent.id)
        ).all()  # fmt: skip
        for row in rows:
            db.session.expunge(row)
        return list(rows)


def last_id(op: Any) -> int:
    rows = events(op)
    return rows[-1].id if rows else 0


def stale(resp: requests.Response) -> None:
    assert resp.status_code == 412, resp.text
    assert resp.json()["errorCode"] == "precondition_failed"


def test_every_management_route_is_in_the_document(op: Any) -> None:
    doc = requests.get(f"{op.url}/api/v2/openapi.json", timeout=30).json()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    with op.app.app_context():
        rules = [r for r in op.app.url_map.iter_rules() if r.endpoint.startswith(bp.name + ".")]
    assert rules
    for rule in rules:
        path = rule.rule.removeprefix("/api/v2")
        if path in ("/openapi.json", "/docs"):
            continue
        template = path.replace("<path:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (template, method) in documented, (template, method)
    for path in ("/actions/actions/{id}", "/actions/triggers/{trigger_id}/bindings/{id}",
                 "/log-streams/{id}", "/logs"):  # fmt: skip
        for op_ in doc["paths"][path].values():
            assert op_["x-scope"].split(":")[1] in ("actions", "log_streams", "logs")


def test_an_action_honours_if_match(mgmt: Mgmt) -> None:
    aid = create(mgmt, "contested", NOOP)["id"]
    path = f"/actions/actions/{aid}"
    tag = mgmt.call("GET", path).headers["ETag"]
    assert mgmt.call("GET", path, headers={"If-None-Match": tag}).status_code == 304
    first = mgmt.call("PATCH", path, json={"timeout_ms": 1000}, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    stale(mgmt.call("PATCH", path, json={"timeout_ms": 2000}, headers={"If-Match": tag}))
    assert mgmt.call("GET", path).json()["timeout_ms"] == 1000
    stale(mgmt.call("DELETE", path, headers={"If-Match": tag}))
    assert mgmt.call("DELETE", path, headers={"If-Match": first.headers["ETag"]}).status_code == 204


def test_a_binding_honours_if_match(mgmt: Mgmt) -> None:
    for name in ("one", "two"):
        aid = create(mgmt, name, NOOP)["id"]
        mgmt.call("POST", f"/actions/actions/{aid}/deploy")
        mgmt.call("POST", f"/actions/triggers/{CX}/bindings", json={"action": name})
    path = f"/actions/triggers/{CX}/bindings/two"
    got = mgmt.call("GET", path)
    assert got.status_code == 200 and got.json()["position"] == 1
    tag = got.headers["ETag"]
    moved = mgmt.call("PATCH", path, json={"position": 0}, headers={"If-Match": tag})
    assert moved.status_code == 200 and moved.json()["position"] == 0
    stale(mgmt.call("PATCH", path, json={"position": 1}, headers={"If-Match": tag}))
    stale(mgmt.call("DELETE", path, headers={"If-Match": tag}))
    assert mgmt.call("DELETE", path, headers={"If-Match": moved.headers["ETag"]}).status_code == 204
    assert mgmt.call("GET", path).status_code == 404


def test_a_log_stream_honours_if_match(mgmt: Mgmt) -> None:
    made = mgmt.call("POST", "/log-streams", json={"name": "s", "sink": {"httpEndpoint": HOOK}})
    assert made.status_code == 201, made.text
    path = f"/log-streams/{made.json()['id']}"
    tag = mgmt.call("GET", path).headers["ETag"]
    paused = mgmt.call("PATCH", path, json={"status": "paused"}, headers={"If-Match": tag})
    assert paused.status_code == 200
    stale(mgmt.call("PATCH", path, json={"status": "active"}, headers={"If-Match": tag}))
    stale(mgmt.call("DELETE", path, headers={"If-Match": tag}))
    assert (
        mgmt.call("DELETE", path, headers={"If-Match": paused.headers["ETag"]}).status_code == 204
    )


def test_writes_are_tenant_log_events_without_values(mgmt: Mgmt, op: Any) -> None:
    start = last_id(op)
    aid = create(mgmt, "audited", NOOP, secrets=[{"name": "KEY", "value": SECRET}])["id"]
    mgmt.call("PATCH", f"/actions/actions/{aid}", json={"code": NOOP + "# v2\n"})
    mgmt.call("POST", f"/actions/actions/{aid}/deploy")
    mgmt.call("POST", f"/actions/triggers/{CX}/bindings", json={"action": aid})
    mgmt.call("PATCH", f"/actions/triggers/{CX}/bindings", json={"bindings": []})
    stream = mgmt.call(
        "POST",
        "/log-streams",
        json={
            "name": "audit",
            "sink": {"httpEndpoint": HOOK, "httpAuthorization": "Bearer tok-123"},
        },
    )
    mgmt.call("PATCH", f"/log-streams/{stream.json()['id']}", json={"status": "paused"})
    mgmt.call("DELETE", f"/log-streams/{stream.json()['id']}")
    mgmt.call("DELETE", f"/actions/actions/{aid}")
    mgmt.call("PATCH", f"/actions/actions/{aid}", json={"name": 5})  # refused: no event
    rows = events(op, start)
    assert [r.details["operation"] for r in rows] == [
        "create_action", "update_action", "deploy_action", "insert_binding",
        "replace_bindings", "create_log_stream", "update_log_stream", "delete_log_stream",
        "delete_action"]  # fmt: skip
    assert {r.client_id for r in rows} == {mgmt.client.client_id}
    assert rows[0].details["fields"] == ["code", "name", "secrets", "supported_triggers"]
    assert rows[0].details["target"] == aid and rows[0].details["resource"] == "actions"
    assert rows[5].details["resource"] == "log-streams"
    dumped = json.dumps([(r.description, r.details) for r in rows])
    assert SECRET not in dumped and "tok-123" not in dumped and "# v2" not in dumped


def test_strings_the_database_cannot_hold_are_refused(mgmt: Mgmt) -> None:
    """Found by Schemathesis: a NUL (PostgreSQL's text refuses it) was a 503."""
    body = '{"name": "a\\u0000b", "trigger": "post-login", "code": "x"}'
    resp = mgmt.call("POST", "/actions/actions", data=body,
                     headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 400 and resp.json()["message"].endswith("on property name.")
    lone = '{"name": "x", "sink": {"httpEndpoint": "\\ud800"}}'
    resp = mgmt.call("POST", "/log-streams", data=lone,
                     headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 400 and "sink.httpEndpoint" in resp.json()["message"]
    resp = mgmt.call("GET", "/logs", params={"type": "a\x00"})
    assert resp.status_code == 400 and resp.json()["errorCode"] == "invalid_query_string"
    assert mgmt.call("GET", "/actions/actions/a%00b").status_code == 404
    for big in ("2147483648", "99999999999"):  # log ids are INTEGERs: 503s on PostgreSQL
        assert mgmt.call("GET", f"/logs/{big}").status_code == 404
        assert mgmt.call("GET", "/logs", params={"from": big}).status_code == 400
    assert mgmt.call("GET", "/logs/%C2%B2").status_code == 404  # a digit, not an ASCII one


def test_an_unmatched_api_url_answers_auth0s_problem(mgmt: Mgmt) -> None:
    for method, path in [("GET", "/nothing"), ("DELETE", "/resource-servers/a%0Ab"),
                         ("PUT", "/clients")]:  # fmt: skip
        resp = mgmt.call(method, path)
        assert resp.status_code in (404, 405), resp.text
        assert resp.json()["statusCode"] == resp.status_code and resp.json()["message"]
