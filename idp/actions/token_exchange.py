"""The ``custom-token-exchange`` trigger (Auth0's Custom Token Exchange) behind RFC 8693.

``idp.oauth.token_exchange`` is the grant: it authenticates the client, checks the request
(RFC 8693 §2.1) and issues the token; this module decides who the subject is by running the
bound chain. The hook is registered on a grant only while a chain is bound, so the grant is
``unsupported_grant_type`` (and absent from discovery) until an operator binds an action.

The action validates ``event.transaction.subject_token`` (its own issuer's: idp already
verified an access token of its own and hands its claims as ``subject_token_claims``; any
other: the action verifies it with its secrets, or fetches keys through ``api.http``, which
reaches only its allowed hosts), then ``api.authentication.set_user_by_id(user_id)``,
``api.access.deny(...)`` or ``api.access.reject_invalid_subject_token(reason)``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from idp.actions import chains, events
from idp.actions.grants import ChainDenied
from idp.actions.hooks import origin_event
from idp.actions.triggers import CUSTOM_TOKEN_EXCHANGE
from idp.core.net import request_id
from idp.extensions import Services, db
from idp.oauth.discovery import contributes
from idp.oauth.server import IdpAuthorizationServer
from idp.oauth.token_exchange import (
    GRANT_TYPE,
    TOKEN_EXCHANGE_HOOK,
    TokenExchangeContext,
    TokenExchangeGrant,
)


def transaction_event(ctx: TokenExchangeContext) -> dict[str, Any]:
    """``event.transaction``: Auth0's subject token fields, the actor's (RFC 8693 §2.1), and
    idp's ``*_claims``: the verified claims of an access token of idp itself, else None, with
    ``subject_token_user_id``, the user behind such a token (its ``sub`` may be pairwise)."""
    return {
        "subject_token": ctx.subject_token,
        "subject_token_type": ctx.subject_token_type,
        "subject_token_claims": ctx.subject_claims,
        "subject_token_user_id": ctx.subject_user_id,
        "actor_token": ctx.actor_token,
        "actor_token_type": ctx.actor_token_type,
        "actor_token_claims": ctx.actor_claims,
        "requested_scopes": ctx.scope.split(),
        "requested_token_type": ctx.requested_token_type,
    }


class CustomTokenExchange:
    """Runs the chain before the exchanged token is signed; the chain's user is the token's
    subject, its claims go in the token, its refusal is the answer."""

    def __call__(self, grant: Any) -> None:
        if chains.bound(CUSTOM_TOKEN_EXCHANGE):
            grant.register_hook(TOKEN_EXCHANGE_HOOK, self.run)

    def run(self, grant: Any, ctx: TokenExchangeContext) -> None:
        event = {
            "client": events.client_event(ctx.client),
            "request": origin_event(),
            "resource_server": events.resource_server_event(ctx.audience),
            "transaction": transaction_event(ctx),
        }
        db.commit_if_used()  # reads only so far; the chain uses its own transactions
        outcome = chains.run(
            CUSTOM_TOKEN_EXCHANGE, event, request_id=request_id(),
            client_id=ctx.client.client_id, redact=ctx.redact,
        )  # fmt: skip
        denied = outcome.denied
        if denied is not None:
            # reject_invalid_subject_token is invalid_request, 400 (RFC 8693 §2.2.2)
            raise ChainDenied(denied.error, denied.description, denied.status)
        ctx.user_id = outcome.effects.user_id
        ctx.claims.update(outcome.effects.access_token_claims)


@contributes
def _grant_type(document: dict[str, Any], svc: Services) -> None:
    """RFC 8414 §2: the grant is advertised while it is on (a chain is bound)."""
    if svc.actions.has_chain(CUSTOM_TOKEN_EXCHANGE, lambda: db.session):
        document["grant_types_supported"] = [*document["grant_types_supported"], GRANT_TYPE]


def init_app(app: Flask) -> None:
    server: IdpAuthorizationServer = app.extensions["idp.authorization"]
    server.register_grant(TokenExchangeGrant, [CustomTokenExchange()])
