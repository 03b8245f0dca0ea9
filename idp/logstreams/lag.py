"""How far behind each log stream is, read from the database when metrics are scraped.

Lag is the state of the rows, not of a worker (any worker or instance may hold a stream's
lease), so it is computed at scrape time: events written after the stream's checkpoint (the
newest id minus the checkpoint; a rolled-back id counts until it is passed) and the age of the
oldest of them. Two index reads per stream; streams are few.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from idp.audit.models import LogEvent
from idp.core import clock
from idp.extensions import db
from idp.logstreams import reader
from idp.logstreams.models import LogStream

log = logging.getLogger(__name__)


class StreamLag(Collector):
    """A prometheus_client collector over ``app``'s database."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        events = GaugeMetricFamily(
            "idp_log_stream_lag_events", "Log events written after the stream's checkpoint.",
            labels=["stream", "status"],
        )  # fmt: skip
        seconds = GaugeMetricFamily(
            "idp_log_stream_lag_seconds", "Age of the oldest log event not yet delivered.",
            labels=["stream", "status"],
        )  # fmt: skip
        try:
            with self.app.app_context(), db.transaction() as s:
                newest, now = reader.last_id(s), clock.now()
                streams = s.execute(
                    select(LogStream.name, LogStream.status, LogStream.checkpoint)
                    .order_by(LogStream.name)
                ).all()  # fmt: skip
                for name, status, checkpoint in streams:
                    oldest = s.scalar(
                        select(LogEvent.time).where(LogEvent.id > checkpoint)
                        .order_by(LogEvent.id).limit(1)
                    )  # fmt: skip
                    events.add_metric([name, status], max(0, newest - checkpoint))
                    seconds.add_metric([name, status], max(0, now - oldest) if oldest else 0)
        except SQLAlchemyError:  # the rest of the scrape still answers
            log.warning("log stream lag not read: the database is unavailable")
            return
        yield events
        yield seconds
