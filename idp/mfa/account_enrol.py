"""Adding a push device, a passkey or security key, or a phone from ``/account/mfa``.

Each starts as the authenticator app does there (idp.mfa.account): a POST that passes the
step-up (a login within ``REAUTH_SECONDS``, else the password) and the per-kind cap, and makes
something pending that only this user can finish: a push enrolment ticket, an unconfirmed
WebAuthn factor holding its registration challenge, an unconfirmed phone factor. Finishing
needs no second password, only that pending thing, younger than ``PENDING_SECONDS``; the cap is
checked again when it is confirmed. The WebAuthn ceremony (WebAuthn §7.1) runs in
idp/static/webauthn.js like the login's; everything else works without JavaScript.
"""

from __future__ import annotations

import json
from typing import Any

import segno
from flask import Blueprint, jsonify, make_response, render_template, request
from sqlalchemy import delete
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.core import clock
from idp.core.crypto import random_token
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.models import LoginSession
from idp.flows.views import request_origin
from idp.i18n import N_, gettext
from idp.identity.models import User
from idp.mfa import describe, phone, push, webpush
from idp.mfa import factors as registry
from idp.mfa import service as mfa
from idp.mfa import webauthn as wa
from idp.mfa.account import AT_CAP, HOME, _confirmed, _home, _no_store, _signed_in, upgraded
from idp.mfa.models import Factor
from idp.mfa.push_models import PushTicket
from idp.tenant.settings import setting

bp = Blueprint("mfa_account_enrol", __name__)
PENDING_SECONDS = 600
UNAVAILABLE = N_("This kind of second step is not available.")
EXPIRED = N_("Start again: that setup expired.")
KEY_REFUSED = N_("That security key or passkey was not accepted. Try again.")
BACK = N_("Back to your second step")
BAD_NUMBER = N_("Enter the number with its country code, for example +33 6 12 34 56 78.")


def _page(template: str, status: int = 200, **ctx: object) -> Response:
    return _no_store(make_response(render_template(template, **ctx), status))


def _start(kind: str) -> tuple[LoginSession, User, Response | None] | Response:
    """The checks every start makes: signed in, the kind on, the step-up, under the cap."""
    found = _signed_in()
    if found is None:
        return _page("account_signed_out.html", 401)
    current, user = found
    if not registry.enabled(kind):
        return current, user, _home(current, user, 400, error=UNAVAILABLE)
    problem = _confirmed(current, user)
    if problem is not None:
        return current, user, _home(current, user, 403, error=problem)
    if describe.at_cap(db.session, user.id, kind):
        return current, user, _home(current, user, 409, error=AT_CAP)
    return current, user, None


def _finished(current: LoginSession, user: User, factor: Factor, what: str) -> Response:
    """Record the new factor; a user's first factor comes with recovery codes (once)."""
    details: dict[str, object] = {"kind": factor.kind, "factor_id": factor.id}
    audit.record(db.session, events.MFA_ENROLLED, f"{what} added by its user", request_origin(),
                 user_id=user.id, details=details)  # fmt: skip
    first = mfa.recovery_codes_left(db.session, user.id) == 0
    codes = mfa.new_recovery_codes(db.session, services().box, user.id) if first else []
    db.session.commit()
    if codes:
        page = _page("mfa_recovery_codes.html", codes=codes, action=HOME)
        return upgraded(current, factor.kind, page)
    return _home(current, user, notice=N_("Your new second step was added."))


def _pending(user: User, factor_id: str, kind: str) -> Factor | None:
    factor = db.session.get(Factor, factor_id[:40])
    if factor is None or factor.user_id != user.id or factor.kind != kind or factor.confirmed:
        return None
    return factor if factor.created_at > clock.now() - PENDING_SECONDS else None


# ------------------------------------------------------------------------------ push
@bp.route(f"{HOME}/push", methods=["POST"])
def add_push() -> Response:
    """A ticket as a QR code and a link, as the login's push enrolment shows; "check" looks
    whether a device used it (the device API records its own enrolment)."""
    svc = services()
    if request.form.get("action") == "check":
        ticket = request.form.get("ticket", "")[:64]
        row = db.session.get(PushTicket, svc.box.digest(ticket)) if ticket else None
        found = _signed_in() or _first_device(row)
        if found is None:
            return _page("account_signed_out.html", 401)
        current, user = found
        if row is None or row.user_id != user.id:
            return _home(current, user, 400, error=EXPIRED)
        device = row.device_id
        if device is None:
            return _push_page(ticket, waiting=True)
        mine = [f for f in mfa.factors(db.session, user.id) if f.kind == "push"]
        factor = next((f for f in mine if f.data.get("device_id") == device), None)
        if factor is None:  # removed meanwhile
            return _home(current, user, 400, error=EXPIRED)
        first = mfa.recovery_codes_left(db.session, user.id) == 0
        codes = mfa.new_recovery_codes(db.session, svc.box, user.id) if first else []
        db.session.commit()
        if codes:
            page = _page("mfa_recovery_codes.html", codes=codes, action=HOME)
            return upgraded(current, "push", page)
        return _home(current, user, notice=N_("Your new second step was added."))
    started = _start("push")
    if isinstance(started, Response):
        return started
    _current, user, refused = started
    if refused is not None:
        return refused
    ticket, _uri = push.issue_ticket(db.session, svc.box, user.id, svc.config["ISSUER"])
    db.session.commit()
    return _push_page(ticket, waiting=False)


