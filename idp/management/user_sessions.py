"""A user's sessions and grants, as Auth0 Management API v2 has them.

- Sessions (Auth0's "Sessions" and ``/users/{id}/sessions``; ``read:sessions``,
  ``delete:sessions``): ``GET``/``DELETE /users/{user_id}/sessions``, ``GET``/``DELETE
  /sessions/{id}``. A session is Auth0's ``{id, user_id, created_at, updated_at,
  authenticated_at, expires_at, clients: [{client_id}], authentication: {methods: [{name,
  timestamp}]}}``: ``id`` is the session's ``sid`` (the one in its ID tokens), ``clients`` the
  applications it gave a code or a refresh token to, ``methods`` its ``amr``. idp records no
  device nor last interaction, so ``device`` and ``last_interacted_at`` are not answered.
  Only open sessions are listed. Ending one is a logout: its session-bound refresh tokens
  are revoked, ``offline_access`` ones outlive it (OIDC Back-Channel Logout §2.7), and its
  applications with a ``backchannel_logout_uri`` get a Logout Token (idp.backchannel).
- Grants (Auth0's "Grants": what a user allowed an application; ``read:grants``,
  ``delete:grants``): ``GET /grants`` (``user_id``, ``client_id``, ``audience`` filters,
  paged), ``DELETE /grants/{id}``, ``DELETE /grants?user_id=``. A grant is idp's consent,
  one per user and application: ``{id, clientID, user_id, audience, scope}``. ``audience``
  is the API the consent names (``<issuer>/userinfo`` when it names only OIDC scopes, as
  Auth0 answers); idp keeps one consent per application, so an application that asked for
  two APIs has one grant naming the first, and ``scope`` lists every scope. Deleting one
  revokes the application's tokens for the user (idp.consent.service.revoke).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select

from idp.audit import events
from idp.audit import service as audit
from idp.consent import service as consent
from idp.consent.models import Consent
from idp.core import clock
from idp.core.errors import NotFoundError
from idp.extensions import db, services
from idp.flows import service as flows
from idp.flows.models import LoginSession
from idp.management.registry import Paged, paginate, route
from idp.management.schemas import iso
from idp.management.users import by_operator, find, origin
from idp.management.validation import Out, PageQuery, Query
from idp.oauth.models import AuthorizationCode, RefreshToken

TAG = "users"


class SessionClient(Out):
    client_id: str


class AuthMethod(Out):
    name: str = Field(description="An amr value (RFC 8176): pwd, otp, hwk, federated, ...")
    timestamp: str


class SessionAuthentication(Out):
    methods: list[AuthMethod]


class SessionOut(Out):
    id: str = Field(description="The session's sid.")
    user_id: str
    created_at: str
    updated_at: str
    authenticated_at: str
    expires_at: str
    clients: list[SessionClient]
    authentication: SessionAuthentication


class SessionsOut(Out):
    sessions: list[SessionOut]


class GrantOut(Out):
    id: str
    clientID: str
    user_id: str
    audience: str
    scope: list[str]


class GrantsQuery(PageQuery):
    user_id: str | None = Field(None, max_length=40)
    client_id: str | None = Field(None, max_length=64)
    audience: str | None = Field(None, max_length=512)


class GrantsByUser(Query):
    user_id: str = Field(min_length=1, max_length=40)


# ----------------------------------------------------------------------------------- sessions
def _open_sessions(user_id: str, sid: str | None = None) -> list[LoginSession]:
    query = select(LoginSession).where(
        LoginSession.user_id == user_id,
        LoginSession.ended_at.is_(None),
        LoginSession.expires_at > clock.now(),
    )
    if sid is not None:
        query = query.where(LoginSession.sid == sid)
    return list(db.session.scalars(query.order_by(LoginSession.created_at.desc())))


def sessions_json(rows: list[LoginSession]) -> list[dict[str, Any]]:
    """Auth0's session objects; the applications of all the sessions in two reads."""
    sids = [r.sid for r in rows]
    clients: dict[str, set[str]] = {sid: set() for sid in sids}
    if sids:
        for table in (AuthorizationCode, RefreshToken):
            found = db.session.execute(
                select(table.sid, table.client_id).where(table.sid.in_(sids)).distinct()
            )
            for sid, client_id in found:
                if sid is not None:
                    clients[sid].add(client_id)
    return [
        {
            "id": r.sid,
            "user_id": r.user_id,
            "created_at": iso(r.created_at),
            "updated_at": iso(r.ended_at or r.created_at),
            "authenticated_at": iso(r.auth_time),
            "expires_at": iso(r.expires_at),
            "clients": [{"client_id": c} for c in sorted(clients[r.sid])],
            "authentication": {
                "methods": [{"name": m, "timestamp": iso(r.auth_time)} for m in r.amr or []]
            },
        }
        for r in rows
    ]


