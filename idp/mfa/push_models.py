"""Push approval (the Guardian model): enrolment tickets, devices, login challenges, and the
single-use record of device-token ``jti`` values (RFC 7519 §4.1.7)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class PushTicket(Base):
    """A one-time enrolment ticket shown as a QR code; stored as a keyed digest."""

    __tablename__ = "mfa_push_tickets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[int | None] = mapped_column(Integer)
    device_id: Mapped[str | None] = mapped_column(String(64))


class PushDevice(Base):
    """An enrolled device: its id is the RFC 7638 thumbprint of its P-256 public key. The
    ``push`` factor row owns it (removing the factor removes the device)."""

    __tablename__ = "mfa_push_devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    factor_id: Mapped[str] = mapped_column(
        ForeignKey("mfa_factors.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    webhook_url: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[int] = mapped_column(Integer)
    last_seen_at: Mapped[int | None] = mapped_column(Integer)


class PushChallenge(Base):
    """One login waiting for an answer. ``status``: pending, approved, denied, wrong_number,
    expired, cancelled, used (an approval the login page has consumed)."""

    __tablename__ = "mfa_push_challenges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    interaction_uid: Mapped[str] = mapped_column(String(64), index=True)
    nonce: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    choices: Mapped[list[int]] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    app: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    device_id: Mapped[str | None] = mapped_column(String(64))  # the device that answered
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
    responded_at: Mapped[int | None] = mapped_column(Integer)


class PushTokenUse(Base):
    """A device token's ``jti`` seen once; a second use is a replay. Kept until the token's
    ``exp`` (after that the token is refused anyway) and swept then."""

    __tablename__ = "mfa_push_token_uses"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
