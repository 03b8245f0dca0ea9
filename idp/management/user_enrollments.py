"""A user's MFA enrolments, as Auth0 Management API v2 has them: ``GET
/users/{user_id}/enrollments`` (``read:users``) and ``DELETE /guardian/enrollments/{id}``
(``delete:guardian_enrollments``).

An enrolment is one of idp's factors (``idp.mfa``) in Auth0's shape: ``{id, status (pending |
confirmed), type, name, phone_number?, auth_method, enrolled_at, last_auth?}``. ``auth_method``
is Auth0's word for the factor: ``authenticator`` (TOTP), ``guardian`` (push), ``sms``
(phone), ``webauthn-platform`` (a passkey) or ``webauthn-roaming`` (a security key); ``type``
is idp's own factor kind (``totp``, ``push``, ``phone``, ``webauthn``). The email factor is
not an enrolment: idp derives it from a verified address. Removing one forgets the user's
remembered browsers too (``idp.mfa.service.remove_factor``: a security change).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from idp.audit import events
from idp.audit import service as audit
from idp.core.errors import NotFoundError
from idp.extensions import db
from idp.management.admin_guard import guard_admin
from idp.management.registry import route
from idp.management.schemas import iso
from idp.management.users import by_operator, find, origin
from idp.management.validation import Out
from idp.mfa import methods
from idp.mfa import service as mfa
from idp.mfa.describe import companion
from idp.mfa.models import Factor

TAG = "users"
AUTH_METHODS = {"totp": "authenticator", "push": "guardian", "phone": "sms"}


class EnrollmentOut(Out):
    id: str
    status: Literal["pending", "confirmed"]
    type: str = Field(description="idp's factor kind: totp, push, phone, webauthn.")
    name: str
    phone_number: str | None = None
    auth_method: str = Field(description="Auth0's: authenticator, guardian, sms, webauthn-*.")
    enrolled_at: str
    last_auth: str | None = None


def enrollment_json(factor: Factor) -> dict[str, Any]:
    data = factor.data or {}
    method = AUTH_METHODS.get(factor.kind)
    if factor.kind == "webauthn":
        method = "webauthn-platform" if data.get("synced") else "webauthn-roaming"
    out: dict[str, Any] = {
        "id": factor.id,
        "status": "confirmed" if factor.confirmed else "pending",
        "type": factor.kind,
        "name": factor.name,
        "auth_method": method or factor.kind,
        "enrolled_at": iso(factor.created_at),
        "last_auth": iso(factor.last_used_at),
    }
    if factor.kind == "phone" and data.get("number"):
        out["phone_number"] = data["number"]
    return out


@route("/users/{user_id}/enrollments", scope="read:users", tag=TAG,
       summary="List a user's MFA enrollments", response=list[EnrollmentOut])  # fmt: skip
def list_enrollments(user_id: str) -> list[dict[str, Any]]:
    """Oldest first, pending ones included."""
    factors = mfa.factors(db.session, find(user_id).id, confirmed_only=False)
    return [enrollment_json(f) for f in factors if f.kind != "email" and not companion(f)]


@route("/guardian/enrollments/{id}", "DELETE", scope="delete:guardian_enrollments",
       tag="guardian", summary="Delete an MFA enrollment", status=204)  # fmt: skip
def delete_enrollment(id: str) -> None:
    """The user signs in without that factor from now on (others, if any, still apply)."""
    factor = db.session.get(Factor, id)
    if factor is None or factor.kind == "email" or companion(factor):
        raise NotFoundError(f"no enrollment {id!r}")
    user_id, kind = factor.user_id, factor.kind
    guard_admin(user_id, "removing a second factor")
    methods.remove(db.session, user_id, factor.id)  # a push device's own code goes with it
    audit.record(db.session, events.MFA_REMOVED, by_operator("Factor removed"), origin(),
                 user_id=user_id, details={"kind": kind, "factor_id": id})  # fmt: skip
