"""Request objects (JAR, RFC 9101) and pushed authorization requests (PAR, RFC 9126).

Each refusal has its spec error: a request object unsigned (alg none), signed by another key
or with HMAC, for another audience, expired, too long-lived, replayed, of another client
(client_id mismatch, iss mismatch); a request_uri not from PAR, unknown, reused, expired, of
another client; PAR without client authentication, with a bad request (the /authorize
checks), with request_uri inside; a client (or tenant) that must push, sending a plain
request. The happy paths end in a code redeemed for tokens."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt

from tests.conformance._jwt_client_helpers import (
    ASSERTION_TYPE,
    assertion,
    hmac_key,
    jwks_of,
    register,
    rsa_key,
)
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, auth_params, pkce

CB = "https://rp.test/cb"


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port)) as server:
        yield server


class Rp:
    def __init__(self, client_id: str, secret: str | None, key: Any) -> None:
        self.client_id, self.client_secret, self.key = client_id, secret, key
        self.redirect_uri = CB


@pytest.fixture(scope="module")
def rp(op: LiveServer) -> Rp:
    key = rsa_key()
    client_id, secret = register(op, app_type="regular_web", jwks=jwks_of(key))
    return Rp(client_id, secret, key)


@pytest.fixture(scope="module")
def user(op: LiveServer) -> Any:
    return op.factory.gen_user()


def request_object(rp: Rp, op: LiveServer, params: dict[str, Any], key: Any = None,
                   alg: str = "RS256", **claims: Any) -> str:  # fmt: skip
    now = int(time.time())
    body = {**params, "iss": rp.client_id, "aud": op.url, "iat": now, "nbf": now,
            "exp": now + 300, "jti": secrets.token_urlsafe(12)}  # fmt: skip
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    key = key or rp.key
    return jwt.encode({"alg": alg, "kid": getattr(key, "kid", None) or "x"}, body, key,
                      algorithms=[alg])  # fmt: skip


def _authorize(op: LiveServer, query: dict[str, Any]) -> requests.Response:
    return requests.get(f"{op.url}/authorize", params=query, allow_redirects=False, timeout=10)


def _redirect_error(resp: requests.Response) -> str:
    assert resp.status_code in (302, 303), (resp.status_code, resp.text[:300])
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    return query["error"][0]


def _code_flow(op: LiveServer, rp: Rp, user: Any, query: dict[str, Any], verifier: str) -> Any:
    result = Browser(op.url).authorize(query, user)
    assert result.code, (result.status, result.params, result.page[:400])
    resp = requests.post(
        f"{op.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": result.code,
            "redirect_uri": CB,
            "code_verifier": verifier,
        },
        auth=(rp.client_id, rp.client_secret),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return result, resp.json()


# ---------------------------------------------------------------------------------- JAR
def test_request_object_by_value(op, rp, user):
    verifier, challenge = pkce()
    params = auth_params(rp, challenge, state="s-jar", nonce="n-jar")
    signed = request_object(rp, op, params)
    # only client_id outside the object; the query's other parameters are ignored (§6.3)
    result, tokens = _code_flow(
        op, rp, user, {"client_id": rp.client_id, "request": signed, "state": "ignored"}, verifier
    )
    assert result.params["state"] == "s-jar"
    claims = jwt.decode(tokens["id_token"], _jwks(op)).claims
    assert claims["nonce"] == "n-jar" and claims["aud"] == rp.client_id


def _jwks(op: LiveServer) -> Any:
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(requests.get(f"{op.url}/.well-known/jwks.json", timeout=10).json())


def _jar_refusal(op: LiveServer, rp: Rp, signed: str, client_id: str | None = None) -> str:
    # redirect_uri in the query too, registered: the error can be sent there (RFC 9101 §6.3)
    return _redirect_error(
        _authorize(
            op, {"client_id": client_id or rp.client_id, "redirect_uri": CB, "request": signed}
        )
    )


@pytest.mark.parametrize(
    "case",
    ["alg-none", "hmac-with-secret", "other-key", "wrong-aud", "expired", "too-long", "no-exp",
     "no-jti", "iss-mismatch", "nbf-future", "garbage"],
)  # fmt: skip
def test_bad_request_objects_are_invalid_request_object(op, rp, case):
    _verifier, challenge = pkce()
    params = auth_params(rp, challenge)
    now = int(time.time())
    if case == "alg-none":
        import base64
        import json

        def b64(obj: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        body = {**params, "iss": rp.client_id, "aud": op.url, "exp": now + 60, "jti": "j"}
        signed = f"{b64({'alg': 'none'})}.{b64(body)}."
    elif case == "hmac-with-secret":
        signed = request_object(rp, op, params, key=hmac_key(rp.client_secret), alg="HS256")
    elif case == "other-key":
        signed = request_object(rp, op, params, key=rsa_key(kid=rp.key.kid))
    elif case == "garbage":
        signed = "not.a.jwt"
    else:
        claims = {
            "wrong-aud": {"aud": "https://other.example"},
            "expired": {"exp": now - 120, "iat": now - 400, "nbf": now - 400},
            "too-long": {"exp": now + 7200},
            "no-exp": {"exp": None},
            "no-jti": {"jti": None},
            "iss-mismatch": {"iss": "someone-else"},
            "nbf-future": {"nbf": now + 600, "exp": now + 900},
        }[case]
        signed = request_object(rp, op, params, **claims)
    assert _jar_refusal(op, rp, signed) == "invalid_request_object"


def test_replayed_request_object_is_refused(op, rp, user):
    verifier, challenge = pkce()
    signed = request_object(rp, op, auth_params(rp, challenge))
    _code_flow(op, rp, user, {"client_id": rp.client_id, "request": signed}, verifier)
    assert _jar_refusal(op, rp, signed) == "invalid_request_object"


def test_client_id_must_match_the_request_object(op, rp):
    _verifier, challenge = pkce()
    other_key = rsa_key()
    other_id, _ = register(op, app_type="regular_web", jwks=jwks_of(other_key))
    signed = request_object(rp, op, auth_params(rp, challenge))  # client_id: rp's
    assert _jar_refusal(op, rp, signed, client_id=other_id) in (
        "invalid_request", "invalid_request_object",
    )  # fmt: skip
    # a client without registered keys cannot use request objects
    plain = op.factory.gen_client()
    signed = request_object(rp, op, auth_params(plain, challenge), iss=plain.client_id)
    assert _jar_refusal(op, rp, signed, client_id=plain.client_id) == "invalid_request_object"


def test_request_and_request_uri_together_and_foreign_request_uri(op, rp):
    _verifier, challenge = pkce()
    signed = request_object(rp, op, auth_params(rp, challenge))
    both = {"client_id": rp.client_id, "redirect_uri": CB, "request": signed,
            "request_uri": "urn:ietf:params:oauth:request_uri:x"}  # fmt: skip
    assert _redirect_error(_authorize(op, both)) == "invalid_request"
    foreign = {"client_id": rp.client_id, "redirect_uri": CB,
               "request_uri": "https://rp.test/request.jwt"}  # fmt: skip
    assert _redirect_error(_authorize(op, foreign)) == "request_uri_not_supported"


# ---------------------------------------------------------------------------------- PAR
def _par(op: LiveServer, data: dict[str, Any], auth: Any = None) -> requests.Response:
    return requests.post(f"{op.url}/oauth/par", data=data, auth=auth, timeout=10)


def test_par_then_authorize(op, rp, user):
    verifier, challenge = pkce()
    params = auth_params(rp, challenge, state="s-par")
    resp = _par(op, params, auth=(rp.client_id, rp.client_secret))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert resp.headers["Cache-Control"] == "no-store"
    query = {"client_id": rp.client_id, "request_uri": body["request_uri"]}
    result, _tokens = _code_flow(op, rp, user, query, verifier)
    assert result.params["state"] == "s-par"
    # single use
    again = _authorize(op, {**query, "redirect_uri": CB})
    assert _redirect_error(again) == "invalid_request_uri"


def test_par_with_a_request_object_and_private_key_jwt(op, user):
    key = rsa_key()
    client_id, _ = register(op, app_type="regular_web", method="private_key_jwt",
                            jwks=jwks_of(key))  # fmt: skip
    rp = Rp(client_id, None, key)
    verifier, challenge = pkce()
    signed = request_object(rp, op, auth_params(rp, challenge, state="s-both"))
    resp = _par(op, {"client_id": client_id, "request": signed,
                     "client_assertion_type": ASSERTION_TYPE,
                     "client_assertion": assertion(key, client_id, f"{op.url}/oauth/par")})  # fmt: skip
    assert resp.status_code == 201, resp.text
    result = Browser(op.url).authorize(
        {"client_id": client_id, "request_uri": resp.json()["request_uri"]}, user
    )
    assert result.code and result.params["state"] == "s-both"
    token = requests.post(
        f"{op.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": result.code,
            "redirect_uri": CB,
            "code_verifier": verifier,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(key, client_id, op.url),
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text


def test_par_needs_client_authentication(op, rp):
    _verifier, challenge = pkce()
    params = auth_params(rp, challenge)
    resp = _par(op, params)  # a confidential client, no credentials
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    resp = _par(op, params, auth=(rp.client_id, "wrong"))
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


def test_par_failures_count_towards_the_client_authentication_throttle(op):
    """OAuth 2.1 §2.4.1 (TK-25): 50 failed authentications of a client from one IP are then
    answered 429, at PAR as at the token endpoint (one count for both)."""
    client = op.factory.gen_client()
    _verifier, challenge = pkce()
    params = auth_params(client, challenge)
    statuses = [_par(op, params, auth=(client.client_id, "wrong")).status_code for _ in range(49)]
    assert set(statuses) == {401}
    token = requests.post(f"{op.url}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client.client_id, "wrong"), timeout=10)  # fmt: skip
    assert token.status_code == 429 and token.headers["Retry-After"]
    again = _par(op, params, auth=(client.client_id, "wrong"))
    assert again.status_code == 429 and again.json()["error"] == "invalid_client"


def test_par_validates_like_authorize(op, rp):
    _verifier, challenge = pkce()
    auth = (rp.client_id, rp.client_secret)
    bad_redirect = _par(op, auth_params(rp, challenge, redirect_uri="https://evil.test/cb"), auth)
    assert bad_redirect.status_code == 400 and bad_redirect.json()["error"] == "invalid_request"
    no_pkce = _par(op, auth_params(rp, None, code_challenge_method=None), auth)
    assert no_pkce.status_code == 400 and no_pkce.json()["error"] == "invalid_request"
    with_uri = _par(op, {**auth_params(rp, challenge),
                         "request_uri": "urn:ietf:params:oauth:request_uri:x"}, auth)  # fmt: skip
    assert with_uri.status_code == 400 and with_uri.json()["error"] == "invalid_request"
    other = op.factory.gen_client()
    mismatch = _par(op, auth_params(other, challenge), auth)
    assert mismatch.status_code == 400 and mismatch.json()["error"] == "invalid_request"


def test_request_uri_of_another_client_unknown_or_expired(op, rp, clock):
    _verifier, challenge = pkce()
    auth = (rp.client_id, rp.client_secret)
    uri = _par(op, auth_params(rp, challenge), auth).json()["request_uri"]
    other = op.factory.gen_client()
    stolen = _authorize(op, {"client_id": other.client_id, "redirect_uri": other.redirect_uri,
                             "request_uri": uri})  # fmt: skip
    assert _redirect_error(stolen) == "invalid_request_uri"
    unknown = _authorize(op, {"client_id": rp.client_id, "redirect_uri": CB,
                              "request_uri": uri + "x"})  # fmt: skip
    assert _redirect_error(unknown) == "invalid_request_uri"
    clock.advance(61)
    expired = _authorize(op, {"client_id": rp.client_id, "redirect_uri": CB, "request_uri": uri})
    assert _redirect_error(expired) == "invalid_request_uri"


def test_request_uri_is_taken_once_under_concurrency(op, rp):
    _verifier, challenge = pkce()
    uri = _par(op, auth_params(rp, challenge), (rp.client_id, rp.client_secret)).json()[
        "request_uri"
    ]
    query = {"client_id": rp.client_id, "redirect_uri": CB, "request_uri": uri}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: _authorize(op, query), range(6)))
    refused = [a for a in answers if a.status_code in (302, 303) and "error=" in
               a.headers.get("Location", "")]  # fmt: skip
    assert len(refused) == 5, [(a.status_code, a.headers.get("Location")) for a in answers]


def test_client_that_must_push_is_refused_a_plain_request(op):
    key = rsa_key()
    client_id, secret = register(op, app_type="regular_web", jwks=jwks_of(key), require_par=True)
    rp = Rp(client_id, secret, key)
    _verifier, challenge = pkce()
    params = auth_params(rp, challenge)
    assert _redirect_error(_authorize(op, params)) == "invalid_request"
    signed = request_object(rp, op, params)  # a request object is not a pushed request
    assert _jar_refusal(op, rp, signed) == "invalid_request"
    resp = _par(op, params, auth=(client_id, secret))
    assert resp.status_code == 201
    ok = _authorize(op, {"client_id": client_id, "request_uri": resp.json()["request_uri"]})
    assert ok.status_code == 200 or "error=" not in ok.headers.get("Location", "")


def test_tenant_wide_par(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("par-tenant")
    settings = {"REQUIRE_PUSHED_AUTHORIZATION_REQUESTS": True, "DATABASE_URL":
                f"sqlite:///{tmp / 'idp.sqlite3'}"}  # fmt: skip
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        client = server.factory.gen_client()
        _verifier, challenge = pkce()
        params = auth_params(client, challenge)
        assert _redirect_error(_authorize(server, params)) == "invalid_request"
        resp = _par(server, params, auth=client.basic)
        assert resp.status_code == 201, resp.text
        meta = requests.get(f"{server.url}/.well-known/openid-configuration", timeout=10).json()
        assert meta["require_pushed_authorization_requests"] is True


def test_discovery(op):
    meta = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=10).json()
    assert meta["pushed_authorization_request_endpoint"] == f"{op.url}/oauth/par"
    assert meta["require_pushed_authorization_requests"] is False
    assert meta["request_parameter_supported"] is True
    assert meta["request_uri_parameter_supported"] is False  # by reference: not fetched
    assert "none" not in meta["request_object_signing_alg_values_supported"]
