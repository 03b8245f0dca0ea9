"""A user's authentication methods as an operator sees them (``idp mfa list|reset`` and the
management API's ``/users/{id}/authentication-methods``): every kind the account page manages,
named as it names them (``idp.mfa.describe``), plus what only an operator needs (a push device's
Web Push subscription, a phone's number, how many recovery codes are left).

One method per listed factor (the email factor is derived from a verified address and a push
device's companion code goes with its device, so neither is a method of its own), and the
recovery codes as one method (``recovery-code``): they are made, and replaced, as a set.
Removing a method forgets the user's remembered browsers (``service.remove_factor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from idp.mfa import describe
from idp.mfa import service as mfa
from idp.mfa.models import Factor, RecoveryCode, RememberedBrowser
from idp.mfa.push_models import PushDevice
from idp.mfa.webpush_models import WebPushSubscription

RECOVERY_ID = "recovery-code"
KINDS = ("totp", "push", "key", "passkey", "phone", "recovery")
# idp's kind -> Auth0's authentication method type (Management API v2)
AUTH0_TYPES = {
    "totp": "totp",
    "push": "push-notification",
    "key": "webauthn-roaming",
    "passkey": "webauthn-platform",
    "phone": "phone",
    "recovery": "recovery-code",
}


@dataclass(frozen=True)
class Method:
    id: str
    kind: str  # one of KINDS
    kind_name: str
    label: str | None
    model: str | None
    confirmed: bool
    created_at: int
    last_used_at: int | None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "kind_name": self.kind_name,
                "label": self.label, "model": self.model, "confirmed": self.confirmed,
                "created_at": self.created_at, "last_used_at": self.last_used_at,
                **self.details}  # fmt: skip


def _push_details(session: Session, factor: Factor) -> dict[str, Any]:
    device = session.scalar(select(PushDevice).where(PushDevice.factor_id == factor.id))
    if device is None:
        return {"web_push": False}
    sub = session.get(WebPushSubscription, device.id)
    return {"device_id": device.id, "web_push": sub is not None,
            "last_seen_at": device.last_seen_at}  # fmt: skip


def _factor_method(session: Session, factor: Factor) -> Method:
    kind = describe.page_kind(factor)
    data = factor.data or {}
    details: dict[str, Any] = {}
    if factor.kind == "push":
        details = _push_details(session, factor)
    elif factor.kind == "phone":
        details = {"phone_number": data.get("number"),
                   "message_type": data.get("message_type", "sms")}  # fmt: skip
    elif factor.kind == "webauthn":
        details = {"aaguid": data.get("aaguid"), "attested": bool(data.get("attested"))}
    return Method(factor.id, kind, describe.KIND_NAMES.get(kind, factor.name), factor.label,
                  describe.model(factor), bool(factor.confirmed), factor.created_at,
                  factor.last_used_at, details)  # fmt: skip


def _recovery(session: Session, user_id: str) -> Method | None:
    made, used, left = session.execute(
        select(func.min(RecoveryCode.created_at), func.max(RecoveryCode.used_at),
               func.count(RecoveryCode.digest) - func.count(RecoveryCode.used_at))
        .where(RecoveryCode.user_id == user_id)
    ).one()  # fmt: skip
    if made is None:
        return None
    last = int(used) if used is not None else None
    return Method(RECOVERY_ID, "recovery", "Recovery codes", None, None, True, int(made), last,
                  {"codes_left": int(left or 0)})  # fmt: skip


def methods(session: Session, user_id: str, confirmed_only: bool = True) -> list[Method]:
    """Oldest first, the recovery codes last."""
    found = [
        _factor_method(session, f)
        for f in mfa.factors(session, user_id, confirmed_only=confirmed_only)
        if f.kind != "email" and not describe.companion(f)
    ]
    codes = _recovery(session, user_id)
    return found + ([codes] if codes else [])


def find(session: Session, user_id: str, method_id: str) -> Method | None:
    return next((m for m in methods(session, user_id, False) if m.id == method_id), None)


def remove(session: Session, user_id: str, method_id: str) -> Method:
    """Remove one method (a push device with its companion code and Web Push subscription;
    every recovery code); :class:`mfa.MfaError` when the user has no such method."""
    method = find(session, user_id, method_id[:40])
    if method is None:
        raise mfa.MfaError("no such factor")
    if method.id == RECOVERY_ID:
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        session.execute(delete(RememberedBrowser).where(RememberedBrowser.user_id == user_id))
        return method
    factor = session.get_one(Factor, method.id)
    device = (factor.data or {}).get("device_id") if factor.kind == "push" else None
    mfa.remove_factor(session, user_id, factor.id)
    for other in mfa.factors(session, user_id, confirmed_only=False):
        if device and describe.companion(other) and other.data.get("device_id") == device:
            mfa.remove_factor(session, user_id, other.id)
    return method


def reset(session: Session, user_id: str, kind: str | None = None) -> list[Method]:
    """Remove every method of ``kind`` (every method, one-time codes in flight included, when
    None); the methods removed."""
    listed = methods(session, user_id, confirmed_only=False)
    if kind is None:
        mfa.reset_user(session, user_id)
        return listed
    return [remove(session, user_id, m.id) for m in listed if m.kind == kind]
