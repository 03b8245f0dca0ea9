"""DPoP server nonces (RFC 9449 §8 at the token endpoint, §9 at userinfo) on a server with
``DPOP_NONCE_REQUIRED``: a proof without the nonce, or with a stale or made-up one, is answered
``use_dpop_nonce`` with the current nonce in ``DPoP-Nonce``; the nonce is stateless (an HMAC of
the time window) and accepted for its window and the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conformance._dpop_helpers import ath, cc_token, new_key, proof
from tests.conformance._token_helpers import assert_oauth_error, get_code, token_post
from tests.conftest import LiveServer, build_app, serving

WINDOW = 60


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"DPOP_NONCE_REQUIRED": True, "DPOP_NONCE_SECONDS": WINDOW}
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


@pytest.fixture(scope="module")
def m2m(live: Any) -> tuple[Any, str]:
    return live.factory.m2m()


@pytest.fixture
def aligned(clock: Any) -> Any:
    """The server's clock moved to 1 s into a nonce window: the steps of a test never cross a
    window's end by chance."""
    clock.advance(WINDOW - clock.now() % WINDOW + 1)
    return clock


def _url(op: Any) -> str:
    return f"{op.url}/oauth/token"


def _nonce(op: Any, m2m: tuple[Any, str]) -> str:
    client, audience = m2m
    resp = cc_token(op.url, client, audience, proof(new_key(), "POST", _url(op)))
    assert_oauth_error(resp, 400, "use_dpop_nonce")
    return str(resp.headers["DPoP-Nonce"])


def test_token_request_without_nonce_gets_one_and_the_retry_succeeds(op, m2m, aligned):
    client, audience = m2m
    key = new_key()
    resp = cc_token(op.url, client, audience, proof(key, "POST", _url(op)))
    assert_oauth_error(resp, 400, "use_dpop_nonce")
    nonce = resp.headers["DPoP-Nonce"]
    assert nonce and "no-store" in resp.headers["Cache-Control"]
    resp = cc_token(op.url, client, audience, proof(key, "POST", _url(op), nonce=nonce))
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.text
    assert resp.headers["DPoP-Nonce"] == nonce  # §8.2: the current one, on every answer


def test_made_up_nonce(op, m2m):
    client, audience = m2m
    resp = cc_token(op.url, client, audience, proof(new_key(), "POST", _url(op), nonce="abc"))
    assert_oauth_error(resp, 400, "use_dpop_nonce")
    assert resp.headers["DPoP-Nonce"]


def test_nonce_of_the_previous_window_accepted_then_stale(op, m2m, aligned):
    clock = aligned
    client, audience = m2m
    nonce = _nonce(op, m2m)
    clock.advance(WINDOW)  # the next window: still accepted
    resp = cc_token(op.url, client, audience, proof(new_key(), "POST", _url(op), nonce=nonce))
    assert resp.status_code == 200, resp.text
    assert resp.headers["DPoP-Nonce"] != nonce  # rotated: the client gets the new one
    clock.advance(WINDOW)  # two windows on: stale
    resp = cc_token(op.url, client, audience, proof(new_key(), "POST", _url(op), nonce=nonce))
    assert_oauth_error(resp, 400, "use_dpop_nonce")
    fresh = resp.headers["DPoP-Nonce"]
    assert fresh != nonce
    resp = cc_token(op.url, client, audience, proof(new_key(), "POST", _url(op), nonce=fresh))
    assert resp.status_code == 200, resp.text


def test_nonce_round_trip_keeps_the_code_and_userinfo_asks_too(op, m2m):
    client, user = op.factory.gen_client("spa"), op.factory.gen_user()
    key = new_key()
    code, verifier = get_code(op, client, user, scope="openid email")
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": client.redirect_uri, "code_verifier": verifier}  # fmt: skip
    resp = token_post(op, data, client, headers={"DPoP": proof(key, "POST", _url(op))})
    assert_oauth_error(resp, 400, "use_dpop_nonce")  # checked before the code is claimed
    nonce = resp.headers["DPoP-Nonce"]
    headers = {"DPoP": proof(key, "POST", _url(op), nonce=nonce)}
    resp = token_post(op, data, client, headers=headers)
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]

    # §9: the resource answers 401 with a DPoP challenge and the nonce
    url = f"{op.url}/userinfo"
    auth = {"Authorization": f"DPoP {token}"}
    resp = requests.get(url, headers=auth | {"DPoP": proof(key, "GET", url, ath=ath(token))})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith('DPoP error="use_dpop_nonce"')
    nonce = resp.headers["DPoP-Nonce"]
    dpop = proof(key, "GET", url, ath=ath(token), nonce=nonce)
    resp = requests.get(url, headers=auth | {"DPoP": dpop})
    assert resp.status_code == 200, resp.text
    assert resp.json()["email"] == user.email
