"""A live server whose log streams may reach loopback receivers, with fast retries; helpers to
write tenant log events and to make log streams directly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select

from idp.audit import service as audit
from idp.audit.models import LogEvent
from idp.extensions import db, services
from idp.logstreams import delivery
from idp.logstreams import service as streams
from idp.logstreams.models import LogStream
from tests.conftest import LiveServer, build_app, serving
from tests.management.conftest import ALL, Mgmt, grant

STREAM_SETTINGS: dict[str, Any] = {
    "LOG_STREAM_HOSTS": "127.0.0.1",
    "LOG_STREAM_ALLOW_NETWORKS": "127.0.0.0/8",
    "LOG_STREAM_POLL_SECONDS": 0.05,
    "LOG_STREAM_RETRY_SECONDS": 0.05,
    "LOG_STREAM_RETRY_MAX_SECONDS": 0.2,
    "LOG_STREAM_TIMEOUT_SECONDS": 2.0,
    "LOG_STREAM_LEASE_SECONDS": 10.0,
    "LOG_STREAM_BATCH_SIZE": 5,
    "LOG_STREAM_MAX_FAILURES": 6,
    "LOG_STREAM_GAP_SECONDS": 2,
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    with serving(lambda port: build_app(tmp, port, **STREAM_SETTINGS)) as server:
        yield server
        delivery.for_app(server.app).stop()


@pytest.fixture(autouse=True)
def _no_streams_left(live: LiveServer) -> Iterator[None]:
    """Each test starts without streams and with this app's loop stopped."""
    yield
    delivery.for_app(live.app).stop()
    with live.app.app_context(), db.transaction() as s:
        s.execute(delete(LogStream))


@pytest.fixture
def mgmt(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ALL), ALL, [])


def emit(app: Flask, count: int, type_: str = "login.success") -> list[int]:
    """Write ``count`` tenant log events (one transaction each, as the server does); their ids."""
    ids = []
    with app.app_context():
        for i in range(count):
            with db.transaction() as s:
                audit.record(s, type_, f"event {i}", audit.Origin("127.0.0.1", "tests"),
                             user_id="usr_test")  # fmt: skip
            with db.transaction() as s:
                ids.append(int(s.scalar(select(func.max(LogEvent.id))) or 0))
    return ids


def make_stream(app: Flask, endpoint: str, **kwargs: Any) -> tuple[str, str]:
    """(stream id, signing secret)."""
    with app.app_context(), db.transaction() as s:
        stream, secret = streams.create(s, services().box, app.config, name=kwargs.pop(
            "name", "siem"), endpoint=endpoint, **kwargs)  # fmt: skip
        return stream.id, secret


def stream_row(app: Flask, stream_id: str) -> LogStream:
    with app.app_context(), db.transaction() as s:
        row = s.get(LogStream, stream_id)
        assert row is not None
        s.expunge(row)
        return row
