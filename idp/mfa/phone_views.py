"""Phone enrolment inside a login: the alternative to an authenticator app on the MFA page.

Offered only to a user with no factor yet (as the TOTP enrolment of views.py is): someone
who already has one proves it on the MFA page, and must not get past it by enrolling a new one.
Failed confirmations count with the brute-force shield, like every other code.
"""

from __future__ import annotations

from flask import Blueprint, make_response, render_template, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.extensions import db, services
from idp.flows.pages import error_page
from idp.flows.views import request_origin
from idp.i18n import N_, gettext
from idp.identity.models import User
from idp.mfa import factors as registry
from idp.mfa import phone
from idp.mfa import service as mfa
from idp.mfa.views import WRONG, enrolled, keep, mfa_step, passed_step

bp = Blueprint("mfa_phone", __name__)
BAD_NUMBER = N_("Enter the number with its country code, for example +33 6 12 34 56 78.")


@bp.app_context_processor
def _phone_available() -> dict[str, object]:
    """``phone_available()`` for the templates: asked only by a page that shows the factor."""
    return {"phone_available": lambda: phone.available(db.session)}


def _page(status: int = 200, /, **ctx: object) -> Response:
    ctx = {"number": "", "message_type": "sms", "factor_id": None, "error": None,
           "notice": None, **ctx}  # fmt: skip
    resp = make_response(render_template("mfa_phone.html", **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/interaction/<uid>/mfa/phone", methods=["GET", "POST"])
def enrol(uid: str) -> Response:
    step, page = mfa_step(uid)
    if step is None:
        assert page is not None
        return page
    user, decided = step.user, step.state.mfa
    assert user is not None and decided is not None
    svc = services()
    action = request.form.get("action", "") if request.method == "POST" else ""
    mfa_page = f"/interaction/{uid}/mfa"
    if action == "continue" and decided.enrolled:
        # the kind enrolled in this login, whichever page's "continue" is posted (amr)
        return passed_step(step, decided.kind or phone.KIND, remember=False)
    if mfa.factors(db.session, user.id):
        return error_page("This sign-in cannot continue", "Go back to the application.", 400)
    common = {"action": request.path, "back": mfa_page}
    if not phone.available(db.session) or not registry.enabled(phone.KIND):
        return _page(**common, unavailable=True)
    if action == "send":
        return _send(user, common)
    if action == "confirm":
        factor = phone.pending(db.session, user.id, request.form.get("factor_id", "")[:40])
        ip = request_origin().ip or ""
        blocked = svc.shields.is_blocked(user.email, ip)
        code = request.form.get("code", "")
        if (
            factor is not None
            and not blocked
            and phone.confirm(db.session, svc.box, user.id, factor, code)
        ):
            codes = mfa.new_recovery_codes(db.session, svc.box, user.id)
            enrolled(step, phone.KIND)
            audit.record(db.session, events.MFA_ENROLLED, "Phone enrolled", request_origin(),
                         user_id=user.id, client_id=step.request.client_id)  # fmt: skip
            keep(step)
            resp = make_response(
                render_template("mfa_recovery_codes.html", codes=codes, action=request.path)
            )
            resp.headers["Cache-Control"] = "no-store"
            return resp
        if not blocked:
            svc.shields.on_failure(user.email, ip)
        db.session.commit()
        number = factor.data["number"] if factor is not None else ""
        return _page(401, **common, number=number, error=WRONG,
                     factor_id=factor.id if factor is not None else None)  # fmt: skip
    return _page(**common)


def _send(user: User, common: dict[str, str]) -> Response:
    raw = request.form.get("number", "")[:64]
    message_type = request.form.get("message_type", "sms")
    if message_type not in phone.MESSAGE_TYPES:
        message_type = "sms"
    number = phone.normalise_number(raw)
    if number is None:
        return _page(400, **common, number=raw, message_type=message_type, error=BAD_NUMBER)
    factor = phone.start(db.session, user.id, number, message_type)
    problem = phone.send(db.session, services().box, user, factor)
    db.session.commit()
    if problem is not None:
        status = 429 if problem.startswith("Too many") else 503
        return _page(status, **common, number=number, message_type=message_type, error=problem)
    if message_type == "sms":
        notice = gettext("We texted {number} with a code.", number=phone.mask(number))
    else:
        notice = gettext("We are calling {number} with a code.", number=phone.mask(number))
    return _page(**common, number=number, message_type=message_type, factor_id=factor.id,
                 notice=notice)  # fmt: skip
