"""``POST /oauth/register`` (RFC 7591 §3) and ``GET``/``PUT``/``DELETE`` on a client's
``registration_client_uri`` (RFC 7592 §2), while ``DYNAMIC_REGISTRATION_ENABLED`` is on (off:
404, and no ``registration_endpoint`` in the metadata). Both are rate-limited per IP
(``DYNAMIC_REGISTRATION_REQUESTS_PER_IP`` per ``DYNAMIC_REGISTRATION_WINDOW_SECONDS``, on the
attack protection's counter store, so shared between instances with Redis); every outcome is a
tenant log event (never with a token)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.core.crypto import sha256_hex
from idp.core.net import client_ip
from idp.extensions import Services, csrf, db, services
from idp.oauth import registration
from idp.oauth.discovery import contributes
from idp.oauth.registration_metadata import MetadataError
from idp.oauth.views import NO_STORE

PATH = "/oauth/register"
bp = Blueprint("registration", __name__)
csrf.exempt(bp)  # bearer-token endpoints, no browser session


def request_origin() -> audit.Origin:
    """The client's address (``X-Forwarded-For`` only from the trusted proxies) and agent."""
    ip = client_ip(
        request.remote_addr, request.headers.get("X-Forwarded-For"), services().trusted_proxies
    )
    return audit.Origin(ip, request.headers.get("User-Agent"))


def _json(body: dict[str, Any] | None, status: int) -> Response:
    resp = Response(json.dumps(body) if body is not None else None, status=status,
                    mimetype="application/json" if body is not None else None)  # fmt: skip
    resp.headers.update(NO_STORE)
    return resp


def _invalid_token(description: str) -> Response:
    """RFC 6750 §3.1 (RFC 7591 §3, RFC 7592 §2.1): 401 ``invalid_token``."""
    resp = _json({"error": "invalid_token", "error_description": description}, 401)
    resp.headers["WWW-Authenticate"] = 'Bearer realm="idp", error="invalid_token"'
    return resp


def _bearer() -> str | None:
    kind, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if kind.lower() == "bearer" else None


def _body() -> Any:
    return request.get_json(silent=True) if request.is_json else None


def _gate() -> Response | None:
    """404 while off; 429 past the per-IP rate (every request counts, before any token is
    looked at, so guessing tokens is throttled too)."""
    svc = services()
    if not svc.config["DYNAMIC_REGISTRATION_ENABLED"]:
        return _json({"error": "not_found"}, 404)
    ip = request_origin().ip or ""
    window = int(svc.config["DYNAMIC_REGISTRATION_WINDOW_SECONDS"])
    count = svc.shields.store.hit(f"req:dcr:{sha256_hex(ip)[:32]}", window)
    db.session.commit()  # the count stays, whatever the request's own work becomes
    if count > int(svc.config["DYNAMIC_REGISTRATION_REQUESTS_PER_IP"]):
        resp = _json({"error": "invalid_request",
                      "error_description": "Too many registration requests."}, 429)  # fmt: skip
        resp.headers["Retry-After"] = str(window)
        return resp
    return None


def _log(kind: str, description: str, client_id: str | None = None, **details: Any) -> None:
    audit.record(db.session, kind, description, request_origin(), client_id=client_id,
                 details=details)  # fmt: skip
    db.session.commit()


def _refused(exc: MetadataError | registration.InvalidToken, action: str) -> Response:
    db.session.rollback()
    if isinstance(exc, registration.InvalidToken):
        _log(events.CLIENT_REGISTRATION_REFUSED, f"{action}: invalid token", error="invalid_token")
        return _invalid_token(str(exc))
    _log(events.CLIENT_REGISTRATION_REFUSED, f"{action}: {exc}"[:500], error=exc.error,
         field=exc.field)  # fmt: skip
    return _json({"error": exc.error, "error_description": str(exc)}, 400)


def _answer(done: registration.Registered, status: int) -> Response:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the metadata as stored, the secrets issued now."""
    out = dict(done.metadata)
    if done.client_secret is not None:
        out["client_secret"] = done.client_secret
    if done.registration_access_token is not None:
        out["registration_access_token"] = done.registration_access_token
    out["registration_client_uri"] = _client_uri(services(), done.client.client_id)
    return _json(out, status)


def _client_uri(svc: Services, client_id: str) -> str:
    return f"{svc.issuer.issuer}{PATH}/{client_id}"


@bp.route(PATH, methods=["POST"])
def register() -> Response:
    """RFC 7591 §3.1. The initial access token is checked before any work, its use counted
    (atomically, idp.oauth.registration) with the new client's rows, so a refused request
    uses nothing up."""
    gate = _gate()
    if gate is not None:
        return gate
    svc = services()
    token = _bearer()
    try:
        registration.check_initial_token(db.session, svc.box, token)
        db.session.rollback()  # end the read: nothing is held while metadata is fetched
        done = registration.register(db.session, svc.box, svc.config, _body(), "")
        db.session.flush()
        done.record.initial_token_id = registration.use_initial_token(db.session, svc.box, token)
        db.session.commit()
    except (MetadataError, registration.InvalidToken) as exc:
        return _refused(exc, "Client registration refused")
    svc.clients.invalidate()
    _log(events.CLIENT_REGISTERED, "Client registered (RFC 7591)", done.client.client_id,
         initial_token_id=done.record.initial_token_id)  # fmt: skip
    return _answer(done, 201)


@bp.route(f"{PATH}/<client_id>", methods=["GET", "PUT", "DELETE"])
def manage(client_id: str) -> Response:
    """RFC 7592 §2.1 read, §2.2 update (the registration access token rotates), §2.3 delete."""
    gate = _gate()
    if gate is not None:
        return gate
    svc, token = services(), _bearer()
    action = {"GET": "Read", "PUT": "Update", "DELETE": "Delete"}[request.method]
    try:
        client, record = registration.authenticate(db.session, svc.box, client_id, token)
        if request.method == "GET":
            return _json(
                dict(
                    registration.read(client, record),
                    registration_client_uri=_client_uri(svc, client.client_id),
                ),
                200,
            )
        if request.method == "DELETE":
            registration.remove(db.session, client)
            db.session.commit()
            svc.clients.invalidate()
            _log(events.CLIENT_REGISTRATION_DELETED, "Client deleted by itself (RFC 7592)",
                 client_id)  # fmt: skip
            return _json(None, 204)
        assert token is not None
        done = registration.replace(db.session, svc.box, svc.config, client, record, token,
                                    _body())  # fmt: skip
        db.session.commit()
    except (MetadataError, registration.InvalidToken) as exc:
        return _refused(exc, f"{action} of a client registration refused")
    svc.clients.invalidate()
    _log(events.CLIENT_REGISTRATION_UPDATED, "Client metadata replaced (RFC 7592)", client_id)
    return _answer(done, 200)


@contributes
def _registration_endpoint(document: dict[str, Any], svc: Services) -> None:
    """RFC 8414 §2 / OIDC Discovery §3 ``registration_endpoint``, only while enabled."""
    if svc.config["DYNAMIC_REGISTRATION_ENABLED"]:
        document["registration_endpoint"] = f"{svc.issuer.issuer}{PATH}"
