"""The MFA step of a login: decide (policy.py), start the ``mfa`` interaction, and finish it
by recording the factor in the session (``amr`` per RFC 8176, plus ``mfa``)."""

from __future__ import annotations

from typing import Any

from flask import redirect, request
from werkzeug.wrappers import Response

from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.models import Interaction, LoginSession
from idp.mfa import service as mfa
from idp.mfa.policy import MfaContext, mfa_reasons

REMEMBER_COOKIE = "idp_mfa_remember"
STEP = "mfa"  # interaction prompt tag


def remember_cookie() -> str:
    return cookies._name(REMEMBER_COOKIE)


def session_has_mfa(session_row: LoginSession) -> bool:
    return "mfa" in (session_row.amr or [])


def needed(
    user_id: str,
    client: Any,
    params: dict[str, str],
    session_row: LoginSession,
    action_requested: bool = False,
) -> list[str]:
    svc = services()
    policy = getattr(client, "mfa_policy", None) or svc.config["MFA_POLICY"]
    ctx = MfaContext(
        policy=policy,
        acr_values=frozenset(params.get("acr_values", "").split()),
        has_factor=mfa.has_factor(db.session, user_id) if policy == "adaptive" else False,
        session_has_mfa=session_has_mfa(session_row),
        remembered=mfa.is_remembered(
            db.session, svc.box, user_id, request.cookies.get(remember_cookie())
        ),
        action_requested=action_requested,
    )
    return mfa_reasons(ctx)


def start(
    client_id: str,
    params: dict[str, str],
    done_tags: set[str],
    user_id: str,
    sid: str,
    data: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> Response:
    """Persist the request and send the browser to the MFA page."""
    svc = services()
    tags = " ".join(sorted({STEP} | (done_tags & {"login_done", "consent_done"})))
    browser_secret, row = flows.create_interaction(
        db.session, client_id, params, tags, svc.config["INTERACTION_TTL"]
    )
    row.data = {**(data or {}), "mfa": {"user_id": user_id, "sid": sid, **(options or {})}}
    db.session.commit()
    resp = redirect(f"/interaction/{row.uid}/mfa", code=303)
    cookies.put(resp, cookies.interaction(), browser_secret, svc.config["INTERACTION_TTL"])
    resp.headers["Cache-Control"] = "no-store"
    return resp


def complete(row: Interaction, session_row: LoginSession, kind: str) -> None:
    """The factor passed: the session now carries it, and the interaction is done."""
    amr = list(session_row.amr or [])
    for value in (mfa.AMR.get(kind, "otp"), "mfa"):
        if value not in amr:
            amr.append(value)
    session_row.amr = amr
    # prompt is at most 32 characters: "mfa" becomes "mfa_ok" rather than gaining a tag
    row.prompt = " ".join("mfa_ok" if t == STEP else t for t in row.prompt.split())
    row.completed_at = session_row.auth_time  # keeps "login_done" semantics unchanged
    data = dict(row.data or {})
    data.pop("mfa", None)
    row.data = data
