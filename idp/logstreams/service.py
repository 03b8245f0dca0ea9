"""Create, read, change and delete log streams; their Auth0 shape. No ``flask.request`` here
(the management API and the CLI both call it).

A stream starts at the newest event when it is created (Auth0's behaviour) unless
``start_from`` names a log id; it never reaches further back than that. Its signing secret is
made here and shown once; it and the optional ``Authorization`` value are sealed at rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.core import clock, http
from idp.core.crypto import SecretBox, random_token
from idp.core.errors import ConflictError, NotFoundError, ValidationError
from idp.logstreams import reader, wire
from idp.logstreams.models import LogStream

NAME = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
UNSET: Any = object()  # "leave as it is", distinct from None ("remove")


def hosts(config: Mapping[str, Any]) -> list[str]:
    return [h.strip() for h in str(config["LOG_STREAM_HOSTS"]).split(",") if h.strip()]


def check_endpoint(url: str, config: Mapping[str, Any]) -> str:
    """An https URL on the ``LOG_STREAM_HOSTS`` allow-list (http only where the operator
    allowed a private network, ``LOG_STREAM_ALLOW_NETWORKS``: a development receiver; the
    outbound guard still refuses http to any other address)."""
    allowed = hosts(config)
    if not allowed:
        raise ValidationError("log streams are not allowed here (set LOG_STREAM_HOSTS)")
    parts = urlsplit(url)
    schemes = {"https", "http"} if str(config["LOG_STREAM_ALLOW_NETWORKS"]).strip() else {"https"}
    if len(url) > 512 or parts.scheme not in schemes or not parts.hostname or parts.fragment:
        raise ValidationError("'sink.httpEndpoint' must be an https URL without a fragment")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("'sink.httpEndpoint' must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port out of range or not a number
        raise ValidationError("'sink.httpEndpoint' is malformed") from None
    if not http._host_allowed(parts.hostname.lower(), port, allowed):
        raise ValidationError("this endpoint's host is not allowed (LOG_STREAM_HOSTS)")
    return url


def check_authorization(value: str) -> str:
    """Sent verbatim as the ``Authorization`` header (e.g. ``Bearer <token>``, RFC 6750 §2.1)."""
    if not value or len(value) > 2048 or not (value.isascii() and value.isprintable()):
        raise ValidationError("'sink.httpAuthorization' is 1-2048 printable ASCII characters")
    return value


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValidationError("a name is 1-128 characters without control characters")
    return name


def _unique(session: Session, name: str, own_id: str | None = None) -> None:
    other = session.scalar(select(LogStream.id).where(LogStream.name == name))
    if other is not None and other != own_id:
        raise ConflictError(f"a log stream named {name!r} already exists")


def create(
    session: Session,
    box: SecretBox,
    config: Mapping[str, Any],
    *,
    name: str,
    endpoint: str,
    authorization: str | None = None,
    start_from: int | None = None,
) -> tuple[LogStream, str]:
    """A new active stream; returns it and its signing secret (shown once)."""
    check_name(name)
    check_endpoint(endpoint, config)
    _unique(session, name)
    secret = random_token(32)
    now = clock.now()
    stream = LogStream(
        id="lst_" + random_token(12), name=name, status="active", endpoint=endpoint,
        secret=box.encrypt(secret.encode()),
        auth_header=box.encrypt(check_authorization(authorization).encode())
        if authorization is not None else None,
        checkpoint=reader.last_id(session) if start_from is None else start_from,
        failures=0, retry_at=0.0, leased_until=0.0, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(stream)
    session.flush()
    return stream, secret


def list_streams(session: Session) -> list[LogStream]:
    return list(session.scalars(select(LogStream).order_by(LogStream.created_at, LogStream.id)))


def get(session: Session, ident: str) -> LogStream:
    """By id (``lst_...``) or name."""
    stream = session.get(LogStream, ident[:40]) or session.scalar(
        select(LogStream).where(LogStream.name == ident[:128])
    )
    if stream is None:
        raise NotFoundError(f"no log stream {ident!r}")
    return stream


def update(
    session: Session,
    box: SecretBox,
    config: Mapping[str, Any],
    stream: LogStream,
    *,
    name: str | None = None,
    endpoint: str | None = None,
    authorization: Any = UNSET,
    status: str | None = None,
) -> LogStream:
    """Change what was sent. ``status``: ``paused`` stops delivery where it is; ``active``
    resumes it from the checkpoint (also after a suspension, whose counters it clears)."""
    if name is not None and name != stream.name:
        _unique(session, check_name(name), stream.id)
        stream.name = name
    if endpoint is not None:
        stream.endpoint = check_endpoint(endpoint, config)
    if authorization is None:
        stream.auth_header = None
    elif authorization is not UNSET:
        stream.auth_header = box.encrypt(check_authorization(authorization).encode())
    if status is not None:
        if status not in {"active", "paused"}:
            raise ValidationError("'status' is 'active' or 'paused'")
        if status == "active" and stream.status != "active":
            stream.failures, stream.retry_at = 0, 0.0
        stream.status = status
    stream.updated_at = clock.now()
    session.flush()
    return stream


def delete(session: Session, stream: LogStream) -> None:
    session.delete(stream)
    session.flush()


def view(stream: LogStream) -> dict[str, Any]:
    """Auth0's ``{id, name, type, status, sink}`` (``httpAuthorization`` is write-only) plus
    the delivery state: ``checkpoint`` (the last log id delivered), ``failures`` (in a row)
    and ``last_error``."""
    error = None
    if stream.last_error:
        error = {"message": stream.last_error, "date": _iso(stream.last_error_at)}
    return {
        "id": stream.id,
        "name": stream.name,
        "type": "http",
        "status": stream.status,
        "sink": {
            "httpEndpoint": stream.endpoint,
            "httpContentFormat": "JSONLINES",
            "httpContentType": wire.CONTENT_TYPE,
        },
        "checkpoint": str(stream.checkpoint),
        "failures": stream.failures,
        "last_error": error,
        "delivered_at": _iso(stream.delivered_at),
        "created_at": _iso(stream.created_at),
        "updated_at": _iso(stream.updated_at),
    }


def _iso(epoch: int | None) -> str | None:
    return None if epoch is None else wire.iso(epoch)
