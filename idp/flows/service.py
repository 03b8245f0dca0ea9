"""Login sessions (server-side, SSO) and interactions, the persisted hand-off between
``/authorize`` and the login page (ARCHITECTURE.md §8 steps 2 and 8)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from idp.backchannel import service as backchannel
from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.flows.models import Interaction, LoginSession
from idp.oauth.models import AccessTokenRecord, RefreshToken
from idp.stores import STORES


def current_session(session: Session, cookie_value: str | None) -> LoginSession | None:
    if not cookie_value or len(cookie_value) > 128:
        return None
    row = STORES.login_sessions.get(session, sha256_hex(cookie_value))
    if row is None or row.ended_at is not None or row.expires_at <= clock.now():
        return None
    return row


def start_session(
    session: Session, user_id: str, amr: list[str], ttl: int, previous_cookie: str | None,
    connection: str | None = None,
) -> tuple[str, LoginSession]:  # fmt: skip
    """A new session cookie at every login (no fixation, S-SS-03). The browser's previous
    session goes on under it when the same user signed in again (``prompt=login``, ``max_age``,
    another connection): its ``sid`` stays, so the clients that got ID tokens in it are not
    logged out by a re-authentication at one of them, and a later logout still reaches them.
    Another user's session is replaced: it ends, with its back-channel logouts."""
    now = clock.now()
    cookie_value = random_token(32)
    previous = current_session(session, previous_cookie)
    if previous is not None and previous.user_id == user_id:
        carried_on = _carry_on(session, previous, cookie_value, amr, ttl, connection)
        if carried_on is not None:
            return cookie_value, carried_on
        previous = None  # a concurrent login of this browser moved or ended it: a new one
    if previous is not None:
        end_session(session, previous_cookie)
    row = LoginSession(
        id_hash=sha256_hex(cookie_value),
        sid=random_token(16),
        user_id=user_id,
        auth_time=now,
        amr=amr,
        connection=connection,
        created_at=now,
        expires_at=now + ttl,
    )
    STORES.login_sessions.insert(session, row)
    return cookie_value, row


def _carry_on(
    session: Session, previous: LoginSession, cookie_value: str, amr: list[str], ttl: int,
    connection: str | None,
) -> LoginSession | None:  # fmt: skip
    """The same user's session, under the new cookie (the key moves, as the MFA step-up moves
    it), with this login's time and methods; None when another request of this browser moved
    it or ended it first."""
    now = clock.now()
    return rekey(session, previous, sha256_hex(cookie_value), auth_time=now, amr=amr,
                 connection=connection, expires_at=now + ttl)  # fmt: skip


def rekey(session: Session, row: LoginSession, new_hash: str, **values: Any) -> LoginSession | None:
    """Move a live session to a new cookie (its key), setting ``values`` with it; None when
    another request of this browser moved or ended it first.

    A conditional UPDATE rather than the ORM's: the ORM's expects the row it read and fails
    (a 500) when a concurrent request committed a new key meanwhile (two tabs finishing a
    login or a step-up at once)."""
    moved = session.execute(
        update(LoginSession)
        .where(LoginSession.id_hash == row.id_hash, LoginSession.ended_at.is_(None))
        .values(id_hash=new_hash, **values)
        .returning(LoginSession.sid),
        execution_options={"synchronize_session": False},
    ).first()
    session.expunge(row)  # its key is the old one either way
    return STORES.login_sessions.get(session, new_hash) if moved is not None else None


def end_session(session: Session, cookie_value: str | None) -> LoginSession | None:
    """End the browser's session (a logout, or another user's login replacing it)."""
    row = current_session(session, cookie_value)
    if row is None or not _end(session, LoginSession.id_hash == row.id_hash):
        return None
    return row


def _end(session: Session, *where: Any) -> list[tuple[str, str]]:
    """End the open sessions matching ``where``, the one way every session end goes: the
    refresh tokens bound to them are revoked (OIDC BCL §2.7: ``offline_access`` ones outlive
    the session) and their clients get a back-channel logout (§2.5), queued in this
    transaction. One UPDATE ... RETURNING picks them: of two requests ending one session
    only the one whose UPDATE ended it notifies. A session already expired matching ``where``
    sends no logout (expiry sends none: docs/design-notes.md, "When a session ends") and its
    row stays as it is, but its session-bound refresh tokens are revoked too: they outlive
    the session's expiry (their family has its own lifetime), and ending a user's sessions
    must leave nothing of them usable."""
    now = clock.now()
    result = session.execute(
        update(LoginSession)
        .where(LoginSession.ended_at.is_(None), LoginSession.expires_at > now, *where)
        .values(ended_at=now)
        .returning(LoginSession.sid, LoginSession.user_id)
    )
    ended = [(str(sid), str(user_id)) for sid, user_id in result]
    expired = select(LoginSession.sid).where(
        LoginSession.ended_at.is_(None), LoginSession.expires_at <= now, *where
    )
    session.execute(
        update(RefreshToken)
        .where(
            or_(RefreshToken.sid.in_([sid for sid, _user in ended]), RefreshToken.sid.in_(expired)),
            RefreshToken.status == "active",
            ~RefreshToken.scope.contains("offline_access"),
        )
        .values(status="revoked")
    )
    if ended:
        backchannel.sessions_ended(session, ended)
    return ended


