"""Dynamic client registration (RFC 7591 §3): the initial access token (§3), every metadata
rule with its error code and the field named (§2, §3.2.2, OIDC Registration §2), the answer
(§3.2.1), a full login with the new client, discovery, the rate limit and the tenant log."""

from __future__ import annotations

import secrets
import time

import pytest
import requests
from sqlalchemy import select

from idp.audit.models import LogEvent
from idp.extensions import db, services
from idp.oauth import registration
from idp.oauth.models import Client
from idp.oauth.registration_models import ClientRegistration, InitialAccessToken
from tests.conformance._registration_helpers import (
    RP,
    initial_token,
    register,
    web_client,
)
from tests.conformance._registration_helpers import reg as reg  # the fixture
from tests.factories import TestClient as RegisteredClient
from tests.helpers import Browser, auth_params, pkce, redeem

KEY = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
       "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}  # fmt: skip


def _refused(resp: requests.Response, error: str, field: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == error, body
    assert body["error_description"].startswith(f"{field}:"), body
    assert resp.headers["Cache-Control"] == "no-store"


def test_off_by_default_and_not_advertised(op):
    assert (
        requests.post(f"{op.url}/oauth/register", json=web_client(), timeout=10).status_code == 404
    )
    doc = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=10).json()
    assert "registration_endpoint" not in doc


def test_advertised_when_enabled(reg):
    doc = requests.get(f"{reg.url}/.well-known/openid-configuration", timeout=10).json()
    assert doc["registration_endpoint"] == f"{reg.url}/oauth/register"


# ------------------------------------------------------------------ initial access token
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_no_or_a_wrong_initial_access_token(reg, token):
    resp = register(reg, web_client(), token=token)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_an_expired_initial_access_token(reg, clock):
    token = initial_token(reg, expires_in=60)
    clock.advance(61)
    resp = register(reg, web_client(), token=token)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"


def test_a_used_up_initial_access_token(reg):
    token = initial_token(reg, max_uses=1)
    refused = register(reg, web_client(grant_types=["implicit"]), token=token)
    assert refused.status_code == 400  # a refused registration uses nothing up
    assert register(reg, web_client(), token=token).status_code == 201
    again = register(reg, web_client(), token=token)
    assert again.status_code == 401 and again.json()["error"] == "invalid_token"


def test_a_revoked_initial_access_token(reg):
    token = initial_token(reg)
    with reg.app.app_context():
        (row,) = [t for t in registration.list_initial_tokens(db.session)
                  if services().box.verify(token, t.token_digest)]  # fmt: skip
        assert registration.revoke_initial_token(db.session, row.id)
        db.session.commit()
    assert register(reg, web_client(), token=token).status_code == 401


