"""The device-code grant type (RFC 8628) is an opt-in of the apps a person signs in to
(``regular_web``, ``native``), in the clients API and the CLI: never given by default,
refused to ``spa`` and machine apps. The flow is on here (with it off the grant is refused:
test_clients_feature_switches.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.actions.test_lifecycle import idp, idp_fails
from tests.conftest import LiveServer, build_app, serving
from tests.management.conftest import Mgmt

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The device flow on, for the server and for the CLI (config.toml)."""
    tmp = tmp_path_factory.mktemp("device-grant")
    (tmp / "config.toml").write_text("device_flow_enabled = true\n")
    with serving(lambda port: build_app(tmp, port)) as server:
        yield server


def test_the_api_allows_it_to_web_and_native_apps_when_asked(mgmt: Mgmt) -> None:
    tv = mgmt.call("POST", "/clients", json={"name": "tv app", "app_type": "native",
                                             "callbacks": ["com.example.tv:/cb"]})  # fmt: skip
    assert tv.status_code == 201, tv.text
    assert GRANT not in tv.json()["grant_types"]  # not by default
    cid = tv.json()["client_id"]
    changed = mgmt.call("PATCH", f"/clients/{cid}", json={"grant_types": ["refresh_token", GRANT]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["grant_types"] == ["refresh_token", GRANT]
    web = mgmt.call("POST", "/clients", json={"name": "kiosk", "callbacks": ["https://k.test/cb"],
                                              "grant_types": ["authorization_code", GRANT]})  # fmt: skip
    assert web.status_code == 201 and web.json()["grant_types"] == ["authorization_code", GRANT]
    spa = mgmt.call("POST", "/clients", json={"name": "browser tv", "app_type": "spa",
                                              "callbacks": ["https://s.test/cb"],
                                              "grant_types": ["authorization_code", GRANT]})  # fmt: skip
    assert spa.status_code == 400 and "grant_types of a spa app" in spa.json()["message"]
    m2m = mgmt.call("POST", "/clients", json={"name": "machine tv", "app_type": "non_interactive",
                                              "grant_types": [GRANT]})  # fmt: skip
    assert m2m.status_code == 400 and "grant_types of a m2m app" in m2m.json()["message"]


def test_the_cli_sets_it(op: Any) -> None:
    made = idp(op, "clients", "create", "--name", "cli-tv", "--type", "native",
               "--redirect-uri", "com.example.tv:/cb")  # fmt: skip
    assert GRANT not in made["grant_types"]
    changed = idp(op, "clients", "update", made["client_id"], "--grant-type", "refresh_token",
                  "--grant-type", GRANT)  # fmt: skip
    assert changed["grant_types"] == ["refresh_token", GRANT]
    spa = idp(op, "clients", "create", "--name", "cli-spa", "--type", "spa",
              "--redirect-uri", "https://s.test/cb")  # fmt: skip
    refused = idp_fails(op, "clients", "update", spa["client_id"], "--grant-type", GRANT)
    assert "grant_types of a spa app" in refused