def _first_device(row: PushTicket | None) -> tuple[LoginSession, User] | None:
    """The session that issued ``row`` when the device it enrolled is the user's only factor:
    that session had no second factor to pass (``_signed_in`` asks for one now that a device
    exists), and only it holds the ticket's raw value."""
    current = flows.current_session(db.session, request.cookies.get(cookies.session()))
    if row is None or row.device_id is None or current is None or current.user_id != row.user_id:
        return None
    user = db.session.get(User, current.user_id)
    factors = [f for f in mfa.factors(db.session, current.user_id) if f.kind != "email"]
    only = all((f.data or {}).get("device_id") == row.device_id for f in factors)
    return (current, user) if user is not None and only else None


def _push_page(ticket: str, waiting: bool) -> Response:
    uri = push.ticket_uri(services().config["ISSUER"], ticket)
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, title=gettext("QR code of the enrolment ticket")
    )
    web = webpush.web_enrolment(services().config["ISSUER"], uri)
    return _page("mfa_push_enroll.html", 409 if waiting else 200, uri=uri, qr_svg=svg,
                 action=f"{HOME}/push", ticket=ticket, waiting=waiting, back=HOME,
                 back_label=BACK, **web)  # fmt: skip


# -------------------------------------------------------------- passkey / security key
@bp.route(f"{HOME}/webauthn", methods=["POST"])
def add_webauthn() -> Response:
    """A pending credential holding the registration options (and so its challenge, §13.4.3);
    the page runs the ceremony against them."""
    started = _start(wa.KIND)
    if isinstance(started, Response):
        return started
    _current, user, refused = started
    if refused is not None:
        return refused
    wanted = "key" if request.form.get("kind") == "key" else "passkey"
    uv = str(services().config["MFA_WEBAUTHN_USER_VERIFICATION"])
    rp_id, _origin = wa.relying_party(services().issuer.issuer)
    options, challenge = wa.registration_options(
        rp_id, setting("BRAND_NAME"), user, wa.credentials(db.session, user.id), uv,
        resident=wanted == "passkey",
    )  # fmt: skip
    db.session.execute(
        delete(Factor).where(
            Factor.user_id == user.id, Factor.kind == wa.KIND, Factor.confirmed.is_(False)
        )
    )
    pending = Factor(
        id="fac_" + random_token(12), user_id=user.id, kind=wa.KIND, name=N_("Passkey"),
        data={"options": options, "challenge": wa.b64(challenge), "requested": wanted},
        confirmed=False, created_at=clock.now(),
    )  # fmt: skip
    db.session.add(pending)
    db.session.commit()
    return _webauthn_page(pending.id, wanted)


def _webauthn_page(
    factor_id: str, wanted: str, status: int = 200, error: str | None = None
) -> Response:
    return _page("account_webauthn.html", status, factor_id=factor_id, wanted=wanted,
                 error=error, back=HOME, back_label=BACK)  # fmt: skip


@bp.route(f"{HOME}/webauthn/<factor_id>/options", methods=["POST"])
def webauthn_options(factor_id: str) -> Response:
    found = _signed_in()
    pending = _pending(found[1], factor_id, wa.KIND) if found else None
    if pending is None:
        return _no_store(make_response(jsonify({"error": "expired"}), 400))
    return _no_store(make_response(jsonify(pending.data["options"])))


