"""``/api/v2/guardian/factors``: which MFA factors the tenant allows, as Auth0 Management API
v2's Guardian factors (``GET /guardian/factors``, ``PUT /guardian/factors/{name}``;
``read:guardian_factors``, ``update:guardian_factors``).

Auth0's names over idp's factor kinds (``idp.mfa.factors``): ``otp`` (authenticator apps,
TOTP), ``sms`` (a phone: text message or voice call), ``email``, ``push-notification``,
``webauthn-roaming`` and ``webauthn-platform``, ``recovery-code``. idp does not tell a security
key from a platform authenticator: both WebAuthn names are one switch, and a ``PUT`` on either
sets both. ``duo`` has no counterpart in idp (404). A factor switched off is neither offered for
enrolment nor accepted at the MFA step; factors already enrolled are kept and work again once it
is switched on. Passkey sign-in on the login page is a login method, not an MFA factor, and is
not governed here. ``trial_expired`` is always false (no trials in idp).

Stored as tenant settings (``MFA_FACTOR_<KIND>``, on by default: idp offered every factor before
this switch existed); every worker follows within ``TENANT_SETTINGS_CACHE_SECONDS``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from idp.core.errors import NotFoundError
from idp.extensions import db
from idp.management.registry import route
from idp.management.validation import Body, Out
from idp.tenant.settings import Snapshot, tenant

TAG = "guardian"
# Auth0's name -> idp's factor kind, in Auth0's order
FACTORS = {"sms": "phone", "push-notification": "push", "email": "email", "otp": "totp",
           "webauthn-roaming": "webauthn", "webauthn-platform": "webauthn",
           "recovery-code": "recovery"}  # fmt: skip


class FactorOut(Out):
    name: str
    enabled: bool
    trial_expired: bool = Field(description="Always false: idp has no trials.")


class FactorUpdate(Body):
    enabled: bool


class FactorEnabled(Out):
    enabled: bool


def _key(name: str) -> str:
    kind = FACTORS.get(name)
    if kind is None:
        raise NotFoundError(f"no factor {name[:64]!r} (idp has: {', '.join(FACTORS)})")
    return f"MFA_FACTOR_{kind.upper()}"


def factors_json(snap: Snapshot) -> list[dict[str, Any]]:
    return [{"name": name, "enabled": bool(snap[_key(name)]), "trial_expired": False}
            for name in FACTORS]  # fmt: skip


@route("/guardian/factors", scope="read:guardian_factors", tag=TAG,
       summary="List the MFA factors", response=list[FactorOut])  # fmt: skip
def list_factors() -> list[dict[str, Any]]:
    """Every factor idp has, enabled or not."""
    return factors_json(tenant().read(db.session))


@route("/guardian/factors/{name}", "PUT", scope="update:guardian_factors", tag=TAG,
       summary="Enable or disable an MFA factor", body=FactorUpdate, response=FactorEnabled,
       errors=(404,), after_commit=lambda: tenant().invalidate())  # fmt: skip
def update_factor(name: str, body: FactorUpdate) -> dict[str, Any]:
    """Takes effect at the next MFA page on this worker, within seconds on the others."""
    tenant().write(db.session, {_key(name): body.enabled})
    return {"enabled": body.enabled}
