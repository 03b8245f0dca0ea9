"""The post-login trigger: after authentication (and MFA), before a code or token is issued.

``run_post_login`` is called by ``/authorize`` once login and consent are settled. It returns
the effects to store on the authorization code, or a redirect that pauses the chain
(``api.redirect.send_user_to``); ``/continue`` resumes it in ``on_continue_post_login`` and then
runs the rest of the chain, and ``/authorize`` issues the code from the stored outcome. On
refresh the chain runs again, non-interactively (a redirect there is ``interaction_required``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import redirect
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.actions import events
from idp.actions.commands import Effects
from idp.actions.engine import ActionsFailed, ChainResult
from idp.actions.hooks import ChainDenied, origin_event, request_id
from idp.core import clock
from idp.extensions import db, services
from idp.identity.models import User

TRIGGER = "post-login"
PAUSED = "actions"  # interaction prompt tag of a chain paused by a redirect


class LoginActionError(Exception):
    """The chain refused the login: an OAuth error for the app (OIDC Core §3.1.2.6)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class NeedsMfa(LoginActionError):
    """``api.multifactor.enable`` (or ``challenge_with``): the login continues with the MFA
    step, then finishes from these effects without running the chain again."""

    def __init__(self, effects: Effects) -> None:
        super().__init__("interaction_required", "Multi-factor authentication is required.")
        self.effects = effects


