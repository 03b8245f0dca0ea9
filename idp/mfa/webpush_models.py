"""Web Push for push devices: the instance's VAPID key pair (RFC 8292 §3.2) and each device's
push subscription (RFC 8030 §4, with the RFC 8291 §3 keys the message is encrypted to)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.core.db import Base


class VapidKey(Base):
    """One row (``id`` = "vapid"): a P-256 key, the private half encrypted with the instance
    secret like the signing keys, the public half as the uncompressed point (base64url) that
    a browser's ``PushManager.subscribe`` takes as its ``applicationServerKey``."""

    __tablename__ = "mfa_vapid_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(128))
    private_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(Integer)


class WebPushSubscription(Base):
    """A push device's subscription: the push service's endpoint and the browser's ECDH key
    (``p256dh``) and authentication secret (``auth``). Removed with its device, or when the
    push service answers 404/410 (RFC 8030 §7.3: the subscription is gone)."""

    __tablename__ = "mfa_webpush_subscriptions"

    device_id: Mapped[str] = mapped_column(
        ForeignKey("mfa_push_devices.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1024))
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(Integer)
    last_sent_at: Mapped[int | None] = mapped_column(Integer)
