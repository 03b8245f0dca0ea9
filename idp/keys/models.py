"""Signing keys (OIDC Core §10.1): each with a ``kid``; private halves encrypted at rest."""

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
    # Set when a newer key takes over signing; the key stays published until ``unpublish_at``.
    retired_at: Mapped[int | None] = mapped_column(Integer)
    unpublish_at: Mapped[int | None] = mapped_column(Integer)
