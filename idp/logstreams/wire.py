"""What a log stream sends: a JSON Lines body (https://jsonlines.org/, one event per line, in
log id order) signed with HMAC-SHA256 (RFC 2104; FIPS 180-4 SHA-256) under the stream's secret.

Each line is Auth0's log-stream event shape, ``{"log_id": "...", "data": {...}}``, where
``data`` is the ``/api/v2/logs`` object. The signature header is
``X-Idp-Signature: sha256=<hex HMAC of the raw body>``; a receiver recomputes it over the bytes
it read, compares in constant time (:func:`verify`), and drops lines whose ``log_id`` it has
already seen (delivery is at least once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from idp.audit.models import LogEvent

CONTENT_TYPE = "application/x-ndjson"
SIGNATURE_HEADER = "X-Idp-Signature"
STREAM_HEADER = "X-Idp-Log-Stream"


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def log_json(e: LogEvent) -> dict[str, Any]:
    """Auth0's log object (``/api/v2/logs``); events never carry a secret (``idp.audit``)."""
    return {
        "log_id": str(e.id),
        "date": iso(e.time),
        "type": e.type,
        "description": e.description,
        "user_id": e.user_id,
        "client_id": e.client_id,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "details": e.details,
    }


def body(events: Sequence[LogEvent]) -> bytes:
    lines = (
        json.dumps({"log_id": str(e.id), "data": log_json(e)}, separators=(",", ":"))
        for e in events
    )
    return ("\n".join(lines) + "\n").encode()


def sign(secret: str, data: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def verify(secret: str, data: bytes, header: str | None) -> bool:
    """What a receiver does with the header (constant-time comparison)."""
    return bool(header) and hmac.compare_digest(sign(secret, data), str(header))
