"""Second factors: TOTP (RFC 6238), emailed one-time codes, recovery codes, remembered browsers.

Verification never says which part was wrong, accepts each TOTP code once (RFC 6238 §5.2: the
last accepted time step is stored and a step at or before it is refused), and counts every
failure with the password failures of attack protection (the caller does that).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from idp.core import clock
from idp.core.crypto import SecretBox, random_token
from idp.i18n import N_, gettext
from idp.mfa.models import Factor, OneTimeCode, RecoveryCode, RememberedBrowser
from idp.stores import STORES

TOTP_STEP = 30
TOTP_WINDOW = 1  # one step either side (clock drift), as the issue asks
EMAIL_CODE_TTL = 300
EMAIL_CODE_ATTEMPTS = 5
RECOVERY_CODES = 10
# amr values (RFC 8176 §2) per factor kind
AMR = {"totp": "otp", "email": "otp", "phone": "sms", "recovery": "otp", "push": "swk",
       "webauthn": "hwk"}  # fmt: skip


class MfaError(ValueError):
    """Bad operator or user input (enrolment, removal)."""


@dataclass(frozen=True)
class TotpEnrolment:
    factor_id: str
    secret: str
    uri: str
    qr_svg: str


def factors(session: Session, user_id: str, confirmed_only: bool = True) -> list[Factor]:
    query = select(Factor).where(Factor.user_id == user_id).order_by(Factor.created_at)
    if confirmed_only:
        query = query.where(Factor.confirmed.is_(True))
    return list(session.scalars(query))


def has_factor(session: Session, user_id: str) -> bool:
    """Asked on every login (the adaptive policy): an index probe, no factor is loaded."""
    return STORES.factors.has_confirmed(session, user_id)


# ----------------------------------------------------------------------------- TOTP
def start_totp(
    session: Session, box: SecretBox, user_id: str, label: str, issuer: str
) -> TotpEnrolment:
    """A pending TOTP factor; it counts only once a first code confirms it."""
    session.execute(
        delete(Factor).where(
            Factor.user_id == user_id, Factor.kind == "totp", Factor.confirmed.is_(False)
        )
    )
    seed = pyotp.random_base32(32)  # 160 bits (RFC 4226 §4 recommends at least that)
    factor = Factor(
        id="fac_" + random_token(12),
        user_id=user_id,
        kind="totp",
        name=N_("Authenticator app"),
        secret=box.encrypt(seed.encode()),
        data={},
        confirmed=False,
        created_at=clock.now(),
    )
    session.add(factor)
    uri = pyotp.TOTP(seed, interval=TOTP_STEP).provisioning_uri(name=label, issuer_name=issuer)
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, title=gettext("QR code of the authenticator key")
    )
    return TotpEnrolment(factor.id, seed, uri, svg)


def _totp_step(session: Session, box: SecretBox, factor: Factor, code: str) -> int | None:
    """The time step ``code`` belongs to, within the window, or None."""
    if factor.secret is None or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(box.decrypt(factor.secret).decode(), interval=TOTP_STEP)
    now = clock.now()
    for offset in range(-TOTP_WINDOW, TOTP_WINDOW + 1):
        at = now + offset * TOTP_STEP
        if hmac.compare_digest(totp.at(at), code):
            return at // TOTP_STEP
    return None


def verify_totp(session: Session, box: SecretBox, factor: Factor, code: str) -> bool:
    """Accept a code once: a conditional update moves ``last_step`` forward, so of two
    concurrent uses of one code exactly one wins (same pattern as code redemption)."""
    step = _totp_step(session, box, factor, code)
    if step is None:
        return False
    result = session.execute(
        update(Factor)
        .where(Factor.id == factor.id, (Factor.last_step.is_(None)) | (Factor.last_step < step))
        .values(last_step=step, last_used_at=clock.now(), confirmed=True),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# ----------------------------------------------------------------------- email codes
def email_factor(session: Session, user_id: str) -> Factor:
    """The email factor exists implicitly for a verified address (a dependent factor)."""
    factor = session.scalar(select(Factor).where(Factor.user_id == user_id, Factor.kind == "email"))
    if factor is None:
        factor = Factor(
            id="fac_" + random_token(12), user_id=user_id, kind="email", name="Email",
            data={}, confirmed=True, created_at=clock.now(),
        )  # fmt: skip
        session.add(factor)
    return factor


def issue_code(session: Session, box: SecretBox, user_id: str, factor_id: str) -> str:
    """A fresh 6-digit code for an email or phone factor; earlier ones stop working."""
    session.execute(
        delete(OneTimeCode).where(
            OneTimeCode.user_id == user_id, OneTimeCode.factor_id == factor_id
        )
    )
    code = f"{secrets.randbelow(10**6):06d}"
    now = clock.now()
    session.add(
        OneTimeCode(
            id="otc_" + random_token(12), user_id=user_id, factor_id=factor_id,
            digest=box.digest(f"{factor_id}:{code}"), created_at=now,
            expires_at=now + EMAIL_CODE_TTL,
        )
    )  # fmt: skip
    return code


def verify_code(session: Session, box: SecretBox, user_id: str, factor_id: str, code: str) -> bool:
    row = session.scalar(
        select(OneTimeCode).where(
            OneTimeCode.user_id == user_id,
            OneTimeCode.factor_id == factor_id,
            OneTimeCode.used_at.is_(None),
        )
    )
    if row is None or row.expires_at <= clock.now():
        return False
    # the attempt is counted in the database before the code is compared, so concurrent
    # guesses cannot exceed the limit between a read and a write
    counted = session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.id == row.id, OneTimeCode.attempts < EMAIL_CODE_ATTEMPTS)
        .values(attempts=OneTimeCode.attempts + 1),
        execution_options={"synchronize_session": False},
    )
    if getattr(counted, "rowcount", 0) != 1:
        return False
    if not box.verify(f"{factor_id}:{code.strip()}", row.digest):
        return False
    claimed = session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None))
        .values(used_at=clock.now()),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(claimed, "rowcount", 0) == 1)


# --------------------------------------------------------------------- recovery codes
def new_recovery_codes(session: Session, box: SecretBox, user_id: str) -> list[str]:
    """Replace every recovery code of the user; the plain codes are shown once."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["-".join(secrets.token_hex(3) for _ in range(3)) for _ in range(RECOVERY_CODES)]
    now = clock.now()
    for code in codes:
        session.add(RecoveryCode(digest=box.digest(code), user_id=user_id, created_at=now))
    return codes


