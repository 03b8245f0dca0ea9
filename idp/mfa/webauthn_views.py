"""WebAuthn routes: enrolment and challenge in the MFA step, passkey sign-in on the login page.

Each ceremony is two requests: a JSON POST for the options (the challenge is kept in the
interaction, never trusted from the browser), then an ordinary form POST carrying the
credential as JSON, answered like the other forms (a redirect, or the page with an error), so
the navigation back to the application stays a plain top-level redirect. idp/static/webauthn.js
runs the ceremony in between; the pages work without it for every other factor.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.extensions import db, services
from idp.flows import pipeline
from idp.flows.models import Interaction
from idp.flows.pages import error_page, expired_page
from idp.flows.policy import database_refused
from idp.flows.step import Step
from idp.flows.views import request_origin
from idp.i18n import N_
from idp.identity import service as identity
from idp.identity.models import User
from idp.mfa import factors as registry
from idp.mfa import service as mfa
from idp.mfa import webauthn as wa
from idp.mfa.views import _enrol, enrolled, keep, mfa_step, passed_step, usable
from idp.tenant.settings import setting

bp = Blueprint("webauthn", __name__)
KEY_FAILED = N_("That security key or passkey was not accepted. Try again.")
PASSKEY_FAILED = N_("That passkey was not accepted. Try again, or sign in with your password.")
# A synced passkey is reported as "swk" (RFC 8176 §2); the MFA step records amr by factor kind.
mfa.AMR.setdefault("passkey", "swk")


def _config(name: str) -> str:
    return str(services().config[name])


def _rp() -> tuple[str, str]:
    return wa.relying_party(services().issuer.issuer)


def _json(body: object, status: int = 200) -> Response:
    resp = make_response(jsonify(body), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _page(template: str, status: int = 200, **ctx: object) -> Response:
    resp = make_response(render_template(template, **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _failed(user: User, client_id: str, what: str) -> None:
    """Count a refused ceremony with the password failures (brute-force shield)."""
    svc = services()
    ip = request_origin().ip or ""
    if not svc.shields.is_blocked(user.email, ip):
        svc.shields.on_failure(user.email, ip)
    audit.record(db.session, events.MFA_FAILURE, f"Second factor failed ({what})",
                 request_origin(), user_id=user.id, client_id=client_id,
                 details={"factor": "webauthn"})  # fmt: skip
    db.session.commit()


def _found(uid: str) -> tuple[Step, User] | None:
    """The login at its MFA step, unless the tenant switched WebAuthn off (then every MFA
    WebAuthn route refuses; passkey sign-in on the login page is a login method, not this)."""
    if not registry.enabled(wa.KIND):
        return None
    step, _page = mfa_step(uid)
    if step is None or step.user is None or step.row is None:
        return None
    return step, step.user


# ------------------------------------------------------------------ second factor: enrol
@bp.route("/interaction/<uid>/mfa/webauthn/register/options", methods=["POST"])
def register_options(uid: str) -> Response:
    found = _found(uid)
    if found is None:
        return _json({"error": "invalid_interaction"}, 400)
    step, user = found
    # Only a user without any factor enrols here: otherwise a stolen password would let
    # anyone add their own key at the very step meant to stop them.
    if mfa.factors(db.session, user.id):
        return _json({"error": "already_enrolled"}, 403)
    rp_id, _origin = _rp()
    options, challenge = wa.registration_options(
        rp_id, setting("BRAND_NAME"), user, [], _config("MFA_WEBAUTHN_USER_VERIFICATION")
    )
    wa.put_challenge(uid_row(step), step.state, "register", challenge)
    db.session.commit()
    return _json(options)


@bp.route("/interaction/<uid>/mfa/webauthn/register", methods=["POST"])
def register(uid: str) -> Response:
    found = _found(uid)
    if found is None:
        return _cannot_continue()
    step, user = found
    if mfa.factors(db.session, user.id):
        return _cannot_continue()
    challenge = _take(step, "register")
    rp_id, origin = _rp()
    try:
        if challenge is None:
            raise wa.WebAuthnError("no pending challenge")
        data = wa.verify_registration(
            request.form.get("credential", ""), challenge, rp_id, origin,
            _config("MFA_WEBAUTHN_USER_VERIFICATION"),
        )  # fmt: skip
        factor = wa.add_credential(db.session, user.id, data)
    except wa.RegistrationRefused as refused:
        # The tenant's attestation policy, not a guess: named to the person, not counted by
        # the brute-force shield.
        audit.record(db.session, events.MFA_FAILURE, "Security key refused by the attestation "
                     "policy", request_origin(), user_id=user.id,
                     client_id=step.request.client_id,
                     details={"factor": "webauthn", "reason": refused.reason})  # fmt: skip
        page = _enrol(step, "", error=refused.message)
        page.status_code = 403
        return page
    except wa.WebAuthnError:
        _failed(user, step.request.client_id, "webauthn enrolment")
        return redirect(f"/interaction/{uid}/mfa", code=303)
    codes = mfa.new_recovery_codes(db.session, services().box, user.id)
    kind = "passkey" if wa.amr(factor) == "swk" else wa.KIND
    enrolled(step, kind)
    audit.record(db.session, events.MFA_ENROLLED, f"{factor.name} enrolled",
                 request_origin(), user_id=user.id, client_id=step.request.client_id)  # fmt: skip
    keep(step)
    return _page("mfa_recovery_codes.html", codes=codes,
                 action=f"/interaction/{uid}/mfa/webauthn/continue")  # fmt: skip


@bp.route("/interaction/<uid>/mfa/webauthn/continue", methods=["POST"])
def enrolled_continue(uid: str) -> Response:
    found = _found(uid)
    if found is None:
        return _cannot_continue()
    step, _user = found
    decided = step.state.mfa
    if decided is None or not decided.enrolled or decided.kind not in {wa.KIND, "passkey"}:
        return redirect(f"/interaction/{uid}/mfa", code=303)
    return passed_step(step, decided.kind, remember=False)


# -------------------------------------------------------------- second factor: challenge
@bp.route("/interaction/<uid>/mfa/webauthn/options", methods=["POST"])
def challenge_options(uid: str) -> Response:
    found = _found(uid)
    if found is None:
        return _json({"error": "invalid_interaction"}, 400)
    step, user = found
    creds = usable(step, wa.credentials(db.session, user.id))
    if not creds:
        return _json({"error": "no_credential"}, 400)
    rp_id, _origin = _rp()
    options, challenge = wa.authentication_options(
        rp_id, creds, _config("MFA_WEBAUTHN_USER_VERIFICATION")
    )
    wa.put_challenge(uid_row(step), step.state, "mfa", challenge)
    db.session.commit()
    return _json(options)


@bp.route("/interaction/<uid>/mfa/webauthn", methods=["POST"])
def challenge(uid: str) -> Response:
    found = _found(uid)
    if found is None:
        return _cannot_continue()
    step, user = found
    svc = services()
    blocked = svc.shields.is_blocked(user.email, request_origin().ip or "")
    pending = _take(step, "mfa")
    rp_id, origin = _rp()
    try:
        if pending is None or blocked:
            raise wa.WebAuthnError("no pending challenge, or blocked")
        factor, _uv = wa.verify_assertion(
            request.form.get("credential", ""), pending, rp_id, origin,
            _config("MFA_WEBAUTHN_USER_VERIFICATION"),
            usable(step, wa.credentials(db.session, user.id)),
        )  # fmt: skip
    except wa.WebAuthnError:
        _failed(user, step.request.client_id, wa.KIND)
        return _challenge_page(step, user, KEY_FAILED)
    allowed = step.state.mfa is not None and step.state.mfa.allow_remember_browser
    remember = (
        bool(request.form.get("remember"))
        and bool(svc.config["MFA_REMEMBER_BROWSER_DAYS"])
        and allowed
    )
    kind = "passkey" if wa.amr(factor) == "swk" else wa.KIND
    return passed_step(step, kind, remember)


def _challenge_page(step: Step, user: User, error: str) -> Response:
    """The MFA page again, with the error (as the MFA page renders it)."""
    allowed = step.state.mfa is not None and step.state.mfa.allow_remember_browser
    days = services().config["MFA_REMEMBER_BROWSER_DAYS"]
    offered = registry.offers(db.session, user, usable(step, mfa.factors(db.session, user.id)))
    name, _, domain = user.email.partition("@")
    return _page(
        "mfa_challenge.html", 401, uid=uid_row(step).uid, partials=[k.partial for k in offered],
        email_hint=f"{name[:1]}***@{domain}", state=step.state.ceremony, error=error,
        notice=None, remember_days=days if allowed else 0,
    )  # fmt: skip


def uid_row(step: Step) -> Interaction:
    assert step.row is not None
    return step.row


def _take(step: Step, purpose: str) -> bytes | None:
    """The pending challenge, spent; the step's state is re-read with it (row lock). A state
    that is no longer the one this request checked (another session's, another prompt) gives
    no challenge."""
    challenge, fresh = wa.take_challenge(db.session, uid_row(step), purpose)
    if fresh is None or fresh.sid != step.state.sid or fresh.prompt != step.state.prompt:
        return None
    step.state = fresh
    return challenge


def _cannot_continue() -> Response:
    return error_page("This sign-in cannot continue", "Go back to the application.", 400)


# ------------------------------------------------------------- first factor: passkey login
@bp.route("/interaction/<uid>/login/passkey/options", methods=["POST"])
def passkey_options(uid: str) -> Response:
    step, _ = pipeline.open_step(uid)
    if step is None or step.state.prompt != "login":
        return _json({"error": "invalid_interaction"}, 400)
    if database_refused(step.client) is not None:  # passkeys are the database connection's
        return _json({"error": "connection_disabled"}, 403)
    if services().shields.ip_retry_after(request_origin().ip or ""):
        return _json({"error": "too_many_attempts"}, 429)
    rp_id, _origin = _rp()
    # No allowCredentials: the authenticator offers its discoverable credentials for this RP
    # (usernameless, WebAuthn §5.1.4.1 step 17 via §6.3.3).
    options, challenge = wa.authentication_options(
        rp_id, None, _config("MFA_WEBAUTHN_USER_VERIFICATION")
    )
    wa.put_challenge(uid_row(step), step.state, "login", challenge)
    db.session.commit()
    return _json(options)


@bp.route("/interaction/<uid>/login/passkey", methods=["POST"])
def passkey_login(uid: str) -> Response:
    step, page = pipeline.open_step(uid)
    if step is None:
        assert page is not None
        return page
    if step.state.prompt != "login":  # the login moved on (a second click, the back button)
        return pipeline.resend(step) or expired_page()
    refused = database_refused(step.client)
    if refused is not None:
        return refused
    svc = services()
    origin_info = request_origin()
    ip = origin_info.ip or ""
    if svc.shields.ip_retry_after(ip):
        return error_page("Too many attempts", "Try again later.", 429)
    pending = _take(step, "login")
    credential = request.form.get("credential", "")
    rp_id, origin = _rp()
    user: User | None = None
    try:
        handle = wa.user_handle(credential)
        user = db.session.get(User, handle) if handle else None
        if pending is None or user is None or svc.shields.is_blocked(user.email, ip):
            raise wa.WebAuthnError("no challenge, unknown user handle, or blocked")
        factor, verified = wa.verify_assertion(
            credential, pending, rp_id, origin, _config("MFA_WEBAUTHN_USER_VERIFICATION"),
            wa.credentials(db.session, user.id),
        )  # fmt: skip
    except wa.WebAuthnError:
        return _passkey_failed(step, user)
    svc.shields.on_success(user.email, ip)
    identity.count_login(db.session, user)  # atomic, as the password login counts
    audit.record(db.session, events.LOGIN_SUCCESS, "Successful login (passkey)", origin_info,
                 user_id=user.id, client_id=step.request.client_id)  # fmt: skip
    # Possession of the key, plus (with UV) something the user knows or is: multi-factor on
    # its own (RFC 8176 §2 "mfa"), so the MFA step is already satisfied.
    # Without UV the key is one factor: the MFA step then offers the others (views.usable).
    amr = [wa.amr(factor), *(["mfa"] if verified else [])]
    first = None if verified else factor.id
    return pipeline.complete_login(step, user, amr, first_credential=first)


def _passkey_failed(step: Step, user: User | None) -> Response:
    svc = services()
    origin_info = request_origin()
    ip = origin_info.ip or ""
    # Without a known account only the per-IP counter means anything.
    if user is None or not svc.shields.is_blocked(user.email, ip):
        svc.shields.on_failure(user.email if user else "", ip)
    audit.record(db.session, events.LOGIN_FAILURE, "Passkey sign-in failed", origin_info,
                 user_id=user.id if user else None, client_id=step.request.client_id,
                 details={"reason": "passkey_failed"})  # fmt: skip
    db.session.commit()  # with the spent challenge
    return _page("login.html", 401, uid=uid_row(step).uid, email="", error=PASSKEY_FAILED,
                 app_name=step.client.name)  # fmt: skip
