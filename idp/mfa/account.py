"""A user's own second factors (``/account/mfa``): see them, remove one, add an authenticator
app, replace the recovery codes.

Every change is a security change, so it needs a recent login: the session's ``auth_time``
(OIDC Core §2) within ``REAUTH_SECONDS``. After that the same form asks for the password
again, checked through the login shields (as changing the password does), so a stolen or
left-open session alone cannot strip the second step from an account. Every form is a POST
with the CSRF token; GET only shows.
"""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request
from sqlalchemy import update
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.models import LoginSession
from idp.flows.views import request_origin
from idp.i18n import N_
from idp.identity.models import User
from idp.mfa import describe, phone
from idp.mfa import factors as registry
from idp.mfa import service as mfa
from idp.mfa.models import Factor
from idp.tenant.settings import setting

bp = Blueprint("mfa_account", __name__)
REAUTH_SECONDS = 600
HOME = "/account/mfa"
NEED_PASSWORD = N_("Type your password to confirm this change.")
WRONG_PASSWORD = N_("The password is wrong.")
AT_CAP = N_("You have as many of these as allowed. Remove one before adding another.")
GONE = N_("That factor no longer exists.")


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _signed_in() -> tuple[LoginSession, User] | None:
    current = flows.current_session(db.session, request.cookies.get(cookies.session()))
    user = db.session.get(User, current.user_id) if current else None
    if current is None or user is None:
        return None
    # A user with a second factor manages factors only from a session that passed it: the
    # session a password login makes while it waits at its MFA step must not remove or add one.
    has_factor = any(f.kind != "email" for f in mfa.factors(db.session, user.id))
    if has_factor and "mfa" not in (current.amr or []):
        return None
    return current, user


def _fresh(current: LoginSession) -> bool:
    return clock.now() - current.auth_time <= REAUTH_SECONDS


def _home(current: LoginSession, user: User, status: int = 200, **ctx: object) -> Response:
    # the email factor is implicit (any verified address): nothing to remove or add here
    rows = describe.rows(mfa.factors(db.session, user.id))
    view = {"rows": rows, "left": mfa.recovery_codes_left(db.session, user.id),
            "fresh": _fresh(current), "error": None, "notice": None,
            "phone_ready": phone.available(db.session), **ctx}  # fmt: skip
    return _no_store(make_response(render_template("account_mfa.html", **view), status))


