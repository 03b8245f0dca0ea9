"""Single-use, expiring links for email verification and password reset. The link carries a
random value; only its SHA-256 is stored, and redeeming it is one conditional update."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.identity.models import EmailToken

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose name
UNBLOCK = "unblock"


def issue(session: Session, purpose: str, user_id: str, ttl: int) -> str:
    value = random_token(32)
    now = clock.now()
    session.add(
        EmailToken(
            token_hash=sha256_hex(value),
            purpose=purpose,
            user_id=user_id,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return value


def redeem(session: Session, purpose: str, value: str) -> str | None:
    """The user id if ``value`` is a live token for ``purpose``; it is then spent."""
    if not value or len(value) > 128:
        return None
    now = clock.now()
    result: Any = session.execute(
        update(EmailToken)
        .where(
            EmailToken.token_hash == sha256_hex(value),
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
            EmailToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(EmailToken.user_id)
    )
    row = result.first()
    return str(row[0]) if row else None


def peek(session: Session, purpose: str, value: str) -> bool:
    """Whether ``value`` is live (to show the reset form) without spending it."""
    if not value or len(value) > 128:
        return False
    row = session.get(EmailToken, sha256_hex(value))
    return bool(
        row and row.purpose == purpose and row.used_at is None and row.expires_at > clock.now()
    )


def spend_all(session: Session, purpose: str, user_id: str) -> None:
    """Spend every live link of ``purpose`` for a user (a reset or change of password makes
    the other reset links worthless)."""
    session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user_id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=clock.now())
    )
