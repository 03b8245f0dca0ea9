"""How a user's factors are named and counted on ``/account/mfa``: the user's own label, the
kind, the device's model where it is known, and the per-kind cap (``MFA_MAX_FACTORS_PER_KIND``).

The model of a WebAuthn authenticator comes from its AAGUID (WebAuthn §6.5.1: the model of the
authenticator, the same for every unit of it) when it is one of the few well known below;
otherwise from what the browser reported: the attachment (§5.4.5, "platform" is built into
the device) and the transports (§5.8.4). A push device reports its own name at enrolment.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.i18n import N_, gettext
from idp.mfa import attestation, phone
from idp.mfa.models import Factor

LABEL_MAX = 64
# AAGUIDs published by their makers (the passkey providers' list and FIDO MDS3); the MDS3
# trust store, where an operator loads one, names every certified model.
KNOWN_AAGUIDS = {
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
    "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
    "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
    "9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
    "6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
    "dd4ec289-e01d-41c9-bb89-70fa845d4bf2": "iCloud Keychain (Managed)",
    "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
    "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
    "531126d6-e717-415c-9320-3d9aa6981239": "Dashlane",
    "b84e4048-15dc-4dd0-8640-f4f60813c8af": "NordPass",
    "0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6": "Keeper",
    "cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
    "ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 Series",
    "fa2b99dc-9e39-4257-8f92-4a30d23c4118": "YubiKey 5 Series with NFC",
    "2fc0579f-8113-47ea-b116-bb5a8db9202a": "YubiKey 5 Series with NFC",
}
KIND_NAMES = {
    "totp": N_("Authenticator app"),
    "push": N_("Push device"),
    "phone": N_("Phone"),
    "passkey": N_("Passkey"),
    "key": N_("Security key"),
}
TRANSPORTS = {"usb": "USB", "nfc": "NFC", "ble": "Bluetooth", "smart-card": "smart card"}


@dataclass(frozen=True)
class Row:
    """One line of the account page."""

    id: str
    kind: str  # a KIND_NAMES key
    kind_name: str
    label: str | None
    model: str | None
    created_at: int
    last_used_at: int | None


def companion(factor: Factor) -> bool:
    """The TOTP a push device got at enrolment (its offline fallback): listed, counted and
    removed with its device, never on its own."""
    return factor.kind == "totp" and bool((factor.data or {}).get("device_id"))


def page_kind(factor: Factor) -> str:
    if factor.kind == "webauthn":
        chosen = (factor.data or {}).get("requested")
        if chosen in ("passkey", "key"):
            return str(chosen)
        return "passkey" if (factor.data or {}).get("synced") else "key"
    return factor.kind


def model(factor: Factor) -> str | None:
    data = factor.data or {}
    if factor.kind == "webauthn":
        # the FIDO metadata's name (kept at registration, else the blob imported since), then
        # the well-known providers above
        known = data.get("model") or KNOWN_AAGUIDS.get(str(data.get("aaguid", "")))
        if not known and data.get("aaguid"):
            known = attestation.authenticator_name(str(data["aaguid"]))
        if known:
            return str(known)
        transports = [t for t in data.get("transports") or [] if t in TRANSPORTS]
        if data.get("attachment") == "platform" or "internal" in (data.get("transports") or []):
            return gettext("Built into a device")
        if transports:
            names = ", ".join(TRANSPORTS[t] for t in transports)
            return gettext("Security key ({transports})", transports=names)
        return None
    if factor.kind == "push":
        return data.get("model") or None
    if factor.kind == phone.KIND:
        number = phone.mask(str(data.get("number", "")))
        if data.get("message_type") == "voice":
            return gettext("Voice call to {number}", number=number)
        return gettext("Text message to {number}", number=number)
    return None


def rows(factors: list[Factor]) -> list[Row]:
    listed = [f for f in factors if f.kind != "email" and not companion(f)]
    return [
        Row(f.id, page_kind(f), gettext(KIND_NAMES.get(page_kind(f), f.name)), f.label,
            model(f), f.created_at, f.last_used_at)
        for f in listed
    ]  # fmt: skip


def count(session: Session, user_id: str, kind: str) -> int:
    """Confirmed factors of ``kind`` (a ``Factor.kind``), push companions left out."""
    query = select(Factor).where(
        Factor.user_id == user_id, Factor.kind == kind, Factor.confirmed.is_(True)
    )
    if kind != "totp":
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    return sum(1 for f in session.scalars(query) if not companion(f))


def at_cap(session: Session, user_id: str, kind: str) -> bool:
    from idp.extensions import services

    return count(session, user_id, kind) >= int(services().config["MFA_MAX_FACTORS_PER_KIND"])


def clean_label(raw: str) -> str | None:
    """A label as typed: control characters out, spaces squeezed, at most LABEL_MAX."""
    text = " ".join("".join(c for c in raw if c.isprintable()).split())
    return text[:LABEL_MAX] or None
