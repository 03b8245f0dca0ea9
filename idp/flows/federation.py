"""Sending a login to an upstream identity provider (step 1 of ``idp.flows.connection``),
shared by the login page's buttons and ``connection=`` at ``/authorize`` (the login prompt of
``idp.flows.policy``). Only the state secret's digest is kept, with what the upstream leg
needs (PKCE verifier, nonce), in the interaction; the browser carries ``<uid>.<secret>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from flask import make_response, redirect, render_template
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.actions.chains import OpenTransactionError
from idp.audit import events
from idp.audit import service as audit
from idp.connections import saml, strategies, upstream
from idp.connections import service as connections
from idp.connections.models import Connection
from idp.core.crypto import random_token, sha256_hex
from idp.core.http import parse_networks
from idp.extensions import db, services
from idp.flows.origin import request_origin
from idp.flows.step import Step, fail, persist, show
from idp.stores import STORES

CALLBACK_PATH = "/login/callback"
T = TypeVar("T")


def settings() -> upstream.Settings:
    config = services().config
    return upstream.Settings(
        allowed_networks=parse_networks(str(config["CONNECTIONS_ALLOW_NETWORKS"])),
        timeout=float(config["CONNECTIONS_HTTP_TIMEOUT"]),
        max_body=int(config["CONNECTIONS_MAX_RESPONSE_BYTES"]),
    )


SAML_MAX_RESPONSE = 640 * 1024  # the base64 SAMLResponse an ACS accepts (many groups...)


def saml_settings() -> upstream.Settings:
    """The upstream settings with room for the SAMLResponse the ACS accepted (its XML is up
    to 3/4 of the base64 field)."""
    base = settings()
    return dataclasses.replace(base, max_body=max(base.max_body, SAML_MAX_RESPONSE))


def redirect_uri(name: str) -> str:
    """Connection ``name``'s redirect URI, one per connection (``/login/callback/<name>``):
    an answer that comes back on another connection's URI is refused, which defeats the
    mix-up attack (RFC 9207 §1; OAuth 2.0 Security BCP §4.4.2) even with upstreams that
    send no ``iss`` (every plain OAuth 2.0 one)."""
    return f"{services().issuer.issuer}{CALLBACK_PATH}/{name}"


def call_upstream(call: Callable[[], T]) -> T:
    """Run an upstream call outside any transaction: it may wait seconds on the network, and
    SQLite has one writer (an open transaction would block every other write meanwhile)."""
    if db.session.in_transaction():
        raise OpenTransactionError("commit before calling an upstream")
    return call()


def social_connection(client: Any, name: str) -> Connection | None:
    """Connection ``name`` when it is an upstream one enabled for ``client``; else None."""
    if not connections.is_enabled(client, name) or name == connections.DATABASE:
        return None
    found = STORES.connections.by_name(db.session, name)
    if found is None or not strategies.is_upstream(found.strategy):
        return None
    return found


def home_realm(client: Any, email: str) -> Connection | None:
    """Home Realm Discovery: the SAML connection enabled for ``client`` whose ``domains``
    hold ``email``'s domain (the operator's routing of a company's users to its IdP)."""
    names = [n for n in getattr(client, "connections", ()) if n != connections.DATABASE]
    domain = email.rpartition("@")[2].strip().lower()
    if not names or not domain:
        return None
    rows = db.session.scalars(
        select(Connection)
        .where(Connection.name.in_(names), Connection.strategy == strategies.SAMLP)
        .order_by(Connection.position, Connection.name)
    )
    for connection in rows:
        if domain in [d.lower() for d in (connection.options or {}).get("domains", [])]:
            return connection
    return None


def failed(
    step: Step, connection: str, reason: str, description: str, detail: str = ""
) -> Response:
    audit.record(
        db.session, events.CONNECTION_LOGIN_FAILURE, f"Login through {connection} failed: {reason}",
        request_origin(), client_id=step.request.client_id,
        details={"connection": connection, "reason": reason, "detail": detail[:500]},
    )  # fmt: skip
    return fail(step, "access_denied", description)


def go_upstream(step: Step, connection: Connection, prompt: str = "login") -> Response:
    """Send the browser to the upstream's authorization endpoint (step 1 above); ``prompt``
    is the step the answer settles (``login``, or ``link``: proving an account to link)."""
    secret = random_token(24)
    name, strategy = connection.name, connection.strategy
    options = strategies.unseal(services().box, connection.options)  # read before the commit
    row = persist(step, prompt)
    uid = row.uid
    db.session.commit()  # the upstream leg may fetch discovery: no transaction across it
    try:
        started = call_upstream(lambda: _begin(step, strategy, name, options, f"{uid}.{secret}"))
    except upstream.UpstreamError as exc:
        return failed(step, name, exc.reason, exc.description, exc.detail)
    step.state.upstream = {
        "connection": name, "state": sha256_hex(secret), "kept": started.kept,
    }  # fmt: skip
    if started.form is not None:  # SAML's HTTP-POST binding: a page that posts, no script
        form = started.form
        return show(step, prompt, lambda _row: post_page(started.url, form))
    return show(step, prompt, lambda _row: redirect(started.url, 303))


def _begin(
    step: Step, strategy: str, name: str, options: dict[str, Any], state: str
) -> upstream.Started:
    if strategies.protocol(strategy) == strategies.SAMLP:
        req = step.request
        # SAML 2.0 Core §3.4.1: ForceAuthn, when the app asked for a fresh login
        force = "login" in req.prompts or req.max_age is not None
        return saml.begin(
            options, sp=sp_of(name), relay_state=state, force_authn=force, settings=settings()
        )
    return upstream.begin(
        strategy, options, redirect_uri=redirect_uri(name), state=state,
        login_hint=step.request.params.get("login_hint"), settings=settings(),
    )  # fmt: skip


def sp_of(name: str) -> saml.Sp:
    """Where idp's SAML service provider for connection ``name`` lives; its ACS is the
    connection's callback, like every other connection's."""
    issuer = services().issuer.issuer
    return saml.Sp(
        entity_id=f"{issuer}/samlp/metadata/{name}",
        acs_url=redirect_uri(name),
        slo_url=f"{issuer}/samlp/logout/{name}",
    )


def post_page(url: str, fields: dict[str, str]) -> Response:
    """A page whose one button posts ``fields`` to ``url`` (SAML 2.0 Bindings §3.5: without
    JavaScript the user presses it)."""
    resp = make_response(render_template("post_binding.html", url=url, fields=fields))
    resp.headers["Cache-Control"] = "no-store"
    return resp
