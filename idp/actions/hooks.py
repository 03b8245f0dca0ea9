"""Events built from the current request, and the send-phone-message trigger.

Every call site follows one rule: read what the event needs, commit, then run the chain
(``idp.actions.chains.run`` refuses to start while a transaction is open).
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request

from idp.actions import chains, events
from idp.actions.triggers import SEND_PHONE_MESSAGE
from idp.core.net import client_ip, request_id
from idp.extensions import db, services


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


def send_phone_message(
    user: Any, client: Any, recipient: str, text: str, code: str, *,
    message_type: str = "sms", action: str = "second-factor-authentication",
    language: str = "en",
) -> chains.Outcome:  # fmt: skip
    """The send-phone-message chain delivers an SMS or voice code (the MFA factor uses it).
    ``ran`` is False when no action is bound (the phone factor is then unavailable);
    ``denied`` when the chain failed (the MFA step says "try again")."""
    if not chains.bound(SEND_PHONE_MESSAGE):
        return chains.Outcome()
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
    return chains.run(
        SEND_PHONE_MESSAGE, event,
        request_id=request_id() if has_request_context() else None,
        user_id=getattr(user, "id", None), client_id=getattr(client, "client_id", None),
    )  # fmt: skip
