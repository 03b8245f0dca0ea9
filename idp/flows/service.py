"""Login sessions (server-side, SSO) and interactions, the persisted hand-off between
``/authorize`` and the login page (ARCHITECTURE.md §8 steps 2 and 8)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

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
    session: Session, user_id: str, amr: list[str], ttl: int, previous_cookie: str | None
) -> tuple[str, LoginSession]:
    """A new session id at every login (no fixation, S-SS-03); the previous one ends."""
    if previous_cookie:
        end_session(session, previous_cookie)
    now = clock.now()
    cookie_value = random_token(32)
    row = LoginSession(
        id_hash=sha256_hex(cookie_value),
        sid=random_token(16),
        user_id=user_id,
        auth_time=now,
        amr=amr,
        created_at=now,
        expires_at=now + ttl,
    )
    STORES.login_sessions.insert(session, row)
    return cookie_value, row


def end_session(session: Session, cookie_value: str | None) -> LoginSession | None:
    """End the session and revoke its session-bound refresh tokens (OIDC BCL §2.7: tokens
    issued with ``offline_access`` outlive the session; others do not)."""
    row = current_session(session, cookie_value)
    if row is None:
        return None
    row.ended_at = clock.now()
    session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.sid == row.sid,
            RefreshToken.status == "active",
            ~RefreshToken.scope.contains("offline_access"),
        )
        .values(status="revoked")
    )
    return row


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
    """End every session of a user (but ``keep_sid``) and revoke the user's refresh tokens and
    access tokens: a changed or reset password ends what the old one allowed (S-RT-06)."""
    now = clock.now()
    stmt = update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.ended_at.is_(None)
    )
    if keep_sid:
        stmt = stmt.where(LoginSession.sid != keep_sid)
    result: Any = session.execute(stmt.values(ended_at=now))
    session.execute(
        update(RefreshToken).where(RefreshToken.user_id == user_id).values(status="revoked")
    )
    session.execute(
        update(AccessTokenRecord).where(AccessTokenRecord.user_id == user_id).values(revoked=True)
    )
    return int(result.rowcount or 0)


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


def end_one_session(session: Session, user_id: str, sid: str) -> bool:
    result: Any = session.execute(
        update(LoginSession)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.sid == sid,
            LoginSession.ended_at.is_(None),
        )
        .values(ended_at=clock.now())
    )
    return bool(result.rowcount)


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
