"""Where an authorization request's parameters come from (RFC 9101 §5, RFC 9126 §4): the query
or form itself, a request object by value (``request``), or a pushed authorization request
(``request_uri`` from ``/oauth/par``). :func:`resolve` runs before any other check of
``/authorize`` (and of ``/oauth/par``), which then validate the parameters it returns exactly
as they validate a plain request.

A ``request_uri`` is accepted only when it is one of ours (RFC 9101 §5.2 by reference is not
offered: idp fetches no request object from the client's server), for the client that pushed
it, within its 60 seconds, and once: one DELETE ... RETURNING takes it, so two browsers
presenting it at once cannot both get it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete
from werkzeug.datastructures import MultiDict

from idp.core import clock
from idp.core.crypto import sha256_hex
from idp.extensions import db, services
from idp.oauth import jar
from idp.oauth.models import PushedRequest

PAR_URN = "urn:ietf:params:oauth:request_uri:"
PAR_TTL = 60  # RFC 9126 §2.2's example; FAPI 2.0 asks for less than 600


def par_required(client_id: str | None) -> bool:
    """RFC 9126 §6: tenant-wide (``REQUIRE_PUSHED_AUTHORIZATION_REQUESTS``) or per client."""
    if services().config["REQUIRE_PUSHED_AUTHORIZATION_REQUESTS"]:
        return True
    client = services().clients.get(client_id or "")
    return bool(client is not None and client.require_pushed_authorization_requests)


def take(request_uri: str, client_id: str) -> dict[str, str] | None:
    """The pushed request's parameters, removed as they are read (single use)."""
    # one DELETE ... RETURNING: of two concurrent reads, one gets the row (RFC 9126 §4)
    taken = (
        delete(PushedRequest)
        .where(
            PushedRequest.uri_hash == sha256_hex(request_uri),
            PushedRequest.client_id == client_id,
            PushedRequest.expires_at > clock.now(),
        )
        .returning(PushedRequest.params)
    )
    row = db.session.execute(taken).fetchone()
    if row is None:
        return None
    stored: Any = row[0]
    params = json.loads(stored) if isinstance(stored, str | bytes) else stored
    return {str(k): str(v) for k, v in dict(params).items()}


def resolve(source: MultiDict[str, str], pushed: bool) -> MultiDict[str, str] | tuple[str, str]:
    """The parameters to validate, or (error, description) for a refusal. ``pushed``: this is
    the body of a pushed authorization request (RFC 9126 §2.1)."""
    request_uri = source.get("request_uri") or ""
    if request_uri:
        if pushed:
            return "invalid_request", "request_uri is not allowed in a pushed request."
        if source.get("request"):
            return "invalid_request", "request and request_uri are mutually exclusive."
        if not request_uri.startswith(PAR_URN):
            return "request_uri_not_supported", "Only request_uri values from /oauth/par work."
        stored = take(request_uri, source.get("client_id") or "")
        if stored is None:
            return "invalid_request_uri", "The request_uri is unknown, expired or used."
        return MultiDict(stored)
    if not pushed and par_required(source.get("client_id")):
        return "invalid_request", "This client must push its authorization requests (RFC 9126)."
    if source.get("request"):
        first = {k: v for k, v in source.items() if v != ""}
        try:
            unpacked = jar.unpack(first)
        except jar.RequestObjectError as err:
            return err.error, err.description
        unpacked["client_id"] = first.get("client_id", "")
        return MultiDict(unpacked)
    return source