def _session(sid: str) -> LoginSession:
    row = db.session.scalar(select(LoginSession).where(LoginSession.sid == sid))
    if row is None or row.ended_at is not None or row.expires_at <= clock.now():
        raise NotFoundError(f"no session {sid!r}")
    return row


def _ended(user_id: str, count: int, sid: str | None = None) -> None:
    if count:  # the user's history: who ended their sessions
        details: dict[str, object] = {"count": count} | ({"sid": sid} if sid else {})
        audit.record(db.session, events.SESSION_ENDED, by_operator("Sessions ended"), origin(),
                     user_id=user_id, details=details)  # fmt: skip


@route("/users/{user_id}/sessions", scope="read:sessions", tag=TAG,
       summary="List a user's sessions", response=SessionsOut)  # fmt: skip
def list_user_sessions(user_id: str) -> dict[str, Any]:
    """Open sessions, newest first."""
    return {"sessions": sessions_json(_open_sessions(find(user_id).id))}


@route("/users/{user_id}/sessions", "DELETE", scope="delete:sessions", tag=TAG,
       summary="End all of a user's sessions", status=204)  # fmt: skip
def delete_user_sessions(user_id: str) -> None:
    """Each ends as a logout would (its session-bound refresh tokens with it)."""
    user = find(user_id, lock=True)
    _ended(user.id, flows.end_sessions(db.session, user.id))


@route("/sessions/{id}", scope="read:sessions", tag=TAG, summary="Get a session",
       response=SessionOut)  # fmt: skip
def get_session(id: str) -> dict[str, Any]:
    return sessions_json([_session(id)])[0]


@route("/sessions/{id}", "DELETE", scope="delete:sessions", tag=TAG,
       summary="End a session", status=204)  # fmt: skip
def delete_session(id: str) -> None:
    row = _session(id)
    _ended(row.user_id, flows.end_sessions(db.session, row.user_id, row.sid), row.sid)


# ------------------------------------------------------------------------------------- grants
def grant_json(row: Consent, issuer: str) -> dict[str, Any]:
    audiences, scopes = [], []
    for item in row.grants or []:
        audience, tab, scope = item.partition("\t")
        if tab:
            audiences.append(audience)
            scopes.append(scope)
        else:
            scopes.append(item)
    return {
        "id": row.id,
        "clientID": row.client_id,
        "user_id": row.user_id,
        "audience": audiences[0] if audiences else issuer.rstrip("/") + "/userinfo",
        "scope": list(dict.fromkeys(scopes)),
        "audiences": set(audiences),
    }


@route("/grants", scope="read:grants", tag="grants", summary="List grants",
       query=GrantsQuery, response=GrantOut, list_key="grants")  # fmt: skip
def list_grants(query: GrantsQuery) -> Paged:
    """Oldest first; ``user_id``, ``client_id`` and ``audience`` filter."""
    stmt = select(Consent).order_by(Consent.created_at, Consent.id)
    if query.user_id:
        stmt = stmt.where(Consent.user_id == query.user_id)
    if query.client_id:
        stmt = stmt.where(Consent.client_id == query.client_id)
    issuer = services().issuer.issuer
    rows = [grant_json(c, issuer) for c in db.session.scalars(stmt)]
    if query.audience:
        rows = [r for r in rows if query.audience in r["audiences"] | {r["audience"]}]
    return paginate(rows, query)


def _revoke(row: Consent) -> None:
    consent.revoke(db.session, row.user_id, row.client_id)
    audit.record(db.session, events.CONSENT_REVOKED, by_operator("Consent revoked"), origin(),
                 user_id=row.user_id, client_id=row.client_id)  # fmt: skip


@route("/grants/{id}", "DELETE", scope="delete:grants", tag="grants",
       summary="Delete a grant", status=204)  # fmt: skip
def delete_grant(id: str) -> None:
    """The application's refresh and access tokens for the user are revoked with it."""
    row = db.session.get(Consent, id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"no grant {id!r}")
    _revoke(row)


@route("/grants", "DELETE", scope="delete:grants", tag="grants",
       summary="Delete a user's grants", query=GrantsByUser, status=204)  # fmt: skip
def delete_grants_of_user(query: GrantsByUser) -> None:
    """Auth0's "delete a grant by user_id": every application the user allowed."""
    for row in consent.list_for_user(db.session, find(query.user_id).id):
        _revoke(row)
