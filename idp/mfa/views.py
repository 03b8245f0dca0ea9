"""The MFA page of a login: challenge an enrolled factor, or enrol one (TOTP) first.

Failures count with the password failures of attack protection (per identifier and IP), so
guessing codes runs into the same block as guessing passwords, and a blocked user is told the
same "wrong code" as anyone else.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.views import interaction_or_page, request_origin
from idp.identity.models import User
from idp.mfa import factors as registry
from idp.mfa import flow
from idp.mfa import service as mfa
from idp.oauth.authorize import error_page

bp = Blueprint("mfa", __name__)
WRONG = "That code is not right. Try again."


def _page(template: str, status: int = 200, **ctx: object) -> Response:
    resp = make_response(render_template(template, **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _mask(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"


@bp.route("/interaction/<uid>/mfa", methods=["GET", "POST"])
def step(uid: str) -> Response:
    row, page = interaction_or_page(uid)
    if row is None:
        assert page is not None
        return page
    state = (row.data or {}).get("mfa") or {}
    session_row = flows.current_session(db.session, request.cookies.get(cookies.session()))
    if (
        flow.STEP not in row.prompt.split()
        or session_row is None
        or session_row.sid != state.get("sid")
    ):
        return error_page("This sign-in cannot continue", "Go back to the application.", 400)
    user = db.session.get(User, session_row.user_id)
    if user is None:
        return error_page("This sign-in cannot continue", "Go back to the application.", 400)
    svc = services()
    factors = mfa.factors(db.session, user.id)
    action = request.form.get("action", "") if request.method == "POST" else ""
    # Enrolment only for a user without a factor; "continue" only after enrolling in this
    # interaction. Otherwise the password alone could add a factor at the step meant to stop it.
    if not factors or (action == "continue" and state.get("enrolled")):
        return _enrol(row, session_row, user, action)
    return _challenge(row, session_row, user, factors, action, svc.config)


def _challenge(row, session_row, user, factors, action, config) -> Response:  # type: ignore[no-untyped-def]
    """Offer every registered kind the user has (factors.py); verify the one submitted."""
    svc = services()
    ip = request_origin().ip or ""
    offered = registry.offers(db.session, user, factors)
    state = dict((row.data or {}).get("mfa") or {})
    remember_days = config["MFA_REMEMBER_BROWSER_DAYS"]
    if state.get("allow_remember_browser") is False:
        remember_days = 0
    view = {
        "uid": row.uid,
        "partials": [k.partial for k in offered],
        "email_hint": _mask(user.email),
        "state": state,
        "remember_days": remember_days,
        "error": None,
        "notice": None,
    }
    if not action:
        return _page("mfa_challenge.html", **view)
    preparing = next((k.prepare[action] for k in offered if action in k.prepare), None)
    if preparing is not None:
        # A blocked user gets nothing sent: no mail, text or push prompt to the owner (push
        # fatigue, SMS pumping) while someone is guessing at this step.
        if svc.shields.is_blocked(user.email, ip):
            return _page("mfa_challenge.html", 429,
                         **{**view, "error": "Too many attempts. Try again later."})  # fmt: skip
        notice = preparing(db.session, user, state)
        row.data = {**(row.data or {}), "mfa": state}
        db.session.commit()
        return _page("mfa_challenge.html", **{**view, "state": state, "notice": notice})
    kind = next((k for k in offered if k.kind == action), None)
    blocked = svc.shields.is_blocked(user.email, ip)
    passed = (
        kind is not None
        and not blocked
        and kind.verify(db.session, svc.box, user, factors, request.form, state)
    )
    if not passed:
        if not blocked:
            svc.shields.on_failure(user.email, ip)
        audit.record(db.session, events.MFA_FAILURE, f"Second factor failed ({action[:16]})",
                     request_origin(), user_id=user.id, client_id=row.client_id)  # fmt: skip
        db.session.commit()
        return _page("mfa_challenge.html", 401, **{**view, "error": WRONG})
    remember = bool(request.form.get("remember")) and bool(remember_days)
    return passed_step(row, session_row, user, action, remember)


def _enrol(row, session_row, user, action) -> Response:  # type: ignore[no-untyped-def]
    svc = services()
    target = f"/interaction/{row.uid}/mfa"
    state = (row.data or {}).get("mfa", {})
    if action == "continue" and state.get("enrolled"):
        # the kind enrolled in this login, whichever page's "continue" is posted (amr)
        return passed_step(row, session_row, user, state.get("kind", "totp"), remember=False)
    if action == "enroll_totp":
        factor_id = request.form.get("factor_id", "")[:40]
        pending = next(
            (f for f in mfa.factors(db.session, user.id, confirmed_only=False)
             if f.id == factor_id and f.kind == "totp"),
            None,
        )  # fmt: skip
        if pending is not None and mfa.verify_totp(
            db.session, svc.box, pending, request.form.get("code", "")[:16]
        ):
            codes = mfa.new_recovery_codes(db.session, svc.box, user.id)
            data = dict(row.data or {})
            data["mfa"] = {**data.get("mfa", {}), "enrolled": True, "kind": "totp"}
            row.data = data
            audit.record(db.session, events.MFA_ENROLLED, "Authenticator app enrolled",
                         request_origin(), user_id=user.id, client_id=row.client_id)  # fmt: skip
            db.session.commit()
            return _page("mfa_recovery_codes.html", codes=codes, action=target)
        svc.shields.on_failure(user.email, request_origin().ip or "")
        db.session.commit()
    enrolment = mfa.start_totp(db.session, svc.box, user.id, user.email, svc.config["BRAND_NAME"])
    db.session.commit()
    return _page(
        "mfa_enroll.html",
        200 if action != "enroll_totp" else 401,
        secret=enrolment.secret,
        uri=enrolment.uri,
        qr_svg=enrolment.qr_svg,
        factor_id=enrolment.factor_id,
        action=target,
        error=WRONG if action == "enroll_totp" else None,
    )


def passed_step(row, session_row, user, kind: str, remember: bool) -> Response:  # type: ignore[no-untyped-def]
    """The factor passed: record it in the session and go back to /authorize. Factor modules
    with their own routes (WebAuthn, push) finish through this too."""
    svc = services()
    svc.shields.on_success(user.email, request_origin().ip or "")
    flow.complete(row, session_row, kind)
    # S-SS-03: a new session id at step-up; the cookie the password login set stops working.
    session_cookie = random_token(32)
    session_row.id_hash = sha256_hex(session_cookie)
    audit.record(db.session, events.MFA_SUCCESS, f"Second factor passed ({kind})",
                 request_origin(), user_id=user.id, client_id=row.client_id)  # fmt: skip
    value = None
    days = svc.config["MFA_REMEMBER_BROWSER_DAYS"]
    if remember:
        value = mfa.remember_browser(db.session, svc.box, user.id, days)
    params = dict(row.params)
    db.session.commit()
    resp = redirect("/authorize?" + urlencode(params), code=303)
    cookies.put(resp, cookies.session(), session_cookie, session_row.expires_at - clock.now())
    if value:
        cookies.put(resp, flow.remember_cookie(), value, days * 86400)
    return resp
