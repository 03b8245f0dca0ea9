"""Users of the database connection."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    delete,
    event,
    false,
    insert,
    inspect,
)
from sqlalchemy.orm import Mapped, Session, UOWTransaction, mapped_column

from idp.core.db import Base


class User(Base):
    __tablename__ = "users"
    # the users search (idp.identity.search, migration 0018): date ranges and the default
    # order; on PostgreSQL email prefixes (LIKE 'x%' needs byte order, not the collation's)
    __table_args__ = (
        Index("ix_users_created_at_id", "created_at", "id"),
        Index(
            "ix_users_email_pattern",
            "email",
            postgresql_ops={"email": "text_pattern_ops"},
            postgresql_include=["created_at", "id"],  # a prefix's page from the index (0038)
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    app_metadata: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    user_metadata: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    # The OIDC standard claims other than name and updated_at (OIDC Core §5.1), one JSON
    # object so a user stays one row of one shape on the login path; idp.identity.profile
    # says why and validates them. NULL on rows older than migration 0012: read as {}.
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    logins_count: Mapped[int] = mapped_column(Integer, default=0)
    # An operator's block (Auth0's ``blocked``, migration 0020): no login, no token refresh
    # until lifted. The brute-force block is another thing (per account and IP, it expires).
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)


class EmailToken(Base):
    __tablename__ = "email_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[int | None] = mapped_column(Integer)


# ``app_metadata.KEY:value`` in the users search (idp.identity.search): the keys it can name.
METADATA_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")


def metadata_value_digest(value: object) -> str | None:
    """The digest under which ``value`` is indexed, or None when the search cannot match it
    (null, arrays, objects). Booleans, numbers (as a double: ``1`` is ``1.0``) and strings each
    have their kind in what is hashed, so ``"true"`` is not ``true`` and ``"1"`` not ``1``."""
    if isinstance(value, bool):
        text = "b:" + ("true" if value else "false")
    elif isinstance(value, int | float):
        text = "n:" + repr(float(value))
    elif isinstance(value, str):
        text = "s:" + value
    else:
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class UserMetadataTerm(Base):
    """One searchable top-level ``app_metadata`` key of a user and its value's digest
    (migration 0022): the B-tree that answers ``app_metadata.KEY:value`` on SQLite and
    PostgreSQL alike, where a JSON column has none for an arbitrary key. Written by the flush
    that changes ``User.app_metadata`` (``_index_app_metadata``); gone with the user. It
    carries the user's ``created_at`` (which never changes; migration 0037), so that a page of
    one term in the search's default order is one range of its index, however many users."""

    __tablename__ = "user_metadata_terms"
    __table_args__ = (
        Index("ix_user_metadata_terms_page", "key", "digest", "created_at", "user_id"),
    )

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    digest: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int | None] = mapped_column(Integer)  # the user's


def metadata_terms(
    user_id: str, app_metadata: dict[str, object] | None, created_at: int | None
) -> list[dict[str, Any]]:
    """The ``user_metadata_terms`` rows of a user created at ``created_at`` holding
    ``app_metadata``."""
    rows = []
    for key, value in (app_metadata or {}).items():
        digest = metadata_value_digest(value)
        if digest is not None and METADATA_KEY.fullmatch(key):
            rows.append({"user_id": user_id, "key": key, "digest": digest,
                         "created_at": created_at})  # fmt: skip
    return rows


@event.listens_for(Session, "after_flush")
def _index_app_metadata(session: Session, _context: UOWTransaction) -> None:
    """Rewrite the terms of every user whose ``app_metadata`` this flush wrote, in the flush's
    transaction: the index is never behind the column. Every writer assigns a new dict (the
    JSON column tracks assignment, not mutation), which is what is seen here."""
    changed = [
        user
        for user in (*session.new, *session.dirty)
        if isinstance(user, User) and user not in session.deleted
        and inspect(user).attrs.app_metadata.history.has_changes()
    ]  # fmt: skip
    if not changed:
        return
    ids = [user.id for user in changed]
    session.execute(delete(UserMetadataTerm).where(UserMetadataTerm.user_id.in_(ids)))
    rows = [
        row for user in changed
        for row in metadata_terms(user.id, user.app_metadata, user.created_at)
    ]  # fmt: skip
    if rows:
        session.execute(insert(UserMetadataTerm), rows)
