"""Logins through an upstream identity provider (a social or enterprise connection): the
browser's side of the two legs that ``idp.connections.upstream`` speaks.

1. The login page's "Continue with ..." button (``POST /interaction/<uid>/connection/<name>``)
   or ``connection=<name>`` at ``/authorize`` sends the browser to the upstream with
   ``state = <interaction uid>.<secret>``; only the secret's digest is kept, in the
   interaction, with the PKCE verifier and nonce the upstream leg needs.
2. ``/login/callback/<name>`` (the connection's redirect URI) opens that interaction *for this
   browser only* (its cookie binds it, so a state carried to another browser finds nothing),
   checks the secret, spends it, and lets the upstream leg verify the answer.
3. ``idp.connections.accounts.match`` says who that is: a known identity logs in, a new
   upstream account makes a new user (the registration triggers run), and an existing user
   with the same verified address is offered a link (``idp.flows.linking``). Every way ends
   in the one ``pipeline.complete_login``, so MFA and the post-login chain apply to all.

Any failure ends at the application's redirect URI as ``access_denied`` with a safe
description (``step.fail``), recorded in the tenant log with its reason; never a 500.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict
from typing import Any
from urllib.parse import quote, urlencode

from flask import redirect, request
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from idp.actions import registration
from idp.audit import events
from idp.audit import service as audit
from idp.connections import accounts, strategies, upstream
from idp.connections import service as connections
from idp.connections.models import Connection
from idp.core.crypto import sha256_hex
from idp.extensions import csrf, db, services
from idp.flows import federation, pipeline
from idp.flows import saml as saml_views
from idp.flows.pages import error_page, expired_page
from idp.flows.step import Step, fail, persist, show
from idp.flows.views import bp, request_origin
from idp.i18n import N_
from idp.identity import service as identity

LINK_PROMPT = "link"
NOT_PROVED = N_("The account you signed in with is not the one to link.")
AGAIN = N_("This sign-in was already completed in another window. Please sign in again.")
FEDERATED = "federated"  # the session's amr and event.authentication.methods (Auth0's name)
_MAX_PARAM = 4096


@bp.route("/interaction/<uid>/connection/<name>", methods=["POST"])
def start_connection(uid: str, name: str) -> Response:
    """The login page's "Continue with ..." button."""
    step, page = pipeline.open_step(uid)
    if step is None:
        assert page is not None
        return page
    if step.state.prompt != "login":
        return pipeline.resend(step) or expired_page()
    connection = federation.social_connection(step.client, name[:63])
    if connection is None:
        return error_page(
            "Sign-in method not available",
            "This sign-in method is not available for this application.",
            404,
        )
    return federation.go_upstream(step, connection)


def _callback_params() -> dict[str, str]:
    return {k: v[:_MAX_PARAM] for k, v in request.args.items() if len(k) <= 64}


@bp.route(federation.CALLBACK_PATH, methods=["GET", "POST"])
@csrf.exempt  # as callback(), which it is
def callback_by_query() -> Response:
    """``/login/callback?connection=NAME`` (Auth0's spelling of a SAML connection's ACS): the
    same handler as the path form. The ACS advertised in the SP metadata, and so the one
    ``Destination`` and ``Recipient`` must name (SAML 2.0 Bindings §3.5.5.2), stays the path
    form (``federation.redirect_uri``): one URL, compared exactly."""
    name = request.args.get("connection", "")
    if not name:
        return error_page("Not found", "There is no such sign-in method.", 404)
    return callback(name)


