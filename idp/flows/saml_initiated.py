"""IdP-initiated SAML SSO (off unless the connection's operator turns it on): a response
nobody asked for, from a company's IdP portal.

idp never mints a code without an authorization request from the app (that is what makes
IdP-initiated SSO dangerous in OAuth: a code the app did not ask for). Instead the response,
fully checked (signature, audience, recipient, time, replay; no InResponseTo), signs the user
in to idp, a session like any other, and the browser is sent to the connection's default
app's ``initiate_login_uri`` (OIDC Core §4, "Initiating Login from a Third Party"): the app
starts its own authorization request, which finds the session (and still takes idp's MFA
step and post-login chain). Like every unsolicited response, it can log a browser into the
account of whoever holds a valid response (login CSRF): that is why it is off by default.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import redirect, request
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from idp.actions import registration
from idp.audit import events
from idp.audit import service as audit
from idp.connections import accounts, replay, saml, strategies
from idp.connections import service as connections
from idp.connections.models import Connection
from idp.connections.upstream import UpstreamError, UpstreamProfile
from idp.extensions import db, services
from idp.flows import cookies, federation
from idp.flows import service as flows
from idp.flows.origin import request_origin
from idp.flows.pages import error_page
from idp.identity import service as identity
from idp.identity.models import User
from idp.tenant.settings import setting

FEDERATED = "federated"


def _refused(connection: str, reason: str, text: str, detail: str = "") -> Response:
    db.session.rollback()
    audit.record(
        db.session, events.CONNECTION_LOGIN_FAILURE,
        f"IdP-initiated login through {connection} failed: {reason}", request_origin(),
        details={"connection": connection, "reason": reason, "detail": detail[:500]},
    )  # fmt: skip
    db.session.commit()
    return error_page("This sign-in cannot be completed", text, 400)


def accept(connection: Connection, response: str) -> Response:
    """An unsolicited response for ``connection`` (whose ``idp_initiated`` is on)."""
    name = connection.name
    options = strategies.unseal(services().box, connection.options)
    client = services().clients.get(str(options.get("default_client_id", "")))
    target = getattr(client, "initiate_login_uri", None)
    if client is None or not target or not connections.is_enabled(client, name):
        return _refused(name, "no_default_app", "No application is set up for this sign-in.")
    db.session.commit()  # nothing open while the response is checked (xmlsec1 runs)
    try:
        profile = federation.call_upstream(
            lambda: saml.finish(
                options, sp=federation.sp_of(name), saml_response=response, relay_state=None,
                kept=None, settings=federation.saml_settings(), replay=replay.remember,
            )
        )  # fmt: skip
    except UpstreamError as exc:
        return _refused(name, exc.reason, exc.description, exc.detail)
    user = _user_for(connection, profile, client)
    if isinstance(user, Response):
        return user
    if user.blocked:  # an operator's block: no session through any connection
        return _refused(name, "user_blocked", "This account is blocked.")
    ttl = int(setting("SESSION_TTL"))  # the tenant's (session_lifetime), else the config's
    # The browser's session, when its cookie came along: the same user's goes on under a new
    # cookie, another user's ends. A cross-site POST (most IdPs) carries no SameSite=Lax cookie.
    previous = request.cookies.get(cookies.session())
    value, _row = flows.start_session(db.session, user.id, [FEDERATED], ttl, previous, name)
    identity.count_login(db.session, user)
    audit.record(
        db.session, events.LOGIN_SUCCESS, f"IdP-initiated login through {name}",
        request_origin(), user_id=user.id, client_id=client.client_id,
        details={"connection": name},
    )  # fmt: skip
    db.session.commit()
    resp = redirect(_initiate_login(target, user), 303)
    cookies.put(resp, cookies.session(), value, ttl)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _user_for(connection: Connection, profile: UpstreamProfile, client: Any) -> User | Response:
    """The known user, or a new one (the registration triggers run); a link needs the login
    page (the person proves the account), which an unsolicited response does not have."""
    box = services().box
    found = accounts.match(db.session, connection, profile)
    if found.kind == accounts.LOGIN and found.user is not None:
        accounts.remember(db.session, box, found.user, connection, profile, found.identity)
        return found.user
    if found.kind != accounts.CREATE:
        return _refused(
            connection.name, "refused" if found.kind == accounts.REFUSE else "link_needed",
            found.reason or "Sign in from the application to link your accounts.",
        )  # fmt: skip
    outcome = registration.pre_registration(profile.email or "", client, connection.name)
    refusal = registration.refusal(outcome)
    if refusal is not None:
        return _refused(connection.name, "registration_refused", refusal)
    user = accounts.create_user(db.session, connection, profile)
    registration.apply_metadata(user, outcome)
    accounts.remember(db.session, box, user, connection, profile, None)
    try:
        db.session.flush()
    except IntegrityError:
        return _refused(connection.name, "concurrent_signup", "Please sign in again.")
    registration.post_registration(user, client, connection.name)
    return user


def _initiate_login(target: str, user: User) -> str:
    """OIDC Core §4: ``iss`` (required) and ``login_hint``, added to the app's URI."""
    parts = urlsplit(target)
    extra = urlencode({"iss": services().issuer.issuer, "login_hint": user.email})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))
