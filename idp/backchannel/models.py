"""A back-channel logout to deliver (OIDC Back-Channel Logout 1.0 §2.5): one row per client
and ended session, kept in the database so that a restart loses none (delivered at least once).

``id`` is the Logout Token's ``jti``: a retry sends a token with the same ``jti`` (and a fresh
``iat``/``exp``, so that a late retry is not refused as expired), so a receiver can drop one it
has already acted on (§2.6). No token is stored: it is signed at each attempt. The lease
(``leased_by``/``leased_until``, claimed by a conditional UPDATE) keeps a row to one worker of
one instance at a time.
"""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base

STATUSES = ("pending", "delivered", "failed")


class BackchannelLogout(Base):
    __tablename__ = "backchannel_logouts"
    __table_args__ = (
        UniqueConstraint("client_id", "sid"),  # one logout per client and session
        Index("ix_backchannel_logouts_due", "status", "retry_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(40))
    sid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(512))
    # Wall-clock seconds, as the log streams' (fractions matter for backoff and leases).
    retry_at: Mapped[float] = mapped_column(Float, default=0.0)
    leased_by: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[int] = mapped_column(Integer)
    delivered_at: Mapped[int | None] = mapped_column(Integer)