@bp.route(federation.CALLBACK_PATH + "/<name>", methods=["GET", "POST"])
@csrf.exempt  # the upstream posts here (form_post); the state bound to the browser guards it
def callback(name: str) -> Response:
    """Connection ``name``'s redirect URI (step 2 above)."""
    name = name[:63]
    if request.method == "POST":
        # an IdP's SAMLResponse with many groups or an encrypted assertion passes the 64 KB
        # that is plenty everywhere else (Flask 3.1: a per-request limit)
        request.max_content_length = saml_views.MAX_BODY
    if request.method == "POST" and "SAMLResponse" in request.form:
        return saml_views.accept_post(name)  # too big for a URL: kept, then the GET below
    if request.method == "POST":
        # response_mode=form_post: a cross-site POST carries no SameSite=Lax cookie, so the
        # browser is sent on to the GET form of this page, a top-level navigation that does.
        form = {k: v[:_MAX_PARAM] for k, v in request.form.items() if len(k) <= 64}
        target = f"{federation.CALLBACK_PATH}/{quote(name, safe='')}?{urlencode(form)}"
        resp = redirect(target, 303)
        resp.headers["Cache-Control"] = "no-store"
        return resp
    params = _callback_params()
    uid, _, secret = params.get("state", "").partition(".")
    step, page = pipeline.open_step(uid)
    if step is None:
        assert page is not None
        return page
    pending = step.state.upstream
    if step.state.prompt not in ("login", LINK_PROMPT) or pending is None:
        return pipeline.resend(step) or expired_page()
    expected = str(pending.get("connection", ""))
    if not hmac.compare_digest(sha256_hex(secret), str(pending.get("state", ""))):
        return federation.failed(
            step, expected, "state_mismatch", "The sign-in could not be verified."
        )
    if name != expected:  # an answer from another upstream than the one chosen: mix-up
        return federation.failed(
            step, expected, "mix_up", "The sign-in could not be verified.", f"came back on {name}"
        )
    step.state.upstream = None  # single use, committed before the upstream is called
    persist(step, step.state.prompt)
    connection = federation.social_connection(step.client, name)
    if connection is None:
        return federation.failed(
            step, name, "connection_disabled", "This sign-in method is not available."
        )
    strategy = connection.strategy
    options = strategies.unseal(services().box, connection.options)
    db.session.commit()  # nothing open while the upstream answers (SQLite: one writer)
    kept = dict(pending.get("kept") or {})
    try:
        if strategies.protocol(strategy) == strategies.SAMLP:
            profile = federation.call_upstream(
                lambda: saml_views.finish(name, options, pending, params.get("state", ""))
            )
        else:
            profile = federation.call_upstream(
                lambda: upstream.finish(
                    strategy, options, redirect_uri=federation.redirect_uri(name),
                    params=params, kept=kept, settings=federation.settings(),
                )
            )  # fmt: skip
    except upstream.UpstreamError as exc:
        return federation.failed(step, name, exc.reason, exc.description, exc.detail)
    return signed_in(step, connection, profile)


def signed_in(step: Step, connection: Connection, profile: upstream.UpstreamProfile) -> Response:
    """The upstream vouched for ``profile``: log in, create, or offer a link (step 3)."""
    box = services().box
    found = accounts.match(db.session, connection, profile)
    if step.state.link is not None:  # this login proves the account a link waits for
        return _prove_link(step, connection, found)
    if found.kind == accounts.REFUSE:
        return federation.failed(step, connection.name, "refused", found.reason)
    if found.kind == accounts.LINK:
        assert found.user is not None
        return offer_link(step, connection, profile, found.user)
    if found.kind == accounts.LOGIN:
        assert found.user is not None
        if found.identity is None:  # trusted verified email: linked automatically
            record_link(step, found.user.id, connection, "automatically (verified email)")
        accounts.remember(db.session, box, found.user, connection, profile, found.identity)
        if not written(step, connection):
            return federation.failed(step, connection.name, "concurrent_link", AGAIN)
        _count(step, found.user, connection)
        return pipeline.complete_login(step, found.user, [FEDERATED], connection.name)
    return _create(step, connection, profile)


