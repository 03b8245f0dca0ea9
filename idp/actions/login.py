"""The post-login trigger: after authentication (and MFA), before a code or token is issued.

The login pipeline (``idp.flows.pipeline``) builds the event (:func:`login_event`), commits,
runs the chain once per login through :func:`run_post_login` and reads its
:class:`~idp.actions.chains.Outcome`: effects to put on
the code, a refusal, a demand for MFA, or a redirect that pauses the chain
(``api.redirect.send_user_to``). ``/continue`` resumes a paused chain through
:func:`continue_post_login`. On refresh the chain runs again, non-interactively
(``idp.actions.grants``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from idp.actions import chains, events
from idp.actions.commands import Effects
from idp.actions.hooks import origin_event
from idp.actions.triggers import POST_LOGIN
from idp.connections.strategies import DATABASE
from idp.core.net import request_id
from idp.extensions import db
from idp.identity.models import User
from idp.oauth.models import ResourceServer


def login_event(
    user: User, client: Any, params: dict[str, str], session_row: Any, scope: str,
    audience: str | None, protocol: str = "oidc-basic-profile",
) -> dict[str, Any]:  # fmt: skip
    return {
        "user": events.user_event(user),
        "client": events.client_event(client),
        "connection": events.connection_event(getattr(session_row, "connection", None) or DATABASE),
        "request": origin_event(),
        "transaction": {
            "id": params.get("state"),
            "requested_scopes": scope.split(),
            "protocol": protocol,
            "redirect_uri": params.get("redirect_uri"),
            "acr_values": params.get("acr_values", "").split(),
            "prompt": params.get("prompt", "").split(),
            "ui_locales": params.get("ui_locales", "").split(),
        },
        "authentication": {
            "methods": [
                {"name": m, "timestamp": events.iso(session_row.auth_time)}
                for m in (session_row.amr or [])
            ],
        },
        "resource_server": events.resource_server_event(audience),
        "session": {"id": session_row.sid},
        "stats": {"logins_count": user.logins_count},
    }


def run_post_login(
    user: User, client: Any, event: dict[str, Any], *, interactive: bool
) -> chains.Outcome:
    """Run the bound chain for this login. The caller built ``event`` (reads) and committed:
    ``chains.run`` refuses to start inside an open transaction."""
    return chains.run(
        POST_LOGIN, event, request_id=request_id(), client_id=client.client_id,
        user_id=user.id, interactive=interactive,
    )  # fmt: skip


def continue_post_login(
    user: User, client: Any, event: dict[str, Any], *, paused_action: str,
    paused_effects: dict[str, Any], state: str,
) -> chains.Outcome:  # fmt: skip
    """``/continue``: the paused action's ``on_continue_post_login``, then the rest of the
    chain, on top of the effects gathered before the pause (the caller committed)."""
    links = chains.chain(POST_LOGIN)
    index = next((i for i, link in enumerate(links) if link.action_id == paused_action), None)
    if index is None:
        denied = chains.Denial("access_denied", "The login's action is gone.")
        return chains.Outcome(denied=denied, ran=True)
    ids: dict[str, Any] = {
        "request_id": request_id(), "client_id": client.client_id, "user_id": user.id,
    }  # fmt: skip
    first = chains.run(
        POST_LOGIN, event, links=[links[index]], state=state, entry="on_continue_post_login",
        effects=Effects.from_dict(paused_effects), **ids,
    )  # fmt: skip
    if first.denied is not None or first.paused is not None:
        return first
    return chains.run(POST_LOGIN, event, links=links[index + 1 :], effects=first.effects, **ids)


def finish(effects: Effects, user: User, audience: str | None) -> dict[str, Any]:
    """Apply the metadata updates to the user (committed with the code or token) and keep
    what the tokens need."""
    if effects.app_metadata:
        user.app_metadata = merge_metadata(user.app_metadata, effects.app_metadata)
    if effects.user_metadata:
        user.user_metadata = merge_metadata(user.user_metadata, effects.user_metadata)
    return {
        "id": effects.id_token_claims,
        "at": effects.access_token_claims,
        "add": _api_scopes(audience, effects.add_scopes),
        "remove": effects.remove_scopes,
    }


def merge_metadata(current: dict[str, Any] | None, updates: dict[str, Any]) -> dict[str, Any]:
    """Auth0's semantics: a key set to null is removed."""
    merged = dict(current or {})
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _api_scopes(audience: str | None, wanted: list[str]) -> list[str]:
    """``add_scope`` may add only scopes the API defines: an action cannot invent authority."""
    if not wanted or not audience:
        return []
    defined = db.session.scalar(
        select(ResourceServer.scopes).where(ResourceServer.identifier == audience)
    )
    return [s for s in wanted if s in (defined or [])]
