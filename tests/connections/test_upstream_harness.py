"""The upstream harness itself: npm oidc-provider answers the code flow with PKCE, in both
response modes, rotates its keys on demand and serves GitHub-shaped profile endpoints.
(The strategy's own tests are test_upstream_oidc.py and test_upstream_oauth2.py.)"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

import requests

from tests.connections.upstream import REDIRECT_URI


def _authorize(upstream, client_id, **extra):
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    query = {
        "client_id": client_id, "response_type": "code", "scope": "openid email profile",
        "redirect_uri": REDIRECT_URI, "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "s-1", "nonce": "n-1", **extra,
    }  # fmt: skip
    return upstream.url("/auth?") + urlencode(query), verifier


def test_login_returns_the_callback_parameters(oidc_upstream):
    for mode in ("query", "form_post"):
        url, _ = _authorize(oidc_upstream, oidc_upstream.client_id, response_mode=mode)
        params = oidc_upstream.login(url, "verified-alice@example.com")
        assert set(params) == {"code", "state", "iss"}, mode
        assert params["state"] == "s-1"
        assert params["iss"] == oidc_upstream.issuer


def test_rotate_keys_replaces_the_jwks(oidc_upstream):
    before = requests.get(oidc_upstream.url("/jwks"), timeout=5).json()["keys"]
    kid = oidc_upstream.rotate_keys()
    after = requests.get(oidc_upstream.url("/jwks"), timeout=5).json()["keys"]
    assert [k["kid"] for k in after] == [kid]
    assert kid not in {k["kid"] for k in before}


def test_github_shaped_endpoints_need_an_issued_token(oidc_upstream):
    url, verifier = _authorize(oidc_upstream, "idp-post")
    params = oidc_upstream.login(url, "carol@example.com")
    client = oidc_upstream.clients["client_secret_post"]
    tokens = requests.post(
        oidc_upstream.url("/token"),
        data={"grant_type": "authorization_code", "code": params["code"],
              "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
              "client_id": client.client_id, "client_secret": client.client_secret},
        timeout=5,
    ).json()  # fmt: skip
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    user = requests.get(oidc_upstream.url("/gh/user"), headers=bearer, timeout=5).json()
    assert user["login"] == "carol" and isinstance(user["id"], int)
    emails = requests.get(oidc_upstream.url("/gh/user/emails"), headers=bearer, timeout=5).json()
    primary = [e for e in emails if e["primary"]]
    assert primary == [
        {"email": "carol@example.com", "primary": True, "verified": False, "visibility": "private"}
    ]
    refused = requests.get(oidc_upstream.url("/gh/user"), headers={"Authorization": "Bearer x"},
                           timeout=5)  # fmt: skip
    assert refused.status_code == 401


def test_another_redirect_uri_can_be_allowed(oidc_upstream):
    other = "http://127.0.0.1:9/login/callback"
    url, _ = _authorize(oidc_upstream, oidc_upstream.client_id, redirect_uri=other)
    oidc_upstream.allow_redirect_uri(other)
    assert "code" in oidc_upstream.login(url, "dave")
