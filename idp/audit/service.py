"""Write and read tenant log events. Events are written in their own transaction, so a failed
login is logged even though the request's own work is rolled back."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import has_request_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.audit.models import LogEvent
from idp.core import clock
from idp.core.net import request_id
from idp.ops.metrics import observe_event
from idp.stores import STORES

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _clean(value: str | None, limit: int) -> str | None:
    """No control characters (log injection) and bounded size."""
    if value is None:
        return None
    return _CONTROL.sub("?", value)[:limit]


def _with_request_id(details: dict[str, object] | None) -> dict[str, object]:
    """Link the event to the Actions executions of the same request (their ``request_id``)."""
    out = dict(details or {})
    if has_request_context():
        out.setdefault("request_id", request_id())
    return out


@dataclass(frozen=True)
class Origin:
    """Where a request came from (the client IP honours trusted proxies only)."""

    ip: str | None
    user_agent: str | None


def record(
    session: Session,
    type_: str,
    description: str,
    origin: Origin,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    details: dict[str, object] | None = None,
) -> None:
    STORES.audit.insert(
        session,
        LogEvent(
            type=type_,
            time=clock.now(),
            user_id=user_id,
            client_id=client_id,
            ip=_clean(origin.ip, 64),
            user_agent=_clean(origin.user_agent, 512),
            description=_clean(description, 512) or "",
            details=_with_request_id(details),
        ),
    )
    observe_event(type_, details)  # logins and MFA outcomes, when metrics are on


def query(
    session: Session,
    *,
    type_: str | None = None,
    user_id: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[LogEvent]:
    """Newest first, or oldest first after ``after_id`` (for ``--follow``)."""
    stmt = select(LogEvent)
    if type_:
        stmt = stmt.where(LogEvent.type == type_)
    if user_id:
        stmt = stmt.where(LogEvent.user_id == user_id)
    if after_id:
        stmt = stmt.where(LogEvent.id > after_id).order_by(LogEvent.id)
    else:
        stmt = stmt.order_by(LogEvent.id.desc())
    return list(session.scalars(stmt.limit(limit)))
