"""The delivery loop: one background thread per worker process, one database lease per stream.

* **Lease.** A worker delivers a stream only while it holds the row's lease, claimed and
  renewed by one conditional UPDATE (``... WHERE leased_by IS NULL OR leased_by = me OR
  leased_until < now``; SQLite and PostgreSQL alike): of several gunicorn workers or instances
  exactly one wins, and a worker that dies stops renewing, so another takes over once
  ``leased_until`` passes. The lease is renewed before every POST for longer than the POST
  can last (``LOG_STREAM_LEASE_SECONDS`` is at least 3 x the request timeout), so no two
  workers send a batch of one stream at once.
* **Order.** A batch is the next up-to-``LOG_STREAM_BATCH_SIZE`` events after the checkpoint,
  in id order, stopping at a gap that may still fill (``reader.after``); the next batch is
  read only after this one was acknowledged, so a receiver sees the stream in order.
* **At least once.** The checkpoint moves (UPDATE ... WHERE checkpoint = the old one AND
  leased_by = me) only after a 2xx answer. A failure, a crash or a restart between the POST
  and that UPDATE means the batch is sent again: receivers drop ``log_id``s already seen.
  Nothing is lost across a restart, because the checkpoint is in the database.
* **Failure.** Each failure records its reason and waits ``LOG_STREAM_RETRY_SECONDS`` x 2^(n-1)
  (at most ``LOG_STREAM_RETRY_MAX_SECONDS``) before the next try; after
  ``LOG_STREAM_MAX_FAILURES`` in a row the stream is ``suspended`` (Auth0's status) with its
  reason, until an operator resumes it (``status: active``), from its checkpoint.

The POST goes through :func:`idp.core.http.fetch` (the SSRF guard) with the
``LOG_STREAM_HOSTS`` allow-list, and no database transaction is open while it is in flight.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import or_, select, update

from idp.core import clock, http
from idp.core.crypto import random_token
from idp.extensions import db, services
from idp.logstreams import reader, wire
from idp.logstreams.models import LogStream

log = logging.getLogger(__name__)

EXTENSION = "idp.logstreams"
ROUNDS = 10  # batches per stream per visit, so one busy stream cannot starve the others
IDLE_SECONDS = 10.0  # between looks when no stream is active (a create here wakes it at once)


@dataclass(frozen=True)
class Settings:
    hosts: tuple[str, ...]
    networks: tuple[http.Network, ...]
    batch: int
    max_failures: int
    retry: float
    retry_max: float
    poll: float
    lease: float
    timeout: float
    gap: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Settings:
        timeout = float(cfg["LOG_STREAM_TIMEOUT_SECONDS"])
        return cls(
            hosts=tuple(h.strip() for h in str(cfg["LOG_STREAM_HOSTS"]).split(",") if h.strip()),
            networks=http.parse_networks(str(cfg["LOG_STREAM_ALLOW_NETWORKS"])),
            batch=max(1, min(int(cfg["LOG_STREAM_BATCH_SIZE"]), 1000)),
            max_failures=max(1, int(cfg["LOG_STREAM_MAX_FAILURES"])),
            retry=float(cfg["LOG_STREAM_RETRY_SECONDS"]),
            retry_max=float(cfg["LOG_STREAM_RETRY_MAX_SECONDS"]),
            poll=float(cfg["LOG_STREAM_POLL_SECONDS"]),
            lease=max(float(cfg["LOG_STREAM_LEASE_SECONDS"]), 3 * timeout),
            timeout=timeout,
            gap=int(cfg["LOG_STREAM_GAP_SECONDS"]),
        )


@dataclass(frozen=True)
class _Batch:
    checkpoint: int
    last: int
    count: int
    endpoint: str
    headers: dict[str, str]
    body: bytes


def for_app(app: Flask) -> Delivery:
    """This app's delivery loop (made on first use, started only by :meth:`Delivery.start`)."""
    found = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions[EXTENSION] = Delivery(app)
    assert isinstance(found, Delivery)
    return found


def poke(app: Flask) -> None:
    """A stream was created or resumed here: look now rather than at the next poll."""
    found = app.extensions.get(EXTENSION)
    if isinstance(found, Delivery):
        found.poke()


