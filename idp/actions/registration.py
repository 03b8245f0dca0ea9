"""The database connection's triggers: pre-user-registration (blocking, always fails closed),
post-user-registration and post-change-password (asynchronous, after the commit)."""

from __future__ import annotations

from typing import Any

from idp.actions import events
from idp.actions.engine import ActionsFailed
from idp.actions.hooks import origin_event, request_id, run_async
from idp.actions.login import _merge
from idp.extensions import db, services
from idp.identity.models import User

REFUSED = "We could not create your account. Please try again later."


def pre_registration(email: str, client: Any) -> tuple[dict[str, Any], str | None]:
    """Run before the user is written. Returns (metadata to set, refusal message or None).

    It runs for known addresses too, with the same event, so that a refusal cannot tell an
    attacker whether an address has an account (sign-up never enumerates)."""
    svc = services()
    if not svc.actions.has_chain("pre-user-registration", db.session):
        return {}, None
    event = {
        "user": {"email": email, "app_metadata": {}, "user_metadata": {}},
        "client": events.client_event(client) if client else None,
        "connection": events.DATABASE_CONNECTION,
        "request": origin_event(),
    }
    db.session.commit()  # no write transaction across the chain
    try:
        result = svc.actions.run(
            "pre-user-registration", event, request_id=request_id(),
            client_id=getattr(client, "client_id", None),
        )  # fmt: skip
    except ActionsFailed:
        return {}, REFUSED
    deny = result.effects.deny
    if deny is not None:
        return {}, deny.user_message or "Sign-up is not allowed."
    return {
        "app_metadata": result.effects.app_metadata,
        "user_metadata": result.effects.user_metadata,
    }, None


def apply_metadata(user: User, metadata: dict[str, Any]) -> None:
    if metadata.get("app_metadata"):
        user.app_metadata = _merge(user.app_metadata, metadata["app_metadata"])
    if metadata.get("user_metadata"):
        user.user_metadata = _merge(user.user_metadata, metadata["user_metadata"])


def post_registration(user: User, client: Any) -> None:
    """After the commit; the user is not kept waiting and nothing can undo the sign-up."""
    run_async(
        "post-user-registration",
        {
            "user": events.user_event(user),
            "client": events.client_event(client) if client else None,
            "connection": events.DATABASE_CONNECTION,
            "request": origin_event(),
        },
        request_id=request_id(),
        user_id=user.id,
        client_id=getattr(client, "client_id", None),
    )


def post_change_password(user: User) -> None:
    run_async(
        "post-change-password",
        {
            "user": events.user_event(user),
            "connection": events.DATABASE_CONNECTION,
            "request": origin_event(),
        },
        request_id=request_id(),
        user_id=user.id,
    )
