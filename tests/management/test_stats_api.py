"""``/api/v2/stats/daily`` and ``/api/v2/stats/active-users`` (issue 14): counts from the
tenant log in Auth0's shapes, 400 naming the parameter, 401, 403 naming the scope; a real login
shows in today's entry and in the active users."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from idp.audit.models import LogEvent
from idp.core import clock
from idp.extensions import db
from tests.helpers import Browser, auth_params, pkce
from tests.management.conftest import Mgmt
from tests.management.tenant_helpers import check_scopes, problem

MARCH_1 = int(datetime(2020, 3, 1, tzinfo=UTC).timestamp())
DAY = 86400


def seed(op: Any, rows: list[tuple[str, int, str | None]]) -> None:
    with op.app.app_context():
        for kind, at, user_id in rows:
            db.session.add(LogEvent(type=kind, time=at, user_id=user_id, description="seeded",
                                    details={}))  # fmt: skip
        db.session.commit()


def test_daily_counts_logins_and_signups_per_day(mgmt: Mgmt, op: Any) -> None:
    seed(op, [("login.success", MARCH_1 + 60, "u1"), ("login.success", MARCH_1 + 7200, "u2"),
              ("signup.success", MARCH_1 + 3600, "u2"), ("login.failure", MARCH_1 + 90, None),
              ("login.success", MARCH_1 + 2 * DAY + 5, "u1"),
              ("login.success", MARCH_1 + 3 * DAY, "u1")])  # the day after the range  # fmt: skip
    resp = mgmt.call("GET", "/stats/daily", params={"from": "20200301", "to": "20200303"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == [
        {"date": "2020-03-01T00:00:00.000Z", "logins": 2, "signups": 1, "leaked_passwords": 0,
         "created_at": "2020-03-01T00:01:00.000Z", "updated_at": "2020-03-01T02:00:00.000Z"},
        {"date": "2020-03-02T00:00:00.000Z", "logins": 0, "signups": 0, "leaked_passwords": 0,
         "created_at": "2020-03-02T00:00:00.000Z", "updated_at": "2020-03-02T00:00:00.000Z"},
        {"date": "2020-03-03T00:00:00.000Z", "logins": 1, "signups": 0, "leaked_passwords": 0,
         "created_at": "2020-03-03T00:00:05.000Z", "updated_at": "2020-03-03T00:00:05.000Z"},
    ]  # fmt: skip
    one = mgmt.call("GET", "/stats/daily", params={"from": "20200303", "to": "20200303"}).json()
    assert [d["logins"] for d in one] == [1]


def test_a_login_counts_today_and_as_an_active_user(mgmt: Mgmt, op: Any) -> None:
    today = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y%m%d")
    before = mgmt.call("GET", "/stats/daily", params={"from": today, "to": today}).json()[0]
    active = mgmt.call("GET", "/stats/active-users")
    assert active.status_code == 200 and isinstance(active.json(), int)
    client, user = op.factory.gen_client(), op.factory.gen_user()
    result = Browser(op.url).authorize(auth_params(client, pkce()[1]), user)
    assert result.code
    after = mgmt.call("GET", "/stats/daily", params={"from": today, "to": today}).json()[0]
    assert after["logins"] == before["logins"] + 1
    assert mgmt.call("GET", "/stats/active-users").json() == active.json() + 1
    seed(op, [("login.success", clock.now() - 31 * DAY, "long-gone"),  # outside 30 days
              ("login.success", clock.now() - 60, user.user_id)])  # the same user again  # fmt: skip
    assert mgmt.call("GET", "/stats/active-users").json() == active.json() + 1
    default = mgmt.call("GET", "/stats/daily").json()  # the last 30 days, today last
    assert len(default) == 30 and default[-1]["date"].startswith(
        f"{today[:4]}-{today[4:6]}-{today[6:]}")  # fmt: skip


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2020-03-01"}, "on property from."),
        ({"from": "20200231"}, "a day is YYYYMMDD, for example 20261201' on property from."),
        ({"to": "tomorrow"}, "on property to."),
        ({"from": "20200302", "to": "20200301"}, "from is after to"),
        ({"from": "20180101", "to": "20200101"}, "the range is at most 366 days"),
        ({"since": "20200101"}, "Additional properties not allowed: since"),
    ],
)
def test_bad_query_strings_name_the_parameter(mgmt: Mgmt, params: Any, message: str) -> None:
    problem(mgmt.call("GET", "/stats/daily", params=params), 400, message, "invalid_query_string")


@pytest.mark.parametrize("path", ["/stats/daily", "/stats/active-users"])
def test_each_route_needs_a_token_and_its_scope(mgmt: Mgmt, op: Any, path: str) -> None:
    check_scopes(mgmt, op, "GET", path, "read:stats", None)
