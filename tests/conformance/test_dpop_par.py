"""DPoP with pushed authorization requests (RFC 9449 §10.1) and ``dpop_jkt`` (§10), black-box:
a ``DPoP`` header at ``/oauth/par`` is checked as at the token endpoint (``htu`` the PAR
endpoint) and its key's thumbprint is stored with the pushed request as ``dpop_jkt``; a
``dpop_jkt`` in the pushed body binds the code likewise; with both, they must agree. A code
bound either way is redeemed only with a proof of that key. Nonces at PAR (§8) on a server
that requires them; with DPoP off, the header and the parameter are ignored and discovery does
not advertise ``dpop_signing_alg_values_supported``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.core.crypto import sha256_hex
from idp.extensions import db
from idp.oauth.models import PushedRequest
from tests.conformance._dpop_helpers import new_key, proof, thumbprint, unsigned_proof
from tests.conformance._jwt_client_helpers import jwks_of, register, rsa_key
from tests.conformance._token_helpers import assert_no_store, assert_oauth_error
from tests.conformance.test_jar_par import Rp, request_object
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, auth_params, jwt_parts, pkce

WELL_KNOWN = "/.well-known/openid-configuration"


def par_url(op: Any) -> str:
    return f"{op.url}/oauth/par"


def token_url(op: Any) -> str:
    return f"{op.url}/oauth/token"


def push(op: Any, client: Any, dpop: str | None = None, **extra: Any) -> tuple[Any, str]:
    """POST /oauth/par for a public client; returns (response, PKCE verifier)."""
    verifier, challenge = pkce()
    data = auth_params(client, challenge, **extra)
    headers = {"DPoP": dpop} if dpop is not None else {}
    return requests.post(par_url(op), data=data, headers=headers, timeout=10), verifier


def pushed(op: Any, client: Any, dpop: str | None = None, **extra: Any) -> tuple[str, str]:
    resp, verifier = push(op, client, dpop, **extra)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["request_uri"]), verifier


def stored_jkt(op: Any, request_uri: str) -> str | None:
    with op.app.app_context():
        params = db.session.scalar(
            select(PushedRequest.params).where(PushedRequest.uri_hash == sha256_hex(request_uri))
        )
    assert params is not None
    return params.get("dpop_jkt")


def code_for(op: Any, client: Any, request_uri: str) -> str:
    result = Browser(op.url).authorize(
        {"client_id": client.client_id, "request_uri": request_uri}, op.factory.gen_user()
    )
    assert result.code, (result.status, result.params, result.page[:300])
    return result.code


def redeem(op: Any, client: Any, code: str, verifier: str, key: Any | None) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "client_id": client.client_id,
            "redirect_uri": client.redirect_uri, "code_verifier": verifier}  # fmt: skip
    headers = {"DPoP": proof(key, "POST", token_url(op))} if key is not None else {}
    return requests.post(token_url(op), data=data, headers=headers, timeout=10)


def assert_bound(resp: requests.Response, key: Any) -> None:
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"] == "DPoP"
    assert jwt_parts(resp.json()["access_token"])[1]["cnf"] == {"jkt": thumbprint(key)}


# --- the DPoP header at PAR (§10.1) --------------------------------------------------------


def test_a_dpop_header_at_par_binds_the_code(op):
    spa, key = op.factory.gen_client("spa"), new_key()
    request_uri, verifier = pushed(op, spa, proof(key, "POST", par_url(op)))
    assert stored_jkt(op, request_uri) == thumbprint(key)
    code = code_for(op, spa, request_uri)
    assert_bound(redeem(op, spa, code, verifier, key), key)


@pytest.mark.parametrize("presented", ["another key", "no proof"])
def test_a_code_pushed_with_a_dpop_header_refuses_another_key_or_none(op, presented):
    """§10.1: as if dpop_jkt had been sent; §10's refusal is invalid_grant (the grant, not
    the proof, is at fault: RFC 6749 §5.2), as at /authorize."""
    spa = op.factory.gen_client("spa")
    request_uri, verifier = pushed(op, spa, proof(new_key(), "POST", par_url(op)))
    code = code_for(op, spa, request_uri)
    other = new_key() if presented == "another key" else None
    assert_oauth_error(redeem(op, spa, code, verifier, other), 400, "invalid_grant")


def _forged(op: Any, kind: str, key: Any) -> str:
    match kind:
        case "htu_token_endpoint":
            return proof(key, "POST", token_url(op))
        case "htm_get":
            return proof(key, "GET", par_url(op))
        case "other_key_signs":
            return proof(new_key(), "POST", par_url(op), jwk=key.as_dict(private=False))
        case "alg_none":
            return unsigned_proof("POST", par_url(op), key)
        case "typ_jwt":
            return proof(key, "POST", par_url(op), typ="JWT")
        case "iat_old":
            return proof(key, "POST", par_url(op), iat=1)
        case "replayed":
            spent = proof(key, "POST", par_url(op))
            pushed(op, op.factory.gen_client("spa"), spent)
            return spent
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["htu_token_endpoint", "htm_get", "other_key_signs", "alg_none", "typ_jwt", "iat_old",
     "replayed"],
)  # fmt: skip
def test_an_invalid_proof_at_par_is_invalid_dpop_proof(op, kind):
    """§4.3 at PAR: 400 invalid_dpop_proof, and no request_uri."""
    spa = op.factory.gen_client("spa")
    resp, _verifier = push(op, spa, _forged(op, kind, new_key()))
    assert_oauth_error(resp, 400, "invalid_dpop_proof")
    assert_no_store(resp)


def test_a_proof_at_par_comes_after_client_authentication(op):
    """An unauthenticated PAR is invalid_client whatever its proof (and spends nothing)."""
    web, key = op.factory.gen_client(), new_key()
    dpop = proof(key, "POST", par_url(op))
    _verifier, challenge = pkce()
    data = auth_params(web, challenge)
    resp = requests.post(par_url(op), data=data, auth=(web.client_id, "wrong"),
                         headers={"DPoP": dpop}, timeout=10)  # fmt: skip
    assert_oauth_error(resp, 401, "invalid_client")
    resp = requests.post(par_url(op), data=data, auth=web.basic, headers={"DPoP": dpop}, timeout=10)
    assert resp.status_code == 201, resp.text  # the proof was not spent by the refusal


# --- dpop_jkt in the pushed request (§10, §10.1) -------------------------------------------


@pytest.mark.parametrize("presented", ["its key", "another key", "no proof"])
def test_dpop_jkt_pushed_binds_the_code(op, presented):
    spa, key = op.factory.gen_client("spa"), new_key()
    request_uri, verifier = pushed(op, spa, dpop_jkt=thumbprint(key))
    assert stored_jkt(op, request_uri) == thumbprint(key)
    code = code_for(op, spa, request_uri)
    if presented == "its key":
        assert_bound(redeem(op, spa, code, verifier, key), key)
        return
    other = new_key() if presented == "another key" else None
    assert_oauth_error(redeem(op, spa, code, verifier, other), 400, "invalid_grant")


def test_dpop_jkt_and_the_header_must_name_one_key(op):
    """§10.1: with both, a dpop_jkt that is not the proof key's thumbprint is refused."""
    spa, key = op.factory.gen_client("spa"), new_key()
    dpop = proof(key, "POST", par_url(op))
    resp, _verifier = push(op, spa, dpop, dpop_jkt=thumbprint(new_key()))
    assert_oauth_error(resp, 400, "invalid_request")
    request_uri, verifier = pushed(
        op, spa, proof(key, "POST", par_url(op)), dpop_jkt=thumbprint(key)
    )
    code = code_for(op, spa, request_uri)
    assert_bound(redeem(op, spa, code, verifier, key), key)


