"""Push approval routes: the device API (``/mfa/push/*``, device tokens, no cookies) and the
login pages (enrolment ticket, waiting for the answer). The protocol is in push.py."""

from __future__ import annotations

import time

import segno
from flask import Blueprint, jsonify, redirect, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.extensions import csrf, db, services
from idp.flows.pages import error_page
from idp.flows.views import request_origin
from idp.i18n import N_, gettext
from idp.mfa import factors as registry
from idp.mfa import push, webpush
from idp.mfa import service as mfa
from idp.mfa.views import _mask, _page, keep, mfa_step, passed_step

bp = Blueprint("mfa_push", __name__)
OUTCOME_TEXT = {
    "denied": N_("The sign-in was denied on your phone."),
    "wrong_number": N_("The number picked on your phone did not match. Try again."),
    "expired": N_("The request to your phone expired. Try again or use a code."),
    "cancelled": N_("The request to your phone expired. Try again or use a code."),
}


def _problem(status: int, detail: str) -> Response:
    """RFC 9457 problem details; 401 also carries an RFC 6750 §3 challenge."""
    resp = jsonify({"type": "about:blank", "status": status, "detail": detail})
    resp.status_code = status
    resp.headers["Content-Type"] = "application/problem+json"
    resp.headers["Cache-Control"] = "no-store"
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return resp


def _device() -> push.PushDevice:
    return push.authenticate(
        db.session, request.headers.get("Authorization"), services().config["ISSUER"]
    )


# ------------------------------------------------------------------------ device API
@bp.route("/mfa/push/enroll", methods=["POST"])
@csrf.exempt  # a device with a token in a header, never a browser cookie
def enroll() -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _problem(400, "send a JSON object")
    token = request.headers.get("Authorization", "").partition(" ")[2]
    svc = services()
    try:
        device, seed = push.enrol(db.session, svc.box, body, token, svc.config)
        if body.get("webpush") is not None:  # a web authenticator's PushSubscription
            webpush.subscribe(db.session, device, body["webpush"], svc.config)
    except push.PushError as exc:
        db.session.rollback()
        return _problem(exc.status, str(exc))
    except webpush.SubscriptionError as exc:
        db.session.rollback()
        return _problem(400, str(exc))
    audit.record(db.session, events.MFA_ENROLLED, "Push device enrolled", request_origin(),
                 user_id=device.user_id)  # fmt: skip
    db.session.commit()
    resp = jsonify({"device_id": device.id, "issuer": svc.config["ISSUER"],
                    "totp": {"secret": seed, "period": mfa.TOTP_STEP, "digits": 6}})  # fmt: skip
    resp.status_code = 201
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/mfa/push/pending", methods=["GET"])
def pending() -> Response:
    """Long poll: answers at once if something is pending, else within ``wait`` seconds."""
    try:
        device = _device()
    except push.PushError as exc:
        db.session.rollback()
        return _problem(exc.status, str(exc))
    db.session.commit()  # the token's jti is spent even if the poll is cut off
    # A long poll holds a thread (granian's two a worker; a whole sync worker with gunicorn):
    # every poller takes one away from logins, so the operator sets how long a poll may wait
    # (0 by default; `idp serve --threads N` gives each worker more threads for them).
    limit = min(int(services().config["MFA_PUSH_LONG_POLL_SECONDS"]), push.POLL_MAX_SECONDS)
    wait = min(max(request.args.get("wait", 0, type=int), 0), limit)
    deadline = time.monotonic() + wait
    while True:
        items = push.pending(db.session, device)
        db.session.commit()  # never hold SQLite's write lock while sleeping
        if items or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    resp = jsonify({"challenges": items})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/mfa/push/respond/<challenge_id>", methods=["POST"])
@csrf.exempt
def respond(challenge_id: str) -> Response:
    try:
        device = _device()
        db.session.commit()  # the token's jti is spent whatever the decision turns out to be
        status = push.respond(db.session, device, challenge_id,
                              request.get_data(as_text=True)[:8192])  # fmt: skip
    except push.PushError as exc:
        db.session.rollback()
        return _problem(exc.status, str(exc))
    db.session.commit()
    return jsonify({"status": status})


