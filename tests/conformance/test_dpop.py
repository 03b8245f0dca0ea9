"""DPoP (RFC 9449) at the token endpoint, userinfo and introspection, black-box against the
live server: every §4.3 check attacked with a proof forged to fail exactly it, the §5 token
binding, public clients' refresh tokens bound to the key (§5), DPoP-bound tokens at userinfo
(§7) and the per-client requirement (§5.2). Server nonces are in test_dpop_nonce.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import update

from idp.extensions import db, services
from idp.oauth.models import Client
from tests.conformance._dpop_helpers import (
    ath,
    cc_token,
    hmac_proof,
    new_key,
    proof,
    rsa_key,
    thumbprint,
    unsigned_proof,
)
from tests.conformance._token_helpers import (
    assert_bearer_error,
    assert_no_store,
    assert_oauth_error,
    get_code,
    introspect,
    token_post,
    verify_jwt,
)
from tests.helpers import auth_params, jwt_parts, pkce

OFFLINE = "openid email offline_access"


@pytest.fixture(scope="module")
def m2m(live: Any) -> tuple[Any, str]:
    return live.factory.m2m()


def _token_url(op: Any) -> str:
    return f"{op.url}/oauth/token"


def _require_dpop(op: Any, client_id: str) -> None:
    with op.app.app_context():
        db.session.execute(
            update(Client)
            .where(Client.client_id == client_id)
            .values(dpop_bound_access_tokens=True)
        )
        db.session.commit()


def _code_tokens(op: Any, client: Any, user: Any, key: Any | None, scope: str = OFFLINE) -> Any:
    code, verifier = get_code(op, client, user, scope=scope)
    headers = {"DPoP": proof(key, "POST", _token_url(op))} if key is not None else {}
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }
    return token_post(op, data, client, headers=headers)


def _refresh(op: Any, client: Any, refresh_token: str, key: Any | None) -> requests.Response:
    headers = {"DPoP": proof(key, "POST", _token_url(op))} if key is not None else {}
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_post(op, data, client, headers=headers)


def _userinfo(op: Any, token: str, key: Any | None, scheme: str = "DPoP", **claims: Any) -> Any:
    url = f"{op.url}/userinfo"
    headers = {"Authorization": f"{scheme} {token}"}
    if key is not None:
        claims.setdefault("ath", ath(token))
        headers["DPoP"] = proof(key, "GET", url, **claims)
    return requests.get(url, headers=headers)


def _dpop_challenge(resp: requests.Response, error: str) -> None:
    """§7.1: 401 with ``WWW-Authenticate: DPoP error=...`` and the supported algorithms."""
    assert resp.status_code == 401, (resp.status_code, resp.text)
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("DPoP "), challenge
    assert f'error="{error}"' in challenge and "algs=" in challenge, challenge


# --- the token endpoint (§5) -------------------------------------------------------------


def test_proof_binds_client_credentials_token(op, m2m):
    client, audience = m2m
    key = new_key()
    resp = cc_token(op.url, client, audience, proof(key, "POST", _token_url(op)))
    assert resp.status_code == 200, resp.text
    assert_no_store(resp)
    body = resp.json()
    assert body["token_type"] == "DPoP"
    header, claims = jwt_parts(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["cnf"] == {"jkt": thumbprint(key)}  # §6.1, RFC 7638
    verify_jwt(op, body["access_token"])


def test_rsa_proof_with_query_in_htu_accepted(op, m2m):
    # §4.3 item 9: htu is compared without its query and fragment
    client, audience = m2m
    key = rsa_key()
    dpop = proof(key, "POST", _token_url(op) + "?x=1#f", alg="PS256")
    resp = cc_token(op.url, client, audience, dpop)
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.text


def test_each_request_gets_its_own_bound_token(op, m2m, monkeypatch):
    # client-credentials token reuse (opt-in: on here) never hands one key's token to another
    with op.app.app_context():
        monkeypatch.setattr(services().token_reuse, "window", 5)
    client, audience = m2m
    first = cc_token(op.url, client, audience, proof(new_key(), "POST", _token_url(op))).json()
    second = cc_token(op.url, client, audience, proof(new_key(), "POST", _token_url(op))).json()
    assert first["access_token"] != second["access_token"]


def _forged(op: Any, kind: str) -> str:
    url = _token_url(op)
    key = new_key()
    now = int(time.time())
    match kind:
        case "typ_jwt":
            return proof(key, "POST", url, typ="JWT")
        case "typ_missing":
            return proof(key, "POST", url, typ=None)
        case "alg_none":
            return unsigned_proof("POST", url, key)
        case "alg_hs256":
            return hmac_proof("POST", url)
        case "private_jwk":
            return proof(key, "POST", url, jwk=key.as_dict(private=True))
        case "jwk_missing":
            return proof(key, "POST", url, header_extra={"jwk": None})
        case "other_key_signs":
            return proof(new_key(), "POST", url, jwk=key.as_dict(private=False))
        case "htm_get":
            return proof(key, "GET", url)
        case "htu_other_path":
            return proof(key, "POST", f"{op.url}/userinfo")
        case "htu_other_host":
            return proof(key, "POST", "https://evil.example/oauth/token")
        case "iat_old":
            return proof(key, "POST", url, iat=now - 400)
        case "iat_future":
            return proof(key, "POST", url, iat=now + 400)
        case "iat_string":
            return proof(key, "POST", url, iat=str(now))
        case "jti_missing":
            return proof(key, "POST", url, jti=None)
        case "not_a_jwt":
            return "not.a.jwt"
        case "garbage":
            return "x" * 50
    raise AssertionError(kind)


FORGERIES = [
    "typ_jwt", "typ_missing", "alg_none", "alg_hs256", "private_jwk", "jwk_missing",
    "other_key_signs", "htm_get", "htu_other_path", "htu_other_host", "iat_old", "iat_future",
    "iat_string", "jti_missing", "not_a_jwt", "garbage",
]  # fmt: skip


@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_proof_is_invalid_dpop_proof(op, m2m, kind):
    client, audience = m2m
    resp = cc_token(op.url, client, audience, _forged(op, kind))
    assert_oauth_error(resp, 400, "invalid_dpop_proof")
    assert_no_store(resp)


def test_two_dpop_headers_refused(op, m2m):
    # §4.3 item 1: exactly one DPoP header (requests cannot repeat a header: http.client can)
    client, audience = m2m
    key = new_key()
    body = urlencode({"grant_type": "client_credentials", "audience": audience})
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    conn = http.client.HTTPConnection(urlsplit(op.url).netloc, timeout=10)
    conn.putrequest("POST", "/oauth/token")
    conn.putheader("Authorization", f"Basic {basic}")
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(len(body)))
    for _ in range(2):
        conn.putheader("DPoP", proof(key, "POST", _token_url(op)))
    conn.endheaders(body.encode())
    resp = conn.getresponse()
    assert resp.status == 400
    assert json.loads(resp.read())["error"] == "invalid_dpop_proof"
    conn.close()


def test_replayed_proof_refused(op, m2m):
    client, audience = m2m
    dpop = proof(new_key(), "POST", _token_url(op))
    assert cc_token(op.url, client, audience, dpop).status_code == 200
    assert_oauth_error(cc_token(op.url, client, audience, dpop), 400, "invalid_dpop_proof")


def test_replayed_proof_concurrently_wins_once(op, m2m):
    """§11.1: of eight requests carrying one proof at the same moment, exactly one succeeds."""
    client, audience = m2m
    dpop = proof(new_key(), "POST", _token_url(op))
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def send() -> None:
        barrier.wait()
        statuses.append(cc_token(op.url, client, audience, dpop).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [400] * 7, statuses


def test_client_requiring_dpop_refuses_a_request_without_proof(op):
    client, audience = op.factory.m2m()
    _require_dpop(op, client.client_id)
    assert_oauth_error(cc_token(op.url, client, audience, None), 400, "invalid_dpop_proof")
    resp = cc_token(op.url, client, audience, proof(new_key(), "POST", _token_url(op)))
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.text


def test_client_requiring_dpop_keeps_its_code_when_the_proof_is_missing(op):
    # §5.2: the refusal comes before the code is looked at, so the client may retry with it
    spa, user = op.factory.gen_client("spa"), op.factory.gen_user()
    _require_dpop(op, spa.client_id)
    code, verifier = get_code(op, spa, user, scope="openid")
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": spa.redirect_uri, "code_verifier": verifier}  # fmt: skip
    assert_oauth_error(token_post(op, data, spa), 400, "invalid_dpop_proof")
    headers = {"DPoP": proof(new_key(), "POST", _token_url(op))}
    resp = token_post(op, data, spa, headers=headers)
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.text


# --- refresh tokens (§5) -----------------------------------------------------------------


def test_public_client_refresh_token_bound_to_the_key(op):
    spa, user = op.factory.gen_client("spa"), op.factory.gen_user()
    key = new_key()
    tokens = _code_tokens(op, spa, user, key).json()
    assert tokens["token_type"] == "DPoP"
    assert jwt_parts(tokens["access_token"])[1]["cnf"]["jkt"] == thumbprint(key)
    rt = tokens["refresh_token"]
    assert_oauth_error(_refresh(op, spa, rt, new_key()), 400, "invalid_grant")  # another key
    assert_oauth_error(_refresh(op, spa, rt, None), 400, "invalid_grant")  # no proof
    resp = _refresh(op, spa, rt, key)  # the refusals rotated nothing
    assert resp.status_code == 200, resp.text
    again = resp.json()
    assert again["token_type"] == "DPoP"
    assert jwt_parts(again["access_token"])[1]["cnf"]["jkt"] == thumbprint(key)
    # the rotated refresh token keeps the binding
    assert_oauth_error(_refresh(op, spa, again["refresh_token"], new_key()), 400, "invalid_grant")


def test_confidential_client_refresh_token_not_bound(op):
    # §5: a confidential client's refresh token is bound to its authentication, not a key
    web, user = op.factory.gen_client(), op.factory.gen_user()
    tokens = _code_tokens(op, web, user, new_key()).json()
    assert tokens["token_type"] == "DPoP"
    other = new_key()
    resp = _refresh(op, web, tokens["refresh_token"], other)
    assert resp.status_code == 200, resp.text
    assert jwt_parts(resp.json()["access_token"])[1]["cnf"]["jkt"] == thumbprint(other)
    resp = _refresh(op, web, resp.json()["refresh_token"], None)
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer", resp.text


# --- authorization code binding (§10) ------------------------------------------------------


def _bound_code(op: Any, client: Any, user: Any, jkt: str) -> dict[str, str]:
    code, verifier = get_code(op, client, user, scope="openid", dpop_jkt=jkt)
    return {"grant_type": "authorization_code", "code": code,
            "redirect_uri": client.redirect_uri, "code_verifier": verifier}  # fmt: skip


def test_code_bound_by_dpop_jkt(op):
    spa, user = op.factory.gen_client("spa"), op.factory.gen_user()
    key = new_key()
    data = _bound_code(op, spa, user, thumbprint(key))
    resp = token_post(op, data, spa, headers={"DPoP": proof(key, "POST", _token_url(op))})
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.text


@pytest.mark.parametrize("with_key", ["another", "none"])
def test_code_bound_by_dpop_jkt_refuses_another_key_or_none(op, with_key):
    spa, user = op.factory.gen_client("spa"), op.factory.gen_user()
    data = _bound_code(op, spa, user, thumbprint(new_key()))
    headers = {"DPoP": proof(new_key(), "POST", _token_url(op))} if with_key == "another" else {}
    assert_oauth_error(token_post(op, data, spa, headers=headers), 400, "invalid_grant")


def test_malformed_dpop_jkt_is_invalid_request(op):
    spa = op.factory.gen_client("spa")
    _verifier, challenge = pkce()
    params = auth_params(spa, challenge, dpop_jkt="not a thumbprint")
    resp = requests.get(f"{op.url}/authorize", params=params, allow_redirects=False)
    assert resp.status_code in (302, 303), resp.text
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == [params["state"]]


# --- userinfo (§7) and introspection ----------------------------------------------------


@pytest.fixture(scope="module")
def bound(live: Any) -> dict[str, Any]:
    client, user = live.factory.gen_client(), live.factory.gen_user()
    key = new_key()
    resp = _code_tokens(live, client, user, key, scope="openid email")
    assert resp.status_code == 200, resp.text
    return {"client": client, "user": user, "key": key, "token": resp.json()["access_token"]}


def test_userinfo_with_dpop_token_and_proof(op, bound):
    resp = _userinfo(op, bound["token"], bound["key"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["email"] == bound["user"].email


def test_userinfo_dpop_token_as_bearer_refused(op, bound):
    resp = _userinfo(op, bound["token"], None, scheme="Bearer")
    assert_bearer_error(resp, 401, "invalid_token")
    resp = requests.post(f"{op.url}/userinfo", data={"access_token": bound["token"]})
    assert_bearer_error(resp, 401, "invalid_token")


def test_userinfo_ath_mismatch(op, bound):
    resp = _userinfo(op, bound["token"], bound["key"], ath=ath("another token"))
    _dpop_challenge(resp, "invalid_dpop_proof")


def test_userinfo_proof_of_another_key(op, bound):
    _dpop_challenge(_userinfo(op, bound["token"], new_key()), "invalid_token")


def test_userinfo_dpop_scheme_without_proof(op, bound):
    _dpop_challenge(_userinfo(op, bound["token"], None), "invalid_dpop_proof")


def test_userinfo_proof_for_another_method_or_url(op, bound):
    _dpop_challenge(_userinfo(op, bound["token"], bound["key"], htm="POST"), "invalid_dpop_proof")
    url = f"{op.url}/oauth/token"
    _dpop_challenge(_userinfo(op, bound["token"], bound["key"], htu=url), "invalid_dpop_proof")


def test_userinfo_replayed_proof(op, bound):
    url = f"{op.url}/userinfo"
    dpop = proof(bound["key"], "GET", url, ath=ath(bound["token"]))
    headers = {"Authorization": f"DPoP {bound['token']}", "DPoP": dpop}
    assert requests.get(url, headers=headers).status_code == 200
    _dpop_challenge(requests.get(url, headers=headers), "invalid_dpop_proof")


def test_userinfo_bearer_token_with_dpop_scheme_refused(op):
    client, user = op.factory.gen_client(), op.factory.gen_user()
    token = _code_tokens(op, client, user, None, scope="openid").json()["access_token"]
    _dpop_challenge(_userinfo(op, token, new_key()), "invalid_token")
    assert _userinfo(op, token, None, scheme="Bearer").status_code == 200


def test_userinfo_unauthenticated_challenge_offers_dpop(op):
    resp = requests.get(f"{op.url}/userinfo")
    assert_bearer_error(resp, 401, None)
    assert "DPoP algs=" in resp.headers["WWW-Authenticate"]


def test_introspection_answers_cnf_and_token_type(op, bound):
    body = introspect(op, bound["client"], bound["token"]).json()
    assert body["active"] is True
    assert body["token_type"] == "DPoP"
    assert body["cnf"] == {"jkt": thumbprint(bound["key"])}
