"""The browser's side of SAML connections (the SAML bridge): the SP's metadata, and the
assertion consumer service's POST.

The IdP answers with an HTTP-POST (SAML 2.0 Bindings §3.5) from its own site: a cross-site
POST, which carries no ``SameSite=Lax`` interaction cookie, and a ``SAMLResponse`` too big to
re-send in a URL as OIDC's ``form_post`` is. So the POST is checked against the pending
login it names (``RelayState`` = ``<uid>.<secret>``: the secret's digest must match, which
only the browser that started and the IdP know), its response is kept in that interaction,
and the browser is sent on to the GET form of the callback, where the interaction cookie
binds it and everything else happens as for any connection (``idp.flows.connection``).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import quote, urlencode

from flask import make_response, redirect, request
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.connections import replay, saml, strategies
from idp.connections.models import Connection
from idp.connections.upstream import UpstreamError, UpstreamProfile
from idp.core.crypto import sha256_hex
from idp.extensions import db
from idp.flows import federation, saml_initiated
from idp.flows.pages import error_page
from idp.flows.state import load, save
from idp.flows.views import bp
from idp.stores import STORES

MAX_BODY = 768 * 1024  # the ACS's request body (set per request by the callback)
MAX_RESPONSE = federation.SAML_MAX_RESPONSE  # the base64 SAMLResponse in it


def _samlp(name: str) -> Connection | None:
    found = db.session.scalar(select(Connection).where(Connection.name == name[:63]))
    if found is None or strategies.protocol(found.strategy) != strategies.SAMLP:
        return None
    return found


@bp.route("/samlp/metadata", methods=["GET"])
def sp_metadata_by_query() -> Response:
    """``/samlp/metadata?connection=NAME`` (Auth0's spelling): the same document as
    :func:`sp_metadata`. The entity ID it names stays the path form, the one URL every IdP
    already registered (its Audience must not change with the spelling used to fetch it)."""
    return sp_metadata(request.args.get("connection", ""))


@bp.route("/samlp/metadata/<name>", methods=["GET"])
def sp_metadata(name: str) -> Response:
    """The SP's metadata for connection ``name`` (SAML 2.0 Metadata §2.4.4): its entity ID is
    this URL; the IdP's administrator loads it."""
    connection = _samlp(name) if name else None
    if connection is None:
        return error_page("Not found", "There is no such SAML connection.", 404)
    xml = saml.sp_metadata(dict(connection.options), federation.sp_of(connection.name))
    resp = make_response(xml)
    resp.headers["Content-Type"] = "application/samlmetadata+xml"
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def _unusable() -> Response:
    return error_page(
        "This sign-in cannot be completed",
        "The answer from your organisation's sign-in page does not belong to a sign-in in "
        "progress. Go back to the application and sign in again.",
        400,
    )


def accept_post(name: str) -> Response:
    """The assertion consumer service's POST: keep the response in the login it names."""
    relay = request.form.get("RelayState", "")[:200]
    response = request.form.get("SAMLResponse", "")
    uid, _, secret = relay.partition(".")
    if not response or len(response) > MAX_RESPONSE:
        db.session.rollback()
        return _unusable()
    row = STORES.interactions.lock(db.session, uid) if uid and secret and len(uid) <= 64 else None
    state = load(row) if row is not None else None
    pending = state.upstream if state is not None else None
    if (
        row is None or state is None or pending is None
        or pending.get("connection") != name
        or not hmac.compare_digest(sha256_hex(secret), str(pending.get("state", "")))
    ):  # fmt: skip
        # no login in progress asked for it: unsolicited (IdP-initiated), when allowed
        connection = _samlp(name)
        if connection is not None and (connection.options or {}).get("idp_initiated"):
            return saml_initiated.accept(connection, response)
        db.session.rollback()
        return _unusable()
    pending["saml_response"] = response
    save(row, state)
    db.session.commit()
    target = f"{federation.CALLBACK_PATH}/{quote(name, safe='')}?{urlencode({'state': relay})}"
    resp = redirect(target, 303)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def finish(
    name: str, options: dict[str, Any], pending: dict[str, Any], relay: str
) -> UpstreamProfile:
    """The upstream leg's second half for a SAML connection (outside any transaction)."""
    response = pending.get("saml_response")
    if not isinstance(response, str) or not response:
        raise UpstreamError("no_response", "The sign-in could not be completed.", "no SAMLResponse")
    return saml.finish(
        options, sp=federation.sp_of(name), saml_response=response, relay_state=relay,
        kept=dict(pending.get("kept") or {}), settings=federation.saml_settings(),
        replay=replay.remember,
    )  # fmt: skip