def test_dpop_jkt_in_a_pushed_request_object_must_name_the_header_key(op):
    """RFC 9101 §6.3: the request object's dpop_jkt is the request's, checked as the body's."""
    key, proof_key = rsa_key(), new_key()
    client_id, secret = register(op, app_type="regular_web", jwks=jwks_of(key))
    rp = Rp(client_id, secret, key)
    for named, status in ((new_key(), 400), (proof_key, 201)):
        _verifier, challenge = pkce()
        signed = request_object(rp, op, auth_params(rp, challenge, dpop_jkt=thumbprint(named)))
        resp = requests.post(par_url(op), data={"client_id": client_id, "request": signed},
                             auth=(client_id, secret), timeout=10,
                             headers={"DPoP": proof(proof_key, "POST", par_url(op))})  # fmt: skip
        assert resp.status_code == status, resp.text
    assert stored_jkt(op, resp.json()["request_uri"]) == thumbprint(proof_key)


def test_a_malformed_dpop_jkt_at_par_is_invalid_request(op):
    resp, _verifier = push(op, op.factory.gen_client("spa"), dpop_jkt="not a thumbprint")
    assert_oauth_error(resp, 400, "invalid_request")


def test_discovery_advertises_dpop_algorithms_when_on(op):
    doc = requests.get(op.url + WELL_KNOWN, timeout=10).json()
    assert "ES256" in doc["dpop_signing_alg_values_supported"]


