"""The database connection's triggers: pre-user-registration (blocking, always fails closed),
post-user-registration and post-change-password (asynchronous, after the commit)."""

from __future__ import annotations

from typing import Any

from idp.actions import chains, events
from idp.actions.hooks import origin_event
from idp.actions.login import merge_metadata
from idp.actions.triggers import (
    POST_CHANGE_PASSWORD,
    POST_USER_REGISTRATION,
    PRE_USER_REGISTRATION,
)
from idp.connections.strategies import DATABASE
from idp.core.net import request_id
from idp.extensions import db
from idp.identity.models import User

REFUSED = "We could not create your account. Please try again later."
NOT_ALLOWED = "Sign-up is not allowed."


def pre_registration(email: str, client: Any, connection: str = DATABASE) -> chains.Outcome:
    """Run before the user is written; the caller commits first.

    It runs for known addresses too, with the same event, so that a refusal cannot tell an
    attacker whether an address has an account (sign-up never enumerates)."""
    if not chains.bound(PRE_USER_REGISTRATION):
        return chains.Outcome()
    event = {
        "user": {"email": email, "app_metadata": {}, "user_metadata": {}},
        "client": events.client_event(client) if client else None,
        "connection": events.connection_event(connection),
        "request": origin_event(),
    }
    db.session.commit()  # no write transaction across the chain
    return chains.run(
        PRE_USER_REGISTRATION, event, request_id=request_id(),
        client_id=getattr(client, "client_id", None),
    )  # fmt: skip


def refusal(outcome: chains.Outcome) -> str | None:
    """What the sign-up page says when the chain refused: the action's message, or a
    generic one when the chain failed (it fails closed)."""
    denied = outcome.denied
    if denied is None:
        return None
    if denied.failed:
        return REFUSED
    return denied.user_message or NOT_ALLOWED


def apply_metadata(user: User, outcome: chains.Outcome) -> None:
    if outcome.effects.app_metadata:
        user.app_metadata = merge_metadata(user.app_metadata, outcome.effects.app_metadata)
    if outcome.effects.user_metadata:
        user.user_metadata = merge_metadata(user.user_metadata, outcome.effects.user_metadata)


def post_registration(user: User, client: Any, connection: str = DATABASE) -> None:
    """After the commit; the user is not kept waiting and nothing can undo the sign-up."""
    chains.run_in_background(
        POST_USER_REGISTRATION,
        {
            "user": events.user_event(user),
            "client": events.client_event(client) if client else None,
            "connection": events.connection_event(connection),
            "request": origin_event(),
        },
        request_id=request_id(),
        user_id=user.id,
        client_id=getattr(client, "client_id", None),
    )


def post_change_password(user: User) -> None:
    chains.run_in_background(
        POST_CHANGE_PASSWORD,
        {
            "user": events.user_event(user),
            "connection": events.connection_event(),
            "request": origin_event(),
        },
        request_id=request_id(),
        user_id=user.id,
    )