# ---------------------------------------------------------------------- login pages
@bp.route("/interaction/<uid>/mfa/push/enroll", methods=["GET", "POST"])
def enroll_page(uid: str) -> Response:
    """The alternative to TOTP on the enrolment page: a ticket as a QR code and a link. Only
    for a user without factors (else the password alone could add a device)."""
    if not registry.enabled("push"):
        return error_page("Push is not available", "Go back and choose another way.", 400)
    step, page = mfa_step(uid)
    if step is None:
        assert page is not None
        return page
    user, state = step.user, step.state.ceremony
    assert user is not None
    svc = services()
    action = request.form.get("action", "") if request.method == "POST" else ""
    ticket = state.get("push_ticket")
    enrolled_here = state.get("push_enrolled") or (
        ticket and push.ticket_device(db.session, svc.box, ticket)
    )
    if mfa.factors(db.session, user.id) and not enrolled_here:
        return error_page("This sign-in cannot continue", "Go back to the application.", 400)
    if action == "continue" and state.get("push_enrolled"):
        return passed_step(step, "push", remember=False)
    if action == "check" and ticket and enrolled_here:
        codes = mfa.new_recovery_codes(db.session, svc.box, user.id)
        state.pop("push_ticket")
        state["push_enrolled"] = True
        keep(step)
        return _page("mfa_recovery_codes.html", codes=codes, action=request.path)
    if action == "check" and state.get("push_ticket"):  # not yet: show the same ticket again
        uri = push.ticket_uri(svc.config["ISSUER"], state["push_ticket"])
    else:
        ticket, uri = push.issue_ticket(db.session, svc.box, user.id, svc.config["ISSUER"])
        state["push_ticket"] = ticket
        keep(step)
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, title=gettext("QR code of the enrolment ticket")
    )
    web = webpush.web_enrolment(svc.config["ISSUER"], uri)
    return _page("mfa_push_enroll.html", 200 if action != "check" else 409, uri=uri, qr_svg=svg,
                 action=request.path, waiting=action == "check", **web)  # fmt: skip


@bp.route("/interaction/<uid>/mfa/push", methods=["GET", "POST"])
def status(uid: str) -> Response:
    """Where the waiting page refreshes to (meta refresh, or its "check again" button)."""
    if not registry.enabled("push"):  # switched off while waiting: never accepted
        return redirect(f"/interaction/{uid}/mfa", code=303)
    step, page = mfa_step(uid)
    if step is None:
        assert page is not None
        return page
    user, state = step.user, step.state.ceremony
    assert user is not None
    svc = services()
    main = redirect(f"/interaction/{uid}/mfa", code=303)
    if not state.get("push"):
        return main
    result = push.outcome(db.session, state["push"], user.id)
    ip = request_origin().ip or ""
    if result == "pending":
        db.session.commit()
        return main
    if result == "approved" and not svc.shields.is_blocked(user.email, ip):
        return passed_step(step, "push", remember=False)
    for key in ("push", "push_number"):
        state.pop(key, None)
    svc.shields.on_failure(user.email, ip)
    audit.record(db.session, events.MFA_FAILURE, f"Second factor failed (push {result})",
                 request_origin(), user_id=user.id, client_id=step.request.client_id,
                 details={"factor": "push"})  # fmt: skip
    keep(step)
    factors = mfa.factors(db.session, user.id)
    days = svc.config["MFA_REMEMBER_BROWSER_DAYS"]
    return _page("mfa_challenge.html", 401, uid=uid, state=state, remember_days=days,
                 partials=[k.partial for k in registry.offers(db.session, user, factors)],
                 email_hint=_mask(user.email), notice=None,
                 error=OUTCOME_TEXT.get(result, "That did not work. Try again."))  # fmt: skip
