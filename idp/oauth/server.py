"""Wire Authlib's authorization server to idp: grants, PKCE, client auth, endpoints."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import Flask, current_app

from idp.extensions import services
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


def init_app(app: Flask) -> AuthorizationServer:
    server = AuthorizationServer()
    server.init_app(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    app.extensions["idp.authorization"] = server
    return server


def authorization_server() -> AuthorizationServer:
    server: AuthorizationServer = current_app.extensions["idp.authorization"]
    return server
