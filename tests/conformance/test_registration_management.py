"""Client registration management (RFC 7592): read (§2.1), replace with the registration
access token rotated (§2.2), delete with the client's tokens revoked (§2.3); a wrong or missing
token is 401 invalid_token (§2.1, RFC 6750 §3.1); single use under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from idp.extensions import db
from idp.oauth.models import Client
from idp.oauth.registration_models import ClientRegistration
from tests.conformance._registration_helpers import (
    RP,
    initial_token,
    manage,
    register,
    web_client,
)
from tests.conformance._registration_helpers import reg as reg  # the fixture
from tests.factories import TestClient as RegisteredClient
from tests.helpers import Browser, auth_params, pkce, redeem


def _registered(server: Any, **extra: Any) -> dict[str, Any]:
    resp = register(server, web_client(**extra))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _metadata(answer: dict[str, Any]) -> dict[str, Any]:
    server_set = {"registration_access_token", "registration_client_uri", "client_secret",
                  "client_secret_expires_at", "client_id_issued_at"}  # fmt: skip
    return {k: v for k, v in answer.items() if k not in server_set}


def test_read(reg):
    answer = _registered(reg, contacts=["ops@rp.test"])
    resp = manage("GET", answer)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    read = resp.json()
    assert _metadata(read) == _metadata(answer)
    assert read["registration_client_uri"] == answer["registration_client_uri"]
    assert "client_secret" not in read and "registration_access_token" not in read


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_wrong_or_missing_token_is_invalid_token(reg, method, token):
    answer = _registered(reg)
    resp = manage(method, answer, token=token or "", json=_metadata(answer))
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_another_clients_token_or_an_unknown_client_is_invalid_token(reg):
    one, other = _registered(reg), _registered(reg)
    assert manage("GET", one, token=other["registration_access_token"]).status_code == 401
    ghost = dict(one, registration_client_uri=f"{reg.url}/oauth/register/nosuchclient")
    assert manage("GET", ghost).status_code == 401  # §2.1: no hint the id does not exist


def test_an_operator_made_client_cannot_be_managed(reg):
    client = reg.factory.gen_client()
    fake = {"registration_client_uri": f"{reg.url}/oauth/register/{client.client_id}",
            "registration_access_token": client.client_secret}  # fmt: skip
    assert manage("GET", fake).status_code == 401


def test_replace_rotates_the_token_and_keeps_the_secret(reg):
    answer = _registered(reg, contacts=["ops@rp.test"])
    new = _metadata(answer) | {"client_name": "Renamed", "redirect_uris": [RP, RP + "2"],
                               "client_secret": answer["client_secret"]}  # fmt: skip
    del new["contacts"]  # omitted: removed (§2.2)
    resp = manage("PUT", answer, json=new)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["client_name"] == "Renamed" and body["redirect_uris"] == [RP, RP + "2"]
    assert "contacts" not in body and "client_secret" not in body
    assert body["registration_access_token"] != answer["registration_access_token"]
    assert manage("GET", answer).status_code == 401  # the old token is gone
    assert manage("GET", body).status_code == 200
    with reg.app.app_context():
        client = db.session.get(Client, answer["client_id"])
        assert client is not None and client.name == "Renamed"
    # the secret still works: a full login with it
    client_ = RegisteredClient(answer["client_id"], answer["client_secret"], RP + "2")
    verifier, challenge = pkce()
    result = Browser(reg.url).authorize(auth_params(client_, challenge), reg.factory.gen_user(),
                                        consent="allow")  # fmt: skip
    assert redeem(reg.url, client_, result.code or "", verifier).status_code == 200


UPDATE_REFUSALS = [
    ({"client_id": "someone-else"}, "invalid_client_metadata", "client_id"),
    ({"client_secret": "a-new-secret"}, "invalid_client_metadata", "client_secret"),
    ({"registration_access_token": "x"}, "invalid_client_metadata", "registration_access_token"),
    ({"client_id_issued_at": 1}, "invalid_client_metadata", "client_id_issued_at"),
    ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata", "application_type"),
    ({"application_type": "native"}, "invalid_client_metadata", "token_endpoint_auth_method"),
    ({"redirect_uris": ["http://rp.test/cb"]}, "invalid_redirect_uri", "redirect_uris"),
    ({"grant_types": ["implicit"]}, "invalid_client_metadata", "grant_types"),
    ({"token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata",
     "token_endpoint_auth_method"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "error", "field"), UPDATE_REFUSALS,
                         ids=[c[2] for c in UPDATE_REFUSALS])  # fmt: skip
def test_replace_validates_as_registration_does(reg, change, error, field):
    answer = _registered(reg)
    resp = manage("PUT", answer, json=_metadata(answer) | change)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == error
    assert resp.json()["error_description"].startswith(f"{field}:"), resp.json()
    assert manage("GET", answer).json()["client_name"] == answer["client_name"]  # unchanged


def test_delete_removes_the_client_and_revokes_its_tokens(reg):
    answer = _registered(reg, grant_types=["authorization_code", "refresh_token"])
    client = RegisteredClient(answer["client_id"], answer["client_secret"], RP)
    verifier, challenge = pkce()
    result = Browser(reg.url).authorize(
        auth_params(client, challenge, scope="openid offline_access"), reg.factory.gen_user(),
        consent="allow")  # fmt: skip
    tokens = redeem(reg.url, client, result.code or "", verifier).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(f"{reg.url}/userinfo", headers=bearer, timeout=10).status_code == 200
    assert manage("DELETE", answer).status_code == 204
    assert requests.get(f"{reg.url}/userinfo", headers=bearer, timeout=10).status_code == 401
    refreshed = requests.post(f"{reg.url}/oauth/token", auth=client.basic, timeout=10,
                              data={"grant_type": "refresh_token",
                                    "refresh_token": tokens["refresh_token"]})  # fmt: skip
    assert refreshed.status_code in (400, 401)
    assert manage("GET", answer).status_code == 401
    with reg.app.app_context():
        assert db.session.get(Client, answer["client_id"]) is None
        assert db.session.get(ClientRegistration, answer["client_id"]) is None


def test_an_initial_token_with_one_use_registers_one_client_under_concurrency(reg):
    token = initial_token(reg, max_uses=1)
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: register(reg, web_client(), token=token).status_code,
                              range(6)))  # fmt: skip
    assert sorted(codes) == [201] + [401] * 5, codes


def test_concurrent_updates_with_one_token_one_wins(reg):
    answer = _registered(reg)
    body = _metadata(answer)
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: manage("PUT", answer, json=body).status_code, range(4)))
    assert sorted(codes) == [200, 401, 401, 401], codes
