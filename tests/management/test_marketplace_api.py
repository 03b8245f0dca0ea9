"""``/api/v2/marketplace/plugins`` (issue 15): the plugins with their manifest's schema, and
"install and bind" in one operation through ``idp marketplace install``'s service: success (the
action, its version and its binding; the login then carries the plugin's claims), 400 naming
the property, 401, 403 naming the scope, 404, 409; secrets never answered nor logged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import jwt_parts, login_and_redeem
from tests.management.conftest import Mgmt
from tests.management.tenant_helpers import check_scopes, no_values, problem, writes

NS = "https://claims.example.test"
SECRET = "hook-t0ken-4c1d"


@pytest.fixture(autouse=True)
def fresh_chain(op: Any) -> Any:
    op.factory.clear_actions()
    yield
    op.factory.clear_actions()  # a chain left bound would run on other modules' logins


def test_the_plugins_are_listed_with_their_manifest_schema(mgmt: Mgmt) -> None:
    resp = mgmt.call("GET", "/marketplace/plugins")
    assert resp.status_code == 200, resp.text
    by_slug = {p["slug"]: p for p in resp.json()["plugins"]}
    assert {"user-claims", "login-webhook", "mfa-by-geography", "new-user-row"} <= set(by_slug)
    hook = by_slug["login-webhook"]
    assert hook["trigger_id"] == "post-login" and hook["installed"] == []
    settings = {c["name"]: c for c in hook["configuration"]}
    assert settings["url"] == {"name": "url", "type": "string", "required": True,
                               "default": None, "choices": [],
                               "description": settings["url"]["description"]}  # fmt: skip
    assert settings["fields"]["type"] == "list" and "user.email" in settings["fields"]["choices"]
    assert settings["block_login_on_failure"]["default"] is False
    assert hook["secrets"] == [{"name": "token", "required": True,
                                "description": "Sent as Authorization: Bearer <token>."}]  # fmt: skip
    assert hook["egress"] == {"hosts": [], "from_config": ["url"]}
    one = mgmt.call("GET", "/marketplace/plugins/login-webhook")
    assert one.status_code == 200 and one.json() == hook


def test_install_and_bind_in_one_operation(mgmt: Mgmt, op: Any) -> None:
    token = mgmt.token()  # before the chain is bound
    resp = mgmt.call(
        "POST", "/marketplace/plugins/user-claims/install", token=token,
        json={"config": {"namespace": f"{NS}/", "include_identities": False}, "bind": True},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    data = resp.json()
    assert data["plugin"] == {"slug": "user-claims", "version": "1.0.0"}
    assert data["action"]["name"] == "user-claims" and data["version"]["deployed"] is True
    assert data["action"]["configuration"]["include_identities"] is False
    assert data["binding"]["trigger_id"] == "post-login" and data["binding"]["position"] == 0
    chain = mgmt.call("GET", "/actions/triggers/post-login/bindings", token=token).json()
    assert [b["action"]["name"] for b in chain["bindings"]] == ["user-claims"]
    listed = mgmt.call("GET", "/marketplace/plugins/user-claims", token=token).json()
    assert listed["installed"] == [{"id": data["action"]["id"], "name": "user-claims"}]

    tokens = login_and_redeem(op.url, op.factory.gen_client(), op.factory.gen_user())
    claims = jwt_parts(tokens["id_token"])[1]
    assert claims[f"{NS}/secretIdentity"] == "Batman" and f"{NS}/identities" not in claims

    # again, unbound and under another name: a second action, not bound
    resp = mgmt.call("POST", "/marketplace/plugins/user-claims/install", token=token,
                     json={"name": "claims-2", "config": {"namespace": NS}})  # fmt: skip
    assert resp.status_code == 201 and resp.json()["binding"] is None
    [first, _] = writes(op, "marketplace")
    assert (
        first.details["fields"] == ["bind", "config"] and first.details["target"] == "user-claims"
    )


def test_secrets_are_stored_never_answered_nor_logged(mgmt: Mgmt, op: Any) -> None:
    resp = mgmt.call(
        "POST", "/marketplace/plugins/login-webhook/install",
        json={"config": {"url": "https://hooks.example.test/login",
                         "fields": ["user.email", "request.ip"]},
              "secrets": {"token": SECRET}},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    action = resp.json()["action"]
    assert action["secrets"][0]["name"] == "token" and action["allowed_hosts"] == [
        "hooks.example.test"
    ]
    assert action["configuration"]["fields"] == ["user.email", "request.ip"]
    assert all(SECRET not in seen for seen in mgmt.seen)
    no_values(writes(op, "marketplace"), SECRET)


@pytest.mark.parametrize(
    ("slug", "body", "text"),
    [
        ("user-claims", {}, "'namespace is required' on property config.namespace"),
        ("login-webhook", {"config": {"url": "https://h.example.test/x"}},
         "'token is required' on property secrets.token"),
        ("user-claims", {"config": {"namespace": NS, "nope": "x"}}, "no setting nope"),
        ("user-claims", {"config": {"namespace": NS, "access_token_fields": ["zip"]}},
         "'zip' is not one of"),
        ("user-claims", {"config": {"namespace": NS, "include_identities": "maybe"}},
         "true or false"),
        ("user-claims", {"config": {"namespace": NS}, "bind": "yes"}, "on property bind"),
        ("user-claims", {"config": {"namespace": NS}, "extra": 1}, "extra"),
        ("login-webhook", {"config": {"url": "ftp://h.example.test"}, "secrets": {"token": "t"}},
         "absolute https URL"),
    ],
)  # fmt: skip
def test_a_bad_install_is_a_400_naming_the_problem(
    mgmt: Mgmt, slug: str, body: dict[str, Any], text: str
) -> None:
    resp = mgmt.call("POST", f"/marketplace/plugins/{slug}/install", json=body)
    problem(resp, 400, text, "invalid_body")
    assert mgmt.call("GET", "/actions/actions").json()["actions"] == []  # nothing saved


def test_unknown_plugins_and_a_taken_name(mgmt: Mgmt) -> None:
    problem(mgmt.call("GET", "/marketplace/plugins/nope"), 404, "no marketplace plugin")
    problem(mgmt.call("GET", "/marketplace/plugins/..%2Fetc"), 404, "")
    resp = mgmt.call("POST", "/marketplace/plugins/nope/install", json={})
    problem(resp, 404, "no marketplace plugin")
    mine = mgmt.call("POST", "/actions/actions", json={
        "name": "user-claims", "trigger": "post-login",
        "code": "def on_execute_post_login(event, api):\n  pass\n"})  # fmt: skip
    assert mine.status_code == 201
    resp = mgmt.call("POST", "/marketplace/plugins/user-claims/install",
                     json={"config": {"namespace": NS}})  # fmt: skip
    problem(resp, 400, "exists and is not user-claims")


@pytest.mark.parametrize("path", ["/marketplace/plugins", "/marketplace/plugins/user-claims"])
def test_reads_need_read_actions(mgmt: Mgmt, op: Any, path: str) -> None:
    check_scopes(mgmt, op, "GET", path, "read:actions", None)


def test_install_needs_create_actions(mgmt: Mgmt) -> None:
    path, body = "/marketplace/plugins/user-claims/install", {"config": {"namespace": NS}}
    resp = mgmt.call("POST", path, token="", json=body, headers={"Authorization": ""})
    problem(resp, 401, "Missing authentication")
    others = mgmt.token("read:actions update:actions")
    resp = mgmt.call("POST", path, token=others, json=body)
    problem(resp, 403, "expected any of: create:actions", "insufficient_scope")
    assert mgmt.call("POST", path, token=mgmt.token("create:actions"), json=body).status_code == 201
