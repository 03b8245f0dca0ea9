"""``/api/v2/log-streams`` (Auth0's shape) and ``/api/v2/logs`` paging: success, 400 with the
field named, 401, 403 naming the scope, 404, 409."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.logstreams.models import LogStream
from tests.conftest import LiveServer
from tests.logstreams.conftest import emit
from tests.logstreams.receiver import Receiver
from tests.management.conftest import Mgmt, grant

HOOK = "http://127.0.0.1:9/hook"  # never called: delivery is not running in these tests


def create(mgmt: Mgmt, name: str = "siem", **sink: Any) -> dict[str, Any]:
    resp = mgmt.call("POST", "/log-streams", json={
        "name": name, "type": "http", "sink": {"httpEndpoint": HOOK, **sink}})  # fmt: skip
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_create_read_update_delete(mgmt: Mgmt, live: LiveServer) -> None:
    made = create(mgmt, httpAuthorization="Bearer very-secret-token")
    secret = made.pop("signing_secret")
    assert len(secret) >= 32
    assert made["type"] == "http" and made["status"] == "active" and made["name"] == "siem"
    assert made["sink"] == {"httpEndpoint": HOOK, "httpContentFormat": "JSONLINES",
                            "httpContentType": "application/x-ndjson"}  # fmt: skip
    assert made["id"].startswith("lst_") and made["failures"] == 0 and made["last_error"] is None
    got = mgmt.call("GET", f"/log-streams/{made['id']}").json()
    assert got == made  # no secret, no authorization on reads
    assert mgmt.call("GET", "/log-streams/siem").json()["id"] == made["id"]  # by name too
    assert [s["id"] for s in mgmt.call("GET", "/log-streams").json()] == [made["id"]]

    paused = mgmt.call("PATCH", f"/log-streams/{made['id']}", json={"status": "paused"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    moved = mgmt.call("PATCH", f"/log-streams/{made['id']}", json={
        "name": "siem-2", "status": "active",
        "sink": {"httpEndpoint": "https://127.0.0.1/other", "httpAuthorization": None}})  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["name"] == "siem-2" and moved.json()["status"] == "active"
    assert moved.json()["sink"]["httpEndpoint"] == "https://127.0.0.1/other"
    with live.app.app_context():
        row = db.session.scalar(select(LogStream))
        assert row is not None and row.auth_header is None
        assert secret.encode() not in row.secret  # sealed at rest

    assert mgmt.call("DELETE", f"/log-streams/{made['id']}").status_code == 204
    assert mgmt.call("GET", f"/log-streams/{made['id']}").status_code == 404
    assert not any(secret in text or "very-secret-token" in text for text in mgmt.seen[1:])


def test_the_authorization_is_sealed_at_rest(mgmt: Mgmt, live: LiveServer) -> None:
    create(mgmt, httpAuthorization="Bearer sealed-token")
    with live.app.app_context():
        row = db.session.scalar(select(LogStream))
        assert row is not None and row.auth_header is not None
        assert b"sealed-token" not in row.auth_header


def test_a_duplicate_name_is_409(mgmt: Mgmt) -> None:
    create(mgmt, "dup")
    resp = mgmt.call("POST", "/log-streams", json={"name": "dup", "sink": {"httpEndpoint": HOOK}})
    assert resp.status_code == 409 and resp.json()["errorCode"] == "conflict"
    other = create(mgmt, "other")
    resp = mgmt.call("PATCH", f"/log-streams/{other['id']}", json={"name": "dup"})
    assert resp.status_code == 409


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"sink": {"httpEndpoint": HOOK}}, "name"),
        ({"name": "x"}, "sink"),
        ({"name": "x", "sink": {}}, "httpEndpoint"),
        ({"name": "x", "sink": "http://a"}, "sink"),
        ({"name": "x", "type": "eventbridge", "sink": {"httpEndpoint": HOOK}}, "type"),
        ({"name": "x", "sink": {"httpEndpoint": "ftp://127.0.0.1/x"}}, "httpEndpoint"),
        ({"name": "x", "sink": {"httpEndpoint": "https://evil.example/x"}}, "LOG_STREAM_HOSTS"),
        ({"name": "x", "sink": {"httpEndpoint": "https://u:p@127.0.0.1/x"}}, "credentials"),
        (
            {"name": "x", "sink": {"httpEndpoint": HOOK, "httpContentFormat": "JSONARRAY"}},
            "httpContentFormat",
        ),
        (
            {"name": "x", "sink": {"httpEndpoint": HOOK, "httpAuthorization": 5}},
            "httpAuthorization",
        ),
        (
            {"name": "x", "sink": {"httpEndpoint": HOOK, "httpAuthorization": "Bearer \n x"}},
            "httpAuthorization",
        ),
        ({"name": "x", "sink": {"httpEndpoint": HOOK, "headers": {}}}, "headers"),
        ({"name": "x", "sink": {"httpEndpoint": HOOK}, "startFrom": "abc"}, "startFrom"),
        ({"name": "x", "sink": {"httpEndpoint": HOOK}, "filters": []}, "filters"),
        ({"name": "\x00", "sink": {"httpEndpoint": HOOK}}, "name"),
    ],
)
def test_a_malformed_create_is_400_naming_the_field(mgmt: Mgmt, body: Any, named: str) -> None:
    resp = mgmt.call("POST", "/log-streams", json=body)
    assert resp.status_code == 400, resp.text
    assert named in resp.json()["message"] and resp.json()["errorCode"] == "invalid_body"


@pytest.mark.parametrize(
    ("body", "named"),
    [({}, "send at least one"), ({"status": "suspended"}, "status"), ({"status": 1}, "status"),
     ({"id": "lst_x"}, "id"), ({"sink": {"httpEndpoint": "https://evil.example/"}},
                               "LOG_STREAM_HOSTS")],
)  # fmt: skip
def test_a_malformed_update_is_400(mgmt: Mgmt, body: Any, named: str) -> None:
    made = create(mgmt)
    resp = mgmt.call("PATCH", f"/log-streams/{made['id']}", json=body)
    assert resp.status_code == 400 and named in resp.json()["message"], resp.text


def test_unknown_streams_are_404(mgmt: Mgmt) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        resp = mgmt.call(method, "/log-streams/lst_nope", json={"status": "paused"})
        assert resp.status_code == 404 and resp.json()["errorCode"] == "inexistent_resource"


ROUTES = [("GET", "/log-streams", "read:log_streams"),
          ("POST", "/log-streams", "create:log_streams"),
          ("GET", "/log-streams/lst_x", "read:log_streams"),
          ("PATCH", "/log-streams/lst_x", "update:log_streams"),
          ("DELETE", "/log-streams/lst_x", "delete:log_streams"),
          ("GET", "/logs/1", "read:logs")]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
def test_each_route_needs_its_scope(op: Any, method: str, path: str, needed: str) -> None:
    reader = Mgmt(op, grant(op, ["read:actions"]), ["read:actions"], [])
    resp = reader.call(method, path, json={})
    assert resp.status_code == 403, resp.text
    assert resp.json()["message"] == f"Insufficient scope, expected any of: {needed}"
    assert resp.json()["errorCode"] == "insufficient_scope"
    anonymous = reader.call(method, path, json={}, token="")
    assert anonymous.status_code == 401


# ----------------------------------------------------------------------- /api/v2/logs
def test_logs_checkpoint_paging_walks_every_event_in_order(mgmt: Mgmt, live: LiveServer) -> None:
    ids = emit(live.app, 7)
    start, seen = ids[0] - 1, []
    while True:
        page = mgmt.call("GET", f"/logs?from={start}&take=3")
        assert page.status_code == 200, page.text
        rows = page.json()
        if not rows:
            break
        assert len(rows) <= 3
        seen += [int(r["log_id"]) for r in rows]
        start = int(rows[-1]["log_id"])
    assert seen[:7] == ids and seen == sorted(seen)
    typed = mgmt.call("GET", f"/logs?from={ids[0] - 1}&take=100&type=login.success").json()
    assert {r["type"] for r in typed} == {"login.success"}


def test_logs_as_auth0s_sdk_asks_for_them(mgmt: Mgmt, live: LiveServer) -> None:
    """auth0-python's ``logs.search`` sends page, per_page, include_totals=true and
    include_fields=true with every call, ``from`` and ``take`` too when given."""
    ids = emit(live.app, 3)
    sdk = "per_page=50&page=0&include_totals=true&include_fields=true"
    rows = mgmt.call("GET", f"/logs?{sdk}&from={ids[0]}&take=2").json()
    assert [int(r["log_id"]) for r in rows] == ids[1:]
    paged = mgmt.call("GET", f"/logs?{sdk}&fields=log_id,type").json()
    assert set(paged["logs"][0]) == {"log_id", "type"} and paged["total"] >= 3
    left_out = mgmt.call("GET", "/logs?fields=details&include_fields=false&take=1").json()
    assert "details" not in left_out[0] and "type" in left_out[0]


def test_logs_pages_and_totals(mgmt: Mgmt, live: LiveServer) -> None:
    ids = emit(live.app, 5)
    newest = mgmt.call("GET", "/logs?page=0&per_page=2").json()
    assert [int(r["log_id"]) for r in newest] == [ids[-1], ids[-2]]
    second = mgmt.call("GET", "/logs?page=1&per_page=2").json()
    assert [int(r["log_id"]) for r in second] == [ids[-3], ids[-4]]
    oldest = mgmt.call("GET", "/logs?per_page=1&sort=date:1").json()
    assert int(oldest[0]["log_id"]) <= ids[0]
    totals = mgmt.call("GET", "/logs?page=0&per_page=2&include_totals=true").json()
    assert set(totals) == {"start", "limit", "length", "total", "logs"}
    assert totals["start"] == 0 and totals["limit"] == 2 and totals["length"] == 2
    assert totals["total"] >= 5
    assert len(mgmt.call("GET", "/logs?take=3").json()) == 3  # take alone: the most recent


def test_one_log_event(mgmt: Mgmt, live: LiveServer) -> None:
    [log_id] = emit(live.app, 1, type_="login.failure")
    got = mgmt.call("GET", f"/logs/{log_id}")
    assert got.status_code == 200
    assert got.json()["log_id"] == str(log_id) and got.json()["type"] == "login.failure"
    assert set(got.json()) >= {"date", "description", "user_id", "client_id", "ip", "details"}
    for missing in ("999999999", "abc", "1" * 30):
        assert mgmt.call("GET", f"/logs/{missing}").status_code == 404


@pytest.mark.parametrize(
    "query",
    ["from=abc", "from=-1", "from=1&take=0", "from=1&take=101", "per_page=101", "page=-1",
     "sort=date", "take=x", "q=type:s", "fields=password", "include_fields=maybe"],
)  # fmt: skip
def test_logs_bad_paging_is_400(mgmt: Mgmt, query: str) -> None:
    resp = mgmt.call("GET", f"/logs?{query}")
    assert resp.status_code == 400, resp.text
    assert resp.json()["errorCode"] == "invalid_query_string"


def test_a_created_stream_is_delivered_by_the_running_loop(mgmt: Mgmt, live: LiveServer) -> None:
    """The API wakes this worker's loop: a stream made over HTTP delivers without a restart."""
    from idp.logstreams import delivery
    from tests.logstreams.receiver import wait_for

    receiver = Receiver().start()
    loop = delivery.for_app(live.app)
    loop.start()
    try:
        resp = mgmt.call("POST", "/log-streams",
                         json={"name": "live", "sink": {"httpEndpoint": receiver.url}})  # fmt: skip
        assert resp.status_code == 201
        ids = emit(live.app, 3)
        # the stream's own creation (its management.write event, recorded with it) comes first
        wait_for(lambda: receiver.ids()[1:] == ids, "delivery")
        first = mgmt.call("GET", f"/logs/{receiver.ids()[0]}").json()
        assert first["type"] == "management.write" and "log-streams" in str(first["details"])
        got = mgmt.call("GET", "/log-streams/live").json()
        assert got["checkpoint"] == str(ids[-1]) and got["delivered_at"]
    finally:
        loop.stop()
        receiver.stop()
