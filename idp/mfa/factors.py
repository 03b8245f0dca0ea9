"""The factor kinds a login can be challenged with, as data (the prompt-table style).

Each kind names its challenge form (a template partial), how to verify a submitted form and,
optionally, a preparatory action (sending a code, starting a push). The MFA page offers every
registered kind the user has; a new factor registers here and adds its partial, nothing else.

Each kind can be switched off for the tenant (``/api/v2/guardian/factors``; the tenant setting
``MFA_FACTOR_<KIND>``, on by default): a kind switched off is neither offered nor accepted at
the MFA step (:func:`offers`), nor offered for enrolment (the enrolment routes ask
:func:`enabled`). Factors already enrolled stay stored and work again once it is switched on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

import idp.mfa.push as push
from idp.core.crypto import SecretBox
from idp.i18n import N_, gettext
from idp.identity.models import User
from idp.mfa import phone, webauthn
from idp.mfa import service as mfa
from idp.mfa.models import Factor
from idp.tenant.settings import setting

# verify(session, box, user, factors, form, state) -> passed
Verify = Callable[[Session, SecretBox, User, list[Factor], Mapping[str, str], dict[str, Any]], bool]
# prepare(session, user, state) -> notice shown to the user (state may be updated in place)
Prepare = Callable[[Session, User, dict[str, Any]], str]
# offered(session, user, factors) -> whether this kind is offered to this user
Offered = Callable[[Session, User, list[Factor]], bool]


@dataclass(frozen=True)
class FactorKind:
    kind: str
    partial: str
    verify: Verify
    offered: Offered
    prepare: dict[str, Prepare] = field(default_factory=dict)


REGISTRY: dict[str, FactorKind] = {}


def register(kind: FactorKind) -> None:
    REGISTRY[kind.kind] = kind


def enabled(kind: str) -> bool:
    """The tenant's switch for ``kind`` (through the settings cache)."""
    return bool(setting(f"MFA_FACTOR_{kind.upper()}"))


def offers(session: Session, user: User, factors: list[Factor]) -> list[FactorKind]:
    """The kinds the MFA page shows, and the only ones it verifies."""
    return [k for k in REGISTRY.values() if enabled(k.kind) and k.offered(session, user, factors)]


def _has(kind: str) -> Offered:
    return lambda session, user, factors: any(f.kind == kind for f in factors)


def _verify_totp(s: Session, box: SecretBox, user: User, factors: list[Factor],
                 form: Mapping[str, str], state: dict[str, Any]) -> bool:  # fmt: skip
    code = form.get("code", "")[:16]
    return any(mfa.verify_totp(s, box, f, code) for f in factors if f.kind == "totp")


def _email_offered(session: Session, user: User, factors: list[Factor]) -> bool:
    """A dependent factor: only for a verified address, and only beside another factor."""
    return bool(user.email_verified) and any(f.kind != "email" for f in factors)


def _verify_email(s: Session, box: SecretBox, user: User, factors: list[Factor],
                  form: Mapping[str, str], state: dict[str, Any]) -> bool:  # fmt: skip
    factor = mfa.email_factor(s, user.id)
    return mfa.verify_code(s, box, user.id, factor.id, form.get("code", "")[:16])


def _verify_recovery(s: Session, box: SecretBox, user: User, factors: list[Factor],
                     form: Mapping[str, str], state: dict[str, Any]) -> bool:  # fmt: skip
    return mfa.use_recovery_code(s, box, user.id, form.get("code", "")[:64])


def _send_email(session: Session, user: User, state: dict[str, Any]) -> str:
    from idp.extensions import services

    svc = services()
    factor = mfa.email_factor(session, user.id)
    code = mfa.issue_code(session, svc.box, user.id, factor.id)
    state["email_sent"] = True
    svc.mailer.send_later(
        user.email,
        gettext("Your sign-in code"),
        gettext("Your code is {code}. It expires in 5 minutes.\n", code=code),
    )
    return N_("We emailed you a code.")


register(FactorKind("totp", "mfa/_totp.html", _verify_totp, _has("totp")))
register(FactorKind("webauthn", "mfa/_webauthn.html", webauthn.verify_form, _has("webauthn")))
register(FactorKind("email", "mfa/_email.html", _verify_email, _email_offered,
                    prepare={"send_email": _send_email}))  # fmt: skip
register(FactorKind("phone", "mfa/_phone.html", phone.verify, phone.offered, prepare=phone.PREPARE))
register(FactorKind("push", "mfa/_push.html", push.verify, push.offered, push.PREPARE))


def _recovery_offered(session: Session, user: User, factors: list[Factor]) -> bool:
    """Beside any factor; and alone after a passkey login without user verification whose
    key was the only factor (the MFA step leaves that key out, the codes are another kind)."""
    return bool(factors) or mfa.recovery_codes_left(session, user.id) > 0


register(FactorKind("recovery", "mfa/_recovery.html", _verify_recovery, _recovery_offered))