# ------------------------------------------------------------------ metadata
INVALID = [
    # (metadata, error, field named)
    ({"client_name": "x"}, "invalid_redirect_uri", "redirect_uris"),
    (web_client(redirect_uris=["http://rp.test/cb"]), "invalid_redirect_uri", "redirect_uris"),
    (web_client(redirect_uris=["http://127.0.0.1/cb"]), "invalid_redirect_uri", "redirect_uris"),
    (web_client(redirect_uris=["https://rp.test/cb#frag"]), "invalid_redirect_uri",
     "redirect_uris"),
    (web_client(redirect_uris=["/relative"]), "invalid_redirect_uri", "redirect_uris"),
    (web_client(redirect_uris="https://rp.test/cb"), "invalid_redirect_uri", "redirect_uris"),
    (web_client(grant_types=["implicit"]), "invalid_client_metadata", "grant_types"),
    (web_client(grant_types=["client_credentials"]), "invalid_client_metadata", "grant_types"),
    (web_client(grant_types=["refresh_token"]), "invalid_client_metadata", "grant_types"),
    (web_client(response_types=["token"]), "invalid_client_metadata", "response_types"),
    (web_client(response_types=["code id_token"]), "invalid_client_metadata", "response_types"),
    (web_client(token_endpoint_auth_method="tls_client_auth"), "invalid_client_metadata",
     "token_endpoint_auth_method"),
    (web_client(token_endpoint_auth_method="private_key_jwt"), "invalid_client_metadata",
     "token_endpoint_auth_method"),
    (web_client(application_type="desktop"), "invalid_client_metadata", "application_type"),
    (web_client(application_type="native", token_endpoint_auth_method="client_secret_basic"),
     "invalid_client_metadata", "token_endpoint_auth_method"),
    (web_client(client_name="<script>"), "invalid_client_metadata", "client_name"),
    (web_client(client_name=7), "invalid_client_metadata", "client_name"),
    (web_client(logo_uri="http://rp.test/logo.png"), "invalid_client_metadata", "logo_uri"),
    (web_client(client_uri="javascript:alert(1)"), "invalid_client_metadata", "client_uri"),
    (web_client(policy_uri="https://u:p@rp.test/p"), "invalid_client_metadata", "policy_uri"),
    (web_client(tos_uri=["https://rp.test/tos"]), "invalid_client_metadata", "tos_uri"),
    (web_client(contacts="a@rp.test"), "invalid_client_metadata", "contacts"),
    (web_client(contacts=["a\n@rp.test"]), "invalid_client_metadata", "contacts"),
    (web_client(scope="openid  profile"), "invalid_client_metadata", "scope"),
    (web_client(software_id=""), "invalid_client_metadata", "software_id"),
    (web_client(software_version=3), "invalid_client_metadata", "software_version"),
    (web_client(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "invalid_client_metadata",
     "jwks"),
    (web_client(jwks={"keys": [KEY]}, jwks_uri="https://rp.test/jwks"),
     "invalid_client_metadata", "jwks_uri"),
    (web_client(jwks_uri="http://rp.test/jwks"), "invalid_client_metadata", "jwks_uri"),
    (web_client(token_endpoint_auth_method="private_key_jwt", jwks={"keys": [KEY]},
                token_endpoint_auth_signing_alg="HS256"), "invalid_client_metadata",
     "token_endpoint_auth_signing_alg"),
    (web_client(subject_type="secret"), "invalid_client_metadata", "subject_type"),
    (web_client(subject_type="pairwise", redirect_uris=[RP, "https://other.test/cb"]),
     "invalid_client_metadata", "sector_identifier_uri"),
    (web_client(sector_identifier_uri="https://127.0.0.1:1/sector.json"),
     "invalid_client_metadata", "sector_identifier_uri"),
    (web_client(post_logout_redirect_uris=["http://rp.test/out"]), "invalid_client_metadata",
     "post_logout_redirect_uris"),
    (web_client(initiate_login_uri="https://rp.test/login#x"), "invalid_client_metadata",
     "initiate_login_uri"),
    (web_client(backchannel_logout_uri="https://rp.test/bcl#x"), "invalid_client_metadata",
     "backchannel_logout_uri"),
    (web_client(backchannel_logout_session_required=1), "invalid_client_metadata",
     "backchannel_logout_session_required"),
    (web_client(dpop_bound_access_tokens="yes"), "invalid_client_metadata",
     "dpop_bound_access_tokens"),
    (web_client(software_statement="eyJ.e30.sig"), "unapproved_software_statement",
     "software_statement"),
    (["not", "an", "object"], "invalid_client_metadata", "body"),
]  # fmt: skip


@pytest.mark.parametrize(("metadata", "error", "field"), INVALID,
                         ids=[f"{i}-{c[2]}" for i, c in enumerate(INVALID)])  # fmt: skip
def test_each_invalid_metadata_is_refused_naming_its_field(reg, metadata, error, field):
    _refused(register(reg, metadata), error, field)


def test_a_body_that_is_not_json(reg):
    token = initial_token(reg)
    resp = requests.post(f"{reg.url}/oauth/register", data="client_name=x", timeout=10,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    _refused(resp, "invalid_client_metadata", "body")
    broken = requests.post(f"{reg.url}/oauth/register", data="{", timeout=10,
                           headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"})  # fmt: skip
    _refused(broken, "invalid_client_metadata", "body")


# ------------------------------------------------------------------ the answer
def test_the_answer_and_what_is_stored(reg):
    resp = register(reg, web_client(
        grant_types=["authorization_code", "refresh_token"], contacts=["ops@rp.test"],
        logo_uri="https://rp.test/logo.png", software_id="rp-1", software_version="2.0",
        post_logout_redirect_uris=["https://rp.test/out"], scope="openid profile",
        backchannel_logout_uri="https://rp.test/bcl", backchannel_logout_session_required=True,
        unknown_field={"x": 1}, userinfo_signed_response_alg="RS256",
        id_token_signed_response_alg="RS256",
    ))  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    cid, secret = body["client_id"], body["client_secret"]
    assert body["client_secret_expires_at"] == 0 and isinstance(body["client_id_issued_at"], int)
    assert body["registration_client_uri"] == f"{reg.url}/oauth/register/{cid}"
    assert body["redirect_uris"] == [RP] and body["response_types"] == ["code"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["application_type"] == "web" and body["client_name"] == "Registered RP"
    assert body["contacts"] == ["ops@rp.test"] and body["software_id"] == "rp-1"
    assert body["post_logout_redirect_uris"] == ["https://rp.test/out"]
    assert body["backchannel_logout_uri"] == "https://rp.test/bcl"
    assert body["backchannel_logout_session_required"] is True
    assert body["id_token_signed_response_alg"] == "RS256"  # OIDC Registration §2
    # unknown (and unsupported: no signed userinfo) metadata is ignored (§2): neither stored
    # nor answered
    for name in ("unknown_field", "userinfo_signed_response_alg", "scope"):
        assert name not in body
    with reg.app.app_context():
        client = db.session.get(Client, cid)
        record = db.session.get(ClientRegistration, cid)
        assert client is not None and record is not None
        assert client.first_party is False  # users are asked for consent
        assert secret not in str(client.secret_digest)  # a digest only
        assert services().box.verify(secret, str(client.secret_digest))
        assert record.access_token_digest != body["registration_access_token"]
        assert "unknown_field" not in record.kept and set(record.kept) == {
            "contacts", "logo_uri", "software_id", "software_version"}  # fmt: skip
        logged = db.session.scalars(select(LogEvent).where(LogEvent.client_id == cid)).all()
        assert [e.type for e in logged] == ["client.registered"]
        assert secret not in str(logged[0].details)


def test_a_native_and_a_browser_client_are_public(reg):
    native = register(reg, {"application_type": "native",
                            "redirect_uris": ["http://127.0.0.1/cb", "com.example.app:/cb"]})  # fmt: skip
    assert native.status_code == 201, native.text
    assert "client_secret" not in native.json()
    assert native.json()["token_endpoint_auth_method"] == "none"
    spa = register(reg, web_client(token_endpoint_auth_method="none"))
    assert spa.status_code == 201 and "client_secret" not in spa.json()
    with reg.app.app_context():
        assert db.session.get(Client, native.json()["client_id"]).app_type == "native"
        assert db.session.get(Client, spa.json()["client_id"]).app_type == "spa"


def test_a_registered_client_logs_a_user_in(reg):
    """Registration, then authorization code + PKCE + the token request with its secret."""
    body = register(reg, web_client(grant_types=["authorization_code", "refresh_token"])).json()
    client = RegisteredClient(body["client_id"], body["client_secret"], RP)
    user = reg.factory.gen_user()
    verifier, challenge = pkce()
    result = Browser(reg.url).authorize(auth_params(client, challenge, scope="openid offline_access"),
                                        user, consent="allow")  # fmt: skip
    assert result.consent_shown and result.code, result
    tokens = redeem(reg.url, client, result.code, verifier)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["id_token"] and tokens.json()["refresh_token"]


def test_a_registered_private_key_jwt_client_authenticates_with_its_key(reg):
    """jwks registered by value (OIDC Registration §2): the token request's client assertion
    (RFC 7523 §2.2) is checked with it; the assertion is made with joserfc."""
    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    body = register(reg, web_client(token_endpoint_auth_method="private_key_jwt",
                                    jwks={"keys": [key.as_dict(private=False)]})).json()  # fmt: skip
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    cid = body["client_id"]
    verifier, challenge = pkce()
    client = RegisteredClient(cid, None, RP)
    result = Browser(reg.url).authorize(auth_params(client, challenge), reg.factory.gen_user(),
                                        consent="allow")  # fmt: skip
    now = int(time.time())
    assertion = jwt.encode({"alg": "ES256", "kid": "k1"},
                           {"iss": cid, "sub": cid, "aud": f"{reg.url}/oauth/token",
                            "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 60},
                           key)  # fmt: skip
    resp = requests.post(f"{reg.url}/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": RP,
        "code_verifier": verifier, "client_id": cid, "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    })  # fmt: skip
    assert resp.status_code == 200, resp.text


def test_the_endpoint_is_rate_limited_per_ip(reg):
    with reg.app.app_context():
        config = services().config
        config["DYNAMIC_REGISTRATION_REQUESTS_PER_IP"] = 0
        try:
            resp = register(reg, web_client(), token="whatever")
        finally:
            config["DYNAMIC_REGISTRATION_REQUESTS_PER_IP"] = 10_000
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0


def test_initial_tokens_are_stored_as_digests(reg):
    token = initial_token(reg)
    with reg.app.app_context():
        rows = db.session.scalars(select(InitialAccessToken)).all()
        assert rows and all(token not in r.token_digest for r in rows)


def test_an_id_token_algorithm_the_server_does_not_sign_with_is_refused(reg):
    """OIDC Registration §2 ``id_token_signed_response_alg``: one of the discovery document's
    ``id_token_signing_alg_values_supported`` (here RS256 alone: the test server's one key)."""
    for alg in ("ES256", "none", "HS256"):
        resp = register(reg, web_client(id_token_signed_response_alg=alg))
        _refused(resp, "invalid_client_metadata", "id_token_signed_response_alg")
