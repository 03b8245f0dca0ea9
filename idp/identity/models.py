"""Users of the database connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class User(Base):
    __tablename__ = "users"

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
