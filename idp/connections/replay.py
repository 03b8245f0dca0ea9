"""The SAML replay cache: an assertion ID is accepted once until it expires (SAML 2.0
Profiles §4.1.4.5), in the database so that every worker and instance agrees.

Each call is its own short transaction on its own connection: it runs while the login's
session has no transaction open (the upstream leg is called outside one), and a concurrent
second use of the same ID loses on the primary key."""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from idp.connections.models import SeenAssertion
from idp.core import clock
from idp.core.crypto import sha256_hex
from idp.extensions import db

MAX_KEEP = 24 * 3600  # an assertion valid longer than a day is remembered a day past now


def remember(assertion_id: str, not_on_or_after: int) -> bool:
    """True the first time ``assertion_id`` is seen; False for a replay."""
    now = clock.now()
    expires = min(max(not_on_or_after, now), now + MAX_KEEP) + 300  # the clock skew allowed
    try:
        with db.engine.begin() as conn:
            conn.execute(delete(SeenAssertion).where(SeenAssertion.expires_at < now))
            conn.execute(
                insert(SeenAssertion).values(id_hash=sha256_hex(assertion_id), expires_at=expires)
            )
    except IntegrityError:
        return False
    return True
