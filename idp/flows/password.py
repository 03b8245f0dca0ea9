"""Forgotten, reset and changed passwords.

Forgot: the same answer whatever the address (no enumeration); the link is single-use and
expires. Reset: a new password that passes the policy ends every session and token of the
user. Change: needs the current password and ends the user's other sessions.
"""

from __future__ import annotations

from flask import make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.actions import registration
from idp.audit import events
from idp.audit import service as audit
from idp.connections import accounts
from idp.extensions import db, services
from idp.flows import cookies
from idp.flows import service as flows
from idp.flows.views import bp, request_origin, too_many
from idp.i18n import gettext, link_params, use_ui_locales
from idp.identity import service as identity
from idp.identity import tokens
from idp.identity.models import User


def _page(template: str, status: int = 200, **ctx: object) -> Response:
    resp = make_response(render_template(template, **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> Response:
    if request.method == "GET":
        return _page("forgot.html", sent=False)
    throttled = too_many("reset")
    if throttled is not None:
        return throttled
    svc = services()
    email = identity.normalise_email(request.form.get("email", "")[:320])
    user_id = identity.find_user_id(db.session, email)
    if user_id is not None:
        value = tokens.issue(
            db.session, tokens.RESET_PASSWORD, user_id, svc.config["RESET_LINK_TTL"]
        )
        link = svc.issuer.issuer + url_for("flows.reset_password", token=value, **link_params())
        svc.mailer.send_later(
            email,
            gettext("Reset your password"),
            gettext(
                "Open this link to choose a new password:\n\n{link}\n\n"
                "If you did not ask for this, ignore this message.",
                link=link,
            ),
        )
    audit.record(
        db.session,
        events.PASSWORD_RESET_REQUESTED,
        "Password reset requested",
        request_origin(),
        user_id=user_id,
        details={"email": email},
    )
    db.session.commit()
    return _page("forgot.html", sent=True)


@bp.route("/password/reset", methods=["GET", "POST"])
def reset_password() -> Response:
    svc = services()
    value = (request.values.get("token") or "")[:128]
    use_ui_locales(request.args.get("ui_locales"), login=False)  # the mail's language
    if request.method == "GET":
        live = tokens.peek(db.session, tokens.RESET_PASSWORD, value)
        return _page("reset.html", 200 if live else 400, token=value, live=live, problems=[])
    password = request.form.get("password", "")[:1100]
    if not tokens.peek(db.session, tokens.RESET_PASSWORD, value):
        return _page("reset.html", 400, token="", live=False, problems=[])
    user_id_hint = _token_owner(value)
    problems = svc.policy.problems(password, user_id_hint)
    if problems:
        return _page("reset.html", 400, token=value, live=True, problems=problems)
    user_id = tokens.redeem(db.session, tokens.RESET_PASSWORD, value)
    user = db.session.get(User, user_id) if user_id else None
    if user is None:
        db.session.rollback()
        return _page("reset.html", 400, token="", live=False, problems=[])
    identity.set_password(db.session, svc.passwords, user, password)
    for name in accounts.address_proved(db.session, user):
        audit.record(
            db.session, events.IDENTITY_UNLINKED,
            f"Sign-in through {name} removed: it never proved this address, its owner just did",
            request_origin(), user_id=user.id, details={"connection": name},
        )  # fmt: skip
    tokens.spend_all(db.session, tokens.RESET_PASSWORD, user.id)
    flows.end_user_sessions(db.session, user.id)
    audit.record(
        db.session, events.PASSWORD_RESET, "Password reset", request_origin(), user_id=user.id
    )
    db.session.commit()
    registration.post_change_password(user)
    return _page("reset_done.html")


def _token_owner(value: str) -> str:
    """The email of the link's user, so the policy can refuse a password equal to it."""
    from idp.core.crypto import sha256_hex
    from idp.identity.models import EmailToken

    row = db.session.get(EmailToken, sha256_hex(value))
    user = db.session.get(User, row.user_id) if row else None
    return user.email if user else ""


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> Response:
    svc = services()
    current = flows.account_session(db.session, request.cookies.get(cookies.session()))
    if current is None:
        return redirect(url_for("flows.account_sessions"), code=303)
    user = db.session.get(User, current.user_id)
    assert user is not None
    if request.method == "GET":
        return _page("change_password.html", problems=[], changed=False)
    old = request.form.get("current_password", "")[:1100]
    new = request.form.get("new_password", "")[:1100]
    ip = request_origin().ip or ""
    if svc.shields.ip_retry_after(ip):
        return _page(
            "change_password.html", 429, problems=["Too many attempts. Try later."], changed=False
        )
    # the current password goes through the login shields: a stolen session is no oracle
    blocked = svc.shields.is_blocked(user.email, ip)
    correct = svc.passwords.verify(None if blocked else user.password_hash, old)  # same work
    if blocked or not correct:
        if not blocked:
            svc.shields.on_failure(user.email, ip)
            db.session.commit()
        return _page(
            "change_password.html", 400, problems=["The current password is wrong."], changed=False
        )
    problems = svc.policy.problems(new, user.email)
    if problems:
        return _page("change_password.html", 400, problems=problems, changed=False)
    identity.set_password(db.session, svc.passwords, user, new)
    tokens.spend_all(db.session, tokens.RESET_PASSWORD, user.id)
    ended = flows.end_user_sessions(db.session, user.id, keep_sid=current.sid)
    audit.record(
        db.session,
        events.PASSWORD_CHANGED,
        "Password changed",
        request_origin(),
        user_id=user.id,
        details={"other_sessions_ended": ended},
    )
    db.session.commit()
    registration.post_change_password(user)
    return _page("change_password.html", problems=[], changed=True)
