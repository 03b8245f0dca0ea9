"""Signing keys (OIDC Core §10.1): each with a ``kid``; private halves encrypted at rest.

A key's state is a function of the clock and its dates (``idp.keys.service.state``): next
(published, not signing yet), current, retired (published, no longer signing), then out of
the JWKS once ``unpublish_at`` passes; revoked is out at once. Nothing has to run for a key
to move on: every reader compares the dates with the time.
"""

from __future__ import annotations

from sqlalchemy import JSON, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    private_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(Integer)
    # When it starts signing: a rotated-in key is published first and signs only from here
    # (None: from ``created_at``, keys made before staged rotation or by ``idp init``).
    activate_at: Mapped[int | None] = mapped_column(Integer)
    # Set when a newer key takes over signing; the key stays published until ``unpublish_at``.
    retired_at: Mapped[int | None] = mapped_column(Integer)
    unpublish_at: Mapped[int | None] = mapped_column(Integer)
    # Revoked: out of the JWKS at once (its tokens stop verifying), never published again.
    revoked_at: Mapped[int | None] = mapped_column(Integer)
