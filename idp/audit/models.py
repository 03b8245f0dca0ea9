"""Tenant log events (Auth0's "logs"): who did what, from where, never with a secret in it."""

from __future__ import annotations

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class LogEvent(Base):
    __tablename__ = "log_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    time: Mapped[int] = mapped_column(Integer, index=True)
    user_id: Mapped[str | None] = mapped_column(String(40), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    description: Mapped[str] = mapped_column(String(512))
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
