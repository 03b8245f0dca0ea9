"""``/api/v2/logs``: tenant log events (Auth0's log search, ``read:logs``), newest first.

Checkpoint paging as Auth0 documents it: ``from`` (a log id) with ``take`` returns the events
after that id, oldest first. Events never carry a secret (``idp.audit``).
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.wrappers import Response

from idp.audit import service as audit
from idp.audit.models import LogEvent
from idp.extensions import db
from idp.management.base import bp, reply, require
from idp.management.schemas import SchemaError, iso


def _json(e: LogEvent) -> dict[str, Any]:
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


@bp.get("/logs")
@require("read:logs")
def list_logs() -> Response:
    try:
        after = int(request.args.get("from", 0))
        take = int(request.args.get("take") or request.args.get("per_page") or 50)
    except ValueError:
        raise SchemaError("'from' and 'take' are integers") from None
    if after < 0 or not 1 <= take <= 100:
        raise SchemaError("'from' is a log id and 'take' between 1 and 100")
    rows = audit.query(
        db.session,
        type_=request.args.get("type") or None,
        user_id=request.args.get("user_id") or None,
        after_id=after,
        limit=take,
    )
    return reply([_json(e) for e in rows])
