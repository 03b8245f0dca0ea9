"""Second factors, recovery codes, one-time codes in flight and remembered browsers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class Factor(Base):
    """One enrolled factor. ``secret`` is encrypted with the instance key (TOTP seeds);
    ``data`` holds public material (a WebAuthn credential, a device key, a phone number)."""

    __tablename__ = "mfa_factors"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # totp | email | phone | webauthn | push
    name: Mapped[str] = mapped_column(String(128))
    # The user's own name for it ("work phone", "blue key"); None: the kind's name is shown.
    label: Mapped[str | None] = mapped_column(String(64))
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    # RFC 6238 §5.2: a code is accepted once; the last accepted time step is remembered.
    last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)
    last_used_at: Mapped[int | None] = mapped_column(Integer)


class RecoveryCode(Base):
    """Single-use codes, stored as keyed digests (the codes have 50+ bits of entropy)."""

    __tablename__ = "mfa_recovery_codes"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[int | None] = mapped_column(Integer)


class OneTimeCode(Base):
    """An emailed or texted code waiting to be typed in: digest only, short-lived, few tries."""

    __tablename__ = "mfa_one_time_codes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    factor_id: Mapped[str] = mapped_column(String(40))
    digest: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[int | None] = mapped_column(Integer)


class RememberedBrowser(Base):
    """ "Remember this browser": a cookie whose digest is here skips MFA for this user."""

    __tablename__ = "mfa_remembered_browsers"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
