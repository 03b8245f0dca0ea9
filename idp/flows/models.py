"""Login sessions (SSO) and pending interactions between /authorize and the login page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class LoginSession(Base):
    __tablename__ = "login_sessions"

    # SHA-256 of the cookie value: a database dump does not yield live cookies.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The connection the user signed in through; NULL: the database connection (sessions
    # older than migration 0014 were all its). SSO is offered only where it is enabled.
    connection: Mapped[str | None] = mapped_column(String(63))
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    ended_at: Mapped[int | None] = mapped_column(Integer)


class Interaction(Base):
    """A login in progress: the validated authorization request and what is settled so far
    (``idp.flows.state.LoginState`` as JSON), bound to the browser that started it."""

    __tablename__ = "interactions"

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    # Binds the interaction to the browser that started it (a cookie holds the raw value).
    browser_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
