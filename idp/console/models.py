"""Who may use the admin console (``/admin``): idp users holding the admin role."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class Admin(Base):
    """A user with the admin role (migration 0023); gone with the user. ``added_by`` says who
    gave it: ``cli`` or ``admin:<email>``."""

    __tablename__ = "admins"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[int] = mapped_column(Integer)
    added_by: Mapped[str] = mapped_column(String(255))
