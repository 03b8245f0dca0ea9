"""``dpop_bound_access_tokens`` (RFC 9449 §5.2) through the clients API and the CLI, and the
management API's refusal of a DPoP-bound token presented as Bearer (§7.2)."""

from __future__ import annotations

from typing import Any

from tests import factories
from tests.actions.test_lifecycle import idp
from tests.conformance._dpop_helpers import cc_token, new_key, proof
from tests.conformance._token_helpers import assert_oauth_error
from tests.management.conftest import Mgmt


def _m2m_via_api(
    mgmt: Mgmt, op: Any, **fields: Any
) -> tuple[factories.TestClient, str, dict[str, Any]]:
    resp = mgmt.call("POST", "/clients", json={"name": f"robot {new_key().thumbprint()[:8]}",
                                               "app_type": "non_interactive", **fields})  # fmt: skip
    assert resp.status_code == 201, resp.text
    made = resp.json()
    audience = op.factory.gen_api()
    op.factory.gen_client_grant(made["client_id"], audience, ["read:things"])
    return factories.TestClient(made["client_id"], made["client_secret"], None), audience, made


def test_clients_api_sets_and_clears_dpop_bound_access_tokens(mgmt: Mgmt, op: Any) -> None:
    client, audience, made = _m2m_via_api(mgmt, op, dpop_bound_access_tokens=True)
    assert made["dpop_bound_access_tokens"] is True
    assert mgmt.call("GET", f"/clients/{client.client_id}").json()["dpop_bound_access_tokens"]
    assert_oauth_error(cc_token(op.url, client, audience, None), 400, "invalid_dpop_proof")
    dpop = proof(new_key(), "POST", f"{op.url}/oauth/token")
    assert cc_token(op.url, client, audience, dpop).json()["token_type"] == "DPoP"

    resp = mgmt.call("PATCH", f"/clients/{client.client_id}",
                     json={"dpop_bound_access_tokens": False})  # fmt: skip
    assert resp.status_code == 200 and resp.json()["dpop_bound_access_tokens"] is False
    resp = cc_token(op.url, client, audience, None)
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer", resp.text


def test_clients_api_defaults_and_validates_the_flag(mgmt: Mgmt, op: Any) -> None:
    _client, _audience, made = _m2m_via_api(mgmt, op)
    assert made["dpop_bound_access_tokens"] is False
    resp = mgmt.call("POST", "/clients", json={"name": "bad flag", "app_type": "spa",
                                               "dpop_bound_access_tokens": "sometimes"})  # fmt: skip
    assert resp.status_code == 400 and "dpop_bound_access_tokens" in resp.json()["message"]


def test_management_api_refuses_a_dpop_bound_token_as_bearer(mgmt: Mgmt, op: Any) -> None:
    dpop = proof(new_key(), "POST", f"{op.url}/oauth/token")
    resp = cc_token(op.url, mgmt.client, mgmt.audience, dpop)
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.text
    refused = mgmt.call("GET", "/clients", token=resp.json()["access_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert mgmt.call("GET", "/clients").status_code == 200  # a Bearer token still works


def test_cli_creates_a_client_requiring_dpop(op: Any) -> None:
    made = idp(op, "clients", "create", "--name", "Device app", "--type", "native",
               "--redirect-uri", "http://127.0.0.1/cb", "--dpop-bound-access-tokens")  # fmt: skip
    assert made["dpop_bound_access_tokens"] is True
    plain = idp(op, "clients", "create", "--name", "Plain app", "--type", "m2m")
    assert plain["dpop_bound_access_tokens"] is False
    listed = {c["client_id"]: c for c in idp(op, "clients", "list")}
    assert listed[made["client_id"]]["dpop_bound_access_tokens"] is True
    cid = plain["client_id"]
    on = idp(op, "clients", "update", cid, "--dpop-bound-access-tokens")
    assert on["dpop_bound_access_tokens"] is True
    off = idp(op, "clients", "update", cid, "--no-dpop-bound-access-tokens")
    assert off["dpop_bound_access_tokens"] is False
