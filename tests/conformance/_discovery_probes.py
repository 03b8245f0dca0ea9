"""What tests/conformance/test_discovery_matches_configuration.py does to one app: its metadata
through Flask's test client, and probes that a feature answers (or refuses) over HTTP there.

A probe gets an :class:`Idp` (the app, its test client, a factory, the document) and asserts;
the endpoint probes send a request without credentials or with a client of the factory's, so
that an endpoint that exists answers with its own error, never 404 or 405.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp import create_app
from idp.backchannel import service as backchannel
from idp.core.crypto import sha256_hex
from idp.extensions import db, services
from idp.oauth import service as oauth
from idp.oauth.device_models import DEVICE_GRANT
from idp.oauth.models import AuthorizationCode
from tests.conformance._dpop_helpers import new_key, proof
from tests.conftest import FAST_SETTINGS, build_app
from tests.factories import RP, Factory, TestClient
from tests.helpers import auth_params, pkce

ISSUER = "https://idp.example"
WELL_KNOWN = "/.well-known/openid-configuration"
RFC8414_WELL_KNOWN = "/.well-known/oauth-authorization-server"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass
class Idp:
    app: Flask
    http: FlaskClient = field(init=False)
    factory: Factory = field(init=False)

    def __post_init__(self) -> None:
        self.http = self.app.test_client()
        self.factory = Factory(self.app)

    def document(self, path: str = WELL_KNOWN) -> dict[str, Any]:
        resp = self.get(path)
        assert resp.status_code == 200, resp.text
        assert resp.mimetype == "application/json"
        return dict(resp.json or {})

    def get(self, url: str, **kw: Any) -> TestResponse:
        return self.http.get(_path(url), base_url=ISSUER, **kw)

    def post(self, url: str, **kw: Any) -> TestResponse:
        return self.http.post(_path(url), base_url=ISSUER, **kw)

    def client(self, app_type: str = "regular_web", *grants: str) -> TestClient:
        client = self.factory.gen_client(app_type)
        if grants:
            with self.app.app_context():
                oauth.update_client(db.session, client.client_id, grant_types=list(grants))
                db.session.commit()
        return client


class Apps:
    """One app per configuration (``defaults`` changed by the test's values), all on one
    database, migrated once and holding one signing key."""

    def __init__(self, tmp: Any, defaults: dict[str, Any]) -> None:
        self.tmp, self.defaults = tmp, defaults
        self.base = build_app(tmp, 0, ISSUER=ISSUER)
        self.built: dict[tuple[tuple[str, Any], ...], Idp] = {}

    def get(self, **changes: Any) -> Idp:
        config = self.defaults | changes
        key = tuple(sorted(config.items()))
        if key not in self.built:
            url = self.base.config["DATABASE_URL"]
            settings = FAST_SETTINGS | {"ISSUER": ISSUER, "DATABASE_URL": url} | config
            self.built[key] = Idp(create_app(settings, instance_path=self.tmp))
        return self.built[key]

    def close(self) -> None:
        for app in [*(idp.app for idp in self.built.values()), self.base]:
            with app.app_context():
                services().actions.close()
                db.engine.dispose()


def _path(url: str) -> str:
    """A URL of the document as the test client's path (the issuer is the base URL)."""
    if url.startswith("/"):
        return url
    assert url.startswith(ISSUER + "/"), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def oauth_error(resp: TestResponse, status: int, error: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert (resp.json or {}).get("error") == error, resp.text


def redirect_error(resp: TestResponse) -> str | None:
    location = resp.headers.get("Location", "")
    assert resp.status_code in (302, 303) or not location, resp.status_code
    return parse_qs(urlsplit(location).query).get("error", [None])[0]


def idp_url(path: str) -> str:
    return ISSUER + path


# ---------------------------------------------------------------- every advertised endpoint
def _authorize(idp: Idp, url: str) -> None:
    """GET and POST (OIDC Core §3.1.2.1): without parameters, the endpoint's error page."""
    for resp in (idp.get(url), idp.post(url, data={})):
        assert resp.status_code == 400 and resp.mimetype == "text/html", resp.status_code


def _token(idp: Idp, url: str) -> None:
    oauth_error(idp.post(url, data={}), 400, "invalid_request")


def _userinfo(idp: Idp, url: str) -> None:
    """GET and POST (OIDC Core §5.3.1): without a token, RFC 6750 §3's challenge."""
    for resp in (idp.get(url), idp.post(url, data={})):
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")


def _jwks(idp: Idp, url: str) -> None:
    resp = idp.get(url)
    assert resp.status_code == 200 and resp.json and resp.json["keys"], resp.text


def _revocation(idp: Idp, url: str) -> None:
    client = idp.client()
    resp = idp.post(url, data={"token": "nope"}, auth=client.basic)
    assert resp.status_code == 200, resp.text  # RFC 7009 §2.2: an unknown token is a 200


def _introspection(idp: Idp, url: str) -> None:
    client = idp.client()
    resp = idp.post(url, data={"token": "nope"}, auth=client.basic)
    assert resp.status_code == 200 and resp.json == {"active": False}, resp.text


def _end_session(idp: Idp, url: str) -> None:
    """GET and POST (RP-Initiated Logout 1.0 §2): without parameters, the sign-out page."""
    for resp in (idp.get(url), idp.post(url, data={})):
        assert resp.status_code == 200 and resp.mimetype == "text/html", resp.status_code


def _par(idp: Idp, url: str) -> None:
    client = idp.client()
    _verifier, challenge = pkce()
    resp = idp.post(url, data=auth_params(client, challenge), auth=client.basic)
    assert resp.status_code == 201 and resp.json and resp.json["request_uri"], resp.text


def _registration(idp: Idp, url: str) -> None:
    resp = idp.post(url, json={"redirect_uris": ["https://rp.test/cb"]})
    assert resp.status_code == 401, resp.text  # RFC 7591 §3: the initial access token


def _device_authorization(idp: Idp, url: str) -> None:
    client = idp.client("native", "authorization_code", DEVICE_GRANT)
    resp = idp.post(url, data={"client_id": client.client_id, "scope": "openid"})
    assert resp.status_code == 200, resp.text
    body = resp.json or {}
    assert body["verification_uri"] == f"{ISSUER}/device" and body["device_code"], body
    assert idp.get(body["verification_uri"]).status_code == 200
    poll = idp.post(idp_url("/oauth/token"), data={"grant_type": DEVICE_GRANT,
                    "device_code": body["device_code"], "client_id": client.client_id})  # fmt: skip
    oauth_error(poll, 400, "authorization_pending")


# Every member of the metadata that is a URL, and how to see that it answers. A member that is
# not here fails the test: a new endpoint comes with its probe.
ENDPOINTS = {
    "authorization_endpoint": _authorize,
    "token_endpoint": _token,
    "userinfo_endpoint": _userinfo,
    "jwks_uri": _jwks,
    "revocation_endpoint": _revocation,
    "introspection_endpoint": _introspection,
    "end_session_endpoint": _end_session,
    "pushed_authorization_request_endpoint": _par,
    "registration_endpoint": _registration,
    "device_authorization_endpoint": _device_authorization,
}


# ------------------------------------------------------------------- the switches' behaviour
def device_flow_off(idp: Idp) -> None:
    """RFC 8628 off: no endpoint, no verification page, no grant."""
    client = idp.client("native", "authorization_code", DEVICE_GRANT)
    assert idp.post("/oauth/device/code", data={"client_id": client.client_id}).status_code == 404
    assert idp.get("/device").status_code == 404
    assert idp.get("/device/some-uid").status_code == 404
    poll = idp.post("/oauth/token", data={"grant_type": DEVICE_GRANT, "device_code": "x",
                                          "client_id": client.client_id})  # fmt: skip
    oauth_error(poll, 400, "unsupported_grant_type")


def register(idp: Idp, metadata: dict[str, Any]) -> TestResponse:
    """RFC 7591 §3.1 with a fresh initial access token."""
    from idp.oauth import registration

    with idp.app.app_context():
        _, token = registration.create_initial_token(db.session, services().box, None, None)
        db.session.commit()
    bearer = {"Authorization": f"Bearer {token}"}
    return idp.post("/oauth/register", json={"redirect_uris": [RP]} | metadata, headers=bearer)


def registration_off(idp: Idp) -> None:
    """RFC 7591 off: neither /oauth/register nor a client's registration URI exists, even
    for a valid initial access token."""
    assert register(idp, {}).status_code == 404
    assert idp.get("/oauth/register/some-client").status_code == 404


def registration_on(idp: Idp) -> None:
    resp = register(idp, {})
    assert resp.status_code == 201 and (resp.json or {}).get("client_id"), resp.text


def _cc_token(idp: Idp, dpop: str | None) -> TestResponse:
    client, audience = idp.factory.m2m()
    headers = {"DPoP": dpop} if dpop else {}
    return idp.post("/oauth/token", data={"grant_type": "client_credentials",
                    "audience": audience}, auth=client.basic, headers=headers)  # fmt: skip


def dpop_on(idp: Idp) -> None:
    """RFC 9449 §5: a proof binds the token (token_type DPoP)."""
    resp = _cc_token(idp, proof(new_key(), "POST", idp_url("/oauth/token")))
    assert resp.status_code == 200 and (resp.json or {})["token_type"] == "DPoP", resp.text


def dpop_off(idp: Idp) -> None:
    """Off: proofs are not looked at, the token is a Bearer token (RFC 9449 §1: a server that
    does not know DPoP ignores the header)."""
    resp = _cc_token(idp, proof(new_key(), "POST", idp_url("/oauth/token")))
    assert resp.status_code == 200 and (resp.json or {})["token_type"] == "Bearer", resp.text


def _plain_authorize(idp: Idp) -> tuple[TestClient, dict[str, Any], TestResponse]:
    client = idp.client()
    _verifier, challenge = pkce()
    params = auth_params(client, challenge)
    return client, params, idp.get("/authorize", query_string=params)


def par_required(idp: Idp) -> None:
    """RFC 9126 §6: a request not pushed is refused; a pushed one goes on to the login."""
    client, params, resp = _plain_authorize(idp)
    assert redirect_error(resp) == "invalid_request"
    pushed = idp.post("/oauth/par", data=params, auth=client.basic)
    assert pushed.status_code == 201, pushed.text
    query = {"client_id": client.client_id, "request_uri": (pushed.json or {})["request_uri"]}
    resp = idp.get("/authorize", query_string=query)
    assert resp.status_code == 200 and redirect_error(resp) is None, resp.status_code


def par_optional(idp: Idp) -> None:
    _client, _params, resp = _plain_authorize(idp)
    assert resp.status_code == 200 and redirect_error(resp) is None, resp.status_code


def _logouts_queued(idp: Idp) -> int:
    """A session whose ID token went to a client with a backchannel_logout_uri ends: how many
    Logout Tokens are queued (OIDC BCL §2.7; their delivery: test_backchannel_logout.py)."""
    client = idp.client()
    user = idp.factory.gen_user()
    sid, now = secrets.token_hex(8), int(time.time())
    with idp.app.app_context():
        row = oauth.get_client(db.session, client.client_id)
        backchannel.configure(row, "https://rp.test/backchannel")
        db.session.add(AuthorizationCode(
            code_hash=sha256_hex(secrets.token_hex(16)), grant_id="grt_" + secrets.token_hex(8),
            client_id=client.client_id, user_id=user.user_id, redirect_uri=client.redirect_uri,
            scope="openid", auth_time=now, amr=["pwd"], sid=sid, created_at=now,
            expires_at=now + 60, used_at=now,
        ))  # fmt: skip
        queued = backchannel.sessions_ended(db.session, [(sid, user.user_id)])
        db.session.commit()
    return queued


def backchannel_on(idp: Idp) -> None:
    assert _logouts_queued(idp) == 1


def backchannel_off(idp: Idp) -> None:
    assert _logouts_queued(idp) == 0


def _exchange(idp: Idp) -> TestResponse:
    client = idp.client("regular_web", "authorization_code", TOKEN_EXCHANGE)
    # no subject_token: a grant that exists says invalid_request (RFC 8693 §2.2.2)
    return idp.post("/oauth/token", data={"grant_type": TOKEN_EXCHANGE,
                    "subject_token_type": ACCESS_TOKEN_TYPE}, auth=client.basic)  # fmt: skip


def token_exchange_on(idp: Idp) -> None:
    oauth_error(_exchange(idp), 400, "invalid_request")


def token_exchange_off(idp: Idp) -> None:
    oauth_error(_exchange(idp), 400, "unsupported_grant_type")


def bind_exchange_action(idp: Idp) -> str:
    code = (
        "def on_execute_custom_token_exchange(event, api):\n"
        "    api.access.deny('invalid_request', 'no exchange in this test')\n"
    )
    return idp.factory.gen_action("exchange", "custom-token-exchange", code)
