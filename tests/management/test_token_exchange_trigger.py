"""The custom-token-exchange trigger is published like the others (``/api/v2/actions/triggers``,
whose schema the console's editor completes from) and its sample event runs in the test runner."""

from __future__ import annotations

from typing import Any

import pytest

from tests.management.conftest import Mgmt

CTE = "custom-token-exchange"


@pytest.fixture(autouse=True)
def _no_chain_left(op: Any) -> Any:
    yield
    op.factory.clear_actions()  # a bound chain would switch the grant on for other modules


def test_the_trigger_publishes_its_schema(mgmt: Mgmt) -> None:
    triggers = mgmt.call("GET", "/actions/triggers").json()["triggers"]
    schema = next(t for t in triggers if t["id"] == CTE)["schema"]
    assert schema["entry_points"] == ["on_execute_custom_token_exchange"] and schema["blocking"]
    for method in ("authentication.set_user_by_id", "access.reject_invalid_subject_token",
                   "access.deny", "access_token.set_custom_claim", "cache.get", "http.get"):  # fmt: skip
        assert method in schema["api"], method
    assert "redirect.send_user_to" not in schema["api"]
    transaction = schema["event"]["sample"]["transaction"]
    assert {"subject_token", "subject_token_type", "subject_token_claims", "actor_token",
            "actor_token_type", "requested_scopes"} <= set(transaction)  # fmt: skip
    assert "transaction" in schema["event"]["fields"]


def test_the_sample_event_runs_in_the_test_runner(mgmt: Mgmt) -> None:
    code = (
        "def on_execute_custom_token_exchange(event, api):\n"
        "    api.authentication.set_user_by_id(event.transaction.subject_token_claims.sub)\n"
    )
    made = mgmt.call("POST", "/actions/actions", json={
        "name": "exchange", "supported_triggers": [{"id": CTE, "version": "v1"}], "code": code})  # fmt: skip
    assert made.status_code == 201, made.text
    test = mgmt.call("POST", f"/actions/actions/{made.json()['id']}/test", json={})
    assert test.status_code == 200, test.text
    result = test.json()["payload"]
    assert result["error"] is None, result
    assert result["commands"] == [{"op": "authentication.set_user_by_id",
                                   "args": ["usr_0d1f2e3c4b5a"], "kwargs": {}}]  # fmt: skip
    assert result["effects"]["user_id"] == "usr_0d1f2e3c4b5a"
