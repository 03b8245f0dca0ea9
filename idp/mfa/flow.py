"""The MFA prompt of a login: the decision (policy.py, taken once per interaction by the
interaction policy) and the record of a passed factor in the session (``amr`` per RFC 8176,
plus ``mfa``)."""

from __future__ import annotations

from typing import Any

from flask import request

from idp.extensions import db, services
from idp.flows import cookies
from idp.flows.models import LoginSession
from idp.flows.state import LoginState
from idp.mfa import service as mfa
from idp.mfa.policy import MfaContext, mfa_reasons

REMEMBER_COOKIE = "idp_mfa_remember"
STEP = "mfa"  # the interaction policy's prompt name


def remember_cookie() -> str:
    return cookies._name(REMEMBER_COOKIE)


def session_has_mfa(session_row: LoginSession) -> bool:
    return "mfa" in (session_row.amr or [])


def needed(user_id: str, client: Any, params: dict[str, str]) -> list[str]:
    """The MFA checks that fire for this login (the session has no MFA yet)."""
    svc = services()
    policy = getattr(client, "mfa_policy", None) or svc.config["MFA_POLICY"]
    ctx = MfaContext(
        policy=policy,
        acr_values=frozenset(params.get("acr_values", "").split()),
        has_factor=mfa.has_factor(db.session, user_id) if policy == "adaptive" else False,
        session_has_mfa=False,
        remembered=mfa.is_remembered(
            db.session, svc.box, user_id, request.cookies.get(remember_cookie())
        ),
    )
    return mfa_reasons(ctx)


def passed_amr(session_row: LoginSession, kind: str) -> list[str]:
    """The session's methods once the factor passed (RFC 8176 values, and ``mfa``)."""
    amr = list(session_row.amr or [])
    for value in (mfa.AMR.get(kind, "otp"), "mfa"):
        if value not in amr:
            amr.append(value)
    return amr


def settle(state: LoginState) -> None:
    """The MFA prompt of this login is settled."""
    state.mfa_passed = True
    state.ceremony = {}
