"""``GET /api/v2/logs`` filters (issue 15, for the console's log page): ``client_id`` and the
event's date (``date_from`` inclusive, ``date_to`` exclusive) with ``type`` and ``user_id``,
on pages, totals and ``from`` reads; 400 naming the parameter, 401, 403 naming the scope.
(Paging and ``GET /logs/{id}``'s 404 are tests/logstreams/test_api.py's.)"""

from __future__ import annotations

from typing import Any

import pytest

from idp.audit.models import LogEvent
from idp.extensions import db
from tests.management.conftest import Mgmt, grant
from tests.management.test_clients_api import problem

DAY = 86_400
JAN_15 = 1_768_435_200  # 2026-01-15T00:00:00Z


def seed(op: Any, tag: str) -> list[int]:
    """Four events of client ``tag``: two days, two types, one user."""
    rows = [
        LogEvent(type="login.success", time=JAN_15 - 1, client_id=tag, user_id=f"usr_{tag}",
                 description="seeded", details={}),
        LogEvent(type="login.success", time=JAN_15, client_id=tag, description="seeded",
                 details={}),
        LogEvent(type="login.failure", time=JAN_15 + DAY - 1, client_id=tag,
                 user_id=f"usr_{tag}", description="seeded", details={}),
        LogEvent(type="login.success", time=JAN_15 + DAY, client_id=tag, description="seeded",
                 details={}),
    ]  # fmt: skip
    with op.app.app_context():
        db.session.add_all(rows)
        db.session.commit()
        return [r.id for r in rows]


def ids(resp: Any) -> list[int]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return [int(r["log_id"]) for r in (body["logs"] if isinstance(body, dict) else body)]


def test_logs_filtered_by_client_date_type_and_user(mgmt: Mgmt, op: Any) -> None:
    e = seed(op, "cli_filters")
    mine = {"client_id": "cli_filters"}
    assert ids(mgmt.call("GET", "/logs", params=mine)) == e[::-1]
    day = {**mine, "date_from": "2026-01-15", "date_to": "2026-01-16"}
    assert ids(mgmt.call("GET", "/logs", params=day)) == [e[2], e[1]]
    assert ids(mgmt.call("GET", "/logs", params={**day, "type": "login.success"})) == [e[1]]
    assert ids(mgmt.call("GET", "/logs", params={**mine, "user_id": "usr_cli_filters"})) == [
        e[2], e[0]]  # fmt: skip
    at = {**mine, "date_from": "2026-01-15T23:59:59Z"}  # a date-time, an offset
    assert ids(mgmt.call("GET", "/logs", params=at)) == [e[3], e[2]]
    shifted = {**mine, "date_to": "2026-01-15T01:00:00+01:00"}  # = 00:00 UTC, exclusive
    assert ids(mgmt.call("GET", "/logs", params=shifted)) == [e[0]]
    totals = mgmt.call("GET", "/logs", params={**day, "include_totals": "true"}).json()
    assert totals["total"] == 2 and totals["length"] == 2
    after = {**mine, "from": str(e[0]), "take": "2", "type": "login.success"}
    assert ids(mgmt.call("GET", "/logs", params=after)) == [e[1], e[3]]  # oldest first
    far = {**mine, "date_from": "9999-12-31", "date_to": "0001-01-01T00:00:00+14:00"}
    assert ids(mgmt.call("GET", "/logs", params=far)) == []


@pytest.mark.parametrize(
    ("query", "name"),
    [({"date_from": "yesterday"}, "date_from"), ({"date_to": "2026-13-01"}, "date_to"),
     ({"client_id": "x" * 65}, "client_id"), ({"q": "client_id:x"}, "q")],
)  # fmt: skip
def test_a_bad_filter_is_400_naming_it(mgmt: Mgmt, query: dict[str, str], name: str) -> None:
    body = problem(mgmt.call("GET", "/logs", params=query), 400, name, "invalid_query_string")
    assert "Query validation error" in body["message"]


def test_logs_need_a_token_with_read_logs(op: Any) -> None:
    anonymous = Mgmt(op, grant(op, ["read:users"]), ["read:users"], [])
    problem(anonymous.call("GET", "/logs?client_id=x", token="nope"), 401, "")
    problem(anonymous.call("GET", "/logs?client_id=x"), 403, "read:logs")
