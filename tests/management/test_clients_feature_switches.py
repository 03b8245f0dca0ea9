"""A client setting whose feature is switched off is refused by the clients API and the CLI
(idp.oauth.client_features): ``dpop_bound_access_tokens`` while ``DPOP_ENABLED`` is off, the
device-code grant while ``DEVICE_FLOW_ENABLED`` is off, a ``backchannel_logout_uri`` while
``BACKCHANNEL_LOGOUT_ENABLED`` is off. A client that had it before the switch
went off keeps it, and the token endpoint names the switch to it. Token exchange, which has no
switch, may be configured at any time and is refused at use while no action is bound."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from idp.extensions import db
from idp.oauth import service as oauth
from idp.oauth.device_models import DEVICE_GRANT
from tests.actions.test_lifecycle import idp, idp_fails
from tests.conformance._dpop_helpers import cc_token, new_key, proof
from tests.conformance._token_helpers import assert_oauth_error
from tests.conftest import LiveServer, build_app, serving
from tests.management.conftest import ALL, Mgmt, grant

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
BCL = "https://w.test/bcl"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """DPoP, the device flow and back-channel logout off, for the server and for the CLI
    (config.toml)."""
    tmp = tmp_path_factory.mktemp("switches")
    (tmp / "config.toml").write_text("dpop_enabled = false\ndevice_flow_enabled = false\n"
                                     "backchannel_logout_enabled = false\n")  # fmt: skip
    with serving(lambda port: build_app(tmp, port, DPOP_ENABLED=False,
                                        BACKCHANNEL_LOGOUT_ENABLED=False)) as server:  # fmt: skip
        yield server


@pytest.fixture
def mgmt(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ALL), ALL, [])


def _refused(resp: requests.Response, field: str, switch: str) -> None:
    """Auth0's problem shape, the field first and the switch named."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["statusCode"] == 400 and body["error"] == "Bad Request", body
    assert body["errorCode"] == "invalid_body", body
    assert body["message"].startswith(f"{field}: ") and switch in body["message"], body


def _web(mgmt: Mgmt, name: str, **fields: Any) -> requests.Response:
    return mgmt.call("POST", "/clients", json={"name": name, "callbacks": ["https://w.test/cb"],
                                               **fields})  # fmt: skip


def test_the_api_refuses_dpop_bound_clients_while_dpop_is_off(mgmt: Mgmt) -> None:
    made = mgmt.call("POST", "/clients", json={"name": "dpop robot", "app_type": "non_interactive",
                                               "dpop_bound_access_tokens": True})  # fmt: skip
    _refused(made, "dpop_bound_access_tokens", "DPOP_ENABLED")
    assert all(c["name"] != "dpop robot" for c in mgmt.call("GET", "/clients").json())
    plain = _web(mgmt, "plain web")
    assert plain.status_code == 201, plain.text
    cid = plain.json()["client_id"]
    patched = mgmt.call("PATCH", f"/clients/{cid}", json={"dpop_bound_access_tokens": True})
    _refused(patched, "dpop_bound_access_tokens", "DPOP_ENABLED")
    assert mgmt.call("GET", f"/clients/{cid}").json()["dpop_bound_access_tokens"] is False
    off = mgmt.call("PATCH", f"/clients/{cid}", json={"dpop_bound_access_tokens": False})
    assert off.status_code == 200, off.text


def test_the_api_refuses_the_device_grant_while_the_device_flow_is_off(mgmt: Mgmt) -> None:
    _refused(_web(mgmt, "tv web", grant_types=["authorization_code", DEVICE_GRANT]),
             "grant_types", "DEVICE_FLOW_ENABLED")  # fmt: skip
    made = _web(mgmt, "kiosk web")
    assert made.status_code == 201, made.text
    cid = made.json()["client_id"]
    patched = mgmt.call("PATCH", f"/clients/{cid}",
                        json={"grant_types": ["authorization_code", DEVICE_GRANT]})  # fmt: skip
    _refused(patched, "grant_types", "DEVICE_FLOW_ENABLED")
    assert DEVICE_GRANT not in mgmt.call("GET", f"/clients/{cid}").json()["grant_types"]


def test_the_api_refuses_a_backchannel_logout_uri_while_it_is_off(mgmt: Mgmt, op: Any) -> None:
    _refused(_web(mgmt, "bcl web", backchannel_logout_uri=BCL),
             "backchannel_logout_uri", "BACKCHANNEL_LOGOUT_ENABLED")  # fmt: skip
    assert all(c["name"] != "bcl web" for c in mgmt.call("GET", "/clients").json())
    made = _web(mgmt, "quiet web")
    assert made.status_code == 201, made.text
    cid = made.json()["client_id"]
    patched = mgmt.call("PATCH", f"/clients/{cid}", json={"backchannel_logout_uri": BCL})
    _refused(patched, "backchannel_logout_uri", "BACKCHANNEL_LOGOUT_ENABLED")
    assert mgmt.call("GET", f"/clients/{cid}").json()["backchannel_logout_uri"] is None

    kept = _made_while_on(op, backchannel_logout_uri=BCL)  # set while it was on
    resent = mgmt.call("PATCH", f"/clients/{kept.client_id}",
                       json={"name": "kept bcl", "backchannel_logout_uri": BCL})  # fmt: skip
    assert resent.status_code == 200 and resent.json()["backchannel_logout_uri"] == BCL, resent.text
    moved = mgmt.call("PATCH", f"/clients/{kept.client_id}",
                      json={"backchannel_logout_uri": BCL + "2"})  # fmt: skip
    _refused(moved, "backchannel_logout_uri", "BACKCHANNEL_LOGOUT_ENABLED")
    removed = mgmt.call("PATCH", f"/clients/{kept.client_id}",
                        json={"backchannel_logout_uri": None})  # fmt: skip
    assert removed.status_code == 200 and removed.json()["backchannel_logout_uri"] is None