class Delivery:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.settings = Settings.from_config(app.config)
        self.me = self._identity()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _identity() -> str:
        # host and pid for the operator reading the row; the random part tells apart two loops
        # of one process (tests) and a pid reused after a restart
        return f"{socket.gethostname()[:32]}:{os.getpid()}:{random_token(6)}"[:64]

    # ---------------------------------------------------------------- the thread
    def start(self) -> None:
        """Start the loop in this process (idempotent; a forked worker gets its own)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.me = self._identity()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="log-streams", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in flight, then give the leases back so another worker need not
        wait for them to expire."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        atexit.unregister(self.stop)
        thread.join(timeout)
        try:
            with self.app.app_context():
                self.release()
        except Exception:  # the leases then expire on their own
            log.warning("log stream leases not released", exc_info=True)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            delivered, active = 0, True
            try:
                delivered, active = self.run_once()
            except Exception:  # a database blip must not end the loop; it retries next poll
                log.exception("log stream delivery failed; retrying")
            if delivered:
                continue  # more may be waiting: no sleep while there is a backlog
            self._wake.wait(self.settings.poll if active else max(self.settings.poll,
                                                                  IDLE_SECONDS))  # fmt: skip
            self._wake.clear()

    # ---------------------------------------------------------------- one pass
    def run_once(self) -> tuple[int, bool]:
        """Visit every stream that is due; returns (events delivered, any stream active)."""
        with self.app.app_context():
            now = time.time()
            with db.transaction() as s:
                rows = s.execute(
                    select(LogStream.id, LogStream.retry_at, LogStream.leased_by,
                           LogStream.leased_until)
                    .where(LogStream.status == "active").order_by(LogStream.id)
                ).all()  # fmt: skip
            due = [r.id for r in rows if r.retry_at <= now
                   and (r.leased_by in (None, self.me) or r.leased_until < now)]  # fmt: skip
            delivered = 0
            for stream_id in due:
                if self._stop.is_set():
                    break
                delivered += self.serve(stream_id)
            return delivered, bool(rows)

    def serve(self, stream_id: str) -> int:
        """Deliver up to ``ROUNDS`` batches of one stream while holding its lease."""
        delivered = 0
        for _ in range(ROUNDS):
            if self._stop.is_set() or not self.claim(stream_id):
                break
            batch = self._next_batch(stream_id)
            if batch is None:
                break
            error = self._post(batch)
            if error is not None:
                self._fail(stream_id, error)
                break
            if not self._advance(stream_id, batch):
                break  # the lease was lost meanwhile: the new holder sends it (at least once)
            delivered += batch.count
        return delivered

    # ---------------------------------------------------------------- the lease
    def claim(self, stream_id: str) -> bool:
        """Take or renew the lease (one conditional UPDATE)."""
        now = time.time()
        with db.transaction() as s:
            result = s.execute(
                update(LogStream)
                .where(LogStream.id == stream_id, LogStream.status == "active",
                       LogStream.retry_at <= now,
                       or_(LogStream.leased_by.is_(None), LogStream.leased_by == self.me,
                           LogStream.leased_until < now))
                .values(leased_by=self.me, leased_until=now + self.settings.lease),
                execution_options={"synchronize_session": False},
            )  # fmt: skip
            return bool(getattr(result, "rowcount", 0) == 1)

    def release(self) -> None:
        with db.transaction() as s:
            s.execute(
                update(LogStream).where(LogStream.leased_by == self.me)
                .values(leased_by=None, leased_until=0.0),
                execution_options={"synchronize_session": False},
            )  # fmt: skip

    # ---------------------------------------------------------------- one batch
    def _next_batch(self, stream_id: str) -> _Batch | None:
        box = services().box
        with db.transaction() as s:
            stream = s.get(LogStream, stream_id)
            if stream is None or stream.leased_by != self.me:
                return None
            events = reader.after(s, stream.checkpoint, self.settings.batch,
                                  gap_seconds=self.settings.gap)  # fmt: skip
            if not events:
                return None
            data = wire.body(events)
            headers = {
                "Content-Type": wire.CONTENT_TYPE,
                "User-Agent": "idp-log-stream",
                wire.STREAM_HEADER: stream.id,
                wire.SIGNATURE_HEADER: wire.sign(box.decrypt(stream.secret).decode(), data),
            }
            if stream.auth_header is not None:
                headers["Authorization"] = box.decrypt(stream.auth_header).decode()
            return _Batch(stream.checkpoint, events[-1].id, len(events), stream.endpoint,
                          headers, data)  # fmt: skip

    def _post(self, batch: _Batch) -> str | None:
        """None when the receiver acknowledged (2xx), else why not (stored as ``last_error``;
        never the response body, which the receiver controls)."""
        try:
            answer = http.fetch(
                "POST", batch.endpoint, allowed_hosts=self.settings.hosts,
                allowed_networks=self.settings.networks, headers=batch.headers,
                body=batch.body, timeout=self.settings.timeout, max_body=64 * 1024,
            )  # fmt: skip
        except http.FetchRefused as exc:
            return str(exc)
        if 200 <= answer.status < 300:
            return None
        return f"the endpoint answered HTTP {answer.status}"

    def _advance(self, stream_id: str, batch: _Batch) -> bool:
        with db.transaction() as s:
            result = s.execute(
                update(LogStream)
                .where(LogStream.id == stream_id, LogStream.leased_by == self.me,
                       LogStream.checkpoint == batch.checkpoint)
                .values(checkpoint=batch.last, failures=0, retry_at=0.0,
                        delivered_at=clock.now()),
                execution_options={"synchronize_session": False},
            )  # fmt: skip
            return bool(getattr(result, "rowcount", 0) == 1)

    def _fail(self, stream_id: str, reason: str) -> None:
        cfg = self.settings
        with db.transaction() as s:
            stream = s.get(LogStream, stream_id)
            if stream is None or stream.leased_by != self.me:
                return
            stream.failures += 1
            stream.last_error, stream.last_error_at = reason[:512], clock.now()
            if stream.failures >= cfg.max_failures:
                log.warning("log stream %s suspended after %d failures: %s", stream.id,
                            stream.failures, reason)  # fmt: skip
                stream.status, stream.leased_by, stream.leased_until = "suspended", None, 0.0
            else:
                wait = min(cfg.retry * 2 ** (stream.failures - 1), cfg.retry_max)
                stream.retry_at = time.time() + wait