@bp.route(f"{HOME}/webauthn/<factor_id>", methods=["POST"])
def webauthn_register(factor_id: str) -> Response:
    found = _signed_in()
    if found is None:
        return _page("account_signed_out.html", 401)
    current, user = found
    pending = _pending(user, factor_id, wa.KIND)
    # spent by its own DELETE: of two posts with one challenge only one finds it
    taken = pending is not None and wa.take_pending(db.session, pending.id)
    if pending is None or not taken:
        db.session.commit()
        return _home(current, user, 400, error=EXPIRED)
    wanted = str(pending.data.get("requested", "passkey"))
    credential = request.form.get("credential", "")
    uv = str(services().config["MFA_WEBAUTHN_USER_VERIFICATION"])
    rp_id, origin = wa.relying_party(services().issuer.issuer)
    try:
        if describe.at_cap(db.session, user.id, wa.KIND):
            db.session.commit()
            return _home(current, user, 409, error=AT_CAP)
        data = wa.verify_registration(credential, wa.unb64(pending.data["challenge"]), rp_id,
                                      origin, uv)  # fmt: skip
        data = {**data, "requested": wanted, "attachment": _attachment(credential)}
        factor = wa.add_credential(db.session, user.id, data)
    except wa.WebAuthnError as exc:
        audit.record(db.session, events.MFA_FAILURE, "Second factor failed (webauthn enrolment)",
                     request_origin(), user_id=user.id, details={"factor": wa.KIND})  # fmt: skip
        db.session.commit()
        if isinstance(exc, wa.RegistrationRefused):  # the tenant's attestation policy: say why
            return _home(current, user, 403, error=exc.message)
        return _home(current, user, 400, error=KEY_REFUSED)
    return _finished(current, user, factor, "Security key or passkey")


def _attachment(credential: str) -> str | None:
    """§5.4.5 authenticatorAttachment as the browser reported it (a hint for the name only)."""
    try:
        value: Any = json.loads(credential).get("authenticatorAttachment")
    except (ValueError, AttributeError):
        return None
    return value if value in ("platform", "cross-platform") else None


# ----------------------------------------------------------------------------- phone
@bp.route(f"{HOME}/phone", methods=["POST"])
def add_phone() -> Response:
    """Start (the step-up) makes a pending phone without a number; "send" gives it one and
    texts or calls a code through the send-phone-message action; "confirm" checks the code."""
    action = request.form.get("action", "")
    if action not in ("send", "confirm"):
        started = _start(phone.KIND)
        if isinstance(started, Response):
            return started
        _current, user, refused = started
        if refused is not None:
            return refused
        if not phone.available(db.session):
            return _phone_page(unavailable=True)
        pending = phone.start(db.session, user.id, "", "sms")
        db.session.commit()
        return _phone_page(pending=pending.id)
    found = _signed_in()
    if found is None:
        return _page("account_signed_out.html", 401)
    current, user = found
    pending_factor = _pending(user, request.form.get("pending", ""), phone.KIND)
    if pending_factor is None:
        return _home(current, user, 400, error=EXPIRED)
    if action == "send":
        return _send(user, pending_factor)
    svc = services()
    ip = request_origin().ip or ""
    blocked = svc.shields.is_blocked(user.email, ip)
    code = request.form.get("code", "")
    if describe.at_cap(db.session, user.id, phone.KIND):
        return _home(current, user, 409, error=AT_CAP)
    if not blocked and phone.confirm(db.session, svc.box, user.id, pending_factor, code):
        return _finished(current, user, pending_factor, "Phone")
    if not blocked:
        svc.shields.on_failure(user.email, ip)
    db.session.commit()
    return _phone_page(401, pending=pending_factor.id, factor_id=pending_factor.id,
                       number=pending_factor.data.get("number", ""),
                       message_type=pending_factor.data.get("message_type", "sms"),
                       error=N_("That code is not right. Try again."))  # fmt: skip


def _send(user: User, factor: Factor) -> Response:
    raw = request.form.get("number", "")[:64]
    message_type = request.form.get("message_type", "sms")
    if message_type not in phone.MESSAGE_TYPES:
        message_type = "sms"
    number = phone.normalise_number(raw)
    if number is None:
        return _phone_page(400, pending=factor.id, number=raw, message_type=message_type,
                           error=BAD_NUMBER)  # fmt: skip
    factor.data = {**factor.data, "number": number, "message_type": message_type}
    problem = phone.send(db.session, services().box, user, factor)
    db.session.commit()
    if problem is not None:
        status = 429 if problem.startswith("Too many") else 503
        return _phone_page(status, pending=factor.id, number=number, message_type=message_type,
                           error=problem)  # fmt: skip
    if message_type == "sms":
        notice = gettext("We texted {number} with a code.", number=phone.mask(number))
    else:
        notice = gettext("We are calling {number} with a code.", number=phone.mask(number))
    return _phone_page(pending=factor.id, factor_id=factor.id, number=number,
                       message_type=message_type, notice=notice)  # fmt: skip


def _phone_page(status: int = 200, /, **ctx: object) -> Response:
    ctx = {"number": "", "message_type": "sms", "factor_id": None, "error": None, "notice": None,
           "action": f"{HOME}/phone", "back": HOME, "back_label": BACK, **ctx}  # fmt: skip
    return _page("mfa_phone.html", status, **ctx)