def written(step: Step, connection: Connection) -> bool:
    """Flush a new identity (and user): False when a concurrent request wrote the same
    upstream account first (the unique key decides; the transaction is rolled back)."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def _count(step: Step, user: Any, connection: Connection) -> None:
    """A login like any other: counted atomically and in the tenant log."""
    identity.count_login(db.session, user)
    audit.record(
        db.session, events.LOGIN_SUCCESS, f"Successful login through {connection.name}",
        request_origin(), user_id=user.id, client_id=step.request.client_id,
        details={"connection": connection.name},
    )  # fmt: skip


def offer_link(
    step: Step, connection: Connection, profile: upstream.UpstreamProfile, user: Any
) -> Response:
    """Keep the upstream login, sealed, and ask the person to prove ``user``'s account
    (``idp.flows.linking``)."""
    sealed = services().box.encrypt(json.dumps(asdict(profile)).encode()).decode()
    step.state.link = {"connection": connection.name, "user_id": user.id, "sealed": sealed}
    return show(step, LINK_PROMPT, lambda row: redirect(f"/interaction/{row.uid}/link", 303))


def pending_link(step: Step) -> tuple[Connection, upstream.UpstreamProfile] | None:
    """The upstream login waiting to be linked (its connection still enabled), unsealed."""
    pending = step.state.link or {}
    connection = federation.social_connection(step.client, str(pending.get("connection")))
    if connection is None or "sealed" not in pending:
        return None
    data = json.loads(services().box.decrypt(str(pending["sealed"]).encode()))
    return connection, upstream.UpstreamProfile(**data)


def link_pending(step: Step, user: Any, how: str, amr: list[str]) -> Response:
    """Add the waiting identity to ``user``, who just proved the account (``how``), and log
    in, in one transaction with the new session."""
    waiting = pending_link(step)
    if waiting is None:
        return fail(step, "access_denied", "This sign-in can no longer be linked.")
    connection, profile = waiting
    if connections.find_identity(db.session, connection, profile.user_id) is not None:
        return fail(step, "access_denied", "This account is already linked.")
    accounts.remember(db.session, services().box, user, connection, profile, None)
    if not written(step, connection):
        return fail(step, "access_denied", AGAIN)
    record_link(step, user.id, connection, how)
    return pipeline.complete_login(step, user, amr, connection.name)


def _prove_link(step: Step, proving: Connection, found: accounts.Match) -> Response:
    """A login through one of the account's own connections proves it: it must be an
    identity the account already has (never a new or auto-linked one)."""
    target = str((step.state.link or {}).get("user_id"))
    if found.kind != accounts.LOGIN or found.identity is None or found.user is None:
        return federation.failed(step, proving.name, "link_not_proved", NOT_PROVED)
    if found.user.id != target:
        return federation.failed(step, proving.name, "link_not_proved", NOT_PROVED)
    return link_pending(step, found.user, f"after a login through {proving.name}", [FEDERATED])


def record_link(step: Step, user_id: str, connection: Connection, how: str) -> None:
    audit.record(
        db.session, events.IDENTITY_LINKED, f"Linked {connection.name} {how}", request_origin(),
        user_id=user_id, client_id=step.request.client_id,
        details={"connection": connection.name},
    )  # fmt: skip


def _create(step: Step, connection: Connection, profile: upstream.UpstreamProfile) -> Response:
    """A first login through ``connection``: pre-user-registration may refuse or add
    metadata, then the user and the identity are written with the session, in one
    transaction; post-user-registration runs after it, in the background."""
    client = step.client
    outcome = registration.pre_registration(profile.email or "", client, connection.name)
    refusal = registration.refusal(outcome)
    if refusal is not None:
        return federation.failed(step, connection.name, "registration_refused", refusal)
    user = accounts.create_user(db.session, connection, profile)
    registration.apply_metadata(user, outcome)
    accounts.remember(db.session, services().box, user, connection, profile, None)
    if not written(step, connection):  # the same account's first login, twice at once
        return federation.failed(step, connection.name, "concurrent_signup", AGAIN)
    audit.record(
        db.session, events.SIGNUP_SUCCESS, f"Signed up through {connection.name}",
        request_origin(), user_id=user.id, client_id=step.request.client_id,
    )  # fmt: skip
    _count(step, user, connection)
    resp = pipeline.complete_login(step, user, [FEDERATED], connection.name)
    registration.post_registration(user, client, connection.name)
    return resp
