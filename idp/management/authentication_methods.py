"""A user's authentication methods, as Auth0 Management API v2 has them: ``GET
/users/{id}/authentication-methods`` (and one by id), ``DELETE`` one, ``DELETE`` them all.

Every kind the account page manages (``idp.mfa.methods``), in Auth0's words: ``type`` is
``totp``, ``push-notification``, ``webauthn-roaming`` (a security key), ``webauthn-platform``
(a passkey), ``phone`` or ``recovery-code`` (the user's set of recovery codes, one method).
``name`` is the user's own label, else the device's model, else the kind's name; ``created_at``,
``enrolled_at`` and ``last_auth_at`` are Auth0's timestamps. The user's password and the email
factor (derived from a verified address) are not listed. Auth0 asks for
``read:authentication_methods`` / ``delete:authentication_methods``; idp uses the users scopes
it already grants (``read:users``, ``update:users``). Each removal is a tenant log event
(``mfa.removed``) beside the registry's ``management.write``, and forgets the user's remembered
browsers (a security change).
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

TAG = "users"
PATH = "/users/{user_id}/authentication-methods"
MethodType = Literal[
    "totp", "push-notification", "webauthn-roaming", "webauthn-platform", "phone", "recovery-code"
]


class MethodOut(Out):
    id: str
    type: MethodType
    confirmed: bool
    name: str = Field(description="The user's label, else the device's model, else the kind.")
    created_at: str
    enrolled_at: str
    last_auth_at: str | None = None
    phone_number: str | None = None
    preferred_authentication_method: Literal["sms", "voice"] | None = None
    aaguid: str | None = Field(None, description="A WebAuthn authenticator's model (§6.5.1).")


def method_json(method: methods.Method) -> dict[str, Any]:
    details = method.details
    out: dict[str, Any] = {
        "id": method.id,
        "type": methods.AUTH0_TYPES[method.kind],
        "confirmed": method.confirmed,
        "name": method.label or method.model or method.kind_name,
        "created_at": iso(method.created_at),
        "enrolled_at": iso(method.created_at),
        "last_auth_at": iso(method.last_used_at),
    }
    if method.kind == "phone":
        out["phone_number"] = details.get("phone_number")
        out["preferred_authentication_method"] = details.get("message_type", "sms")
    if details.get("aaguid"):
        out["aaguid"] = details["aaguid"]
    return out


@route(PATH, scope="read:users", tag=TAG, summary="List a user's authentication methods",
       response=list[MethodOut])  # fmt: skip
def list_methods(user_id: str) -> list[dict[str, Any]]:
    """Every second factor of the user, oldest first, pending ones included; the recovery
    codes last."""
    return [method_json(m) for m in methods.methods(db.session, find(user_id).id, False)]


@route(PATH + "/{authentication_method_id}", scope="read:users", tag=TAG,
       summary="Get one authentication method of a user", response=MethodOut)  # fmt: skip
def get_method(user_id: str, authentication_method_id: str) -> dict[str, Any]:
    found = methods.find(db.session, find(user_id).id, authentication_method_id[:40])
    if found is None:
        raise NotFoundError(f"no authentication method {authentication_method_id!r}")
    return method_json(found)


def _record(user_id: str, gone: list[methods.Method]) -> None:
    for m in gone:
        audit.record(db.session, events.MFA_REMOVED, by_operator("Factor removed"), origin(),
                     user_id=user_id, details={"kind": m.kind, "factor_id": m.id})  # fmt: skip


@route(PATH + "/{authentication_method_id}", "DELETE", scope="update:users", tag=TAG,
       summary="Delete an authentication method of a user", status=204)  # fmt: skip
def delete_method(user_id: str, authentication_method_id: str) -> None:
    """The user signs in without it from now on (a push device goes with its Web Push
    subscription and its offline code; ``recovery-code`` removes every recovery code)."""
    user = find(user_id)
    guard_admin(user.id, "removing a second factor")
    try:
        gone = methods.remove(db.session, user.id, authentication_method_id)
    except mfa.MfaError:
        raise NotFoundError(f"no authentication method {authentication_method_id!r}") from None
    _record(user.id, [gone])


@route(PATH, "DELETE", scope="update:users", tag=TAG,
       summary="Delete every authentication method of a user", status=204)  # fmt: skip
def delete_methods(user_id: str) -> None:
    """Every factor, the recovery codes and codes in flight: the next login that asks for a
    second factor offers enrolment again."""
    user = find(user_id)
    guard_admin(user.id, "removing a second factor")
    _record(user.id, methods.reset(db.session, user.id))
