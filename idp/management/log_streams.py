"""``/api/v2/log-streams``: Auth0 Management API v2's log streams, type ``http`` only
(``read:log_streams``, ``create:log_streams``, ``update:log_streams``, ``delete:log_streams``).

A stream is Auth0's ``{id, name, type: "http", status, sink: {httpEndpoint,
httpContentFormat: "JSONLINES", httpContentType}}`` plus its delivery state: ``checkpoint``
(the id of the last log event delivered), ``failures`` (in a row), ``last_error`` ``{message,
date}``, ``delivered_at``. ``sink.httpAuthorization`` is write-only (the ``Authorization``
header value sent with each POST; ``null`` in a PATCH removes it). Differences from Auth0:

* the create answer carries ``signing_secret``, shown once: each POST is signed with it
  (``X-Idp-Signature: sha256=<hex HMAC-SHA256 of the body>``, ``idp.logstreams.wire``);
* ``httpContentFormat`` is ``JSONLINES`` only; ``filters``, ``httpCustomHeaders`` and the
  other stream types are not supported (400);
* ``startFrom`` (create) is a log id: the stream sends the events after it (default: from
  now on). A stream that fails ``LOG_STREAM_MAX_FAILURES`` times in a row becomes
  ``suspended``; ``PATCH {"status": "active"}`` resumes it (or a ``paused`` one) from its
  checkpoint.

``{id}`` is the stream's id (``lst_...``) or its name. Reads, updates and deletes of one
stream carry its ``ETag`` and honour ``If-Match``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import current_app
from pydantic import AfterValidator, Field, StringConstraints, model_validator
from sqlalchemy import select

from idp.core.errors import NotFoundError
from idp.extensions import db, services
from idp.logstreams import delivery
from idp.logstreams import service as streams
from idp.logstreams.models import LogStream
from idp.management.logs import MAX_LOG_ID
from idp.management.registry import Item, route
from idp.management.validation import Body, Out

TAG = "log-streams"
StreamName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Endpoint = Annotated[str, StringConstraints(min_length=1, max_length=512)]
ContentType = Literal["application/x-ndjson", "application/json"]


def _log_id(value: str) -> str:
    if int(value) > MAX_LOG_ID:
        raise ValueError(f"a log id is at most {MAX_LOG_ID}")
    return value


LogIdString = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$"), AfterValidator(_log_id)]


# ---------------------------------------------------------------------------------- schemas
class SinkOut(Out):
    httpEndpoint: str
    httpContentFormat: str
    httpContentType: str


class LastError(Out):
    message: str
    date: str | None


class LogStreamOut(Out):
    id: str = Field(description="lst_...")
    name: str
    type: Literal["http"]
    status: str = Field(description="active, paused or suspended (after repeated failures).")
    sink: SinkOut
    checkpoint: str = Field(description="The id of the last log event delivered.")
    failures: int = Field(description="Failed deliveries in a row.")
    last_error: LastError | None
    delivered_at: str | None
    created_at: str | None
    updated_at: str | None
    signing_secret: str | None = Field(None, description="Only in the answer to create.")


class SinkCreate(Body):
    httpEndpoint: Endpoint = Field(description="https (LOG_STREAM_HOSTS).")
    httpContentFormat: Literal["JSONLINES"] = "JSONLINES"
    httpContentType: ContentType | None = None
    httpAuthorization: str | None = Field(None, description="Write-only Authorization value.")


class SinkUpdate(Body):
    """``httpAuthorization: null`` removes it."""

    httpEndpoint: Endpoint | None = None
    httpContentFormat: Literal["JSONLINES"] | None = None
    httpContentType: ContentType | None = None
    httpAuthorization: str | None = None


class LogStreamCreate(Body):
    name: StreamName
    type: Literal["http"] = "http"
    sink: SinkCreate
    startFrom: LogIdString | None = Field(
        None, description="A log id: the stream sends the events after it (default: now)."
    )


class LogStreamUpdate(Body):
    name: StreamName | None = None
    status: Literal["active", "paused"] | None = Field(None, description="active resumes.")
    sink: SinkUpdate | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("send at least one of: " + ", ".join(sorted(cls.model_fields)))
        return data


# ---------------------------------------------------------------------------------- helpers
def find(ident: str, lock: bool = False) -> LogStream:
    stream = streams.get(db.session, ident)
    if lock:
        locked = db.session.scalar(
            select(LogStream).where(LogStream.id == stream.id).with_for_update()
        )
        if locked is None:
            raise NotFoundError(f"no log stream {ident!r}")
        stream = locked
    return stream


def _poke() -> None:
    """Wake this worker's delivery loop (others poll)."""
    delivery.poke(current_app._get_current_object())  # type: ignore[attr-defined]


ITEM = Item(LogStreamOut, lambda lock=False, id="": streams.view(find(id, lock)))


# ---------------------------------------------------------------------------------- routes
@route("/log-streams", scope="read:log_streams", tag=TAG, summary="List log streams",
       response=list[LogStreamOut])  # fmt: skip
def list_log_streams() -> list[dict[str, Any]]:
    """Auth0 answers the whole list, unpaged."""
    return [streams.view(s) for s in streams.list_streams(db.session)]


@route("/log-streams", "POST", scope="create:log_streams", tag=TAG, status=201,
       summary="Create a log stream", body=LogStreamCreate, response=LogStreamOut,
       after_commit=_poke)  # fmt: skip
def create_log_stream(body: LogStreamCreate) -> dict[str, Any]:
    """The answer carries ``signing_secret``: the only time it is shown."""
    svc = services()
    stream, secret = streams.create(
        db.session, svc.box, svc.config, name=body.name, endpoint=body.sink.httpEndpoint,
        authorization=body.sink.httpAuthorization,
        start_from=None if body.startFrom is None else int(body.startFrom),
    )  # fmt: skip
    return streams.view(stream) | {"signing_secret": secret}


@route("/log-streams/{id}", scope="read:log_streams", tag=TAG, summary="Get a log stream",
       response=LogStreamOut, item=ITEM)  # fmt: skip
def get_log_stream(id: str) -> dict[str, Any]:
    return streams.view(find(id))


@route("/log-streams/{id}", "PATCH", scope="update:log_streams", tag=TAG, item=ITEM,
       summary="Update a log stream", body=LogStreamUpdate, response=LogStreamOut,
       after_commit=_poke)  # fmt: skip
def update_log_stream(id: str, body: LogStreamUpdate) -> dict[str, Any]:
    """``{name?, status?: active|paused, sink?: {httpEndpoint?, httpAuthorization?}}``."""
    stream = find(id, lock=True)
    sink = body.sink
    authorization: Any = streams.UNSET
    if sink is not None and "httpAuthorization" in sink.model_fields_set:
        authorization = sink.httpAuthorization
    svc = services()
    streams.update(
        db.session, svc.box, svc.config, stream, name=body.name,
        endpoint=None if sink is None else sink.httpEndpoint,
        authorization=authorization, status=body.status,
    )  # fmt: skip
    return streams.view(stream)


@route("/log-streams/{id}", "DELETE", scope="delete:log_streams", tag=TAG, item=ITEM,
       summary="Delete a log stream", status=204)  # fmt: skip
def delete_log_stream(id: str) -> None:
    streams.delete(db.session, find(id, lock=True))
