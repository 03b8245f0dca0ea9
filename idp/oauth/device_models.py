"""Device authorizations (RFC 8628 §3.1-§3.5): one row per ``/oauth/device/code`` answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 §3.4
PENDING, APPROVED, DENIED, REDEEMED = "pending", "approved", "denied", "redeemed"


class DeviceAuthorization(Base):
    """Neither code is kept in clear: the device code (high entropy) as its SHA-256, the user
    code (low entropy, §6.1) as a keyed digest under the instance secret, so that a copy of
    the table does not give live codes back by brute force. ``status`` moves pending ->
    approved | denied, and approved -> redeemed, each by one conditional UPDATE."""

    __tablename__ = "device_authorizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(2048))
    audience: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    interval: Mapped[int] = mapped_column(Integer)  # §3.5: +5 at each slow_down
    last_polled_at: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
    # set at approval: what the token response is issued from (as an authorization code's)
    grant_id: Mapped[str | None] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(40))
    auth_time: Mapped[int | None] = mapped_column(Integer)
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    acr: Mapped[str | None] = mapped_column(String(255))
    sid: Mapped[str | None] = mapped_column(String(64))
    action_effects: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decided_at: Mapped[int | None] = mapped_column(Integer)
    redeemed_at: Mapped[int | None] = mapped_column(Integer)