def test_token_exchange_is_configured_and_refused_at_use(mgmt: Mgmt, op: Any) -> None:
    made = mgmt.call("POST", "/clients", json={"name": "exchanger", "app_type": "non_interactive",
                                               "grant_types": [TOKEN_EXCHANGE]})  # fmt: skip
    assert made.status_code == 201 and made.json()["grant_types"] == [TOKEN_EXCHANGE], made.text
    resp = requests.post(f"{op.url}/oauth/token", data={"grant_type": TOKEN_EXCHANGE},
                         auth=(made.json()["client_id"], made.json()["client_secret"]),
                         timeout=30)  # fmt: skip
    assert_oauth_error(resp, 400, "unsupported_grant_type")


def _made_while_on(op: Any, **settings: Any) -> Any:
    """A client given a setting while its feature was on (straight through the service)."""
    client = op.factory.gen_client(settings.pop("app_type", "regular_web"))
    with op.app.app_context():
        row = oauth.update_client(db.session, client.client_id,
                                  grant_types=settings.pop("grant_types", None))  # fmt: skip
        for name, value in settings.items():
            setattr(row, name, value)
        db.session.commit()
    return client


def test_a_client_that_had_the_settings_keeps_them_and_is_told_the_switch(
    mgmt: Mgmt, op: Any
) -> None:
    kept = _made_while_on(op, grant_types=["authorization_code", DEVICE_GRANT])
    resent = mgmt.call("PATCH", f"/clients/{kept.client_id}",
                       json={"name": "kept tv", "grant_types": ["authorization_code",
                                                                DEVICE_GRANT]})  # fmt: skip
    assert resent.status_code == 200 and DEVICE_GRANT in resent.json()["grant_types"], resent.text
    device = requests.post(f"{op.url}/oauth/token", auth=kept.basic, timeout=30,
                           data={"grant_type": DEVICE_GRANT, "device_code": "x"})  # fmt: skip
    assert_oauth_error(device, 400, "unsupported_grant_type")

    robot = _made_while_on(op, app_type="m2m", dpop_bound_access_tokens=True)
    audience = op.factory.gen_api()
    op.factory.gen_client_grant(robot.client_id, audience, ["read:things"])
    renamed = mgmt.call("PATCH", f"/clients/{robot.client_id}", json={"name": "kept robot"})
    assert renamed.status_code == 200 and renamed.json()["dpop_bound_access_tokens"] is True
    dpop = proof(new_key(), "POST", f"{op.url}/oauth/token")
    for header in (None, dpop):  # no proof could help: DPoP is off
        resp = cc_token(op.url, robot, audience, header)
        assert_oauth_error(resp, 400, "unauthorized_client")
        description = resp.json()["error_description"]
        assert "DPOP_ENABLED" in description and "dpop_bound_access_tokens" in description
    cleared = mgmt.call("PATCH", f"/clients/{robot.client_id}",
                        json={"dpop_bound_access_tokens": False})  # fmt: skip
    assert cleared.status_code == 200, cleared.text
    resp = cc_token(op.url, robot, audience, None)
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer", resp.text


def test_the_cli_refuses_them_too(op: Any) -> None:
    refused = idp_fails(op, "clients", "create", "--name", "cli robot", "--type", "m2m",
                        "--dpop-bound-access-tokens")  # fmt: skip
    assert "dpop_bound_access_tokens: " in refused and "DPOP_ENABLED" in refused
    made = idp(op, "clients", "create", "--name", "cli tv", "--type", "native",
               "--redirect-uri", "com.example.tv:/cb")  # fmt: skip
    refused = idp_fails(op, "clients", "update", made["client_id"], "--grant-type",
                        "authorization_code", "--grant-type", DEVICE_GRANT)  # fmt: skip
    assert "grant_types: " in refused and "DEVICE_FLOW_ENABLED" in refused
    refused = idp_fails(op, "clients", "update", made["client_id"], "--dpop-bound-access-tokens")
    assert "DPOP_ENABLED" in refused
    refused = idp_fails(op, "clients", "create", "--name", "cli bcl", "--type", "regular_web",
                        "--redirect-uri", "https://w.test/cb", "--backchannel-logout-uri", BCL)  # fmt: skip
    assert "backchannel_logout_uri: " in refused and "BACKCHANNEL_LOGOUT_ENABLED" in refused
    refused = idp_fails(op, "clients", "backchannel-logout", made["client_id"], "--uri", BCL)
    assert "backchannel_logout_uri: " in refused and "BACKCHANNEL_LOGOUT_ENABLED" in refused
    kept = idp(op, "clients", "update", made["client_id"], "--grant-type", "refresh_token")
    assert kept["grant_types"] == ["refresh_token"] and not kept["dpop_bound_access_tokens"]
