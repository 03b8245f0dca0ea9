"""Client authentication and signatures as the metadata lists them
(tests/conformance/test_discovery_matches_configuration.py): each endpoint takes exactly the
client authentication methods its ``*_auth_methods_supported`` names (``endpoint_method``), and
every algorithm of an ``*_alg_values_supported`` list is one idp accepts (``ALGORITHM_PROBES``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey

from idp.core.crypto import sha256_hex
from idp.extensions import db, services
from idp.oauth import service as oauth
from idp.oauth.device_models import DEVICE_GRANT
from idp.oauth.models import AuthorizationCode
from tests.conformance._discovery_probes import ISSUER, Idp, redirect_error
from tests.conformance._dpop_helpers import proof
from tests.conformance._jwt_client_helpers import assertion, jwks_of, register, token_form
from tests.factories import RP, TestClient
from tests.helpers import auth_params, jwt_parts, pkce

HMAC_ALGS = ("HS256", "HS384", "HS512")
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


@cache
def _rsa() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa"})


def signing_key(alg: str) -> Key:
    """A fresh key pair of the type ``alg`` signs with (one RSA key serves RS* and PS*)."""
    if alg[:2] in ("RS", "PS"):
        return _rsa()
    if alg in _CURVES:
        return ECKey.generate_key(_CURVES[alg], parameters={"kid": secrets.token_hex(4)})
    if alg in ("EdDSA", "Ed25519"):
        return OKPKey.generate_key("Ed25519", parameters={"kid": secrets.token_hex(4)})
    raise AssertionError(f"no key type known for {alg}: teach signing_key")


def _client_assertion(idp: Idp, alg: str, app_type: str, aud: str) -> tuple[str, str]:
    """A client of ``app_type`` that authenticates with a JWT signed by ``alg`` (RFC 7523 §2.2:
    client_secret_jwt for HMAC, else private_key_jwt), and such an assertion for ``aud``."""
    if alg in HMAC_ALGS:
        client_id, secret = register(idp, app_type, method="client_secret_jwt")
        assert secret is not None
        return client_id, assertion(OctKey.import_key(secret), client_id, aud, alg)
    key = signing_key(alg)
    client_id, _ = register(idp, app_type, method="private_key_jwt", jwks=jwks_of(key))
    return client_id, assertion(key, client_id, aud, alg)


# ------------------------------------------------------------------------------- methods
METHODS = ("client_secret_basic", "client_secret_post", "none", "private_key_jwt",
           "client_secret_jwt")  # fmt: skip
# Per endpoint: a request of an authenticated client, and its answer (status, error)
_REQUESTS: dict[str, tuple[Callable[[str], dict[str, str]], tuple[int, str | None]]] = {
    "token_endpoint": (
        lambda _: {"grant_type": "refresh_token", "refresh_token": "nope"},
        (400, "invalid_grant"),
    ),
    "revocation_endpoint": (lambda _: {"token": "nope"}, (200, None)),
    "introspection_endpoint": (lambda _: {"token": "nope"}, (200, None)),
    "pushed_authorization_request_endpoint": (
        lambda client_id: auth_params(TestClient(client_id, None, RP), pkce()[1]),
        (201, None),
    ),
    "device_authorization_endpoint": (lambda _: {"scope": "openid"}, (200, None)),
}


def _authenticated(idp: Idp, method: str, url: str) -> tuple[str, dict[str, str], Any]:
    """A client registered for ``method`` (allowed the device grant too), and the form and
    HTTP Basic credentials of its request to ``url``."""
    if method == "none":
        client = idp.client("native", "authorization_code", "refresh_token", DEVICE_GRANT)
        return client.client_id, {"client_id": client.client_id}, None
    if method in ("client_secret_basic", "client_secret_post"):
        client = idp.factory.gen_client(auth_method=method)
        _allow_device_grant(idp, client.client_id)
        if method == "client_secret_basic":
            return client.client_id, {}, client.basic
        secret = str(client.client_secret)
        return client.client_id, {"client_id": client.client_id, "client_secret": secret}, None
    alg = "HS256" if method == "client_secret_jwt" else "ES256"
    client_id, signed = _client_assertion(idp, alg, "regular_web", url)
    _allow_device_grant(idp, client_id)
    return client_id, _assertion_form(signed), None


def _allow_device_grant(idp: Idp, client_id: str) -> None:
    with idp.app.app_context():
        grants = ["authorization_code", "refresh_token", DEVICE_GRANT]
        oauth.update_client(db.session, client_id, grant_types=grants)
        db.session.commit()


def endpoint_method(idp: Idp, member: str, method: str, advertised: bool) -> None:
    """RFC 8414 §2: a method the endpoint lists authenticates there; one it does not list is
    ``invalid_client`` (RFC 6749 §5.2)."""
    url = idp.document()[member]
    client_id, form, basic = _authenticated(idp, method, url)
    body, answer = _REQUESTS[member]
    resp = idp.post(url, data=body(client_id) | form, auth=basic)
    status, error = answer if advertised else (401, "invalid_client")
    assert resp.status_code == status, (member, method, resp.status_code, resp.text)
    assert (resp.json or {}).get("error") == error, (member, method, resp.text)


# ---------------------------------------------------------------------------- algorithms
def token_auth(idp: Idp, alg: str) -> None:
    """``token_endpoint_auth_signing_alg_values_supported`` (RFC 8414 §2)."""
    _client_id, signed = _client_assertion(idp, alg, "m2m", f"{ISSUER}/oauth/token")
    resp = idp.post("/oauth/token", data=token_form(signed))
    assert resp.status_code == 200, (alg, resp.text)


def revocation_auth(idp: Idp, alg: str) -> None:
    _client_id, signed = _client_assertion(idp, alg, "m2m", f"{ISSUER}/oauth/revoke")
    resp = idp.post("/oauth/revoke", data={"token": "nope", **_assertion_form(signed)})
    assert resp.status_code == 200, (alg, resp.text)


def introspection_auth(idp: Idp, alg: str) -> None:
    _client_id, signed = _client_assertion(idp, alg, "m2m", f"{ISSUER}/oauth/introspect")
    resp = idp.post("/oauth/introspect", data={"token": "nope", **_assertion_form(signed)})
    assert resp.status_code == 200 and resp.json == {"active": False}, (alg, resp.text)


def _assertion_form(signed: str) -> dict[str, str]:
    form = token_form(signed)
    return {k: form[k] for k in ("client_assertion_type", "client_assertion")}


def request_object(idp: Idp, alg: str) -> None:
    """``request_object_signing_alg_values_supported`` (RFC 9101 §10.1): /authorize takes a
    request object signed with it and goes on to the login page."""
    key = signing_key(alg)
    client_id, _ = register(idp, "regular_web", jwks=jwks_of(key))
    _verifier, challenge = pkce()
    params = auth_params(TestClient(client_id, None, RP), challenge)
    now = int(time.time())
    body = {**params, "iss": client_id, "aud": ISSUER, "iat": now, "nbf": now, "exp": now + 300}
    body["jti"] = secrets.token_urlsafe(12)
    signed = jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])
    query = {"client_id": client_id, "request": signed, "response_type": "code", "scope": "openid"}
    resp = idp.get("/authorize", query_string=query)
    assert resp.status_code == 200, (alg, resp.status_code, resp.headers.get("Location"))
    assert redirect_error(resp) is None


def dpop_proof(idp: Idp, alg: str) -> None:
    """``dpop_signing_alg_values_supported`` (RFC 9449 §5.1): a proof signed with it binds."""
    client, audience = idp.factory.m2m()
    dpop = proof(signing_key(alg), "POST", f"{ISSUER}/oauth/token", alg=alg)
    form = {"grant_type": "client_credentials", "audience": audience}
    resp = idp.post("/oauth/token", data=form, auth=client.basic, headers={"DPoP": dpop})
    assert resp.status_code == 200, (alg, resp.text)
    assert (resp.json or {})["token_type"] == "DPoP", alg


def _id_token_header(idp: Idp, registered: str | None) -> dict[str, Any]:
    """The header of the ID token a client registered with ``id_token_signed_response_alg``
    ``registered`` gets for a code (stored as a login would leave it)."""
    client, user = idp.client(), idp.factory.gen_user()
    code, (verifier, challenge), now = secrets.token_urlsafe(32), pkce(), int(time.time())
    with idp.app.app_context():
        oauth.get_client(db.session, client.client_id).id_token_signed_response_alg = registered
        db.session.add(AuthorizationCode(
            code_hash=sha256_hex(code), grant_id="grt_" + secrets.token_hex(8),
            client_id=client.client_id, user_id=user.user_id, redirect_uri=RP, scope="openid",
            code_challenge=challenge, code_challenge_method="S256", auth_time=now, amr=["pwd"],
            created_at=now, expires_at=now + 60,
        ))  # fmt: skip
        db.session.commit()
        services().clients.invalidate()
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": RP}  # fmt: skip
    resp = idp.post("/oauth/token", data=form, auth=client.basic)
    assert resp.status_code == 200, resp.text
    return dict(jwt_parts((resp.json or {})["id_token"])[0])


def id_token_signing(idp: Idp, alg: str) -> None:
    """``id_token_signing_alg_values_supported`` (OIDC Discovery §3): what idp signs with now,
    so a client registered for ``alg`` (OIDC Registration §2) gets its ID tokens signed with it,
    by a key of the JWKS; RS256 is listed, and is what a client that asked for nothing gets
    (rotations to ES256: test_es256.py)."""
    assert "RS256" in idp.document()["id_token_signing_alg_values_supported"]
    published = json.loads(idp.get("/.well-known/jwks.json").text)["keys"]
    header = _id_token_header(idp, alg)
    assert header["alg"] == alg and {"kid": header["kid"], "alg": alg} in [
        {"kid": k.get("kid"), "alg": k.get("alg")} for k in published
    ], (alg, header)
    if alg == "RS256":
        assert _id_token_header(idp, None)["alg"] == "RS256"


ALGORITHM_PROBES = {
    "token_endpoint_auth_signing_alg_values_supported": token_auth,
    "revocation_endpoint_auth_signing_alg_values_supported": revocation_auth,
    "introspection_endpoint_auth_signing_alg_values_supported": introspection_auth,
    "request_object_signing_alg_values_supported": request_object,
    "dpop_signing_alg_values_supported": dpop_proof,
    "id_token_signing_alg_values_supported": id_token_signing,
}
