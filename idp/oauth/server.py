"""Wire Authlib's authorization server to idp: grants, PKCE, client auth, endpoints."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError
from flask import Flask, Request, current_app, request

from idp.backchannel import service as _backchannel  # noqa: F401 - its discovery metadata
from idp.extensions import services
from idp.oauth import (
    dpop_http,
    pairwise,  # noqa: F401 - its discovery metadata (subject types)
)
from idp.oauth.client_jwt import init_app as init_client_jwt
from idp.oauth.device import DeviceEndpoint, DeviceGrant
from idp.oauth.endpoints import Introspection, Revocation
from idp.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)


def _query_client(client_id: str) -> Any:
    return services().clients.get(client_id)


def _save_token(token: dict[str, Any], request: Any) -> None:
    """Tokens are stored by the grants themselves, inside the redemption transaction."""


def _client_secret_basic(query_client: Any, request: Any) -> Any:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before base64, so ``+`` is a space.
    (Authlib decodes with ``unquote``, which leaves ``+`` alone.)"""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        return None
    client = query_client(unquote_plus(client_id))
    if client is None:
        raise InvalidClientError(status_code=401, description="Client authentication failed.")
    return client if client.check_client_secret(unquote_plus(secret)) else None


class TokenEndpointRequest(FlaskOAuth2Request):
    """Authlib's Flask request for the token endpoint, with ``uri`` built from the scheme,
    host and path instead of Werkzeug's ``request.url``: that IRI (quoting, IDNA decoding of
    the host, percent-decoding) costs more than the rest of the request object, and Authlib's
    only use of it is the transport check (RFC 6749 §3.2: TLS), which reads its scheme and
    host. Authlib's own check still runs, in ``OAuth2Request.__init__``. The query string is
    left out of ``uri``; the grants read parameters from ``payload`` (query and form)."""

    def __init__(self, req: Request) -> None:
        uri = f"{req.scheme}://{req.host}{req.root_path}{req.path}"
        OAuth2Request.__init__(self, method=req.method, uri=uri, headers=req.headers)
        self._request = req
        self.payload = FlaskOAuth2Payload(req)


def token_endpoint_request() -> TokenEndpointRequest:
    return TokenEndpointRequest(request._get_current_object())  # type: ignore[attr-defined]


class IdpAuthorizationServer(AuthorizationServer):
    """Authlib's Flask server, which also takes an authorization request that is not the current
    HTTP request: the one stored with an interaction, finished by the login POST."""

    def create_oauth2_request(self, request: Any) -> Any:
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        """Every token grant authenticates its client here (Authlib's
        ``authenticate_token_endpoint_client``, endpoint ``token``; the other endpoints pass
        their own names): the one place where the token endpoint applies RFC 9449 §5.2's
        per-client requirement, for every grant it serves, before the grant reads its
        credential. The proof itself was checked before any grant ran (``dpop_http``)."""
        client = super().authenticate_client(request, methods, endpoint)
        if endpoint == "token":
            dpop_http.check_client_requirement(client)
        return client

    def extend_grant(self, grant_cls: type, extension: Any) -> None:
        """Add an extension (``extension(grant)`` on each new grant) to a registered grant,
        from a module the protocol layer does not import (idp.actions.grants)."""
        for cls, extensions in (*self._authorization_grants, *self._token_grants):
            if cls is grant_cls:
                extensions.append(extension)
                return
        raise LookupError(f"{grant_cls.__name__} is not registered")


def init_app(app: Flask) -> AuthorizationServer:
    server = IdpAuthorizationServer()
    server.init_app(app, query_client=_query_client, save_token=_save_token)
    dpop_http.init_app(app)
    server.register_client_auth_method("client_secret_basic", _client_secret_basic)
    init_client_jwt(server)  # private_key_jwt, client_secret_jwt (RFC 7523, OIDC Core §9)
    server.register_grant(
        AuthorizationCodeGrant, [S256CodeChallenge(required=True), dpop_http.DPoPJktParameter()]
    )
    server.register_grant(RefreshTokenGrant, [])
    server.register_grant(ClientCredentialsGrant, [])
    server.register_grant(DeviceGrant, [])  # RFC 8628; answers only when enabled
    server.register_endpoint(DeviceEndpoint)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    app.extensions["idp.authorization"] = server
    return server


def authorization_server() -> AuthorizationServer:
    server: AuthorizationServer = current_app.extensions["idp.authorization"]
    return server