def use_recovery_code(session: Session, box: SecretBox, user_id: str, code: str) -> bool:
    normalised = code.strip().lower().replace(" ", "")
    claimed = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.digest == box.digest(normalised),
            RecoveryCode.user_id == user_id,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=clock.now()),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(claimed, "rowcount", 0) == 1)


def recovery_codes_left(session: Session, user_id: str) -> int:
    return len(
        list(
            session.scalars(
                select(RecoveryCode.digest).where(
                    RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
                )
            )
        )
    )


# ------------------------------------------------------------------ remembered browsers
def remember_browser(session: Session, box: SecretBox, user_id: str, days: int) -> str:
    value = random_token(32)
    now = clock.now()
    session.add(
        RememberedBrowser(
            digest=box.digest(value), user_id=user_id, created_at=now,
            expires_at=now + days * 86400,
        )
    )  # fmt: skip
    return value


def is_remembered(session: Session, box: SecretBox, user_id: str, value: str | None) -> bool:
    if not value or len(value) > 128:
        return False
    row = session.get(RememberedBrowser, box.digest(value))
    return row is not None and row.user_id == user_id and row.expires_at > clock.now()


def remove_factor(session: Session, user_id: str, factor_id: str) -> None:
    factor = session.get(Factor, factor_id)
    if factor is None or factor.user_id != user_id:
        raise MfaError("no such factor")
    session.delete(factor)
    # Forget remembered browsers: removing a factor is a security change.
    session.execute(delete(RememberedBrowser).where(RememberedBrowser.user_id == user_id))


def reset_user(session: Session, user_id: str) -> int:
    """Operator: remove every factor, recovery code and remembered browser of a user."""
    removed = len(factors(session, user_id, confirmed_only=False))
    for table in (Factor, RecoveryCode, RememberedBrowser, OneTimeCode):
        session.execute(delete(table).where(table.user_id == user_id))
    return removed
