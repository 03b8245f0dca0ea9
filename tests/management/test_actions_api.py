"""``/api/v2/actions`` over HTTP: the whole lifecycle against the real sandbox and the real
token endpoint, bindings one at a time and as a list, validation, and secrets never echoed."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.helpers import jwt_parts
from tests.management.conftest import Mgmt

SECRET = "s3cr3t-value-9f8e7d"
CX = "credentials-exchange"


def code(tier: str) -> str:
    return (
        "def on_execute_credentials_exchange(event, api):\n"
        "    print('key', event.secrets.API_KEY)\n"
        f"    api.access_token.set_custom_claim('https://x/tier', '{tier}')\n"
    )


@pytest.fixture(autouse=True)
def fresh_chain(op: Any) -> Any:
    op.factory.clear_actions()
    yield
    op.factory.clear_actions()  # a chain left bound would run on other modules' token requests


def m2m_token(op: Any, client: Any, audience: str) -> requests.Response:
    return requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=client.basic,
        timeout=30,
    )


def create(mgmt: Mgmt, name: str, body: str, **extra: Any) -> dict[str, Any]:
    resp = mgmt.call(
        "POST",
        "/actions/actions",
        json={"name": name, "supported_triggers": [{"id": CX, "version": "v1"}],
              "code": body, **extra},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def chain(mgmt: Mgmt) -> list[str]:
    resp = mgmt.call("GET", f"/actions/triggers/{CX}/bindings")
    assert resp.status_code == 200, resp.text
    return [b["action"]["name"] for b in resp.json()["bindings"]]


def test_lifecycle(mgmt: Mgmt, op: Any) -> None:
    app_client, audience = op.factory.m2m()
    token = mgmt.token()  # before any chain is bound (the chain runs for our tokens too)

    # create a draft with a secret: the answer lists its name only
    action = create(mgmt, "tier", code("gold"), secrets=[{"name": "API_KEY", "value": SECRET}])
    aid = action["id"]
    assert action["secrets"][0]["name"] == "API_KEY" and "value" not in action["secrets"][0]
    assert action["deployed_version"] is None and action["all_changes_deployed"] is False
    assert action["supported_triggers"] == [{"id": CX, "version": "v1"}]

    # binding a never-deployed action is refused
    resp = mgmt.call("POST", f"/actions/triggers/{CX}/bindings", token=token, json={"action": aid})
    assert resp.status_code == 400 and "deploy" in resp.json()["message"]

    v1 = mgmt.call("POST", f"/actions/actions/{aid}/deploy", token=token).json()
    assert v1["number"] == 1 and v1["deployed"] is True
    assert v1["created_by"] == f"api:{mgmt.client.client_id}"

    # one binding at a time: no list is resent
    resp = mgmt.call("POST", f"/actions/triggers/{CX}/bindings", token=token, json={"action": aid})
    assert resp.status_code == 201, resp.text
    assert resp.json()["action"]["id"] == aid and resp.json()["position"] == 0
    other = create(mgmt, "other", "def on_execute_credentials_exchange(event, api):\n    pass\n")
    mgmt.call("POST", f"/actions/actions/{other['id']}/deploy", token=token)
    resp = mgmt.call(
        "POST", f"/actions/triggers/{CX}/bindings", token=token,
        json={"ref": {"type": "action_name", "value": "other"}, "position": 0},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert chain(mgmt) == ["other", "tier"]
    resp = mgmt.call(
        "PATCH", f"/actions/triggers/{CX}/bindings/tier", token=token, json={"position": 0}
    )
    assert resp.status_code == 200 and resp.json()["position"] == 0
    assert chain(mgmt) == ["tier", "other"]
    resp = mgmt.call("DELETE", f"/actions/triggers/{CX}/bindings/{other['id']}", token=token)
    assert resp.status_code == 204
    assert chain(mgmt) == ["tier"]

    # a real token request runs the bound version
    claims = jwt_parts(m2m_token(op, app_client, audience).json()["access_token"])[1]
    assert claims["https://x/tier"] == "gold"

    # edit the draft: live traffic keeps v1 until the deploy
    resp = mgmt.call(
        "PATCH", f"/actions/actions/{aid}", token=token, json={"code": code("platinum")}
    )
    assert resp.status_code == 200 and resp.json()["all_changes_deployed"] is False
    claims = jwt_parts(m2m_token(op, app_client, audience).json()["access_token"])[1]
    assert claims["https://x/tier"] == "gold"
    v2 = mgmt.call("POST", f"/actions/actions/{aid}/deploy", token=token).json()
    assert v2["number"] == 2
    claims = jwt_parts(m2m_token(op, app_client, audience).json()["access_token"])[1]
    assert claims["https://x/tier"] == "platinum"

    # versions, one by id and one by number; then roll back to 1
    versions = mgmt.call("GET", f"/actions/actions/{aid}/versions", token=token).json()
    assert [v["number"] for v in versions["versions"]] == [2, 1] and versions["total"] == 2
    by_id = mgmt.call("GET", f"/actions/actions/{aid}/versions/{v1['id']}", token=token).json()
    assert by_id["number"] == 1 and by_id["deployed"] is False
    resp = mgmt.call("POST", f"/actions/actions/{aid}/versions/1/deploy", token=token)
    assert resp.status_code == 200 and resp.json()["deployed"] is True
    claims = jwt_parts(m2m_token(op, app_client, audience).json()["access_token"])[1]
    assert claims["https://x/tier"] == "gold"
    got = mgmt.call("GET", f"/actions/actions/{aid}", token=token).json()
    assert got["deployed_version"]["number"] == 1
    assert "platinum" in got["code"]  # the draft was not touched by the rollback

    # the test runner: the draft against a given event; the secret is redacted in the answer
    resp = mgmt.call(
        "POST", f"/actions/actions/{aid}/test", token=token,
        json={"payload": {"client": {"client_id": "c1"}, "transaction": {}}},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    result = resp.json()["payload"]
    assert result["error"] is None
    assert result["commands"][0]["op"] == "access_token.set_custom_claim"
    assert "[secret API_KEY]" in result["logs"]

    # executions: the token requests, with stats; one by id
    runs = mgmt.call("GET", f"/actions/actions/{aid}/executions", token=token).json()
    assert runs["stats"]["executions"] == 4 and runs["stats"]["errors"] == 0
    assert {r["status"] for r in runs["executions"]} == {"success"}
    assert any(r["test"] for r in runs["executions"])
    one = mgmt.call("GET", f"/actions/executions/{runs['executions'][0]['id']}", token=token)
    assert one.status_code == 200 and one.json()["trigger_id"] == CX

    # delete: a bound action needs force=true, which also unbinds it
    resp = mgmt.call("DELETE", f"/actions/actions/{aid}", token=token)
    assert resp.status_code == 409 and resp.json()["statusCode"] == 409
    assert mgmt.call("DELETE", f"/actions/actions/{aid}?force=true", token=token).status_code == 204
    assert mgmt.call("GET", f"/actions/actions/{aid}", token=token).status_code == 404
    assert chain(mgmt) == []
    claims = jwt_parts(m2m_token(op, app_client, audience).json()["access_token"])[1]
    assert "https://x/tier" not in claims

    assert not [text for text in mgmt.seen if SECRET in text]


def test_secrets_are_write_only(mgmt: Mgmt) -> None:
    """Create, read, list, replace: names and times only, whatever the route."""
    action = create(mgmt, "keys", code("x"), secrets=[{"name": "API_KEY", "value": SECRET},
                                                     {"name": "OLD", "value": SECRET + "2"}])  # fmt: skip
    aid = action["id"]
    mgmt.call("POST", f"/actions/actions/{aid}/deploy")
    # replace the list: API_KEY kept without resending its value, OLD dropped, NEW added
    resp = mgmt.call(
        "PATCH", f"/actions/actions/{aid}",
        json={"secrets": [{"name": "API_KEY"}, {"name": "NEW", "value": SECRET + "3"}]},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert [s["name"] for s in resp.json()["secrets"]] == ["API_KEY", "NEW"]
    resp = mgmt.call("PATCH", f"/actions/actions/{aid}", json={"secrets": [{"name": "GHOST"}]})
    assert resp.status_code == 400
    test = mgmt.call(
        "POST", f"/actions/actions/{aid}/test",
        json={"payload": {"client": {"client_id": "c"}}},
    )  # fmt: skip
    assert test.status_code == 200, test.text
    leak = (
        "def on_execute_credentials_exchange(event, api):\n"
        "    api.access_token.set_custom_claim('https://x/leak', event.secrets.API_KEY)\n"
    )
    mgmt.call("PATCH", f"/actions/actions/{aid}", json={"code": leak})
    test = mgmt.call("POST", f"/actions/actions/{aid}/test", json={})
    assert test.status_code == 200 and "[secret API_KEY]" in test.text
    for path in ("/actions/actions", f"/actions/actions/{aid}", f"/actions/actions/{aid}/versions",
                 f"/actions/actions/{aid}/executions"):  # fmt: skip
        assert mgmt.call("GET", path).status_code == 200
    assert not [text for text in mgmt.seen if SECRET in text]


def test_whole_list_replace(mgmt: Mgmt) -> None:
    ids = {}
    for name in ("a", "b", "c"):
        ids[name] = create(mgmt, name, "def on_execute_credentials_exchange(e, api):\n  pass\n")[
            "id"
        ]
        mgmt.call("POST", f"/actions/actions/{ids[name]}/deploy")

    def put(*refs: dict[str, str]) -> requests.Response:
        return mgmt.call(
            "PATCH", f"/actions/triggers/{CX}/bindings",
            json={"bindings": [{"ref": r, "display_name": r["value"]} for r in refs]},
        )  # fmt: skip

    resp = put({"type": "action_name", "value": "a"}, {"type": "action_id", "value": ids["b"]})
    assert resp.status_code == 200, resp.text
    assert [b["display_name"] for b in resp.json()["bindings"]] == ["a", "b"]
    kept = resp.json()["bindings"][1]["id"]
    resp = put({"type": "binding_id", "value": kept}, {"type": "action_name", "value": "c"})
    assert [b["action"]["name"] for b in resp.json()["bindings"]] == ["b", "c"]
    assert resp.json()["bindings"][0]["id"] == kept  # a kept binding keeps its id
    assert (
        put(
            {"type": "action_name", "value": "b"}, {"type": "action_name", "value": "b"}
        ).status_code
        == 400
    )
    assert put({"type": "action_name", "value": "nope"}).status_code == 400
    assert chain(mgmt) == ["b", "c"]  # a refused list changes nothing
    assert put().json() == {"bindings": []}
    assert chain(mgmt) == []


def test_filters_pages_and_triggers(mgmt: Mgmt) -> None:
    create(mgmt, "one", "def on_execute_credentials_exchange(e, api):\n  pass\n")
    mgmt.call(
        "POST", "/actions/actions",
        json={"name": "login", "trigger": "post-login",
              "code": "def on_execute_post_login(event, api):\n  pass\n"},
    )  # fmt: skip
    listed = mgmt.call("GET", "/actions/actions?triggerId=post-login").json()
    assert [a["name"] for a in listed["actions"]] == ["login"]
    page = mgmt.call("GET", "/actions/actions?per_page=1&page=1").json()
    assert page["total"] == 2 and len(page["actions"]) == 1 and page["page"] == 1
    triggers = mgmt.call("GET", "/actions/triggers").json()["triggers"]
    cx = next(t for t in triggers if t["id"] == CX)
    assert cx["schema"]["entry_points"] == ["on_execute_credentials_exchange"]
    assert "access.deny" in cx["schema"]["api"] and cx["schema"]["event"]["sample"]
    assert mgmt.call("GET", "/actions/triggers/nope/bindings").status_code == 404
    assert mgmt.call("GET", "/actions/actions?trigger_id=nope").status_code == 400


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ("{not json", {"Content-Type": "application/json"}, 400),
        ("[1, 2]", {"Content-Type": "application/json"}, 400),
        ('{"name": "x"}', {"Content-Type": "text/plain"}, 415),
        ('{"name": "x", "code": "", "trigger": "nope"}', {"Content-Type": "application/json"}, 400),
        ('{"name": "x", "code": "def f(): pass", "trigger": "credentials-exchange"}',
         {"Content-Type": "application/json"}, 400),
        ('{"name": "x", "code": "x", "trigger": "credentials-exchange", "evil": 1}',
         {"Content-Type": "application/json"}, 400),
        ('{"name": 5, "code": "x", "trigger": "credentials-exchange"}',
         {"Content-Type": "application/json"}, 400),
        ('{"name": "x", "code": "def on_execute_credentials_exchange(e, a): pass",'
         ' "trigger": "credentials-exchange", "secrets": [{"name": "bad-name", "value": "v"}]}',
         {"Content-Type": "application/json"}, 400),
        ('{"name": "x", "code": "def on_execute_credentials_exchange(e, a): pass",'
         ' "trigger": "credentials-exchange", "dependencies": [{"name": "x; rm -rf /"}]}',
         {"Content-Type": "application/json"}, 400),
    ],
    ids=["bad-json", "not-object", "not-json-type", "unknown-trigger", "no-entry-point",
         "unknown-field", "wrong-type", "bad-secret-name", "bad-dependency"],
)  # fmt: skip
def test_bad_bodies_are_400_problems(
    mgmt: Mgmt, body: str, headers: dict[str, str], status: int
) -> None:
    resp = mgmt.call("POST", "/actions/actions", data=body, headers=headers)
    assert resp.status_code == status, resp.text
    problem = resp.json()
    assert problem["statusCode"] == status and problem["message"] and problem["error"]
    assert mgmt.call("GET", "/actions/actions").json()["total"] == 0  # nothing was written


def test_unknown_things_are_404_never_500(mgmt: Mgmt) -> None:
    aid = create(mgmt, "x", "def on_execute_credentials_exchange(e, api):\n  pass\n")["id"]
    for method, path in [
        ("GET", "/actions/actions/act_missing"),
        ("PATCH", "/actions/actions/act_missing"),
        ("DELETE", "/actions/actions/act_missing"),
        ("POST", "/actions/actions/act_missing/deploy"),
        ("GET", f"/actions/actions/{aid}/versions/7"),
        ("GET", f"/actions/actions/{aid}/versions/ver_nope"),
        ("POST", f"/actions/actions/{aid}/versions/99999999999999999999/deploy"),
        ("GET", "/actions/executions/exe_missing"),
        ("PATCH", f"/actions/triggers/{CX}/bindings/{aid}"),
        ("DELETE", f"/actions/triggers/{CX}/bindings/{aid}"),
        ("GET", "/actions/nothing-here"),
    ]:
        body = {"position": 1} if "/bindings/" in path else {}  # a body the route takes
        resp = mgmt.call(method, path, json=body)
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.headers["Content-Type"].startswith("application/json")


def test_a_rename_and_a_duplicate(mgmt: Mgmt) -> None:
    aid = create(mgmt, "first", "def on_execute_credentials_exchange(e, api):\n  pass\n")["id"]
    create(mgmt, "second", "def on_execute_credentials_exchange(e, api):\n  pass\n")
    assert mgmt.call("PATCH", f"/actions/actions/{aid}", json={"name": "second"}).status_code == 409
    resp = mgmt.call("PATCH", f"/actions/actions/{aid}", json={"name": "renamed"})
    assert resp.status_code == 200 and resp.json()["name"] == "renamed"
    resp = mgmt.call("PATCH", f"/actions/actions/{aid}", json={"trigger": "post-login"})
    assert resp.status_code == 400
    dup = mgmt.call(
        "POST", "/actions/actions",
        json={"name": "second", "trigger": CX,
              "code": "def on_execute_credentials_exchange(e, api):\n  pass\n"},
    )  # fmt: skip
    assert dup.status_code == 409


def test_logs_need_read_logs(mgmt: Mgmt) -> None:
    resp = mgmt.call("GET", "/logs?take=5")
    assert resp.status_code == 200 and isinstance(resp.json(), list)


def test_rollback_can_restore_the_draft(mgmt: Mgmt) -> None:
    aid = create(mgmt, "r", code("one"))["id"]
    mgmt.call("POST", f"/actions/actions/{aid}/deploy")
    mgmt.call("PATCH", f"/actions/actions/{aid}", json={"code": code("two")})
    mgmt.call("POST", f"/actions/actions/{aid}/deploy")
    resp = mgmt.call(
        "POST", f"/actions/actions/{aid}/versions/1/deploy", json={"update_draft": True}
    )
    assert resp.status_code == 200, resp.text
    got = mgmt.call("GET", f"/actions/actions/{aid}").json()
    assert "'one'" in got["code"] and got["all_changes_deployed"] is True
    bad = mgmt.call("POST", f"/actions/actions/{aid}/versions/1/deploy", json={"update_draft": 1})
    assert bad.status_code == 400


def test_allowed_to_fail_per_binding(mgmt: Mgmt) -> None:
    login = mgmt.call(
        "POST", "/actions/actions",
        json={"name": "soft", "trigger": "post-login",
              "code": "def on_execute_post_login(event, api):\n  pass\n"},
    ).json()  # fmt: skip
    mgmt.call("POST", f"/actions/actions/{login['id']}/deploy")
    resp = mgmt.call(
        "POST", "/actions/triggers/post-login/bindings",
        json={"action": "soft", "allowed_to_fail": True, "position": 99},
    )  # fmt: skip
    assert resp.status_code == 201 and resp.json()["allowed_to_fail"] is True
    resp = mgmt.call(
        "PATCH", "/actions/triggers/post-login/bindings/soft", json={"allowed_to_fail": False}
    )
    assert resp.status_code == 200 and resp.json()["allowed_to_fail"] is False
    cx = create(mgmt, "hard", code("x"))["id"]
    mgmt.call("POST", f"/actions/actions/{cx}/deploy")
    resp = mgmt.call(
        "POST", f"/actions/triggers/{CX}/bindings", json={"action": cx, "allowed_to_fail": True}
    )
    assert resp.status_code == 400 and "fails closed" in resp.json()["message"]
    # an action of another trigger cannot be bound here
    resp = mgmt.call("POST", f"/actions/triggers/{CX}/bindings", json={"action": "soft"})
    assert resp.status_code == 400
    assert (
        mgmt.call("PATCH", "/actions/triggers/post-login/bindings/soft", json={}).status_code == 400
    )


ODD_BODIES = [
    "null", "[]", '"text"', "1", '{"x": 1}', '{"bindings": "x"}', '{"bindings": [1]}',
    '{"bindings": [{"ref": 5}]}', '{"payload": 1}', '{"ref": "x"}', '{"position": -1}',
    '{"position": true}', '{"action": null}', '{"secrets": [{"name": "A", "value": 5}]}',
    '{"supported_triggers": [{"id": "post-login", "version": "v9"}]}', '{"dependencies": [{}]}',
    '{"code": 5}', '{"timeout_ms": 1e9}', '{"update_draft": "yes"}', '{"version": "1"}',
    '{"' + "a" * 5000 + '": 1}', "[" * 5000 + "]" * 5000,
]  # fmt: skip


def test_odd_bodies_never_500(mgmt: Mgmt) -> None:
    aid = create(mgmt, "odd", code("x"))["id"]
    mgmt.call("POST", f"/actions/actions/{aid}/deploy")
    mgmt.call("POST", f"/actions/triggers/{CX}/bindings", json={"action": aid})
    routes = [
        ("POST", "/actions/actions"),
        ("PATCH", f"/actions/actions/{aid}"),
        ("POST", f"/actions/actions/{aid}/deploy"),
        ("POST", f"/actions/actions/{aid}/versions/1/deploy"),
        ("POST", f"/actions/actions/{aid}/test"),
        ("PATCH", f"/actions/triggers/{CX}/bindings"),
        ("POST", f"/actions/triggers/{CX}/bindings"),
        ("PATCH", f"/actions/triggers/{CX}/bindings/{aid}"),
    ]
    for method, path in routes:
        for raw in ODD_BODIES:
            resp = mgmt.call(method, path, data=raw, headers={"Content-Type": "application/json"})
            assert resp.status_code < 500, (method, path, raw[:40], resp.text)
            if resp.status_code >= 400:
                assert resp.json()["statusCode"] == resp.status_code
    assert chain(mgmt) == ["odd"]
