"""``/api/v2/actions`` with dependencies (issue 11): a deploy answers at once with the version
``building`` while pip still runs (its package's build waits at a gate the test holds shut),
binding it (POST or the whole-list PATCH), rolling back to it or testing it is a 409 until it is
``built``; a failed build says why, with pip's output in Auth0's ``errors``."""

from __future__ import annotations

from typing import Any

import pytest

from idp.actions import build
from tests.actions.gated import CX, GATED_ACTION, Gate
from tests.helpers import jwt_parts
from tests.management.conftest import Mgmt
from tests.management.test_actions_api import create, m2m_token

pytestmark = pytest.mark.usefixtures("fresh_chain")

SECRET = "s3cr3t-build-4b7c"
DEP = [{"name": "idp-gate-dep", "version": "1.0"}]
PLAIN = (
    "def on_execute_credentials_exchange(event, api):\n"
    "    api.access_token.set_custom_claim('https://x/v', 'plain')\n"
)


def claim(op: Any, client: Any, audience: str) -> Any:
    resp = m2m_token(op, client, audience)
    assert resp.status_code == 200, resp.text
    return jwt_parts(resp.json()["access_token"])[1].get("https://x/v")


def refused(resp: Any, *words: str) -> None:
    assert resp.status_code == 409, resp.text
    body = resp.json()
    assert body["statusCode"] == 409 and body["errorCode"] == "action_not_built"
    for word in words:
        assert word in body["message"]


def test_deploy_answers_building_and_the_version_is_bound_once_built(
    mgmt: Mgmt, op: Any, gate: Gate
) -> None:
    client, audience = op.factory.m2m()
    token = mgmt.token()  # before anything is bound (the chain runs for our tokens too)
    aid = create(mgmt, "gated", GATED_ACTION, dependencies=DEP)["id"]

    resp = mgmt.call("POST", f"/actions/actions/{aid}/deploy", token=token)
    assert resp.status_code == 200, resp.text
    v1 = resp.json()  # answered while pip waits at the gate
    assert (v1["status"], v1["deployed"], v1["errors"]) == ("building", False, [])
    action = mgmt.call("GET", f"/actions/actions/{aid}", token=token).json()
    assert action["status"] == "building" and action["deployed_version"] is None

    still = ("dependencies are still being installed",)
    bindings = f"/actions/triggers/{CX}/bindings"
    refused(mgmt.call("POST", bindings, token=token, json={"action": aid}), *still)
    whole = {"bindings": [{"ref": {"type": "action_id", "value": aid}}]}
    refused(mgmt.call("PATCH", bindings, token=token, json=whole), *still)
    rollback = f"/actions/actions/{aid}/versions/{v1['id']}/deploy"
    refused(mgmt.call("POST", rollback, token=token), *still)
    test = f"/actions/actions/{aid}/test"
    refused(mgmt.call("POST", test, token=token, json={"version": 1}), *still)
    assert mgmt.call("GET", bindings, token=token).json()["bindings"] == []

    gate.open()
    assert build.wait(300), "the build did not end"
    got = mgmt.call("GET", f"/actions/actions/{aid}/versions/{v1['id']}", token=token).json()
    assert (got["status"], got["deployed"], got["errors"]) == ("built", True, [])
    action = mgmt.call("GET", f"/actions/actions/{aid}", token=token).json()
    assert action["status"] == "built" and action["deployed_version"]["number"] == 1

    resp = mgmt.call("POST", bindings, token=token, json={"action": aid})
    assert resp.status_code == 201, resp.text
    assert claim(op, client, audience) == "gated"


def test_a_failed_build_is_reported_and_refused(mgmt: Mgmt, op: Any, gate: Gate) -> None:
    client, audience = op.factory.m2m()
    token = mgmt.token()
    secrets = [{"name": "API_KEY", "value": SECRET}]
    aid = create(mgmt, "broken", GATED_ACTION, dependencies=DEP, secrets=secrets)["id"]
    v1 = mgmt.call("POST", f"/actions/actions/{aid}/deploy", token=token).json()
    assert v1["status"] == "building"

    gate.open(f"fail: {SECRET}")  # the package's build prints the secret, then fails
    assert build.wait(300), "the build did not end"
    got = mgmt.call("GET", f"/actions/actions/{aid}/versions/1", token=token).json()
    assert (got["status"], got["deployed"]) == ("failed", False)
    [error] = got["errors"]
    assert error["id"] == "dependency_install_failed"
    assert "pip exited with status 1" in error["msg"] and "refused by the gate" in error["msg"]
    assert "[secret API_KEY]" in error["msg"]
    action = mgmt.call("GET", f"/actions/actions/{aid}", token=token).json()
    assert action["status"] == "failed" and action["deployed_version"] is None

    bindings = f"/actions/triggers/{CX}/bindings"
    why = ("failed to build", "pip exited with status 1", "refused by the gate")
    refused(mgmt.call("POST", bindings, token=token, json={"action": "broken"}), *why)
    whole = {"bindings": [{"ref": {"type": "action_name", "value": "broken"}}]}
    refused(mgmt.call("PATCH", bindings, token=token, json=whole), *why)
    refused(mgmt.call("POST", f"/actions/actions/{aid}/versions/1/deploy", token=token), *why)
    assert claim(op, client, audience) is None  # nothing bound, nothing ran

    # Without the dependency the next version is built at once, live, and can be bound.
    resp = mgmt.call(
        "PATCH", f"/actions/actions/{aid}", token=token, json={"code": PLAIN, "dependencies": []}
    )
    assert resp.status_code == 200, resp.text
    v2 = mgmt.call("POST", f"/actions/actions/{aid}/deploy", token=token).json()
    assert (v2["number"], v2["status"], v2["deployed"]) == (2, "built", True)
    assert mgmt.call("POST", bindings, token=token, json={"action": aid}).status_code == 201
    assert claim(op, client, audience) == "plain"
    assert not any(SECRET in seen for seen in mgmt.seen)


def test_a_build_that_ends_after_a_later_deploy_does_not_go_live(
    mgmt: Mgmt, op: Any, gate: Gate
) -> None:
    client, audience = op.factory.m2m()
    token = mgmt.token()
    aid = create(mgmt, "raced", PLAIN)["id"]
    assert mgmt.call("POST", f"/actions/actions/{aid}/deploy", token=token).status_code == 200
    bindings = f"/actions/triggers/{CX}/bindings"
    assert mgmt.call("POST", bindings, token=token, json={"action": aid}).status_code == 201

    path = f"/actions/actions/{aid}"
    mgmt.call("PATCH", path, token=token, json={"code": GATED_ACTION, "dependencies": DEP})
    v2 = mgmt.call("POST", f"{path}/deploy", token=token).json()
    assert v2["status"] == "building"
    assert claim(op, client, audience) == "plain"  # version 1 serves while 2 builds
    mgmt.call("PATCH", path, token=token, json={"code": PLAIN.replace("plain", "v3"),
                                               "dependencies": []})  # fmt: skip
    v3 = mgmt.call("POST", f"{path}/deploy", token=token).json()
    assert (v3["status"], v3["deployed"]) == ("built", True)

    gate.open()
    assert build.wait(300), "the build did not end"
    got = mgmt.call("GET", f"{path}/versions/2", token=token).json()
    assert (got["status"], got["deployed"]) == ("built", False)  # the later deploy stands
    assert claim(op, client, audience) == "v3"
    resp = mgmt.call("POST", f"{path}/versions/2/deploy", token=token)  # built: allowed
    assert resp.status_code == 200 and resp.json()["deployed"] is True
    assert claim(op, client, audience) == "gated"
