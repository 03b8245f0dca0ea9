"""The phone factor: a one-time code sent by text message or voice call.

Delivery is not ours: the ``send-phone-message`` Actions chain hands the code to whatever
gateway the tenant bound (idp/actions/hooks.py). Without a bound action the factor is
unavailable, and the pages say so instead of pretending a code went out.

Numbers are E.164 (ITU-T E.164 §6: "+", a country code, at most 15 digits in all) and kept in
``Factor.data`` (public material, not a secret); codes use the one-time code table with the
email factor's lifetime and attempt limit (service.issue_code / verify_code). Sends are capped
per factor, because every text costs money and a code-sending loop is a known fraud
("SMS pumping").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.actions.hooks import send_phone_message
from idp.core import clock
from idp.core.crypto import SecretBox, random_token
from idp.i18n import N_, gettext
from idp.identity.models import User
from idp.mfa import service as mfa
from idp.mfa.models import Factor

KIND = "phone"
MESSAGE_TYPES = ("sms", "voice")
SENDS_PER_HOUR = 5
UNAVAILABLE = N_("Text messages and calls are not available right now.")
# E.164: a leading "+", a country code that does not start with 0, 15 digits at most. The
# shortest real numbers (small countries) have 8 digits with the country code.
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_SEPARATORS = re.compile(r"[\s().\-/]")


def normalise_number(raw: str) -> str | None:
    """``raw`` as E.164, or None. Spaces, dots, dashes and brackets people type are dropped;
    a leading "00" (the international prefix in most of the world) becomes "+"."""
    number = _SEPARATORS.sub("", raw.strip())[:32]
    if number.startswith("00"):
        number = "+" + number[2:]
    return number if _E164.match(number) else None


def mask(number: str) -> str:
    """Enough to recognise one's own phone, not enough to learn someone else's number."""
    return number[:3] + "•" * max(len(number) - 5, 0) + number[-2:]


def available(session: Session) -> bool:
    """Whether a send-phone-message action is bound (the factor needs one to work)."""
    from idp.extensions import services

    return services().actions.has_chain("send-phone-message", session)


def phone_factor(factors: list[Factor]) -> Factor | None:
    return next((f for f in factors if f.kind == KIND), None)


def start(session: Session, user_id: str, number: str, message_type: str) -> Factor:
    """A pending phone factor (an earlier pending one is replaced); it counts once confirmed.

    The replaced factor's send times carry over: starting again must not reset the cap."""
    earlier = session.scalars(
        select(Factor).where(
            Factor.user_id == user_id, Factor.kind == KIND, Factor.confirmed.is_(False)
        )
    )
    sends = [t for f in earlier for t in (f.data or {}).get("sends", [])]
    session.execute(
        delete(Factor).where(
            Factor.user_id == user_id, Factor.kind == KIND, Factor.confirmed.is_(False)
        )
    )
    factor = Factor(
        id="fac_" + random_token(12), user_id=user_id, kind=KIND,
        name=N_("Text message") if message_type == "sms" else N_("Voice call"), secret=None,
        data={"number": number, "message_type": message_type, "sends": sends},
        confirmed=False, created_at=clock.now(),
    )  # fmt: skip
    session.add(factor)
    session.flush()
    return factor


def pending(session: Session, user_id: str, factor_id: str) -> Factor | None:
    return session.scalar(
        select(Factor).where(
            Factor.id == factor_id,
            Factor.user_id == user_id,
            Factor.kind == KIND,
            Factor.confirmed.is_(False),
        )
    )


def send(
    session: Session, box: SecretBox, user: User, factor: Factor, message_type: str | None = None
) -> str | None:
    """Issue a code and hand it to the chain. None once sent, else what to tell the user."""
    now = clock.now()
    sends = [t for t in (factor.data or {}).get("sends", []) if t > now - 3600]
    if len(sends) >= SENDS_PER_HOUR:
        return N_("Too many codes were sent to this phone. Try again later.")
    if not available(session):
        return UNAVAILABLE
    kind = message_type if message_type in MESSAGE_TYPES else factor.data.get("message_type")
    code = mfa.issue_code(session, box, user.id, factor.id)
    # a new dict: SQLAlchemy sees a JSON column change only on assignment
    factor.data = {**factor.data, "sends": [*sends, now]}
    text = gettext("Your sign-in code is {code}. It expires in 5 minutes.", code=code)
    # send_phone_message commits before running the chain, so the code is stored first
    outcome = send_phone_message(user, None, factor.data["number"], text, code,
                                 message_type=kind or "sms")  # fmt: skip
    delivered = outcome.ran and outcome.denied is None
    return None if delivered else N_("We could not send the code. Try again.")


def confirm(session: Session, box: SecretBox, user_id: str, factor: Factor, code: str) -> bool:
    if not mfa.verify_code(session, box, user_id, factor.id, code[:16]):
        return False
    factor.confirmed = True
    factor.last_used_at = clock.now()
    return True


# ------------------------------------------------------ the factor kind (factors.py)
def offered(session: Session, user: User, factors: list[Factor]) -> bool:
    """Offered to whoever enrolled a phone: the partial says when it cannot be used now. With
    several, the partial lets the user pick one (masked numbers, their labels): the choices
    are left in ``g`` for it, computed here with the offer."""
    from flask import g

    mine = [f for f in factors if f.kind == KIND]
    g.mfa_phone_choices = [(f.id, f.label, mask(f.data.get("number", ""))) for f in mine]
    return bool(mine)


def chosen(factors: list[Factor], factor_id: str | None) -> Factor | None:
    """The phone the user picked (one of theirs), else their first."""
    mine = [f for f in factors if f.kind == KIND]
    return next((f for f in mine if f.id == factor_id), mine[0] if mine else None)


def verify(s: Session, box: SecretBox, user: User, factors: list[Factor],
           form: Mapping[str, str], state: dict[str, Any]) -> bool:  # fmt: skip
    """The code sent to the phone the last send went to (``state["phone_id"]``)."""
    factor = chosen(factors, state.get("phone_id"))
    if factor is None or not mfa.verify_code(s, box, user.id, factor.id, form.get("code", "")[:16]):
        return False
    factor.last_used_at = clock.now()
    return True


def _prepare(message_type: str) -> Any:
    def prepare(session: Session, user: User, state: dict[str, Any]) -> str:
        from flask import request

        from idp.extensions import services

        factor = chosen(mfa.factors(session, user.id), request.form.get("phone", "")[:40])
        if factor is None:
            return UNAVAILABLE
        problem = send(session, services().box, user, factor, message_type)
        if problem is not None:
            return problem
        state["sms_sent"], state["phone_id"] = True, factor.id
        verb = "texted" if message_type == "sms" else "are calling"
        return f"We {verb} {mask(factor.data['number'])} with a code."

    return prepare


send_sms = _prepare("sms")
send_voice = _prepare("voice")
PREPARE = {"send_sms": send_sms, "send_voice": send_voice}
