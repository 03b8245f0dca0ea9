"""A log stream (Auth0's ``log-streams`` of type ``http``) and its delivery state.

The delivery state lives in the row, not in a worker: ``checkpoint`` is the id of the last
log event the receiver acknowledged (delivery resumes after it, across restarts), and
``leased_by``/``leased_until`` say which worker process delivers it right now (claimed with a
conditional UPDATE, so of several gunicorn workers or instances exactly one holds it).
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base

STATUSES = ("active", "paused", "suspended")  # Auth0's; suspended: too many failures


class LogStream(Base):
    __tablename__ = "log_streams"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    endpoint: Mapped[str] = mapped_column(String(512))
    # Sealed with the instance's SecretBox: the HMAC key and the optional Authorization value.
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    auth_header: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    checkpoint: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive
    last_error: Mapped[str | None] = mapped_column(String(512), nullable=True)
    last_error_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delivered_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Wall-clock seconds (fractions matter for backoff and leases, not for tenants).
    retry_at: Mapped[float] = mapped_column(Float, default=0.0)
    leased_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    leased_until: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)
