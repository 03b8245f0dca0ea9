"""Log stream delivery against a real loopback receiver: in order, at least once, none twice
after the checkpoint, signed, retried with backoff, suspended after repeated failure, resumed
from the checkpoint, and never sent by two workers at once (the database lease)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from idp import create_app
from idp.extensions import db, services
from idp.logstreams import delivery, reader, wire
from idp.logstreams import service as streams
from tests.conftest import LiveServer
from tests.logstreams.conftest import STREAM_SETTINGS, emit, make_stream, stream_row
from tests.logstreams.receiver import Receiver, wait_for


def _exactly_once_in_order(receiver: Receiver, expected: list[int]) -> None:
    got = receiver.ids()
    assert got == sorted(set(got)), "a log id arrived twice or out of order"
    assert got == expected


def test_every_event_arrives_in_order_through_failures_and_a_receiver_restart(
    live: LiveServer,
) -> None:
    receiver = Receiver(fail_first=3).start()
    stream_id, secret = make_stream(live.app, receiver.url, authorization="Bearer tok-123")
    loop = delivery.for_app(live.app)
    loop.start()
    try:
        first = emit(live.app, 12)
        wait_for(lambda: receiver.ids() == first, "the first 12 events")
        assert receiver.attempts >= 3 + 3  # three refusals, then batches of at most 5

        receiver.stop()  # the receiver goes away mid-stream; events keep coming
        second = emit(live.app, 10)
        wait_for(lambda: stream_row(live.app, stream_id).failures >= 1, "a failed delivery")
        row = stream_row(live.app, stream_id)
        assert row.checkpoint == first[-1] and row.last_error and row.status == "active"
        receiver.start()
        wait_for(lambda: len(receiver.ids()) == 22, "the events sent while it was down")
    finally:
        loop.stop()
        receiver.stop()
    _exactly_once_in_order(receiver, first + second)
    row = stream_row(live.app, stream_id)
    assert row.checkpoint == second[-1] and row.failures == 0
    for batch in receiver.accepted:
        assert len(batch.ids()) <= STREAM_SETTINGS["LOG_STREAM_BATCH_SIZE"]
        assert wire.verify(secret, batch.body, batch.headers["X-Idp-Signature"])
        assert not wire.verify("another secret", batch.body, batch.headers["X-Idp-Signature"])
        assert batch.headers["Authorization"] == "Bearer tok-123"
        assert batch.headers["X-Idp-Log-Stream"] == stream_id
        assert batch.headers["Content-Type"] == "application/x-ndjson"
        line = json.loads(batch.body.decode().splitlines()[0])
        assert line["data"]["log_id"] == line["log_id"]
        assert line["data"]["type"] == "login.success" and line["data"]["user_id"] == "usr_test"


def test_a_stream_starts_at_creation_and_survives_a_restart_of_its_worker(
    live: LiveServer,
) -> None:
    emit(live.app, 3)  # before the stream: not sent
    receiver = Receiver().start()
    stream_id, _ = make_stream(live.app, receiver.url)
    loop = delivery.for_app(live.app)
    loop.start()
    try:
        before = emit(live.app, 4)
        wait_for(lambda: receiver.ids() == before, "the events after creation")
        loop.stop()  # the worker stops (a deploy); events keep being written meanwhile
        during = emit(live.app, 7)
        assert receiver.ids() == before
        restarted = delivery.Delivery(live.app)  # a new process: nothing kept but the row
        restarted.start()
        try:
            wait_for(lambda: len(receiver.ids()) == 11, "the events written while it was down")
        finally:
            restarted.stop()
    finally:
        receiver.stop()
    _exactly_once_in_order(receiver, before + during)
    assert stream_row(live.app, stream_id).leased_by is None  # given back on stop


def test_repeated_failure_suspends_the_stream_with_its_reason_and_resume_continues(
    live: LiveServer,
) -> None:
    receiver = Receiver(fail_first=10**6, status=503).start()
    stream_id, _ = make_stream(live.app, receiver.url)
    loop = delivery.for_app(live.app)
    loop.start()
    try:
        events = emit(live.app, 6)
        wait_for(lambda: stream_row(live.app, stream_id).status == "suspended", "suspension")
        row = stream_row(live.app, stream_id)
        assert row.failures == STREAM_SETTINGS["LOG_STREAM_MAX_FAILURES"]
        assert row.last_error == "the endpoint answered HTTP 503"
        assert row.checkpoint == events[0] - 1 and row.leased_by is None
        attempts = receiver.attempts
        assert attempts == row.failures  # nothing more is tried while suspended
        more = emit(live.app, 2)
        receiver.fail_first = 0  # the receiver is fixed; the operator resumes the stream
        with live.app.app_context():
            stream = streams.get(db.session, stream_id)
            streams.update(db.session, services().box, live.app.config, stream, status="active")
            db.session.commit()
        loop.poke()
        wait_for(lambda: len(receiver.ids()) == 8, "delivery from the checkpoint")
    finally:
        loop.stop()
        receiver.stop()
    _exactly_once_in_order(receiver, events + more)
    row = stream_row(live.app, stream_id)
    assert row.status == "active" and row.failures == 0 and row.checkpoint == more[-1]


def test_a_refused_endpoint_is_a_failure_with_the_guards_reason(live: LiveServer) -> None:
    """The SSRF guard stays in the path: a host taken off the allow-list is refused."""
    receiver = Receiver().start()
    stream_id, _ = make_stream(live.app, receiver.url)
    loop = delivery.Delivery(live.app)
    loop.settings = delivery.Settings.from_config(live.app.config | {"LOG_STREAM_HOSTS": "x.test"})
    emit(live.app, 1)
    try:
        with live.app.app_context():
            assert loop.serve(stream_id) == 0
    finally:
        receiver.stop()
    row = stream_row(live.app, stream_id)
    assert row.failures == 1 and "allow-list" in str(row.last_error)
    assert receiver.attempts == 0


def _second_app(live: LiveServer, tmp: Path) -> Any:
    """Another worker (or instance) on the same database and instance secret."""
    config: dict[str, Any] = {
        "ISSUER": live.url, "DATABASE_URL": live.app.config["DATABASE_URL"],
        "SECRET_KEY": live.app.config["SECRET_KEY"], **STREAM_SETTINGS,
    }  # fmt: skip
    return create_app(config, instance_path=tmp)


def test_two_workers_never_send_a_stream_at_once(live: LiveServer, tmp_path: Path) -> None:
    other = _second_app(live, tmp_path)
    receiver = Receiver(delay=0.05).start()
    stream_id, _ = make_stream(live.app, receiver.url)
    one, two = delivery.Delivery(live.app), delivery.Delivery(other)
    with live.app.app_context():  # the lease itself: one holder at a time
        assert one.claim(stream_id) and one.claim(stream_id)  # renewing is claiming again
    with other.app_context():
        assert not two.claim(stream_id)
    with live.app.app_context():
        one.release()
    with other.app_context():
        assert two.claim(stream_id)
        two.release()
    one.start()
    two.start()
    try:
        events = emit(live.app, 40)
        wait_for(lambda: len(receiver.ids()) >= 40, "every event", timeout=60)
    finally:
        one.stop()
        two.stop()
        receiver.stop()
        with other.app_context():
            db.engine.dispose()
    assert receiver.max_inflight == 1  # never two POSTs of this stream in flight
    _exactly_once_in_order(receiver, events)


def test_a_read_stops_before_a_gap_until_it_has_settled() -> None:
    """PostgreSQL can commit id 11 before id 10: the reader waits, then steps over a gap that
    stayed (a rolled-back insert)."""

    class E:
        def __init__(self, id_: int, time: int) -> None:
            self.id, self.time = id_, time

    rows: Any = [E(5, 100), E(6, 100), E(8, 100), E(9, 101)]
    assert [e.id for e in reader.contiguous(rows, 4, settled=99)] == [5, 6]
    assert [e.id for e in reader.contiguous(rows, 4, settled=100)] == [5, 6, 8, 9]
    assert [e.id for e in reader.contiguous(rows, 2, settled=99)] == []
