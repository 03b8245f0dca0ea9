"""The SAML replay cache: an assertion ID is accepted once until it expires (SAML 2.0
Profiles §4.1.4.5), in the database so that every worker and instance agrees.

Each call is its own short transaction on its own connection: it runs while the login's
session has no transaction open (the upstream leg is called outside one), and a concurrent
second use of the same ID loses on the primary key. Expired rows are purged with the insert
at most every ``PURGE_SECONDS`` per process, not at every login; an ID held only by an expired
row that was not purged yet is purged and inserted again, so what is accepted stays the same."""

from __future__ import annotations

import time

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from idp.connections.models import SeenAssertion
from idp.core import clock
from idp.core.crypto import sha256_hex
from idp.extensions import db

MAX_KEEP = 24 * 3600  # an assertion valid longer than a day is remembered a day past now
PURGE_SECONDS = 60.0


class _Schedule:
    next_purge = 0.0  # time.monotonic() of this process's next purge


SCHEDULE = _Schedule()


def remember(assertion_id: str, not_on_or_after: int) -> bool:
    """True the first time ``assertion_id`` is seen; False for a replay."""
    now = clock.now()
    expires = min(max(not_on_or_after, now), now + MAX_KEEP) + 300  # the clock skew allowed
    id_hash = sha256_hex(assertion_id)
    due = time.monotonic() >= SCHEDULE.next_purge
    if due:
        SCHEDULE.next_purge = time.monotonic() + PURGE_SECONDS
    if _insert(id_hash, expires, now, purge=due):
        return True
    # taken: a replay, unless the row holding the ID had expired and was not purged yet
    return not due and _insert(id_hash, expires, now, purge=True)


def _insert(id_hash: str, expires: int, now: int, purge: bool) -> bool:
    """One committed transaction: the purge when asked, then the ID (False: it is there)."""
    try:
        with db.engine.begin() as conn:
            if purge:
                conn.execute(delete(SeenAssertion).where(SeenAssertion.expires_at < now))
            conn.execute(insert(SeenAssertion).values(id_hash=id_hash, expires_at=expires))
    except IntegrityError:
        return False
    return True
