"""claims and response_mode=form_post inside a request object (RFC 9101 §4: a request object's
``claims`` is a JSON object, not a string) and a pushed request (RFC 9126): the resolved
parameters decide, the query's are ignored (RFC 9101 §6.3), errors included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conformance._jwt_client_helpers import jwks_of, register, rsa_key
from tests.conformance.test_jar_par import Rp, request_object
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, auth_params, hidden_inputs, jwt_parts, pkce


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port)) as server:
        yield server


@pytest.fixture(scope="module")
def rp(op: LiveServer) -> Rp:
    key = rsa_key()
    client_id, secret = register(op, app_type="regular_web", jwks=jwks_of(key))
    return Rp(client_id, secret, key)


def _redeem(op: LiveServer, rp: Rp, code: str, verifier: str) -> dict[str, Any]:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier}  # fmt: skip
    resp = requests.post(
        f"{op.url}/oauth/token", data=data, auth=(rp.client_id, rp.client_secret), timeout=10
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _form_fields(page: str) -> dict[str, str]:
    assert re.search(r'<form id="form-post" method="post" action="https://rp\.test/cb"', page)
    return hidden_inputs(page)


def test_claims_object_and_form_post_in_a_request_object(op, rp):
    user = op.factory.gen_user()
    verifier, challenge = pkce()
    params = auth_params(rp, challenge, state="s-obj", response_mode="form_post")
    params["claims"] = {"id_token": {"email": {"essential": True}}}  # an object, as §4 has it
    signed = request_object(rp, op, params)
    # the query says query mode and no claims: ignored (RFC 9101 §6.3)
    query = {"client_id": rp.client_id, "request": signed, "response_mode": "query"}
    result = Browser(op.url).authorize(query, user)
    fields = _form_fields(result.page)
    assert fields["state"] == "s-obj"
    tokens = _redeem(op, rp, fields["code"], verifier)
    assert jwt_parts(tokens["id_token"])[1]["email"] == user.email


def test_an_error_inside_a_request_object_goes_by_its_form_post(op, rp):
    params = auth_params(rp, pkce()[1], state="s-bad", response_mode="form_post")
    params["claims"] = {"id_token": ["email"]}  # a wrong shape
    query = {"client_id": rp.client_id, "request": request_object(rp, op, params)}
    resp = requests.get(f"{op.url}/authorize", params=query, allow_redirects=False, timeout=10)
    assert resp.status_code == 200 and "Location" not in resp.headers
    fields = _form_fields(resp.text)
    assert fields["error"] == "invalid_request" and fields["state"] == "s-bad"


def test_pushed_claims_and_form_post(op, rp):
    user = op.factory.gen_user()
    verifier, challenge = pkce()
    params: dict[str, Any] = auth_params(rp, challenge, state="s-par", response_mode="form_post")
    params["claims"] = '{"userinfo": {"email": null}}'
    pushed = requests.post(
        f"{op.url}/oauth/par", data=params, auth=(rp.client_id, rp.client_secret), timeout=10
    )
    assert pushed.status_code == 201, pushed.text
    query = {"client_id": rp.client_id, "request_uri": pushed.json()["request_uri"]}
    result = Browser(op.url).authorize(query, user)
    fields = _form_fields(result.page)
    tokens = _redeem(op, rp, fields["code"], verifier)
    info = requests.get(
        f"{op.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    assert info["email"] == user.email


def test_a_malformed_pushed_claims_is_refused_at_par(op, rp):
    params = auth_params(rp, pkce()[1], claims="{not json")
    pushed = requests.post(
        f"{op.url}/oauth/par", data=params, auth=(rp.client_id, rp.client_secret), timeout=10
    )
    assert pushed.status_code == 400 and pushed.json()["error"] == "invalid_request"
