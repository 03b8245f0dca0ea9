"""The token-exchange grant type (RFC 8693) is an opt-in of confidential applications, in the
clients API and the CLI: never given by default, refused to public apps."""

from __future__ import annotations

from typing import Any

from tests.actions.test_lifecycle import idp, idp_fails
from tests.management.conftest import Mgmt

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"


def test_the_api_allows_it_to_confidential_apps_only_when_asked(mgmt: Mgmt) -> None:
    web = mgmt.call(
        "POST", "/clients", json={"name": "gateway", "callbacks": ["https://g.test/cb"]}
    )
    assert web.status_code == 201, web.text
    assert GRANT not in web.json()["grant_types"]  # not by default
    cid = web.json()["client_id"]
    changed = mgmt.call(
        "PATCH", f"/clients/{cid}", json={"grant_types": ["authorization_code", GRANT]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["grant_types"] == ["authorization_code", GRANT]
    m2m = mgmt.call("POST", "/clients", json={"name": "worker", "app_type": "non_interactive",
                                              "grant_types": ["client_credentials", GRANT]})  # fmt: skip
    assert m2m.status_code == 201 and m2m.json()["grant_types"] == ["client_credentials", GRANT]
    spa = mgmt.call("POST", "/clients", json={"name": "browser", "app_type": "spa",
                                              "callbacks": ["https://s.test/cb"],
                                              "grant_types": ["authorization_code", GRANT]})  # fmt: skip
    assert spa.status_code == 400 and "grant_types of a spa app" in spa.json()["message"]


def test_the_cli_sets_the_whole_list(op: Any) -> None:
    made = idp(op, "clients", "create", "--name", "cli-gateway", "--type", "m2m")
    assert made["grant_types"] == ["client_credentials"]
    cid = made["client_id"]
    changed = idp(op, "clients", "update", cid, "--grant-type", "client_credentials",
                  "--grant-type", GRANT)  # fmt: skip
    assert changed["grant_types"] == ["client_credentials", GRANT]
    refused = idp_fails(op, "clients", "update", cid, "--grant-type", "authorization_code")
    assert "grant_types of a m2m app" in refused