def upgraded(current: LoginSession, kind: str, resp: Response) -> Response:
    """A user's first factor, added here, was just proven (its code, its key, its device): the
    session is multi-factor from now on, as after enrolling at a login (RFC 8176 ``amr``), and
    goes on under a new cookie (S-SS-03), moved by a conditional UPDATE as a login moves it."""
    if "mfa" in (current.amr or []):
        return resp
    amr = [*(current.amr or [])]
    amr += [v for v in (mfa.AMR.get(kind, "otp"), "mfa") if v not in amr]
    value = random_token(32)
    moved = db.session.execute(
        update(LoginSession)
        .where(LoginSession.id_hash == current.id_hash, LoginSession.ended_at.is_(None))
        .values(id_hash=sha256_hex(value), amr=amr),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    if getattr(moved, "rowcount", 0) == 1:
        cookies.put(resp, cookies.session(), value, current.expires_at - clock.now())
    return resp


def _confirmed(current: LoginSession, user: User) -> str | None:
    """None when the change may go ahead, else why not (a stale login and no good password)."""
    if _fresh(current):
        return None
    password = request.form.get("password", "")[:1100]
    if not password:
        return NEED_PASSWORD
    svc = services()
    ip = request_origin().ip or ""
    blocked = svc.shields.is_blocked(user.email, ip)
    correct = svc.passwords.verify(None if blocked else user.password_hash, password)
    if blocked or not correct:
        if not blocked:
            svc.shields.on_failure(user.email, ip)
            db.session.commit()
        return WRONG_PASSWORD
    return None


def _stepped_up() -> tuple[LoginSession, User] | Response:
    """The signed-in user for a change (:func:`_confirmed`: a recent login or the password),
    or the answer: back to the page when signed out, 403 with the page saying why."""
    found = _signed_in()
    if found is None:
        return redirect(HOME, code=303)
    problem = _confirmed(*found)
    if problem is not None:
        return _home(*found, 403, error=problem)
    return found


def _own(user: User, factor_id: str) -> Factor | None:
    """One of this user's confirmed factors that the page lists (not email, not a companion)."""
    factor = db.session.get(Factor, factor_id[:40])
    if factor is None or factor.user_id != user.id or not factor.confirmed:
        return None
    return None if factor.kind == "email" or describe.companion(factor) else factor


def _own_confirmed(factor_id: str) -> tuple[LoginSession, User, Factor] | Response:
    """:func:`_stepped_up`, then the user's own listed factor ``factor_id`` (404 if none)."""
    found = _stepped_up()
    if isinstance(found, Response):
        return found
    factor = _own(found[1], factor_id)
    if factor is None:
        return _home(*found, 404, error=GONE)
    return (*found, factor)


@bp.route(HOME, methods=["GET", "POST"])
def home() -> Response:
    """POST only comes back from the recovery codes page ("I saved them, continue")."""
    found = _signed_in()
    if found is None:
        return _no_store(make_response(render_template("account_signed_out.html"), 401))
    if request.method == "POST":
        return redirect(HOME, code=303)
    return _home(*found)


@bp.route(f"{HOME}/factors/<factor_id>/remove", methods=["POST"])
def remove(factor_id: str) -> Response:
    found = _own_confirmed(factor_id)
    if isinstance(found, Response):
        return found
    current, user, factor = found
    kind = factor.kind
    device = (factor.data or {}).get("device_id") if kind == "push" else None
    mfa.remove_factor(db.session, user.id, factor.id)
    for other in mfa.factors(db.session, user.id):  # the push device's own code goes with it
        if device and describe.companion(other) and other.data.get("device_id") == device:
            mfa.remove_factor(db.session, user.id, other.id)
    audit.record(db.session, events.MFA_REMOVED, "Factor removed by its user", request_origin(),
                 user_id=user.id, details={"kind": kind, "factor_id": factor.id})  # fmt: skip
    db.session.commit()
    return _home(current, user, notice=N_("The factor was removed."))


@bp.route(f"{HOME}/factors/<factor_id>/rename", methods=["POST"])
def rename(factor_id: str) -> Response:
    """The user's own name for a factor (shown here and when the login offers a choice)."""
    found = _own_confirmed(factor_id)
    if isinstance(found, Response):
        return found
    current, user, factor = found
    factor.label = describe.clean_label(request.form.get("label", "")[:200])
    details: dict[str, object] = {"kind": factor.kind, "factor_id": factor.id}
    audit.record(db.session, events.MFA_RENAMED, "Factor renamed by its user", request_origin(),
                 user_id=user.id, details=details)  # fmt: skip
    db.session.commit()
    return _home(current, user, notice=N_("The factor was renamed."))


@bp.route(f"{HOME}/recovery-codes", methods=["POST"])
def recovery_codes() -> Response:
    found = _stepped_up()
    if isinstance(found, Response):
        return found
    _current, user = found
    codes = mfa.new_recovery_codes(db.session, services().box, user.id)
    audit.record(db.session, events.MFA_ENROLLED, "Recovery codes replaced by their user",
                 request_origin(), user_id=user.id, details={"kind": "recovery"})  # fmt: skip
    db.session.commit()
    page = render_template("mfa_recovery_codes.html", codes=codes, action=HOME)
    return _no_store(make_response(page))


@bp.route(f"{HOME}/totp", methods=["POST"])
def add_totp() -> Response:
    """Start (a recent login, or the password) then confirm, with the login's enrolment page.
    Confirming needs no second check: only a confirmed start made the pending factor."""
    found = _signed_in()
    if found is None:
        return redirect(HOME, code=303)
    current, user = found
    if not registry.enabled("totp"):  # the tenant switched authenticator apps off
        return _home(current, user, 400, error="Authenticator apps are not available.")
    if describe.at_cap(db.session, user.id, "totp"):
        return _home(current, user, 409, error=AT_CAP)
    svc = services()
    target = f"{HOME}/totp"
    if request.form.get("action") == "enroll_totp":
        factor_id = request.form.get("factor_id", "")[:40]
        pending = next(
            (f for f in mfa.factors(db.session, user.id, confirmed_only=False)
             if f.id == factor_id and f.kind == "totp" and not f.confirmed),
            None,
        )  # fmt: skip
        code = request.form.get("code", "")[:16]
        ip = request_origin().ip or ""
        blocked = svc.shields.is_blocked(user.email, ip)
        if (
            pending is not None
            and not blocked
            and mfa.verify_totp(db.session, svc.box, pending, code)
        ):
            first = mfa.recovery_codes_left(db.session, user.id) == 0
            codes = mfa.new_recovery_codes(db.session, svc.box, user.id) if first else []
            audit.record(db.session, events.MFA_ENROLLED, "Authenticator app added by its user",
                         request_origin(), user_id=user.id, details={"kind": "totp"})  # fmt: skip
            db.session.commit()
            if codes:
                page = render_template("mfa_recovery_codes.html", codes=codes, action=HOME)
                return upgraded(current, "totp", _no_store(make_response(page)))
            return _home(current, user, notice="Your authenticator app was added.")
        if not blocked:
            svc.shields.on_failure(user.email, ip)
        db.session.commit()
        if pending is None:
            return _home(current, user, 400, error="Start again: that setup expired.")
        error = "That code is not right. Try again."
    else:
        problem = _confirmed(current, user)
        if problem is not None:
            return _home(current, user, 403, error=problem)
        error = None
    enrolment = mfa.start_totp(db.session, svc.box, user.id, user.email, setting("BRAND_NAME"))
    db.session.commit()
    page = render_template(
        "mfa_enroll.html", secret=enrolment.secret, uri=enrolment.uri, qr_svg=enrolment.qr_svg,
        factor_id=enrolment.factor_id, action=target, error=error,
    )  # fmt: skip
    return _no_store(make_response(page, 401 if error else 200))
