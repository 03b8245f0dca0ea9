"""Client authentication with JWTs (RFC 7523 §2.2 and §3, OIDC Core §9): private_key_jwt with
keys by value and at a jwks_uri, client_secret_jwt, at the token, revocation and introspection
endpoints. Each check the server makes is attacked here: audience, expiry and lifetime, nbf
and iat, jti replay (also concurrent), alg none, HMAC keyed with the public key, another key,
iss/sub and client_id mismatches, the registered algorithm, key rotation at the jwks_uri."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from joserfc import jwt

from tests.conformance._jwt_client_helpers import (
    API,
    ASSERTION_TYPE,
    assertion,
    ec_key,
    hmac_key,
    jwks_of,
    jwks_server,
    register,
    rsa_key,
    token_form,
)
from tests.conftest import LiveServer, build_app, serving


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"CLIENT_JWKS_ALLOW_NETWORKS": "127.0.0.0/8", "CLIENT_JWKS_REFRESH_SECONDS": 1.0}
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


def _token(op: LiveServer, signed: str, **extra: Any) -> requests.Response:
    return requests.post(f"{op.url}/oauth/token", data=token_form(signed, **extra), timeout=10)


def _refused(resp: requests.Response) -> None:
    assert resp.status_code in (400, 401), resp.text
    assert resp.json()["error"] == "invalid_client", resp.text
    assert "access_token" not in resp.json()


@pytest.fixture(scope="module")
def pkj(op: LiveServer) -> tuple[str, Any]:
    key = rsa_key()
    client_id, _ = register(op, method="private_key_jwt", jwks=jwks_of(key))
    return client_id, key


def test_private_key_jwt_with_jwks_by_value(op, pkj):
    client_id, key = pkj
    resp = _token(op, assertion(key, client_id, f"{op.url}/oauth/token"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"].lower() in ("bearer", "dpop")


def test_audience_may_be_the_issuer(op, pkj):
    client_id, key = pkj
    assert _token(op, assertion(key, client_id, op.url)).status_code == 200


def test_audience_of_another_server_is_refused(op, pkj):
    client_id, key = pkj
    _refused(_token(op, assertion(key, client_id, "https://other.example/oauth/token")))


def test_expired_assertion_is_refused(op, pkj):
    client_id, key = pkj
    now = int(time.time())
    _refused(_token(op, assertion(key, client_id, op.url, iat=now - 600, exp=now - 300)))


def test_missing_exp_is_refused(op, pkj):
    client_id, key = pkj
    _refused(_token(op, assertion(key, client_id, op.url, exp=None)))


def test_long_lived_assertion_is_refused(op, pkj):
    client_id, key = pkj
    _refused(_token(op, assertion(key, client_id, op.url, exp=int(time.time()) + 3600)))


def test_nbf_and_iat_in_the_future_are_refused(op, pkj):
    client_id, key = pkj
    later = int(time.time()) + 120
    _refused(_token(op, assertion(key, client_id, op.url, nbf=later, exp=later + 60)))
    _refused(_token(op, assertion(key, client_id, op.url, iat=later, exp=later + 60)))


def test_missing_jti_is_refused(op, pkj):
    client_id, key = pkj
    _refused(_token(op, assertion(key, client_id, op.url, jti=None)))


def test_replayed_jti_is_refused(op, pkj):
    client_id, key = pkj
    signed = assertion(key, client_id, op.url)
    assert _token(op, signed).status_code == 200
    _refused(_token(op, signed))
    # the same jti in a freshly signed assertion is a replay too
    jti = jwt.decode(signed, key).claims["jti"]
    _refused(_token(op, assertion(key, client_id, op.url, jti=jti)))


def test_concurrent_uses_of_one_assertion_win_once(op, pkj):
    client_id, key = pkj
    signed = assertion(key, client_id, op.url)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: _token(op, signed).status_code, range(8)))
    assert statuses.count(200) == 1, statuses


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(op, pkj):
    client_id, _key = pkj
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": op.url, "exp": now + 60,
              "jti": secrets.token_hex(8)}  # fmt: skip
    _refused(_token(op, f"{_b64({'alg': 'none'})}.{_b64(claims)}."))


def test_hmac_keyed_with_the_public_key_is_refused(op, pkj):
    """The alg-confusion attack: HS256 keyed with the client's public key (PEM, or the JWK's
    JSON), signed by hand since joserfc itself refuses to build such a key."""
    client_id, key = pkj
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": op.url, "exp": now + 60,
              "jti": secrets.token_hex(8)}  # fmt: skip
    header = {"alg": "HS256", "kid": key.kid}
    signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
    for secret in (key.as_pem(private=False), json.dumps(key.as_dict(private=False)).encode()):
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        forged = signing_input.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        _refused(_token(op, forged))


def test_another_key_with_the_same_kid_is_refused(op, pkj):
    client_id, key = pkj
    impostor = rsa_key(kid=key.kid)
    _refused(_token(op, assertion(impostor, client_id, op.url)))


def test_unknown_kid_is_refused(op, pkj):
    client_id, _key = pkj
    _refused(_token(op, assertion(rsa_key(), client_id, op.url)))


def test_iss_other_than_sub_is_refused(op, pkj):
    client_id, key = pkj
    _refused(_token(op, assertion(key, client_id, op.url, iss="someone-else")))


def test_client_id_other_than_sub_is_refused(op, pkj):
    client_id, key = pkj
    other, _ = register(op, method="private_key_jwt", jwks=jwks_of(rsa_key()))
    _refused(_token(op, assertion(key, client_id, op.url), client_id=other))
    resp = _token(op, assertion(key, client_id, op.url), client_id=client_id)
    assert resp.status_code == 200, resp.text


def test_unknown_client_is_refused(op):
    _refused(_token(op, assertion(rsa_key(), "no-such-client", op.url)))


def test_a_secret_client_cannot_use_an_assertion_nor_a_jwt_client_its_secret(op, pkj):
    key = rsa_key()
    basic_id, secret = register(op, jwks=jwks_of(key))  # client_secret_basic, with keys
    _refused(_token(op, assertion(key, basic_id, op.url)))
    client_id, _ = pkj
    resp = requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": API},
        auth=(client_id, "whatever"),
        timeout=10,
    )
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    assert secret


def test_registered_signing_alg_is_enforced(op):
    rsa, ec = rsa_key(), ec_key()
    client_id, _ = register(
        op, method="private_key_jwt", jwks=jwks_of(rsa, ec), signing_alg="ES256"
    )
    _refused(_token(op, assertion(rsa, client_id, op.url, alg="RS256")))
    assert _token(op, assertion(ec, client_id, op.url, alg="ES256")).status_code == 200


def test_client_secret_jwt(op):
    client_id, secret = register(op, method="client_secret_jwt")
    assert secret
    resp = _token(op, assertion(hmac_key(secret), client_id, op.url, alg="HS256"))
    assert resp.status_code == 200, resp.text
    # signed with another secret, or with an asymmetric key: refused
    _refused(_token(op, assertion(hmac_key(secret + "x"), client_id, op.url, alg="HS256")))
    _refused(_token(op, assertion(rsa_key(), client_id, op.url)))
    # the secret itself is not accepted in place of the assertion
    resp = requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": API},
        auth=(client_id, secret),
        timeout=10,
    )
    assert resp.json()["error"] == "invalid_client"


def test_jwks_uri_rotation_is_followed_on_an_unknown_kid(op):
    old, new = rsa_key(), rsa_key()
    with jwks_server() as srv:
        srv.jwks = jwks_of(old)
        client_id, _ = register(op, method="private_key_jwt", jwks_uri=srv.url)
        assert _token(op, assertion(old, client_id, op.url)).status_code == 200
        assert srv.hits == 1
        assert _token(op, assertion(old, client_id, op.url)).status_code == 200
        assert srv.hits == 1  # cached
        srv.jwks = jwks_of(new)  # the client rotates its key
        time.sleep(1.1)  # CLIENT_JWKS_REFRESH_SECONDS in this module
        resp = _token(op, assertion(new, client_id, op.url))
        assert resp.status_code == 200, resp.text
        assert srv.hits == 2
        # junk kids do not make idp fetch again within the refresh interval
        for _ in range(3):
            _refused(_token(op, assertion(rsa_key(), client_id, op.url)))
        assert srv.hits <= 3


def test_revocation_and_introspection_accept_private_key_jwt(op, pkj):
    client_id, key = pkj
    token = _token(op, assertion(key, client_id, op.url)).json()["access_token"]
    introspect = f"{op.url}/oauth/introspect"
    resp = requests.post(
        introspect,
        data={
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(key, client_id, introspect),
        },
        timeout=10,
    )
    assert resp.status_code == 200 and resp.json()["active"] is True, resp.text
    revoke = f"{op.url}/oauth/revoke"
    resp = requests.post(
        revoke,
        data={
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(key, client_id, revoke),
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    # the revocation endpoint's URL is not an audience at the token endpoint
    _refused(_token(op, assertion(key, client_id, revoke)))


def test_discovery_lists_the_methods_and_algorithms(op):
    meta = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=10).json()
    for endpoint in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert {"private_key_jwt", "client_secret_jwt"} <= set(
            meta[f"{endpoint}_auth_methods_supported"]
        )
        algs = meta[f"{endpoint}_auth_signing_alg_values_supported"]
        assert "RS256" in algs and "HS256" in algs and "none" not in algs
