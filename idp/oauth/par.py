"""Pushed authorization requests (RFC 9126): ``POST /oauth/par``.

The client authenticates as at the token endpoint (every method idp offers, RFC 9126 §2), then
the body is validated exactly as ``/authorize`` validates a request (``validate``, a request
object included); the answer is a ``request_uri`` valid once for 60 seconds (§2.2), which
``/authorize`` takes with the ``client_id`` (``idp.oauth.request_source``). Errors are
RFC 9126 §2.3's JSON answers.

DPoP (RFC 9449 §10.1): a ``DPoP`` header is checked as at the token endpoint and its key's
thumbprint is stored with the pushed request as its ``dpop_jkt``, so the code is redeemed only
with a proof of that key; a ``dpop_jkt`` in the body (§10) is kept the same way, and with both
they must name the same key.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, jsonify, request
from sqlalchemy import delete
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from idp.core import clock
from idp.core.crypto import random_token, sha256_hex
from idp.extensions import Services, csrf, db
from idp.oauth import dpop_http
from idp.oauth.authorize import Rejection, validate
from idp.oauth.discovery import contributes
from idp.oauth.grants import USER_GRANT_AUTH_METHODS
from idp.oauth.models import PushedRequest
from idp.oauth.request_source import PAR_TTL, PAR_URN
from idp.oauth.server import authorization_server
from idp.oauth.views import _count_client_failure as count_client_failure

bp = Blueprint("par", __name__)
csrf.exempt(bp)  # clients authenticate themselves; no browser session is involved

CLIENT_AUTH_PARAMS = ("client_secret", "client_assertion", "client_assertion_type")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(error: str, description: str, status: int = 400) -> Response:
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = status
    resp.headers.update(NO_STORE)
    return resp


@bp.route("/oauth/par", methods=["POST"])
def pushed_authorization_request() -> Response:
    # RFC 9449 §8.2: with DPoP nonces required, every answer carries the current one
    return dpop_http.add_nonce(_pushed())


def _pushed() -> Response:
    if request.mimetype != "application/x-www-form-urlencoded":
        return _error("invalid_request", "Use application/x-www-form-urlencoded.")
    form: MultiDict[str, str] = request.form
    for key in ("client_id", *CLIENT_AUTH_PARAMS):
        if len(form.getlist(key)) > 1:
            return _error("invalid_request", f"Parameter {key!r} is repeated.")
    server = authorization_server()
    try:
        client: Any = server.authenticate_client(
            server.create_oauth2_request(request), USER_GRANT_AUTH_METHODS, "pushed_authorization"
        )
    except OAuth2Error as err:
        status = 401 if err.error == "invalid_client" else 400
        resp = _error(err.error, err.description or "Client authentication failed.", status)
        if status == 401:  # the token endpoint's throttle: PAR is no way around it
            resp = count_client_failure(resp)
        db.commit_if_used()  # a spent client-assertion jti stays spent
        return resp
    if form.get("client_id", client.client_id) != client.client_id:
        return _error("invalid_request", "client_id is not the authenticated client.")
    jkt, refusal = dpop_http.pushed_request_proof()  # RFC 9449 §10.1
    if refusal is not None:
        return refusal
    body: MultiDict[str, str] = MultiDict(
        [(k, v) for k, v in form.items(multi=True) if k not in CLIENT_AUTH_PARAMS]
    )
    body["client_id"] = client.client_id
    checked = validate(body, "POST", pushed=True)
    if isinstance(checked, Rejection):
        db.commit_if_used()
        return _error(checked.error, checked.description)
    params = dict(checked.params)
    # RFC 9449 §10.1: the proof's key binds the code as dpop_jkt does; both, they must agree
    if jkt is not None and params.setdefault("dpop_jkt", jkt) != jkt:
        return _error("invalid_request", "dpop_jkt is not the thumbprint of the DPoP key.")
    request_uri = PAR_URN + random_token(32)
    now = clock.now()
    db.session.add(
        PushedRequest(
            uri_hash=sha256_hex(request_uri),
            client_id=client.client_id,
            params=params,
            expires_at=now + PAR_TTL,
        )
    )
    if now % 16 == 0:  # now and then, drop what can no longer be used anyway
        db.session.execute(delete(PushedRequest).where(PushedRequest.expires_at < now))
    db.session.commit()
    resp = jsonify({"request_uri": request_uri, "expires_in": PAR_TTL})
    resp.status_code = 201
    resp.headers.update(NO_STORE)
    return resp


@contributes
def _discovery(document: dict[str, Any], svc: Services) -> None:
    """RFC 9126 §5."""
    document["pushed_authorization_request_endpoint"] = f"{svc.issuer.issuer}/oauth/par"
    document["require_pushed_authorization_requests"] = bool(
        svc.config["REQUIRE_PUSHED_AUTHORIZATION_REQUESTS"]
    )
