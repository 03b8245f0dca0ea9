"""Hosted pages: the login form of the database connection and RP-initiated logout.

Both work without JavaScript and carry CSRF tokens (Flask-WTF). The login form is the seed of
Universal Login: it authenticates, starts a fresh session and resumes ``/authorize``.
"""

from __future__ import annotations

from flask import Blueprint, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.extensions import db, services
from idp.flows import federation, pipeline
from idp.flows.origin import request_origin
from idp.flows.pages import error_page, expired_page, login_page
from idp.flows.policy import database_refused
from idp.i18n import N_, gettext, link_params, use_ui_locales
from idp.identity import service as identity
from idp.identity import tokens
from idp.identity.models import User
from idp.protection.service import LoginGate

bp = Blueprint("flows", __name__)

GENERIC_LOGIN_ERROR = N_("Wrong email or password.")


@bp.route("/interaction/<uid>/login", methods=["GET", "POST"])
def login(uid: str) -> Response:
    step, page = pipeline.open_step(uid)
    if step is None:
        assert page is not None
        return page
    if step.state.prompt != "login":  # the login moved on (a second click, the back button)
        return pipeline.resend(step) or expired_page()
    refused = database_refused(step.client)  # before any password is looked at
    if refused is not None:
        return refused
    svc = services()
    client_id = step.request.client_id
    email = step.request.params.get("login_hint", "")
    if request.method == "POST":
        email = request.form.get("email", "")[:320]
        realm = federation.home_realm(step.client, email)
        if realm is not None:  # the company's own IdP signs this address in
            return federation.go_upstream(step, realm)
        password = request.form.get("password", "")[:1024]
        origin = request_origin()
        gate = svc.shields.gate(email, origin.ip or "")
        if gate.ip_retry_after:
            return throttled_page(origin, client_id, gate.ip_retry_after)
        user = check_password(email, password, origin, client_id, gate)
        if user is not None:
            # one transaction with the new session and whatever the policy asks next
            return pipeline.complete_login(step, user, ["pwd"])
        return login_page(uid, client_id, email, GENERIC_LOGIN_ERROR, 401)
    return login_page(uid, client_id, email)


def check_password(
    email: str, password: str, origin: audit.Origin, client_id: str, gate: LoginGate
) -> User | None:
    """Authenticate through the shields. A blocked pair still pays for a hash and gets the
    same answer as a wrong password (no lockout oracle, S-BF-01/07)."""
    svc, ip = services(), origin.ip or ""
    if gate.pair_blocked:
        db.session.commit()  # release SQLite's write lock before the hash
        svc.passwords.verify(None, password)
        audit.record(
            db.session,
            events.LOGIN_BLOCKED,
            "Login attempt on a blocked account",
            origin,
            client_id=client_id,
            details={"email": identity.normalise_email(email)},
        )
        db.session.commit()
        return None
    user = identity.authenticate(db.session, svc.passwords, email, password)
    if user is not None:
        svc.shields.on_success(email, ip, gate.pair_counted)
        audit.record(
            db.session,
            events.LOGIN_SUCCESS,
            "Successful login",
            origin,
            user_id=user.id,
            client_id=client_id,
        )
        return user
    db.session.rollback()
    verdict = svc.shields.on_failure(email, ip)
    known = identity.find_user_id(db.session, email)
    audit.record(
        db.session,
        events.LOGIN_FAILURE,
        "Wrong email or password",
        origin,
        user_id=known,
        client_id=client_id,
        details={"email": identity.normalise_email(email)},
    )
    if verdict.blocked_now:
        audit.record(
            db.session,
            events.ACCOUNT_BLOCKED,
            "Too many failed logins from this IP for this account",
            origin,
            user_id=known,
            client_id=client_id,
        )
    if verdict.notify and known is not None:
        _notify_owner(known, identity.normalise_email(email), ip, verdict.blocked_now)
    if verdict.throttled_now:
        audit.record(
            db.session,
            events.IP_THROTTLED,
            "Too many failed logins from this IP",
            origin,
            client_id=client_id,
        )
    db.session.commit()
    return None


def _notify_owner(user_id: str, email: str, ip: str, blocked: bool) -> None:
    """Auth0's user notification: the owner learns of the failures; of a block too, with a
    link that lifts it (without the block shield there is nothing to lift)."""
    svc = services()
    if not blocked:
        svc.mailer.send_later(
            email,
            gettext("Many failed sign-in attempts on your account"),
            gettext(
                "There were many failed attempts to sign in to your account from {ip}. If it "
                "was not you, consider changing your password.",
                ip=ip,
            ),
        )
        return
    value = tokens.issue(
        db.session, tokens.UNBLOCK, user_id, svc.config["BRUTE_FORCE_BLOCK_SECONDS"]
    )
    link = svc.issuer.issuer + url_for("flows.unblock", token=value, **link_params())
    svc.mailer.send_later(
        email,
        gettext("Sign-in attempts to your account were blocked"),
        gettext(
            "After too many failed attempts from {ip}, sign-in to your account from that "
            "address is blocked for a while. If it was you, lift the block here:\n\n{link}\n\n"
            "If it was not you, consider changing your password.",
            ip=ip,
            link=link,
        ),
    )


@bp.route("/unblock", methods=["GET", "POST"])
def unblock() -> Response:
    """GET shows a button, POST spends the link and lifts every block on the account."""
    value = (request.values.get("token") or "")[:128]
    use_ui_locales(request.args.get("ui_locales"), login=False)  # the mail's language
    if request.method == "GET":
        live = tokens.peek(db.session, tokens.UNBLOCK, value)
        page = make_response(
            render_template("unblock.html", token=value, live=live, done=False),
            200 if live else 400,
        )
        page.headers["Cache-Control"] = "no-store"
        return page
    user_id = tokens.redeem(db.session, tokens.UNBLOCK, value)
    user = db.session.get(User, user_id) if user_id else None
    if user is None:
        db.session.rollback()
        return make_response(render_template("unblock.html", token="", live=False, done=False), 400)
    services().shields.unblock(user.email)
    audit.record(
        db.session,
        events.ACCOUNT_UNBLOCKED,
        "Unblocked by the emailed link",
        request_origin(),
        user_id=user.id,
    )
    db.session.commit()
    return make_response(render_template("unblock.html", token="", live=False, done=True))


def too_many(kind: str) -> Response | None:
    """429 when this IP made too many ``kind`` requests (sign-up, reset) in the window."""
    svc = services()
    origin = request_origin()
    if svc.shields.allow(kind, origin.ip or ""):
        return None
    window = svc.shields.policy().requests_window
    audit.record(db.session, events.IP_THROTTLED, f"Too many {kind} requests", origin)
    db.session.commit()
    resp = error_page("Too many requests", "Too many requests from your network. Try later.", 429)
    resp.headers["Retry-After"] = str(window)
    return resp


def throttled_page(origin: audit.Origin, client_id: str, retry_after: int) -> Response:
    audit.record(
        db.session, events.IP_THROTTLED, "Login refused: IP throttled", origin, client_id=client_id
    )
    db.session.commit()
    resp = error_page(
        "Too many attempts",
        "There were too many failed sign-in attempts from your network. Try again later.",
        429,
    )
    resp.headers["Retry-After"] = str(retry_after)
    return resp
