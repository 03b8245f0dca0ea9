"""The MFA page of a login: challenge an enrolled factor, or enrol one (TOTP) first.

Failures count with the password failures of attack protection (per identifier and IP), so
guessing codes runs into the same block as guessing passwords, and a blocked user is told the
same "wrong code" as anyone else.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, make_response, render_template, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.extensions import db, services
from idp.flows import cookies, pipeline
from idp.flows import service as sessions
from idp.flows.pages import error_page
from idp.flows.state import save
from idp.flows.step import Step
from idp.flows.views import request_origin
from idp.i18n import N_
from idp.mfa import factors as registry
from idp.mfa import flow
from idp.mfa import service as mfa
from idp.tenant.settings import setting

bp = Blueprint("mfa", __name__)
WRONG = N_("That code is not right. Try again.")


@bp.app_context_processor
def _factor_enabled() -> dict[str, object]:
    """``factor_enabled(kind)`` for the templates: the enrolment pages offer only those."""
    return {"factor_enabled": registry.enabled}


def _page(template: str, status: int = 200, **ctx: object) -> Response:
    resp = make_response(render_template(template, **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _mask(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"


def mfa_step(uid: str) -> tuple[Step | None, Response | None]:
    """The login waiting at its MFA prompt, for this browser and its session; an error page
    otherwise. Every MFA route (TOTP, WebAuthn, push, phone) goes through this gate."""
    step, page = pipeline.open_step(uid)
    if step is None:
        return None, page
    if step.state.prompt != flow.STEP or step.state.mfa is None or not step.bound:
        return None, error_page("This sign-in cannot continue", "Go back to the application.", 400)
    return step, None


@bp.route("/interaction/<uid>/mfa", methods=["GET", "POST"])
def step_page(uid: str) -> Response:
    step, page = mfa_step(uid)
    if step is None:
        assert page is not None
        return page
    assert step.user is not None and step.state.mfa is not None
    factors = mfa.factors(db.session, step.user.id)
    action = request.form.get("action", "") if request.method == "POST" else ""
    # Enrolment only for a user without a factor; "continue" only after enrolling in this
    # interaction. Otherwise the password alone could add a factor at the step meant to stop it.
    if not factors or (action == "continue" and step.state.mfa.enrolled):
        return _enrol(step, action)
    return _challenge(step, factors, action)


def _challenge(step: Step, factors: list[Any], action: str) -> Response:
    """Offer every registered kind the user has (factors.py); verify the one submitted."""
    svc = services()
    user, decided = step.user, step.state.mfa
    assert user is not None and decided is not None
    ip = request_origin().ip or ""
    factors = usable(step, factors)
    offered = registry.offers(db.session, user, factors)
    ceremony = step.state.ceremony
    remember_days = svc.config["MFA_REMEMBER_BROWSER_DAYS"]
    if not decided.allow_remember_browser:
        remember_days = 0
    view = {
        "uid": uid_of(step),
        "partials": [k.partial for k in offered],
        "email_hint": _mask(user.email),
        "state": ceremony,
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
        notice = preparing(db.session, user, ceremony)
        keep(step)
        return _page("mfa_challenge.html", **{**view, "state": ceremony, "notice": notice})
    kind = next((k for k in offered if k.kind == action), None)
    blocked = svc.shields.is_blocked(user.email, ip)
    passed = (
        kind is not None
        and not blocked
        and kind.verify(db.session, svc.box, user, factors, request.form, ceremony)
    )
    if not passed:
        if not blocked:
            svc.shields.on_failure(user.email, ip)
        audit.record(db.session, events.MFA_FAILURE, f"Second factor failed ({action[:16]})",
                     request_origin(), user_id=user.id, client_id=step.request.client_id,
                     details={"factor": action[:16]})  # fmt: skip
        keep(step)
        return _page("mfa_challenge.html", 401, **{**view, "error": WRONG})
    remember = bool(request.form.get("remember")) and bool(remember_days)
    return passed_step(step, action, remember)


def _enrol(step: Step, action: str, error: str | None = None) -> Response:
    """The enrolment page; ``error`` is why the last attempt (another route's) was refused."""
    svc = services()
    user, decided = step.user, step.state.mfa
    assert user is not None and decided is not None
    target = f"/interaction/{uid_of(step)}/mfa"
    if action == "continue" and decided.enrolled:
        # the kind enrolled in this login, whichever page's "continue" is posted (amr)
        return passed_step(step, decided.kind or "totp", remember=False)
    if not registry.enabled("totp"):  # switched off: only the other kinds are offered
        return _page("mfa_enroll.html", 200 if not action else 400, action=target, secret=None,
                     error=error)  # fmt: skip
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
            enrolled(step, "totp")
            audit.record(db.session, events.MFA_ENROLLED, "Authenticator app enrolled",
                         request_origin(), user_id=user.id,
                         client_id=step.request.client_id)  # fmt: skip
            keep(step)
            return _page("mfa_recovery_codes.html", codes=codes, action=target)
        svc.shields.on_failure(user.email, request_origin().ip or "")
        db.session.commit()
    enrolment = mfa.start_totp(db.session, svc.box, user.id, user.email, setting("BRAND_NAME"))
    db.session.commit()
    return _page(
        "mfa_enroll.html",
        200 if action != "enroll_totp" else 401,
        secret=enrolment.secret,
        uri=enrolment.uri,
        qr_svg=enrolment.qr_svg,
        factor_id=enrolment.factor_id,
        action=target,
        error=WRONG if action == "enroll_totp" else error,
    )


def usable(step: Step, factors: list[Any]) -> list[Any]:
    """The factors this MFA step may take: all but the credential a passkey login without
    user verification already used (the same key twice is one factor, not two)."""
    first = step.state.first_credential
    return [f for f in factors if f.id != first] if first else factors


def uid_of(step: Step) -> str:
    assert step.row is not None
    return step.row.uid


def keep(step: Step) -> None:
    """Save the interaction's state (the ceremony changed) and commit this request's work."""
    assert step.row is not None
    save(step.row, step.state)
    db.session.commit()


def enrolled(step: Step, kind: str) -> None:
    """A factor of ``kind`` was enrolled in this login: "continue" may now finish the step."""
    assert step.state.mfa is not None
    step.state.mfa.enrolled, step.state.mfa.kind = True, kind


def passed_step(step: Step, kind: str, remember: bool) -> Response:
    """The factor passed: record it in the session and go on with the login. Factor modules
    with their own routes (WebAuthn, push, phone) finish through this too."""
    svc = services()
    session_row, user = step.session, step.user
    if not step.bound or session_row is None or user is None:  # checked by mfa_step; again
        return error_page("This sign-in cannot continue", "Go back to the application.", 400)
    svc.shields.on_success(user.email, request_origin().ip or "")
    # S-SS-03: a new session id at step-up; the cookie the password login set stops working.
    session_cookie = random_token(32)
    moved = sessions.rekey(db.session, session_row, sha256_hex(session_cookie),
                           amr=flow.passed_amr(session_row, kind))  # fmt: skip
    if moved is None:  # another tab finished this step (or a logout ended the session) first
        return error_page("This sign-in cannot continue",
                          "It was finished or ended in another window. Go back to the "
                          "application.", 409)  # fmt: skip
    step.session = session_row = moved
    flow.settle(step.state)
    audit.record(db.session, events.MFA_SUCCESS, f"Second factor passed ({kind})",
                 request_origin(), user_id=user.id, client_id=step.request.client_id,
                 details={"factor": kind})  # fmt: skip
    step.set_cookies.append(
        (cookies.session(), session_cookie, session_row.expires_at - clock.now())
    )
    if remember:
        days = svc.config["MFA_REMEMBER_BROWSER_DAYS"]
        value = mfa.remember_browser(db.session, svc.box, user.id, days)
        step.set_cookies.append((flow.remember_cookie(), value, days * 86400))
    return pipeline.advance(step)
