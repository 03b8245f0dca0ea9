"""WebAuthn routes: enrolment and challenge in the MFA step, passkey sign-in on the login page.

Each ceremony is two requests: a JSON POST for the options (the challenge is kept in the
interaction, never trusted from the browser), then an ordinary form POST carrying the
credential as JSON, answered like the other forms (a redirect, or the page with an error), so
the navigation back to the application stays a plain top-level redirect. idp/static/webauthn.js
runs the ceremony in between; the pages work without it for every other factor.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, jsonify, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.views import interaction_or_page, request_origin
from idp.identity.models import User
from idp.mfa import factors as registry
from idp.mfa import flow
from idp.mfa import service as mfa
from idp.mfa import webauthn as wa
from idp.mfa.views import passed_step
from idp.oauth.authorize import error_page, finish_after_login

bp = Blueprint("webauthn", __name__)
KEY_FAILED = "That security key or passkey was not accepted. Try again."
PASSKEY_FAILED = "That passkey was not accepted. Try again, or sign in with your password."
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


def _mfa_step(uid: str):  # type: ignore[no-untyped-def]
    """(interaction, session, user) of a login waiting at its MFA step, or an error page;
    the same checks as the MFA page itself."""
    row, page = interaction_or_page(uid)
    if row is None:
        return None, page
    state = (row.data or {}).get("mfa") or {}
    session_row = flows.current_session(db.session, request.cookies.get(cookies.session()))
    user = db.session.get(User, session_row.user_id) if session_row is not None else None
    if (
        flow.STEP not in row.prompt.split()
        or session_row is None
        or session_row.sid != state.get("sid")
        or user is None
    ):
        return None, error_page("This sign-in cannot continue", "Go back to the application.", 400)
    return (row, session_row, user), None


def _failed(user: User, row, what: str) -> None:  # type: ignore[no-untyped-def]
    """Count a refused ceremony with the password failures (brute-force shield)."""
    svc = services()
    ip = request_origin().ip or ""
    if not svc.shields.is_blocked(user.email, ip):
        svc.shields.on_failure(user.email, ip)
    audit.record(db.session, events.MFA_FAILURE, f"Second factor failed ({what})",
                 request_origin(), user_id=user.id, client_id=row.client_id)  # fmt: skip
    db.session.commit()


# ------------------------------------------------------------------ second factor: enrol
@bp.route("/interaction/<uid>/mfa/webauthn/register/options", methods=["POST"])
def register_options(uid: str) -> Response:
    found, _ = _mfa_step(uid)
    if found is None:
        return _json({"error": "invalid_interaction"}, 400)
    row, _session, user = found
    # Only a user without any factor enrols here: otherwise a stolen password would let
    # anyone add their own key at the very step meant to stop them.
    if mfa.factors(db.session, user.id):
        return _json({"error": "already_enrolled"}, 403)
    rp_id, _origin = _rp()
    options, challenge = wa.registration_options(
        rp_id, _config("BRAND_NAME"), user, [], _config("MFA_WEBAUTHN_USER_VERIFICATION")
    )
    wa.put_challenge(row, "register", challenge)
    db.session.commit()
    return _json(options)


@bp.route("/interaction/<uid>/mfa/webauthn/register", methods=["POST"])
def register(uid: str) -> Response:
    found, page = _mfa_step(uid)
    if found is None:
        return page
    row, _session, user = found
    if mfa.factors(db.session, user.id):
        return error_page("This sign-in cannot continue", "Go back to the application.", 400)
    challenge = wa.take_challenge(db.session, row, "register")
    rp_id, origin = _rp()
    try:
        if challenge is None:
            raise wa.WebAuthnError("no pending challenge")
        data = wa.verify_registration(
            request.form.get("credential", ""), challenge, rp_id, origin,
            _config("MFA_WEBAUTHN_USER_VERIFICATION"),
        )  # fmt: skip
        factor = wa.add_credential(db.session, user.id, data)
    except wa.WebAuthnError:
        _failed(user, row, "webauthn enrolment")
        return redirect(f"/interaction/{row.uid}/mfa", code=303)
    codes = mfa.new_recovery_codes(db.session, services().box, user.id)
    kind = "passkey" if wa.amr(factor) == "swk" else wa.KIND
    data = dict(row.data or {})
    data["mfa"] = {**data.get("mfa", {}), "enrolled": True, "kind": kind}
    row.data = data
    audit.record(db.session, events.MFA_ENROLLED, f"{factor.name} enrolled",
                 request_origin(), user_id=user.id, client_id=row.client_id)  # fmt: skip
    db.session.commit()
    return _page("mfa_recovery_codes.html", codes=codes,
                 action=f"/interaction/{row.uid}/mfa/webauthn/continue")  # fmt: skip


@bp.route("/interaction/<uid>/mfa/webauthn/continue", methods=["POST"])
def enrolled(uid: str) -> Response:
    found, page = _mfa_step(uid)
    if found is None:
        return page
    row, session_row, user = found
    state = (row.data or {}).get("mfa") or {}
    if not state.get("enrolled") or state.get("kind") not in {wa.KIND, "passkey"}:
        return redirect(f"/interaction/{row.uid}/mfa", code=303)
    return passed_step(row, session_row, user, state["kind"], remember=False)


# -------------------------------------------------------------- second factor: challenge
@bp.route("/interaction/<uid>/mfa/webauthn/options", methods=["POST"])
def challenge_options(uid: str) -> Response:
    found, _ = _mfa_step(uid)
    if found is None:
        return _json({"error": "invalid_interaction"}, 400)
    row, _session, user = found
    creds = wa.credentials(db.session, user.id)
    if not creds:
        return _json({"error": "no_credential"}, 400)
    rp_id, _origin = _rp()
    options, challenge = wa.authentication_options(
        rp_id, creds, _config("MFA_WEBAUTHN_USER_VERIFICATION")
    )
    wa.put_challenge(row, "mfa", challenge)
    db.session.commit()
    return _json(options)


@bp.route("/interaction/<uid>/mfa/webauthn", methods=["POST"])
def challenge(uid: str) -> Response:
    found, page = _mfa_step(uid)
    if found is None:
        return page
    row, session_row, user = found
    svc = services()
    blocked = svc.shields.is_blocked(user.email, request_origin().ip or "")
    pending = wa.take_challenge(db.session, row, "mfa")
    rp_id, origin = _rp()
    try:
        if pending is None or blocked:
            raise wa.WebAuthnError("no pending challenge, or blocked")
        factor, _uv = wa.verify_assertion(
            request.form.get("credential", ""), pending, rp_id, origin,
            _config("MFA_WEBAUTHN_USER_VERIFICATION"), wa.credentials(db.session, user.id),
        )  # fmt: skip
    except wa.WebAuthnError:
        _failed(user, row, wa.KIND)
        return _challenge_page(row, user, KEY_FAILED)
    state = (row.data or {}).get("mfa") or {}
    remember = (
        bool(request.form.get("remember"))
        and bool(svc.config["MFA_REMEMBER_BROWSER_DAYS"])
        and state.get("allow_remember_browser") is not False
    )
    kind = "passkey" if wa.amr(factor) == "swk" else wa.KIND
    return passed_step(row, session_row, user, kind, remember)


def _challenge_page(row, user: User, error: str) -> Response:  # type: ignore[no-untyped-def]
    """The MFA page again, with the error (as the MFA page renders it)."""
    state = dict((row.data or {}).get("mfa") or {})
    days = services().config["MFA_REMEMBER_BROWSER_DAYS"]
    offered = registry.offers(db.session, user, mfa.factors(db.session, user.id))
    name, _, domain = user.email.partition("@")
    return _page(
        "mfa_challenge.html", 401, uid=row.uid, partials=[k.partial for k in offered],
        email_hint=f"{name[:1]}***@{domain}", state=state, error=error, notice=None,
        remember_days=0 if state.get("allow_remember_browser") is False else days,
    )  # fmt: skip


# ------------------------------------------------------------- first factor: passkey login
@bp.route("/interaction/<uid>/login/passkey/options", methods=["POST"])
def passkey_options(uid: str) -> Response:
    row, _ = interaction_or_page(uid)
    if row is None:
        return _json({"error": "invalid_interaction"}, 400)
    if services().shields.ip_retry_after(request_origin().ip or ""):
        return _json({"error": "too_many_attempts"}, 429)
    rp_id, _origin = _rp()
    # No allowCredentials: the authenticator offers its discoverable credentials for this RP
    # (usernameless, WebAuthn §5.1.4.1 step 17 via §6.3.3).
    options, challenge = wa.authentication_options(
        rp_id, None, _config("MFA_WEBAUTHN_USER_VERIFICATION")
    )
    wa.put_challenge(row, "login", challenge)
    db.session.commit()
    return _json(options)


@bp.route("/interaction/<uid>/login/passkey", methods=["POST"])
def passkey_login(uid: str) -> Response:
    row, page = interaction_or_page(uid)
    if row is None:
        assert page is not None
        return page
    svc = services()
    origin_info = request_origin()
    ip = origin_info.ip or ""
    if svc.shields.ip_retry_after(ip):
        return error_page("Too many attempts", "Try again later.", 429)
    pending = wa.take_challenge(db.session, row, "login")
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
        return _passkey_failed(row, user)
    svc.shields.on_success(user.email, ip)
    user.logins_count += 1
    audit.record(db.session, events.LOGIN_SUCCESS, "Successful login (passkey)", origin_info,
                 user_id=user.id, client_id=row.client_id)  # fmt: skip
    # Possession of the key, plus (with UV) something the user knows or is: multi-factor on
    # its own (RFC 8176 §2 "mfa"), so the MFA step is already satisfied.
    amr = [wa.amr(factor), *(["mfa"] if verified else [])]
    return _start_session(row, user, amr)


def _passkey_failed(row, user: User | None) -> Response:  # type: ignore[no-untyped-def]
    svc = services()
    origin_info = request_origin()
    ip = origin_info.ip or ""
    # Without a known account only the per-IP counter means anything.
    if user is None or not svc.shields.is_blocked(user.email, ip):
        svc.shields.on_failure(user.email if user else "", ip)
    audit.record(db.session, events.LOGIN_FAILURE, "Passkey sign-in failed", origin_info,
                 user_id=user.id if user else None, client_id=row.client_id)  # fmt: skip
    db.session.commit()
    client = svc.clients.get(row.client_id)
    return _page("login.html", 401, uid=row.uid, email="", error=PASSKEY_FAILED,
                 app_name=client.name if client else "the application")  # fmt: skip


def _start_session(row, user: User, amr: list[str]) -> Response:  # type: ignore[no-untyped-def]
    """As the password login does (flows.views._logged_in), with this login's amr."""
    svc = services()
    cookie_value, session_row = flows.start_session(
        db.session, user.id, amr, svc.config["SESSION_TTL"],
        request.cookies.get(cookies.session()),
    )  # fmt: skip
    row.completed_at = session_row.auth_time
    params = dict(row.params)
    db.session.commit()
    resp = finish_after_login(params, session_row, row) or redirect(
        "/authorize?" + urlencode(params), code=303
    )
    cookies.put(resp, cookies.session(), cookie_value, svc.config["SESSION_TTL"])
    return resp
