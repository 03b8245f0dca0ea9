"""Expired interactions are swept while interactions are created, at most once a minute per
process (the sweep was a sixth of every /authorize)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from idp.extensions import db
from idp.flows import service as flows
from idp.flows.models import Interaction


def _count(expired_before: int) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.expires_at < expired_before)
        )
        or 0
    )


def test_expired_interactions_are_swept_at_most_once_a_minute(op: Any, clock: Any) -> None:
    with op.app.app_context():
        flows._next_sweep[0] = 0.0  # due now
        flows.create_interaction(db.session, "c", {"a": "1"}, 60)
        db.session.commit()
        clock.advance(120)  # that one has expired
        now = clock.now()
        flows.create_interaction(db.session, "c", {"a": "2"}, 60)  # swept just now
        db.session.commit()
        assert _count(now) == 1, "the sweep ran again within the minute"
        flows._next_sweep[0] = 0.0  # a minute later
        flows.create_interaction(db.session, "c", {"a": "3"}, 60)
        db.session.commit()
        assert _count(now) == 0
        assert db.session.scalar(select(func.count()).select_from(Interaction)) >= 2
