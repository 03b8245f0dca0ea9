"""``/api/v2/logs``: tenant log events (Auth0's log search, ``read:logs``).

Two kinds of paging, as at Auth0:

* **Checkpoint**: ``from`` (a log id) with ``take`` (1-100, default 50) returns the events
  after that id, oldest first; the last one's ``log_id`` is the next ``from``. A read stops
  before an id that may still be committing (``idp.logstreams.reader``), so a consumer that
  walks ``from`` never skips an event.
* **Pages**: ``page`` (0-based) and ``per_page`` (1-100, default 50), newest first (``sort=
  date:1`` for oldest first); ``include_totals=true`` answers ``{start, limit, length, total,
  logs}``. ``take`` without ``from`` is a page of that size (the most recent events).

Filters (idp's, until ``q`` exists), ANDed: ``type``, ``user_id``, ``client_id``, and the
event's date: ``date_from`` (inclusive) and ``date_to`` (exclusive), each a UTC date
``2026-01-15`` (its midnight) or an ISO 8601 date-time (UTC unless it says otherwise);
``fields`` with ``include_fields`` choose the properties answered. A filtered ``from`` read
does not wait for gaps in the ids (it is for people, not for a checkpointed consumer). With
``from``, ``page``, ``per_page``, ``include_totals`` and ``sort`` are ignored (Auth0's SDK
sends them with every search).
``GET /logs/{id}`` is one event. Events never carry a secret (``idp.audit``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import ColumnElement, func, select

from idp.audit.models import LogEvent
from idp.core.errors import NotFoundError
from idp.extensions import db, services
from idp.logstreams import reader
from idp.logstreams.wire import log_json
from idp.management.registry import route
from idp.management.validation import FieldsQuery, Out

TAG = "logs"
FIELDS = ("log_id", "date", "type", "description", "user_id", "client_id", "ip", "user_agent",
          "details")  # fmt: skip
MAX_LOG_ID = 2**31 - 1  # log_events.id is an INTEGER: a larger id names no event


class LogOut(Out):
    log_id: str
    date: str | None
    type: str
    description: str | None
    user_id: str | None
    client_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any] | None


class LogsQuery(FieldsQuery):
    """Auth0's log search parameters (``q`` aside); ``include_totals`` wraps a page."""

    from_: int | None = Field(
        None, alias="from", ge=0, le=MAX_LOG_ID, description="Events after this log id."
    )
    take: int | None = Field(None, ge=1, le=reader.MAX_TAKE, description="Events to answer.")
    page: int = Field(0, ge=0, le=10_000, description="Page index, 0-based.")
    per_page: int | None = Field(
        None, ge=1, le=reader.MAX_TAKE, description="Items per page (default: take, else 50)."
    )
    include_totals: bool = Field(False, description="Wrap the page with its totals.")
    sort: Literal["date:1", "date:-1"] = Field("date:-1", description="date:1 oldest first.")
    type: str | None = Field(None, max_length=64, description="Only this event type.")
    user_id: str | None = Field(None, max_length=255, description="Only this user's events.")
    client_id: str | None = Field(None, max_length=64, description="Only this client's events.")
    date_from: str | None = Field(
        None, max_length=40, description="Events at or after: YYYY-MM-DD or ISO 8601, UTC."
    )
    date_to: str | None = Field(
        None, max_length=40, description="Events before: YYYY-MM-DD or ISO 8601, UTC."
    )
    q: str | None = Field(None, max_length=2000, description="Not supported: refused.")

    @field_validator("date_from", "date_to")
    @classmethod
    def _a_date(cls, value: str | None) -> str | None:
        if value:
            epoch(value)
        return value

    @field_validator("q")
    @classmethod
    def _no_lucene(cls, value: str | None) -> str | None:
        if value:
            raise ValueError("'q' (Lucene syntax) is not supported here: filter with type, "
                             "user_id, client_id, date_from, date_to")  # fmt: skip
        return value

    @field_validator("fields")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        unknown = sorted({f for f in (value or "").split(",") if f} - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        return value


def epoch(text: str) -> int:
    """A date (its midnight) or an ISO 8601 date-time, UTC unless it says otherwise, as the
    tenant log's epoch seconds."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("a date YYYY-MM-DD or an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # log_events.time is an INTEGER: a bound beyond it is the column's end (PostgreSQL
    # refuses an int4 parameter out of range)
    return max(-(2**31), min(int(when.timestamp()), 2**31 - 1))


def _conditions(query: LogsQuery) -> list[ColumnElement[bool]]:
    """The filters sent, ANDed (an empty value is no filter)."""
    out: list[ColumnElement[bool]] = []
    if query.type:
        out.append(LogEvent.type == query.type)
    if query.user_id:
        out.append(LogEvent.user_id == query.user_id)
    if query.client_id:
        out.append(LogEvent.client_id == query.client_id)
    if query.date_from:
        out.append(LogEvent.time >= epoch(query.date_from))
    if query.date_to:
        out.append(LogEvent.time < epoch(query.date_to))
    return out


@route("/logs", scope="read:logs", tag=TAG, summary="Search log events", query=LogsQuery,
       response=LogOut, list_key="logs")  # fmt: skip
def list_logs(query: LogsQuery) -> Any:
    """With ``from``: the events after it, oldest first (``take``). Else a page, newest first
    (``sort=date:1`` oldest first); ``include_totals`` wraps it with its totals."""
    conditions = _conditions(query)
    if query.from_ is not None:
        # Auth0's SDK sends page, per_page and include_totals with every search; with ``from``
        # they are ignored, as Auth0 ignores them
        take = query.take or 50
        if not conditions:
            gap = int(services().config["LOG_STREAM_GAP_SECONDS"])
            rows = reader.after(db.session, query.from_, take, gap_seconds=gap)
        else:
            rows = list(db.session.scalars(
                select(LogEvent).where(LogEvent.id > query.from_, *conditions)
                .order_by(LogEvent.id).limit(take)))  # fmt: skip
        return [log_json(e) for e in rows]
    per_page = query.per_page or query.take or 50
    order = LogEvent.id.desc() if query.sort == "date:-1" else LogEvent.id
    rows = list(db.session.scalars(select(LogEvent).where(*conditions).order_by(order)
                                   .offset(query.page * per_page).limit(per_page)))  # fmt: skip
    logs = [log_json(e) for e in rows]
    if not query.include_totals:
        return logs
    # a count is a scan of the table: only when asked for
    total = db.session.scalar(select(func.count()).select_from(LogEvent).where(*conditions))
    return {"start": query.page * per_page, "limit": per_page, "length": len(logs),
            "total": int(total or 0), "logs": logs}  # fmt: skip


@route("/logs/{id}", scope="read:logs", tag=TAG, summary="Get a log event", response=LogOut)
def get_log(id: str) -> dict[str, Any]:
    number = int(id) if id.isascii() and id.isdigit() and len(id) < 12 else MAX_LOG_ID + 1
    event = db.session.get(LogEvent, number) if number <= MAX_LOG_ID else None
    if event is None:
        raise NotFoundError(f"no log event {id!r}")
    return log_json(event)
