"""``/api/v2/attack-protection/*`` (issue 14): brute-force protection and suspicious IP
throttling in Auth0's shapes: success, 400 naming the property, 401, 403 naming the scope, 412,
the tenant log; and the running server obeys a change at once (max_attempts 2 blocks the third
attempt, disabled or allow-listed nothing is blocked, pre-login throttling answers 429)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db
from tests.helpers import hidden_inputs, login_form_action
from tests.management.conftest import Mgmt
from tests.management.tenant_helpers import (
    check_scopes,
    defaults,
    login_page,
    no_values,
    problem,
    writes,
)

__all__ = ["defaults"]
pytestmark = pytest.mark.usefixtures("defaults")
BF = "/attack-protection/brute-force-protection"
IPT = "/attack-protection/suspicious-ip-throttling"
BF_DEFAULT = {
    "enabled": True,
    "shields": ["block", "user_notification"],
    "mode": "count_per_identifier_and_ip",
    "allowlist": [],
    "max_attempts": 10,
}
IPT_DEFAULT = {"enabled": True, "shields": ["block"], "allowlist": [],
               "stage": {"pre-login": {"max_attempts": 100, "rate": 9000},
                         "pre-user-registration": {"max_attempts": 50, "rate": 36000}}}  # fmt: skip


def attempt(op: Any, email: str, password: str) -> requests.Response:
    """One password login from a fresh browser (so only the shields remember anything)."""
    http = requests.Session()
    page = login_page(op, http)
    fields = hidden_inputs(page.text) | {"email": email, "password": password}
    action = login_form_action(page.text)
    return http.post(f"{op.url}{action}", data=fields, allow_redirects=False, timeout=30)


def test_read_the_defaults_and_update(mgmt: Mgmt) -> None:
    assert mgmt.call("GET", BF).json() == BF_DEFAULT  # the configuration's values
    assert mgmt.call("GET", IPT).json() == IPT_DEFAULT
    resp = mgmt.call("PATCH", BF, json={"max_attempts": 4, "shields": ["block"],
                                        "allowlist": ["10.0.0.0/8", "2001:db8::1"]})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json() == BF_DEFAULT | {"max_attempts": 4, "shields": ["block"],
                                        "allowlist": ["10.0.0.0/8", "2001:db8::1"]}  # fmt: skip
    assert mgmt.call("GET", BF).json() == resp.json()
    resp = mgmt.call("PATCH", IPT, json={"stage": {"pre-login": {"max_attempts": 100,
                                                                 "rate": 864000}}})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["stage"]["pre-login"] == {"max_attempts": 100, "rate": 864000}
    resp = mgmt.call("PATCH", IPT, json={"stage": {"pre-user-registration": {"rate": 1200}},
                                         "shields": [], "enabled": False})  # fmt: skip
    assert resp.json() == IPT_DEFAULT | {
        "enabled": False, "shields": [],
        "stage": {"pre-login": {"max_attempts": 100, "rate": 864000},
                  "pre-user-registration": {"max_attempts": 50, "rate": 1200}}}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (BF, {}, "send at least one of: allowlist, enabled, max_attempts, mode, shields"),
        (BF, {"max_attempts": 0}, "Value 0 is less than minimum 1' on property max_attempts."),
        (BF, {"max_attempts": "3"}, "integer but found type string' on property max_attempts."),
        (BF, {"mode": "count_per_identifier"}, "on property mode."),
        (BF, {"shields": ["block", "email"]}, "on property shields[1]."),
        (BF, {"allowlist": ["10.0.0.300"]}, "IPv4/IPv6 address or CIDR' on property allowlist[0]."),
        (BF, {"enabled": "yes"}, "on property enabled."),
        (BF, {"allowed": []}, "Additional properties not allowed: allowed'."),
        (IPT, {"shields": ["admin_notification"]}, "on property shields[0]."),
        (IPT, {"stage": {"pre-login": {"rate": 0}}}, "on property stage.pre-login.rate."),
        (IPT, {"stage": {"pre-login": {}}}, "send at least one of: max_attempts, rate' on property stage.pre-login."),
        (IPT, {"stage": {"pre-login": {"max_attempts": 1.5}}}, "on property stage.pre-login.max_attempts."),
        (IPT, {"stage": {"pre-custom-token": {"rate": 5}}}, "Additional properties not allowed: pre-custom-token' on property stage."),
        (IPT, {"allowlist": "127.0.0.1"}, "array but found type string' on property allowlist."),
    ],
)  # fmt: skip
def test_bad_bodies_name_the_property(mgmt: Mgmt, path: str, body: Any, message: str) -> None:
    problem(mgmt.call("PATCH", path, json=body), 400, message, "invalid_body")
    assert mgmt.call("GET", BF).json() == BF_DEFAULT and mgmt.call("GET", IPT).json() == IPT_DEFAULT


@pytest.mark.parametrize("path", [BF, IPT])
def test_if_match(mgmt: Mgmt, path: str) -> None:
    tag = mgmt.call("GET", path).headers["ETag"]
    first = mgmt.call("PATCH", path, json={"enabled": False}, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    problem(mgmt.call("PATCH", path, json={"enabled": True}, headers={"If-Match": tag}), 412,
            "If-Match", "precondition_failed")  # fmt: skip
    assert mgmt.call("GET", path).json()["enabled"] is False


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [("GET", BF, "read:attack_protection"), ("PATCH", BF, "update:attack_protection"),
     ("GET", IPT, "read:attack_protection"), ("PATCH", IPT, "update:attack_protection")],
)  # fmt: skip
def test_each_route_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, path: str, scope: str
) -> None:
    check_scopes(mgmt, op, method, path, scope, {"enabled": True} if method == "PATCH" else None)


def test_writes_are_tenant_log_events(mgmt: Mgmt, op: Any) -> None:
    before = len(writes(op, "attack-protection"))
    mgmt.call("PATCH", BF, json={"allowlist": ["192.0.2.7"], "max_attempts": 7})
    mgmt.call("PATCH", IPT, json={"allowlist": ["198.51.100.0/24"]})
    mgmt.call("PATCH", IPT, json={"allowlist": ["nope"]})  # refused: no event
    events = writes(op, "attack-protection")[before:]
    assert [e.details["operation"] for e in events] == [
        "update_brute_force_protection", "update_suspicious_ip_throttling"]  # fmt: skip
    assert {e.client_id for e in events} == {mgmt.client.client_id}
    assert events[0].details["fields"] == ["allowlist", "max_attempts"]
    no_values(events, "192.0.2.7", "198.51.100")


def test_max_attempts_2_blocks_the_third_attempt(mgmt: Mgmt, op: Any) -> None:
    user = op.factory.gen_user()
    assert mgmt.call("PATCH", BF, json={"max_attempts": 2}).status_code == 200
    assert attempt(op, user.email, "wrong-1").status_code == 401
    assert attempt(op, user.email, "wrong-2").status_code == 401  # the second: blocked now
    third = attempt(op, user.email, user.password)  # even the right password
    assert third.status_code == 401 and "Wrong email or password" in third.text
    with op.app.app_context():
        kinds = db.session.scalars(select(LogEvent.type).where(
            LogEvent.details["email"].as_string() == user.email.lower())).all()  # fmt: skip
    assert kinds.count("login.failure") == 2 and kinds.count("login.blocked") == 1
    other = op.factory.gen_user()  # the default (10) would not have blocked: check it is 2
    mgmt.call("PATCH", BF, json={"max_attempts": 10})
    for n in range(3):
        attempt(op, other.email, f"wrong-{n}")
    assert attempt(op, other.email, other.password).status_code == 303


@pytest.mark.parametrize("change", [{"enabled": False}, {"allowlist": ["127.0.0.0/8"]},
                                    {"shields": ["user_notification"]}])  # fmt: skip
def test_disabled_or_allow_listed_nothing_is_blocked(
    mgmt: Mgmt, op: Any, change: dict[str, Any]
) -> None:
    user = op.factory.gen_user()
    mgmt.call("PATCH", BF, json={"max_attempts": 2, **change})
    for n in range(3):
        assert attempt(op, user.email, f"wrong-{n}").status_code == 401
    assert attempt(op, user.email, user.password).status_code == 303  # logged in


def test_pre_login_throttling_answers_429(mgmt: Mgmt, op: Any) -> None:
    user = op.factory.gen_user()
    resp = mgmt.call("PATCH", IPT, json={"stage": {"pre-login": {"max_attempts": 2,
                                                                 "rate": 30000}}})  # fmt: skip
    assert resp.json()["stage"]["pre-login"] == {"max_attempts": 2, "rate": 30000}
    for n in range(2):
        attempt(op, user.email, f"wrong-{n}")
    throttled = attempt(op, user.email, user.password)
    # the seconds left in the 60 s window the attempts opened (59 when a second has passed)
    assert throttled.status_code == 429 and 50 <= int(throttled.headers["Retry-After"]) <= 60
    mgmt.call("PATCH", IPT, json={"allowlist": ["127.0.0.1"]})  # trusted: no longer refused
    assert attempt(op, user.email, user.password).status_code == 303
