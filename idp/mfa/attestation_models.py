"""The WebAuthn attestation trust store: the FIDO Metadata Service (MDS3) blob an operator
imported (``idp mfa mds import``), kept in the database so every worker and instance uses
the same one."""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class MetadataBlob(Base):
    """The one imported MDS3 blob (``id`` is always ``"mds3"``): its verified payload as
    received, with the fields ``idp mfa mds status`` shows. The JWT around it was checked at
    import against the FIDO root; workers trust this row as the import left it."""

    __tablename__ = "webauthn_metadata"

    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    serial: Mapped[int] = mapped_column(Integer)  # the payload's "no" (MDS3 §3.1.6)
    next_update: Mapped[str] = mapped_column(String(10))  # "nextUpdate", YYYY-MM-DD
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of payload: workers' cache key
    entries: Mapped[int] = mapped_column(Integer)
    signer: Mapped[str] = mapped_column(String(255))  # the signing certificate's subject
    payload: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[int] = mapped_column(Integer)
