"""Attack-protection counters kept in the database (the default store)."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class ProtectionCounter(Base):
    __tablename__ = "protection_counters"

    # "<kind>:<sha256 of the subject>[:<sha256 of the ip>]": no email or IP in clear text
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_ends: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[int] = mapped_column(Integer, default=0)
