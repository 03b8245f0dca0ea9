"""Where the flows call their trigger chains: build the event, run, map the outcome to the
protocol's answer (ARCHITECTURE.md §7). Views and grants call these; they read the request.

Rule for every call site: no database write transaction may be open while a chain runs (an
action may take seconds, and SQLite has one writer), so callers commit before calling.
"""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import current_app, has_request_context, request

from idp.actions import events
from idp.actions.commands import DENY_CODES, Effects
from idp.actions.engine import ActionsFailed
from idp.core.net import client_ip, request_id
from idp.extensions import db, services

log = logging.getLogger(__name__)


class ChainDenied(OAuth2Error):
    """An OAuth error from a chain: ``access_denied`` (403) or the action's chosen code."""

    def __init__(self, error: str, description: str, status_code: int) -> None:
        super().__init__(description=description, status_code=status_code)
        self.error = error


def origin_event() -> dict[str, Any]:
    svc = services()
    ip = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"),
                   svc.trusted_proxies)  # fmt: skip
    return events.request_event(
        ip,
        request.headers.get("User-Agent"),
        request.host.split(":")[0] if request.host else None,
        request.method,
        query=request.args.to_dict(),
        body=request.form.to_dict() if request.method == "POST" else {},
        geoip=svc.geoip.lookup(ip),  # of the address X-Forwarded-For may name only via a proxy
    )


def run_credentials_exchange(client: Any, audience: str, scope: str) -> dict[str, Any]:
    """Auth0's credentials-exchange: deny with an OAuth error, or add access-token claims."""
    event = {
        "client": events.client_event(client),
        "request": origin_event(),
        "resource_server": events.resource_server_event(audience),
        "transaction": {"requested_scopes": scope.split()},
    }
    try:
        result = services().actions.run(
            "credentials-exchange", event, request_id=request_id(), client_id=client.client_id
        )
    except ActionsFailed as exc:
        raise ChainDenied("access_denied", exc.description, 403) from None
    deny = result.effects.deny
    if deny is not None:
        raise ChainDenied(deny.code, deny.reason, DENY_CODES.get(deny.code, 403))
    return dict(result.effects.access_token_claims)


def run_async(trigger_id: str, event: dict[str, Any], **ids: Any) -> None:
    """Non-blocking triggers (post-user-registration, post-change-password): a background
    thread with its own app context; failures are recorded, never surfaced to the user."""
    svc = services()
    if not svc.actions.has_chain(trigger_id, db.session):
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def job() -> None:
        with app.app_context():
            try:
                svc.actions.run(trigger_id, event, **ids)
            except ActionsFailed as exc:
                log.warning("%s chain failed: %s", trigger_id, exc.description)

    svc.actions.submit(job)


def effects_summary(effects: Effects) -> dict[str, Any]:
    return effects.as_dict()


def send_phone_message(
    user: Any, client: Any, recipient: str, text: str, code: str, *,
    message_type: str = "sms", action: str = "second-factor-authentication",
    language: str = "en",
) -> str | None:  # fmt: skip
    """The send-phone-message chain delivers an SMS or voice code (the MFA factor uses it).

    Returns None once delivered, or why it could not be: no action bound (the phone factor is
    then unavailable) or the chain failed (the MFA step says "try again")."""
    svc = services()
    if not svc.actions.has_chain("send-phone-message", db.session):
        return "no send-phone-message action is bound: phone codes cannot be delivered"
    event = {
        "user": events.user_event(user) if user is not None else None,
        "client": events.client_event(client) if client is not None else None,
        "request": origin_event() if has_request_context() else None,
        "message_options": {
            "message_type": message_type,
            "recipient": recipient,
            "text": text,
            "code": code,
            "action": action,
            "language": language,
        },
    }
    db.session.commit()  # no write transaction across the chain
    try:
        svc.actions.run(
            "send-phone-message", event,
            request_id=request_id() if has_request_context() else None,
            user_id=getattr(user, "id", None), client_id=getattr(client, "client_id", None),
        )  # fmt: skip
    except ActionsFailed as exc:
        return exc.description
    return None
