"""The log streams' lag in the exposition: read from the rows at scrape time (any worker or
instance may hold a stream's lease), in events behind the checkpoint and the age of the oldest
event not yet delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from idp.audit import service as audit
from idp.audit.models import LogEvent
from idp.extensions import db, services
from idp.logstreams import service as streams
from idp.ops.views import exposition
from tests.conftest import build_app


def lag(app: Any) -> dict[tuple[str, str, str], float]:
    out = {}
    for family in text_string_to_metric_families(exposition(app).decode()):
        for s in family.samples:
            if s.name.startswith("idp_log_stream_lag"):
                out[(s.name, s.labels["stream"], s.labels["status"])] = s.value
    return out


def test_lag_in_events_and_seconds_per_stream(tmp_path: Path, clock: Any) -> None:
    app = build_app(tmp_path, 5998, LOG_STREAM_HOSTS="logs.example.com")
    origin = audit.Origin("192.0.2.1", "test")
    with app.app_context():
        stream, _ = streams.create(
            db.session, services().box, app.config, name="siem",
            endpoint="https://logs.example.com/in",
        )  # fmt: skip
        db.session.commit()
    assert lag(app)[("idp_log_stream_lag_events", "siem", "active")] == 0
    assert lag(app)[("idp_log_stream_lag_seconds", "siem", "active")] == 0
    with app.app_context():
        for _ in range(3):
            audit.record(db.session, "login.failure", "Wrong email or password", origin)
        db.session.commit()
    clock.advance(120)
    seen = lag(app)
    assert seen[("idp_log_stream_lag_events", "siem", "active")] == 3
    assert seen[("idp_log_stream_lag_seconds", "siem", "active")] >= 120
    with app.app_context():  # delivered up to the newest: no lag
        row = streams.get(db.session, stream.id)
        row.checkpoint = db.session.scalar(select(func.max(LogEvent.id)))
        db.session.commit()
    assert lag(app)[("idp_log_stream_lag_events", "siem", "active")] == 0
    with app.app_context():
        db.engine.dispose()