SWEEP_SECONDS = 60.0
_next_sweep = [0.0]  # per process; a race only means one sweep too many


def create_interaction(
    session: Session, client_id: str, state: dict[str, Any], ttl: int
) -> tuple[str, Interaction]:
    """Persist the pending authorization request; the raw browser binding goes in a cookie.
    Expired ones are swept at most once a minute per process: the sweep cost ~0.7 ms, a sixth
    of an ``/authorize``, and an expired row is refused on read anyway."""
    now = clock.now()
    if time.monotonic() >= _next_sweep[0]:
        _next_sweep[0] = time.monotonic() + SWEEP_SECONDS
        session.execute(delete(Interaction).where(Interaction.expires_at < now))
    browser_secret = random_token(24)
    row = Interaction(
        uid=random_token(16),
        client_id=client_id,
        browser_hash=sha256_hex(browser_secret),
        created_at=now,
        expires_at=now + ttl,
        state=state,
    )
    STORES.interactions.insert(session, row)
    return browser_secret, row


def get_interaction(
    session: Session, uid: str, browser_secret: str | None, *, lock: bool = False
) -> Interaction | None:
    """The interaction, only for the browser that started it and only while it is valid;
    ``lock``: read with its row locked to the end of the transaction (a page settling a step
    reads, checks and writes back the whole state, so requests on one login take turns)."""
    if not browser_secret or len(uid) > 64:
        return None
    read = STORES.interactions.lock if lock else STORES.interactions.get
    row = read(session, uid)
    if row is None or row.expires_at <= clock.now():
        return None
    if row.browser_hash != sha256_hex(browser_secret):
        return None
    return row


def delete_interaction(session: Session, row: Interaction) -> None:
    """The interaction is spent (its code issued, or its error sent)."""
    STORES.interactions.delete(session, row)


def end_user_sessions(session: Session, user_id: str, keep_sid: str | None = None) -> int:
    """End every session of a user (but ``keep_sid``) and revoke all the user's refresh tokens
    (``offline_access`` ones too) and access tokens: a changed or reset password ends what the
    old one allowed (S-RT-06)."""
    where = [LoginSession.user_id == user_id]
    if keep_sid:
        where.append(LoginSession.sid != keep_sid)
    ended = _end(session, *where)
    session.execute(
        update(RefreshToken).where(RefreshToken.user_id == user_id).values(status="revoked")
    )
    session.execute(
        update(AccessTokenRecord).where(AccessTokenRecord.user_id == user_id).values(revoked=True)
    )
    return len(ended)


def user_sessions(session: Session, user_id: str) -> list[LoginSession]:
    now = clock.now()
    return list(
        session.scalars(
            select(LoginSession)
            .where(
                LoginSession.user_id == user_id,
                LoginSession.ended_at.is_(None),
                LoginSession.expires_at > now,
            )
            .order_by(LoginSession.created_at.desc())
        )
    )


def end_sessions(session: Session, user_id: str, sid: str | None = None) -> int:
    """End the user's open sessions (or the one ``sid``) as a logout ends one. An operator's
    doing: the management API's session routes, a block, a deletion; the console's sign-out."""
    where = [LoginSession.user_id == user_id]
    if sid is not None:
        where.append(LoginSession.sid == sid)
    return len(_end(session, *where))


def end_connection_sessions(session: Session, user_id: str, connection: str) -> int:
    """End the user's sessions that came through ``connection`` (its IdP logged the user
    out: SAML single logout); sessions from other connections stay."""
    return len(_end(session, LoginSession.user_id == user_id,
                    LoginSession.connection == connection))  # fmt: skip


def end_one_session(session: Session, user_id: str, sid: str) -> bool:
    """The user ends one of their sessions (/account/sessions)."""
    return end_sessions(session, user_id, sid) == 1


def account_session(session: Session, cookie_value: str | None) -> LoginSession | None:
    """The session, for the account pages (sessions, apps, password): a user with a second
    factor must have passed it in this session. The session a password login creates while it
    waits at the MFA step is not enough to change the password or end other sessions."""
    from idp.mfa.service import factors

    current = current_session(session, cookie_value)
    if current is None or "mfa" in (current.amr or []):
        return current
    if any(f.kind != "email" for f in factors(session, current.user_id)):
        return None
    return current