def login_event(
    user: User, client: Any, params: dict[str, str], session_row: Any, scope: str,
    audience: str | None, protocol: str = "oidc-basic-profile",
) -> dict[str, Any]:  # fmt: skip
    return {
        "user": events.user_event(user),
        "client": events.client_event(client),
        "connection": events.DATABASE_CONNECTION,
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


def _finish(effects: Effects, user: User, audience: str | None, session_row: Any) -> dict[str, Any]:
    """Apply metadata to the user (committed with the code) and keep what the tokens need."""
    if effects.deny is not None:
        raise LoginActionError("access_denied", effects.deny.reason)
    if effects.mfa is not None and "mfa" not in (session_row.amr or []):
        raise NeedsMfa(effects)
    if effects.app_metadata:
        user.app_metadata = _merge(user.app_metadata, effects.app_metadata)
    if effects.user_metadata:
        user.user_metadata = _merge(user.user_metadata, effects.user_metadata)
    return {
        "id": effects.id_token_claims,
        "at": effects.access_token_claims,
        "add": _api_scopes(audience, effects.add_scopes),
        "remove": effects.remove_scopes,
    }


def _merge(current: dict[str, Any] | None, updates: dict[str, Any]) -> dict[str, Any]:
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
    from idp.oauth.models import ResourceServer

    defined = db.session.scalar(
        select(ResourceServer.scopes).where(ResourceServer.identifier == audience)
    )
    return [s for s in wanted if s in (defined or [])]


def run_post_login(
    user: User,
    client: Any,
    params: dict[str, str],
    session_row: Any,
    scope: str,
    audience: str | None,
    completed: Any,
    done_tags: set[str],
) -> dict[str, Any] | Response | None:
    """Effects for the code, a redirect that pauses the chain, or None (no chain bound)."""
    outcome = (completed.data or {}).get("post_login") if completed is not None else None
    if outcome is not None:
        if outcome.get("error"):
            raise LoginActionError(outcome["error"], outcome["description"])
        return _finish(Effects.from_dict(outcome["effects"]), user, audience, session_row)
    svc = services()
    if not svc.actions.has_chain(TRIGGER, db.session):
        return None
    event = login_event(user, client, params, session_row, scope, audience)
    db.session.commit()  # never hold a write transaction while actions run
    interactive = "none" not in params.get("prompt", "").split()
    try:
        result = svc.actions.run(
            TRIGGER, event, request_id=request_id(), client_id=client.client_id,
            user_id=user.id, interactive=interactive,
        )  # fmt: skip
    except ActionsFailed as exc:
        raise LoginActionError(exc.error, exc.description) from None
    if result.paused_at is not None:
        return _pause(result, client.client_id, params, user.id, session_row.sid, done_tags)
    return _finish(result.effects, user, audience, session_row)


def _pause(
    result: ChainResult,
    client_id: str,
    params: dict[str, str],
    user_id: str,
    sid: str,
    done_tags: set[str],
) -> Response:
    """Persist the paused chain and send the browser to the action's URL with ``state``."""
    from idp.flows import cookies
    from idp.flows import service as flows

    svc = services()
    link = result.paused_at
    assert link is not None and result.effects.redirect is not None
    target = result.effects.redirect
    tags = " ".join(sorted({PAUSED} | (done_tags & {"login_done", "consent_done"})))
    browser_secret, row = flows.create_interaction(
        db.session, client_id, params, tags, svc.config["INTERACTION_TTL"]
    )
    effects = result.effects
    effects.redirect = None
    row.data = {
        "paused": {"action_id": link.action_id, "effects": effects.as_dict()},
        "user_id": user_id,
        "sid": sid,
    }
    db.session.commit()
    parts = urlsplit(target["url"])
    query = [*([parts.query] if parts.query else []),
             urlencode({**target["query"], "state": row.uid})]  # fmt: skip
    resp = redirect(urlunsplit(parts._replace(query="&".join(query))), code=303)
    cookies.put(resp, cookies.interaction(), browser_secret, svc.config["INTERACTION_TTL"])
    resp.headers["Cache-Control"] = "no-store"
    return resp


def resume(row: Any, session_row: Any) -> Response | None:
    """``/continue``: run the paused action's ``on_continue_post_login``, then the rest of the
    chain; store the outcome on the interaction for ``/authorize`` to finish (or pause again
    when a later action redirects too)."""
    svc = services()
    paused = (row.data or {}).get("paused") or {}
    user = db.session.get(User, row.data.get("user_id"))
    outcome: dict[str, Any]
    if user is None or session_row is None or session_row.sid != row.data.get("sid"):
        outcome = {"error": "access_denied", "description": "The login session changed."}
    else:
        client = svc.clients.get(row.client_id)
        scope, audience = row.params.get("scope", ""), row.params.get("audience")
        event = login_event(user, client, row.params, session_row, scope, audience)
        db.session.commit()
        result = _continue_chain(event, paused, row.uid, user.id, row.client_id)
        if isinstance(result, ChainResult):
            done = set(row.prompt.split())
            db.session.delete(row)
            return _pause(result, row.client_id, row.params, user.id, session_row.sid, done)
        outcome = result
    row.data = {"post_login": outcome}
    row.completed_at = clock.now()
    db.session.commit()
    return None


def _continue_chain(
    event: dict[str, Any], paused: dict[str, Any], state: str, user_id: str, client_id: str
) -> dict[str, Any] | ChainResult:
    svc = services()
    chain = svc.actions.chain(TRIGGER, db.session)
    index = next((i for i, link in enumerate(chain) if link.action_id == paused.get("action_id")),
                 None)  # fmt: skip
    if index is None:
        return {"error": "access_denied", "description": "The login's action is gone."}
    effects = Effects.from_dict(paused.get("effects") or {})
    ids: dict[str, Any] = {"request_id": request_id(), "client_id": client_id, "user_id": user_id}
    try:
        result = svc.actions.run(
            TRIGGER, event, links=[chain[index]], state=state,
            entry="on_continue_post_login", effects=effects, **ids,
        )  # fmt: skip
        if result.paused_at is None and result.effects.deny is None:
            result = svc.actions.run(
                TRIGGER, event, links=chain[index + 1 :], effects=result.effects, **ids
            )
    except ActionsFailed as exc:
        return {"error": exc.error, "description": exc.description}
    if result.paused_at is not None:
        return result
    return {"effects": result.effects.as_dict()}


def run_on_refresh(user: User, client: Any, row: Any, scope: str) -> dict[str, Any] | None:
    """Auth0 runs post-login on refresh too: non-interactive, so a redirect or an MFA demand
    that cannot be met here refuses the refresh (``access_denied``, 403)."""
    svc = services()
    if not svc.actions.has_chain(TRIGGER, db.session):
        return None

    class _Session:
        sid, auth_time, amr = row.sid, row.auth_time, row.amr

    params = {"scope": scope, "prompt": "none"}
    event = login_event(user, client, params, _Session, scope, row.audience,
                        protocol="oauth2-refresh-token")  # fmt: skip
    db.session.commit()  # never hold a write transaction while actions run
    try:
        result = svc.actions.run(
            TRIGGER, event, request_id=request_id(), client_id=client.client_id,
            user_id=user.id, interactive=False,
        )  # fmt: skip
        return _finish(result.effects, user, row.audience, _Session)
    except (ActionsFailed, LoginActionError) as exc:
        raise ChainDenied(
            "access_denied", getattr(exc, "description", "Access denied."), 403
        ) from None
