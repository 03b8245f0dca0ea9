"""Who gets a back-channel logout when a session ends (OIDC Back-Channel Logout 1.0 §2.7), the
Logout Token (§2.4), and the client settings (§2.2).

The clients of a session are those that redeemed a code with ``openid`` in it: each got an ID
token carrying the session's ``sid``. Of those, the ones with a ``backchannel_logout_uri`` get
a row in ``backchannel_logouts``, written in the transaction that ends the session, so that
the logout is sent if and only if the session really ended; the worker is woken once that
transaction commits. :func:`sessions_ended` is called from one place, where every session end
goes (``idp.flows.service``): RP-initiated logout, the management API's session deletion, the
user's /account/sessions, a password changed (the other sessions), reset or set by an operator
(API, CLI), a block (API, console), a deletion (API, CLI), SAML single logout, the console's
sign-out, and another user's login replacing the browser's session. A session that merely
expires does not notify (docs/design-notes.md, "When a session ends").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from idp.backchannel.models import BackchannelLogout
from idp.backchannel.token import EVENT, TOKEN_TYPE, logout_token  # noqa: F401 - their home
from idp.core import clock
from idp.core.crypto import random_token
from idp.core.errors import ValidationError
from idp.extensions import Services
from idp.oauth.discovery import contributes
from idp.oauth.models import AuthorizationCode, Client
from idp.oauth.service import validate_redirect_uri


def configure(client: Client, uri: Any = ..., session_required: bool | None = None) -> None:
    """Set ``backchannel_logout_uri`` (``...``: unchanged, None or '': removed) and
    ``backchannel_logout_session_required`` (None: unchanged). §2.2: an absolute URI without a
    fragment; idp's redirect URI rules apply (https, http on loopback only)."""
    if uri is not ...:
        if uri and client.app_type == "m2m":
            raise ValidationError("machine clients (non_interactive) have no sessions to end")
        client.backchannel_logout_uri = validate_redirect_uri(uri, "regular_web") if uri else None
    if session_required is not None:
        client.backchannel_logout_session_required = session_required


def session_clients(session: Session, sids: Iterable[str]) -> dict[str, set[str]]:
    """Per session id, the clients given an ID token in it (a redeemed ``openid`` code)."""
    wanted = list(set(sids))
    found: dict[str, set[str]] = {sid: set() for sid in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(AuthorizationCode.sid, AuthorizationCode.client_id, AuthorizationCode.scope)
        .where(AuthorizationCode.sid.in_(wanted), AuthorizationCode.used_at.is_not(None))
    )  # fmt: skip
    for sid, client_id, scope in rows:
        if sid is not None and "openid" in str(scope).split():
            found[sid].add(client_id)
    return found


def sessions_ended(session: Session, ended: Iterable[tuple[str, str]]) -> int:
    """Queue a logout for each client with a ``backchannel_logout_uri`` that got an ID token
    in one of the ``(sid, user_id)`` sessions just ended (in the caller's transaction); the
    delivery worker is woken when it commits. Returns how many were queued."""
    if not _enabled():
        return 0
    pairs = dict(ended)  # sid -> user_id
    per_session = session_clients(session, pairs)
    client_ids = {c for clients in per_session.values() for c in clients}
    if not client_ids:
        return 0
    with_uri = set(session.scalars(
        select(Client.client_id).where(Client.client_id.in_(client_ids),
                                       Client.backchannel_logout_uri.is_not(None))
    ))  # fmt: skip
    now, queued = clock.now(), 0
    for sid, clients in per_session.items():
        for client_id in sorted(clients & with_uri):
            session.add(BackchannelLogout(
                id="bcl_" + random_token(18), client_id=client_id, user_id=pairs[sid], sid=sid,
                status="pending", attempts=0, retry_at=0.0, leased_by=None, leased_until=0.0,
                created_at=now,
            ))  # fmt: skip
            queued += 1
    if queued:
        _wake_after_commit(session)
    return queued


def _enabled() -> bool:
    return bool(current_app.config["BACKCHANNEL_LOGOUT_ENABLED"]) if has_app_context() else False


def _wake_after_commit(session: Session) -> None:
    from idp.backchannel import delivery  # the worker imports this module

    loop = delivery.running(current_app)
    if loop is not None:
        event.listen(session, "after_commit", lambda _s: loop.poke(), once=True)


@contributes
def _backchannel(document: dict[str, Any], svc: Services) -> None:
    """OIDC Back-Channel Logout §2.1, when enabled: ``sid`` is always in the Logout Token."""
    if svc.config["BACKCHANNEL_LOGOUT_ENABLED"]:
        document["backchannel_logout_supported"] = True
        document["backchannel_logout_session_supported"] = True
