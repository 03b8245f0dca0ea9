"""Discovery (OIDC Discovery 1.0, RFC 8414) and JWKS: CONFORMANCE.md §2.1, DISC-* and JWKS-*.

The key-rotation test (JWKS-06) changes the module's server keys, so it is the last test here.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from joserfc import jwt

from idp.extensions import db, services
from idp.keys import service as key_service
from tests.conformance._authz_helpers import (
    assert_error_redirect,
    code_flow,
    jwks,
    log_in,
    send_authorize,
    verify,
)
from tests.helpers import Browser, auth_params, jwt_parts, pkce

WELL_KNOWN = "/.well-known/openid-configuration"
RFC8414_WELL_KNOWN = "/.well-known/oauth-authorization-server"
TLS = os.environ.get("CONFORMANCE_TLS") == "1"
REQUIRED = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
)
BOOLEAN_MEMBERS = {
    "claims_parameter_supported",
    "request_parameter_supported",
    "request_uri_parameter_supported",
    "require_request_uri_registration",
    "require_pushed_authorization_requests",
    "authorization_response_iss_parameter_supported",
    "frontchannel_logout_supported",
    "frontchannel_logout_session_supported",
    "backchannel_logout_supported",
    "backchannel_logout_session_supported",
    "tls_client_certificate_bound_access_tokens",
}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
def doc(op) -> dict[str, Any]:
    resp = requests.get(op.url + WELL_KNOWN)
    assert resp.status_code == 200
    return dict(resp.json())


@pytest.fixture
def keys(op, doc) -> list[dict[str, Any]]:
    resp = requests.get(doc["jwks_uri"])
    assert resp.status_code == 200
    return list(resp.json()["keys"])


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- DISC ----------------------------------------------------------------------------------


def test_disc01_discovery_is_json_object(op):
    resp = requests.get(op.url + WELL_KNOWN)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert isinstance(resp.json(), dict)


def test_disc02_issuer_matches_discovery_url_and_id_token_iss(op, doc):
    fetch_url = op.url + WELL_KNOWN
    assert doc["issuer"] == fetch_url[: -len(WELL_KNOWN)]
    assert not doc["issuer"].endswith("/")
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    tokens = log_in(op.url, client, user).tokens
    assert jwt_parts(tokens["id_token"])[1]["iss"] == doc["issuer"]
    assert jwt_parts(tokens["access_token"])[1]["iss"] == doc["issuer"]


def test_disc03_issuer_is_https_without_query_or_fragment(doc):
    parts = urlsplit(doc["issuer"])
    assert parts.query == "" and parts.fragment == "" and "?" not in doc["issuer"]
    assert "#" not in doc["issuer"]
    assert parts.netloc and not parts.username and not parts.password
    if TLS:
        assert parts.scheme == "https"
    else:
        # The test server is plain http on loopback; anything else must be https.
        assert parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(doc["issuer"]))


def test_disc04_required_members_present(doc):
    for member in REQUIRED:
        assert doc.get(member), member


def test_disc05_rs256_supported_for_id_tokens(doc):
    assert "RS256" in doc["id_token_signing_alg_values_supported"]


def test_disc06_subject_and_response_types(doc):
    subject_types = doc["subject_types_supported"]
    assert isinstance(subject_types, list) and subject_types
    assert set(subject_types) <= {"public", "pairwise"}
    assert "code" in doc["response_types_supported"]


@pytest.mark.skipif(not TLS, reason="DISC-07: the test server is http; set CONFORMANCE_TLS=1")
def test_disc07_every_endpoint_is_https(doc):
    urls = {k: v for k, v in doc.items() if k.endswith("_endpoint") or k == "jwks_uri"}
    assert urls
    for member, url in urls.items():
        assert urlsplit(url).scheme == "https", (member, url)


def test_disc08_member_types_and_no_empty_members(doc):
    for member, value in doc.items():
        assert value not in ([], {}, "", None), member
        if member in BOOLEAN_MEMBERS:
            assert isinstance(value, bool), member
        elif member.endswith("_supported"):
            assert isinstance(value, list), member
            assert value and all(isinstance(v, str) and v for v in value), member
            assert len(value) == len(set(value)), member
        elif member.endswith(("_endpoint", "_uri")) or member == "issuer":
            assert isinstance(value, str), member
    if "grant_types_supported" in doc:
        assert doc["grant_types_supported"]


def test_disc09_recommended_members_published(op, doc):
    assert doc["userinfo_endpoint"] == f"{doc['issuer']}/userinfo"
    assert "openid" in doc["scopes_supported"]
    assert "sub" in doc["claims_supported"]
    # No dynamic registration is offered, so no registration_endpoint may be advertised.
    assert "registration_endpoint" not in doc
    resp = requests.get(doc["userinfo_endpoint"])
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_disc10_code_challenge_methods_exactly_s256(doc):
    assert doc["code_challenge_methods_supported"] == ["S256"]


def test_disc11_optional_feature_metadata_is_truthful(op, doc):
    # request_uri_parameter_supported defaults to true when omitted, so it must be present.
    assert doc.get("request_parameter_supported") is True  # RFC 9101, idp.oauth.jar
    assert doc.get("request_uri_parameter_supported") is False  # only PAR's (RFC 9126)
    assert doc.get("claims_parameter_supported") is True  # OIDC Core §5.5, idp.oauth.claims_request
    client = op.factory.gen_client()
    _verifier, challenge = pkce()
    params = auth_params(client, challenge, request_uri="https://rp.test/request.jwt")
    resp = send_authorize(op.url, params)
    assert_error_redirect(
        resp, client.redirect_uri, doc["issuer"], "request_uri_not_supported", params["state"]
    )
    params = auth_params(client, challenge, request="eyJhbGciOiJub25lIn0.eyJ9.")
    resp = send_authorize(op.url, params)
    assert_error_redirect(
        resp, client.redirect_uri, doc["issuer"], "invalid_request_object", params["state"]
    )


def _redeem_with_method(op, client, code, verifier, method) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }
    auth = None
    if method == "client_secret_basic":
        auth = client.basic
    elif method == "client_secret_post":
        data.update(client_id=client.client_id, client_secret=client.client_secret)
    else:
        data["client_id"] = client.client_id
    return requests.post(f"{op.url}/oauth/token", data=data, auth=auth)


@pytest.mark.parametrize(
    ("method", "app_type", "auth_method"),
    [
        ("client_secret_basic", "regular_web", None),
        ("client_secret_post", "regular_web", "client_secret_post"),
        ("none", "spa", None),
        ("none", "native", None),
    ],
)
def test_disc12_auth_methods_in_use_are_listed(op, doc, method, app_type, auth_method):
    assert method in doc.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    client = op.factory.gen_client(app_type, auth_method=auth_method)
    user = op.factory.gen_user()
    verifier, challenge = pkce()
    result = Browser(op.url).authorize(auth_params(client, challenge), user)
    assert result.code, result
    resp = _redeem_with_method(op, client, result.code, verifier, method)
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"].lower() == "bearer"


# DISC-13: one case per feature. Built features must be advertised and work; absent ones must
# not be advertised (and the OP must behave as if they do not exist).


def _probe_revocation(op, doc) -> None:
    client = op.factory.gen_client()
    resp = requests.post(doc["revocation_endpoint"], auth=client.basic, data={"token": "nope"})
    assert resp.status_code == 200, resp.text


def _probe_introspection(op, doc) -> None:
    client = op.factory.gen_client()
    resp = requests.post(doc["introspection_endpoint"], auth=client.basic, data={"token": "nope"})
    assert resp.status_code == 200 and resp.json() == {"active": False}


def _probe_end_session(op, doc) -> None:
    resp = requests.get(doc["end_session_endpoint"], allow_redirects=False)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")


def _probe_iss(op, doc) -> None:
    assert doc["authorization_response_iss_parameter_supported"] is True
    client = op.factory.gen_client()
    _verifier, challenge = pkce()
    params = auth_params(client, challenge, prompt="none")
    resp = send_authorize(op.url, params)
    assert_error_redirect(
        resp, client.redirect_uri, doc["issuer"], "login_required", params["state"]
    )


def _probe_par(op, doc) -> None:
    """RFC 9126 §5 (tests/conformance/test_jar_par.py has the rest)."""
    assert doc["require_pushed_authorization_requests"] is False  # the tenant's setting
    client = op.factory.gen_client()
    _verifier, challenge = pkce()
    params = auth_params(client, challenge)
    resp = requests.post(doc["pushed_authorization_request_endpoint"], data=params,
                         auth=client.basic)  # fmt: skip
    assert resp.status_code == 201 and resp.json()["expires_in"] == 60, resp.text
    params = auth_params(client, challenge, request_uri="urn:ietf:params:oauth:request_uri:abc")
    resp = send_authorize(op.url, params)
    assert_error_redirect(
        resp, client.redirect_uri, doc["issuer"], "invalid_request_uri", params["state"]
    )


def _probe_no_device(op, doc) -> None:
    client = op.factory.gen_client()
    resp = requests.post(
        doc["token_endpoint"],
        auth=client.basic,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": "x",
        },
    )
    assert resp.status_code == 400
    assert resp.json()["error"] in ("unsupported_grant_type", "unauthorized_client")


def _probe_dpop(op, doc) -> None:
    """RFC 9449 §5.1: the advertised algorithms are asymmetric, and a proof binds the token."""
    from tests.conformance._dpop_helpers import cc_token, new_key, proof

    algs = doc["dpop_signing_alg_values_supported"]
    assert "ES256" in algs and not {"none", "HS256", "HS384", "HS512"} & set(algs), algs
    client, audience = op.factory.m2m()
    resp = cc_token(op.url, client, audience, None)
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer"
    dpop = proof(new_key(), "POST", doc["token_endpoint"])
    resp = cc_token(op.url, client, audience, dpop)
    assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.text


def _probe_backchannel(op, doc) -> None:
    """OIDC Back-Channel Logout §2.1: the Logout Token always carries sid (delivery itself:
    tests/conformance/test_backchannel_logout.py)."""
    assert doc["backchannel_logout_session_supported"] is True


def _nothing(op, doc) -> None:
    pass


FEATURES: dict[str, tuple[bool, Callable[[Any, dict[str, Any]], None]]] = {
    "revocation_endpoint": (True, _probe_revocation),
    "introspection_endpoint": (True, _probe_introspection),
    "end_session_endpoint": (True, _probe_end_session),
    "authorization_response_iss_parameter_supported": (True, _probe_iss),
    "pushed_authorization_request_endpoint": (True, _probe_par),
    "device_authorization_endpoint": (False, _probe_no_device),
    "dpop_signing_alg_values_supported": (True, _probe_dpop),
    "backchannel_logout_supported": (True, _probe_backchannel),
    "frontchannel_logout_supported": (False, _nothing),
}


@pytest.mark.parametrize("member", list(FEATURES))
def test_disc13_feature_metadata_matches_features(op, doc, member):
    enabled, probe = FEATURES[member]
    value = doc.get(member)
    if enabled:
        assert (
            value is True
            or (isinstance(value, str) and value.startswith(doc["issuer"]))
            or (isinstance(value, list) and value)
        ), value
    else:
        # Booleans may be published as false; anything else must be absent.
        assert value in (None, False), value
    probe(op, doc)


def test_disc14_rfc8414_metadata_matches(op, doc):
    resp = requests.get(op.url + RFC8414_WELL_KNOWN)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0].strip() == "application/json"
    other = resp.json()
    assert other["issuer"] == doc["issuer"]
    for member, value in doc.items():
        if member.endswith("_endpoint") or member == "jwks_uri":
            assert other.get(member) == value, member
    assert other["code_challenge_methods_supported"] == doc["code_challenge_methods_supported"]


# --- JWKS ----------------------------------------------------------------------------------


def test_jwks01_jwks_is_a_json_key_set(op, doc):
    resp = requests.get(doc["jwks_uri"])
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0].strip() in (
        "application/json",
        "application/jwk-set+json",
    )
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body["keys"], list) and body["keys"]
    key_set = jwks(op.url)
    assert len(key_set.keys) == len(body["keys"])


def test_jwks02_every_key_has_a_unique_kid(keys):
    kids = [k.get("kid") for k in keys]
    assert all(isinstance(kid, str) and kid for kid in kids)
    assert len(kids) == len(set(kids))


def test_jwks03_no_private_or_symmetric_material(keys):
    for key in keys:
        assert key["kty"] != "oct", key
        assert not PRIVATE_MEMBERS & set(key), key


def test_jwks04_use_member_when_needed(keys):
    uses = {k.get("use") for k in keys}
    assert uses <= {"sig", "enc", None}
    if "enc" in uses:
        assert all(k.get("use") for k in keys)
    # Keys that sign our tokens are never marked for encryption.
    assert all(k.get("use", "sig") == "sig" for k in keys if k.get("alg") == "RS256")


def test_jwks05_token_kids_select_jwks_keys_that_verify(op, keys):
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    tokens = log_in(op.url, client, user).tokens
    key_set = jwks(op.url)
    by_kid = {k["kid"]: k for k in keys}
    for name in ("id_token", "access_token"):
        token = tokens[name]
        header, _ = jwt_parts(token)
        assert header["alg"] == "RS256"
        assert header["kid"] in by_kid, name
        key = key_set.get_by_kid(header["kid"])
        claims = jwt.decode(token, key, algorithms=["RS256"]).claims
        assert claims["iss"] == op.url
    m2m, audience = op.factory.m2m()
    resp = requests.post(
        f"{op.url}/oauth/token",
        auth=m2m.basic,
        data={"grant_type": "client_credentials", "audience": audience},
    )
    assert resp.status_code == 200
    assert jwt_parts(resp.json()["access_token"])[0]["kid"] in by_kid
    verify(op.url, resp.json()["access_token"])


def test_jwks07_jwks_cache_control_has_max_age(doc):
    resp = requests.get(doc["jwks_uri"])
    directives = [d.strip().lower() for d in resp.headers.get("Cache-Control", "").split(",")]
    max_age = [d for d in directives if d.startswith("max-age=")]
    assert max_age, resp.headers.get("Cache-Control")
    assert int(max_age[0].split("=", 1)[1]) > 0
    assert "no-store" not in directives


# Last in the module: it adds a signing key to this module's server.
def test_jwks06_key_rotation(op, clock):
    client = op.factory.gen_client()
    user = op.factory.gen_user()
    before = log_in(op.url, client, user)
    old_id_token = before.tokens["id_token"]
    old_kid = jwt_parts(old_id_token)[0]["kid"]
    old_exp = jwt_parts(old_id_token)[1]["exp"]

    with op.app.app_context():
        new_key = key_service.rotate(db.session, services().box, "RS256", keep_published_for=3600)
        new_kid = new_key.kid
        db.session.commit()
    assert new_kid != old_kid

    kids = [k["kid"] for k in requests.get(f"{op.url}/.well-known/jwks.json").json()["keys"]]
    assert old_kid in kids and new_kid in kids

    # New tokens (ID and access) are signed with the new key...
    _result, tokens = code_flow(op.url, client, before.browser, prompt="none")
    assert tokens is not None
    for name in ("id_token", "access_token"):
        assert jwt_parts(tokens[name])[0]["kid"] == new_kid, name
        verify(op.url, tokens[name])
    m2m, audience = op.factory.m2m()
    resp = requests.post(
        f"{op.url}/oauth/token",
        auth=m2m.basic,
        data={"grant_type": "client_credentials", "audience": audience},
    )
    assert jwt_parts(resp.json()["access_token"])[0]["kid"] == new_kid

    # ...while the old ones still verify, and the old access token is still honoured.
    assert verify(op.url, old_id_token)["sub"] == user.user_id
    info = requests.get(
        f"{op.url}/userinfo",
        headers={"Authorization": f"Bearer {before.tokens['access_token']}"},
    )
    assert info.status_code == 200, info.text

    # The old key stays published until the tokens it signed have expired.
    clock.advance(old_exp - clock.now() - 5)
    kids = [k["kid"] for k in requests.get(f"{op.url}/.well-known/jwks.json").json()["keys"]]
    assert old_kid in kids and new_kid in kids
    # Tokens signed by the old key are still honoured by the OP itself.
    info = requests.get(
        f"{op.url}/userinfo",
        headers={"Authorization": f"Bearer {before.tokens['access_token']}"},
    )
    assert info.status_code == 200, info.text


def test_cors_for_browser_apps_but_not_on_the_authorization_endpoint(op):
    """UI-09 / TK-26: SPAs may call token, revocation, userinfo and metadata; AZ-41: never
    /authorize."""
    origin = {"Origin": "https://spa.example.test"}
    pre = requests.options(
        f"{op.url}/oauth/token", headers=origin | {"Access-Control-Request-Method": "POST"}
    )
    assert pre.headers.get("Access-Control-Allow-Origin") == "*"
    assert "POST" in pre.headers.get("Access-Control-Allow-Methods", "")
    info = requests.get(f"{op.url}/userinfo", headers=origin)
    assert info.status_code == 401 and info.headers.get("Access-Control-Allow-Origin") == "*"
    authz = requests.get(f"{op.url}/authorize", headers=origin, allow_redirects=False)
    assert "Access-Control-Allow-Origin" not in authz.headers