# --- nonces at PAR (§8) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def nonce_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("nonces")
    with serving(lambda port: build_app(tmp, port, DPOP_NONCE_REQUIRED=True)) as server:
        yield server


def test_a_proof_without_the_nonce_at_par_is_use_dpop_nonce(nonce_op):
    """§8: 400 use_dpop_nonce with the nonce; the retry with it gets a request_uri, and the
    code is redeemed with the same key (the token endpoint accepts the nonce PAR gave)."""
    op, spa, key = nonce_op, nonce_op.factory.gen_client("spa"), new_key()
    resp, _verifier = push(op, spa, proof(key, "POST", par_url(op)))
    assert_oauth_error(resp, 400, "use_dpop_nonce")
    nonce = resp.headers["DPoP-Nonce"]
    resp, verifier = push(op, spa, proof(key, "POST", par_url(op), nonce=nonce))
    assert resp.status_code == 201, resp.text
    assert resp.headers["DPoP-Nonce"] == nonce  # §8.2: on every answer
    code = code_for(op, spa, resp.json()["request_uri"])
    data = {"grant_type": "authorization_code", "code": code, "client_id": spa.client_id,
            "redirect_uri": spa.redirect_uri, "code_verifier": verifier}  # fmt: skip
    dpop = proof(key, "POST", token_url(op), nonce=nonce)
    assert_bound(requests.post(token_url(op), data=data, headers={"DPoP": dpop}), key)


# --- DPoP off ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def off_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("off")
    with serving(lambda port: build_app(tmp, port, DPOP_ENABLED=False)) as server:
        yield server


def test_with_dpop_off_the_header_and_dpop_jkt_are_ignored(off_op):
    """Unknown to a server without DPoP (RFC 6749 §3.1): the code is not bound, the token is
    Bearer, and discovery does not advertise DPoP (RFC 9449 §5.1)."""
    op, spa, key = off_op, off_op.factory.gen_client("spa"), new_key()
    doc = requests.get(op.url + WELL_KNOWN, timeout=10).json()
    assert "dpop_signing_alg_values_supported" not in doc
    request_uri, verifier = pushed(
        op, spa, proof(key, "POST", par_url(op)), dpop_jkt=thumbprint(new_key())
    )
    assert stored_jkt(op, request_uri) is not None  # kept as sent, but binds nothing
    code = code_for(op, spa, request_uri)
    resp = redeem(op, spa, code, verifier, None)
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer", resp.text
    # a plain authorization request's dpop_jkt too, malformed or not
    verifier, challenge = pkce()
    params = auth_params(spa, challenge, dpop_jkt="not a thumbprint")
    result = Browser(op.url).authorize(params, op.factory.gen_user())
    assert result.code, (result.status, result.params)
    resp = redeem(op, spa, result.code, verifier, None)
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer", resp.text
