"""The consent page for third-party applications (OIDC Core §3.1.2.4, RFC 6749 §4.1.2.1)."""

from __future__ import annotations

from flask import make_response, render_template, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.consent import service as consent
from idp.extensions import db
from idp.flows import pipeline
from idp.flows.pages import error_page
from idp.flows.step import fail
from idp.flows.views import bp, request_origin
from idp.i18n import N_, gettext
from idp.oauth.claims_request import consent_scope

SCOPE_TEXT = {
    "openid": N_("Know who you are"),
    "profile": N_("See your name and profile"),
    "email": N_("See your email address"),
    "phone": N_("See your phone number"),
    "address": N_("See your postal address"),
    "offline_access": N_("Stay signed in to it when you are away"),
}


def _describe(grants: list[str]) -> list[str]:
    out = []
    for item in grants:
        if "\t" in item:
            audience, scope = item.split("\t", 1)
            out.append(gettext("{scope} on {audience}", scope=scope, audience=audience))
        else:
            out.append(SCOPE_TEXT.get(item, item))
    return out


def _expired() -> Response:
    return error_page(
        "Request expired",
        "This page is no longer valid. Go back to the application and sign in again.",
    )


@bp.route("/interaction/<uid>/consent", methods=["GET", "POST"])
def consent_page(uid: str) -> Response:
    step, _page = pipeline.open_step(uid)
    if step is not None and step.state.prompt != "consent" and step.state.consented:
        # "Allow" posted twice: the first moved the login on; follow it rather than show
        # "expired" in place of the next page or the application
        again = pipeline.resend(step) if request.form.get("decision") == "allow" else None
        if again is not None:
            return again
    if step is None or step.state.prompt != "consent" or not step.bound:
        return _expired()
    assert step.session is not None
    user_id, client_id = step.session.user_id, step.request.client_id
    scope, audience = step.request.scope, step.request.audience
    # claims asked for by name need their scope's consent (idp.oauth.claims_request)
    wanted = consent.requested_grants(consent_scope(scope, step.request.params), audience)
    if request.method == "POST":
        if request.form.get("decision") == "allow":
            consent.record(db.session, user_id, client_id, wanted)
            audit.record(
                db.session,
                events.CONSENT_GIVEN,
                "Consent given",
                request_origin(),
                user_id=user_id,
                client_id=client_id,
                details={"scope": scope, "audience": audience},
            )
            step.state.consented = True
            return pipeline.advance(step)
        audit.record(
            db.session,
            events.CONSENT_DENIED,
            "Consent denied",
            request_origin(),
            user_id=user_id,
            client_id=client_id,
        )
        # RFC 6749 §4.1.2.1 access_denied, to the redirect URI the pipeline re-checks
        return fail(step, "access_denied", N_("The user denied the request."))
    # Ask only for what is new; on prompt=consent with nothing new, show everything.
    missing = consent.missing_grants(db.session, user_id, client_id, wanted)
    items = _describe(missing or wanted)
    resp = make_response(
        render_template("consent.html", uid=uid, app_name=step.client.name, items=items)
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp
