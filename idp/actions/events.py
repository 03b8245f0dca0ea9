"""Building each trigger's ``event`` from idp's own objects (names follow Auth0's, in snake_case).

The event is plain JSON data: the sandbox gets a copy, and nothing an action does to it comes
back. Only what the trigger table lists goes in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import object_session

from idp.connections import service as connections
from idp.extensions import db
from idp.identity import profile
from idp.identity.models import User


def connection_event(name: str = connections.DATABASE) -> dict[str, Any]:
    """``event.connection``: the connection the user came through, as it is stored (every
    login and sign-up is the database connection's until other strategies exist)."""
    return connections.connection_dict(connections.get_connection(db.session, name))


def iso(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_event(user: User) -> dict[str, Any]:
    """``event.user``: Auth0's fields, then the OIDC standard claims (OIDC Core §5.1) the
    user has, absent ones left out; ``name`` is there even when unset, as before, and
    ``updated_at`` is ISO 8601 like Auth0's and like ``created_at``."""
    event = {
        "user_id": user.id,
        "email": user.email,
        "email_verified": bool(user.email_verified),
        "name": user.name,
        "app_metadata": dict(user.app_metadata or {}),
        "user_metadata": dict(user.user_metadata or {}),
        "identities": _identities(user),
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "logins_count": user.logins_count,
    }
    for claim, value in profile.standard_claims(user).items():
        event.setdefault(claim, value)
    return event


def _identities(user: User) -> list[dict[str, Any]]:
    """Every identity of the user, read from the table (a user not in a session has none to
    show: events are built from persistent users)."""
    session = object_session(user)
    return connections.identity_dicts(session, user.id) if session is not None else []


def client_event(client: Any) -> dict[str, Any]:
    return {"client_id": client.client_id, "name": client.name, "metadata": {}}


def request_event(
    ip: str | None,
    user_agent: str | None,
    hostname: str | None,
    method: str = "GET",
    query: dict[str, str] | None = None,
    body: dict[str, str] | None = None,
    geoip: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "ip": ip,
        "user_agent": user_agent,
        "hostname": hostname,
        "method": method,
        "query": _safe_params(query or {}),
        "body": _safe_params(body or {}),
        "geoip": geoip or {},
    }


# Never hand an action a credential that travelled with the request (a token exchange's
# subject and actor tokens are in event.transaction, where its action expects them).
_NEVER = {"password", "client_secret", "code", "code_verifier", "refresh_token", "csrf_token",
          "client_assertion", "current_password", "new_password",
          "subject_token", "actor_token"}  # fmt: skip


def _safe_params(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in _NEVER}


def resource_server_event(audience: str | None) -> dict[str, Any] | None:
    return {"identifier": audience} if audience else None
