"""Sign-up on the database connection and email verification.

Sign-up answers the same page, with the same status, whether or not the address already has
an account (no enumeration): a new address gets a verification link, a known one a notice.
Both paths pay for one argon2 hash, and mail leaves in the background.
"""

from __future__ import annotations

from flask import make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.actions import chains, registration
from idp.audit import events
from idp.audit import service as audit
from idp.extensions import db, services
from idp.flows import pipeline
from idp.flows.pages import error_page
from idp.flows.policy import database_refused
from idp.flows.views import bp, request_origin, too_many
from idp.i18n import gettext, link_params, use_ui_locales
from idp.identity import service as identity
from idp.identity import tokens
from idp.identity.models import User


def _page(template: str, status: int = 200, **ctx: object) -> Response:
    resp = make_response(render_template(template, **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/interaction/<uid>/signup", methods=["GET", "POST"])
def signup(uid: str) -> Response:
    svc = services()
    if not svc.config["SIGNUP_ENABLED"]:
        return error_page("Sign-up is disabled", "Ask an administrator for an account.", 404)
    step, page = pipeline.open_step(uid)
    if step is None:
        assert page is not None
        return page
    refused = database_refused(step.client)  # sign-up is the database connection's too
    if refused is not None:
        return refused
    client_id = step.request.client_id
    if request.method == "GET":
        return _page("signup.html", uid=uid, email="", problems=[])
    throttled = too_many("signup")
    if throttled is not None:
        return throttled
    email = identity.normalise_email(request.form.get("email", "")[:320])
    password = request.form.get("password", "")[:1100]
    problems = svc.policy.problems(password, email)
    if not identity.EMAIL.match(email):
        problems.insert(0, "Enter a valid email address.")
    if problems:
        audit.record(
            db.session,
            events.SIGNUP_FAILURE,
            "Sign-up refused by the password policy",
            request_origin(),
            client_id=client_id,
        )
        db.session.commit()
        return _page("signup.html", 400, uid=uid, email=email, problems=problems)
    outcome = registration.pre_registration(email, svc.clients.get(client_id))
    refusal = registration.refusal(outcome)
    if refusal is not None:
        audit.record(
            db.session,
            events.SIGNUP_FAILURE,
            "Sign-up refused by a pre-user-registration action",
            request_origin(),
            client_id=client_id,
        )
        db.session.commit()
        return _page("signup.html", 400, uid=uid, email=email, problems=[refusal])
    _register(email, password, client_id, outcome)
    return _page("signup_done.html", uid=uid, email=email)


def _register(email: str, password: str, client_id: str, outcome: chains.Outcome) -> None:
    svc = services()
    existing = db.session.get(User, identity.find_user_id(db.session, email) or "")
    if existing is not None:
        svc.passwords.hash(password)  # the same work as a real sign-up
        svc.mailer.send_later(
            email,
            gettext("Someone tried to sign up with your address"),
            gettext(
                "An account already exists for this address. If that was you, "
                "sign in, or reset your password from the sign-in page."
            ),
        )
        audit.record(
            db.session,
            events.SIGNUP_FAILURE,
            "Sign-up for an existing address",
            request_origin(),
            user_id=existing.id,
            client_id=client_id,
        )
        db.session.commit()
        return
    user = identity.create_user(
        db.session, svc.passwords, email=email, password=password, email_verified=False
    )
    registration.apply_metadata(user, outcome)
    value = tokens.issue(db.session, tokens.VERIFY_EMAIL, user.id, svc.config["VERIFY_LINK_TTL"])
    audit.record(
        db.session,
        events.SIGNUP_SUCCESS,
        "Signed up",
        request_origin(),
        user_id=user.id,
        client_id=client_id,
    )
    db.session.commit()
    registration.post_registration(user, svc.clients.get(client_id))
    link = svc.issuer.issuer + url_for("flows.verify_email", token=value, **link_params())
    svc.mailer.send_later(
        email,
        gettext("Verify your email address"),
        gettext("Open this link to verify your email address:\n\n{link}\n", link=link),
    )


@bp.route("/verify-email", methods=["GET", "POST"])
def verify_email() -> Response:
    """GET shows a button, POST spends the link: mail scanners that prefetch links do not."""
    value = (request.values.get("token") or "")[:128]
    use_ui_locales(request.args.get("ui_locales"), login=False)  # the mail's language
    if request.method == "GET":
        live = tokens.peek(db.session, tokens.VERIFY_EMAIL, value)
        return _page("verify_email.html", token=value, live=live, verified=False)
    user_id = tokens.redeem(db.session, tokens.VERIFY_EMAIL, value)
    user = db.session.get(User, user_id) if user_id else None
    if user is None:
        db.session.rollback()
        return _page("verify_email.html", 400, token="", live=False, verified=False)
    user.email_verified = True
    audit.record(
        db.session, events.EMAIL_VERIFIED, "Email verified", request_origin(), user_id=user.id
    )
    db.session.commit()
    return _page("verify_email.html", token="", live=False, verified=True)
