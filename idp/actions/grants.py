"""The token endpoint's chains, hung on Authlib's grants as extensions (the pattern of
``authlib/oauth2/rfc7636/challenge.py``): the protocol layer names the hook, this module
registers what runs there, and ``idp.oauth`` never imports ``idp.actions``.

- credentials-exchange, before a client-credentials token is signed (Auth0's M2M trigger);
- post-login on refresh, before the refresh token rotates: non-interactive, so a redirect or
  an MFA demand that cannot be met here refuses the refresh (``access_denied``, 403).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Flask

from idp.actions import chains, events
from idp.actions.hooks import origin_event
from idp.actions.login import finish, login_event
from idp.actions.triggers import CREDENTIALS_EXCHANGE, POST_LOGIN
from idp.core.net import request_id
from idp.extensions import db
from idp.oauth.grants import (
    CLIENT_CREDENTIALS_HOOK,
    REFRESH_HOOK,
    ClientCredentialsGrant,
    ExchangeContext,
    RefreshContext,
    RefreshTokenGrant,
)
from idp.oauth.server import IdpAuthorizationServer


class ChainDenied(OAuth2Error):
    """An OAuth error from a chain: ``access_denied`` (403) or the action's chosen code."""

    def __init__(self, error: str, description: str, status_code: int) -> None:
        super().__init__(description=description, status_code=status_code)
        self.error = error


class CredentialsExchange:
    """RFC 6749 §4.4 token, after Auth0's credentials-exchange chain: a refusal is the
    action's OAuth error; its claims go in the access token, which is then never reused for
    another request (the chain may answer differently each time)."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook(CLIENT_CREDENTIALS_HOOK, self.run)

    def run(self, grant: Any, ctx: ExchangeContext) -> None:
        if not chains.bound(CREDENTIALS_EXCHANGE):
            return
        ctx.reusable = False
        event = {
            "client": events.client_event(ctx.client),
            "request": origin_event(),
            "resource_server": events.resource_server_event(ctx.audience),
            "transaction": {"requested_scopes": ctx.scope.split()},
        }
        db.commit_if_used()  # reads only so far; the chain uses its own transactions
        outcome = chains.run(
            CREDENTIALS_EXCHANGE, event, request_id=request_id(), client_id=ctx.client.client_id
        )
        if outcome.denied is not None:
            raise ChainDenied(outcome.denied.error, outcome.denied.description,
                              outcome.denied.status)  # fmt: skip
        ctx.claims.update(outcome.effects.access_token_claims)


class PostLoginOnRefresh:
    """Auth0 runs post-login on refresh too (OIDC Core §12 refresh, non-interactive)."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook(REFRESH_HOOK, self.run)

    def run(self, grant: Any, ctx: RefreshContext) -> None:
        if not chains.bound(POST_LOGIN):
            return
        row = ctx.row
        event = login_event(
            ctx.user, ctx.client, {"scope": ctx.scope, "prompt": "none"}, row, ctx.scope,
            row.audience, protocol="oauth2-refresh-token",
        )  # fmt: skip
        db.session.commit()  # no write transaction while actions run
        outcome = chains.run(
            POST_LOGIN, event, request_id=request_id(), client_id=ctx.client.client_id,
            user_id=ctx.user.id, interactive=False,
        )  # fmt: skip
        if outcome.denied is not None:
            raise ChainDenied("access_denied", outcome.denied.description, 403)
        if outcome.mfa is not None and "mfa" not in (row.amr or []):
            raise ChainDenied("access_denied", "Multi-factor authentication is required.", 403)
        ctx.action_effects = finish(outcome.effects, ctx.user, row.audience)


def init_app(app: Flask) -> None:
    server: IdpAuthorizationServer = app.extensions["idp.authorization"]
    server.extend_grant(ClientCredentialsGrant, CredentialsExchange())
    server.extend_grant(RefreshTokenGrant, PostLoginOnRefresh())
