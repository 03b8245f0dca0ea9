"""The tenant log read in id order: checkpoint reads (log streams, ``idp logs --follow``,
``GET /api/v2/logs?from=``) and Auth0's pages.

Ids are handed out at insert time but rows become visible at commit: on PostgreSQL two
concurrent transactions can commit event 11 before event 10, and a reader that moved its
checkpoint to 11 would never see 10. So a checkpoint read stops before a *gap* in the ids
until the event after the gap is ``gap_seconds`` old: by then the missing id's transaction
(shorter than the server's 10 s statement timeout) has committed or rolled back for good (a
rollback, or a sequence value never used, leaves a permanent gap, which is then stepped over).
SQLite serialises writers (``BEGIN IMMEDIATE``), so there ids commit in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.audit.models import LogEvent
from idp.core import clock

MAX_TAKE = 100  # Auth0's limit on take and per_page


def after(
    session: Session,
    checkpoint: int,
    limit: int,
    *,
    gap_seconds: int = 15,
    type_: str | None = None,
    user_id: str | None = None,
) -> list[LogEvent]:
    """Events after ``checkpoint``, oldest first, at most ``limit``, up to the first gap that
    may still fill. With a filter (``type_``, ``user_id``) gaps are expected and not waited
    for: a filtered read is for people, not for a checkpointed consumer."""
    stmt = select(LogEvent).where(LogEvent.id > checkpoint).order_by(LogEvent.id).limit(limit)
    if type_:
        stmt = stmt.where(LogEvent.type == type_)
    if user_id:
        stmt = stmt.where(LogEvent.user_id == user_id)
    rows = list(session.scalars(stmt))
    if type_ or user_id:
        return rows
    return contiguous(rows, checkpoint, clock.now() - gap_seconds)


def contiguous(rows: Sequence[LogEvent], checkpoint: int, settled: int) -> list[LogEvent]:
    """The prefix of ``rows`` (ascending ids) that has no gap still open: a gap is stepped over
    once the event after it was written at or before ``settled``."""
    out: list[LogEvent] = []
    expected = checkpoint + 1
    for event in rows:
        if event.id != expected and event.time > settled:
            break
        out.append(event)
        expected = event.id + 1
    return out


def page(
    session: Session,
    page_no: int,
    per_page: int,
    *,
    newest_first: bool = True,
    type_: str | None = None,
    user_id: str | None = None,
) -> list[LogEvent]:
    """Auth0's ``page``/``per_page`` (0-based), newest first unless ``sort=date:1``."""
    stmt = select(LogEvent)
    if type_:
        stmt = stmt.where(LogEvent.type == type_)
    if user_id:
        stmt = stmt.where(LogEvent.user_id == user_id)
    order = LogEvent.id.desc() if newest_first else LogEvent.id
    rows = session.scalars(stmt.order_by(order).offset(page_no * per_page).limit(per_page))
    return list(rows)


def total(session: Session, *, type_: str | None = None, user_id: str | None = None) -> int:
    """For ``include_totals`` only: a count is a scan of the table."""
    stmt = select(func.count()).select_from(LogEvent)
    if type_:
        stmt = stmt.where(LogEvent.type == type_)
    if user_id:
        stmt = stmt.where(LogEvent.user_id == user_id)
    return int(session.scalar(stmt) or 0)


def last_id(session: Session) -> int:
    """Where a new stream starts (Auth0 streams what happens from its creation on)."""
    return int(session.scalar(select(func.max(LogEvent.id))) or 0)
