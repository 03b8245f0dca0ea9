"""One row per tenant setting changed through the management API (absent: the default)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class TenantSetting(Base):
    __tablename__ = "tenant_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[int] = mapped_column(Integer)
