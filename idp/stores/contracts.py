"""What the login's hot path asks of storage: one small contract per concept it touches.

Every method runs in the caller's transaction: it is given the SQLAlchemy ``Session`` to work
in, begins that session's transaction if none is open, and never commits or rolls back. Rows
are ORM instances, persistent in that session: a row a store inserts or reads is the object
``session.get`` returns for its key, and a later change to one of its attributes is flushed by
the ORM as usual. Changes pending in the session are flushed before a store's statement, as
the ORM's autoflush would, so a store sees them. A row a store inserted leaves the session if
the transaction rolls back, as one the ORM inserted would.

``idp.stores.sql`` implements every contract; ``tests/contract/test_login_stores.py`` holds
each implementation to what is promised here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from idp.audit.models import LogEvent
from idp.connections.models import Connection, Identity
from idp.flows.models import Interaction, LoginSession
from idp.identity.models import User
from idp.oauth.models import AccessTokenRecord, AuthorizationCode


class InteractionStore(Protocol):
    """Logins in progress, by uid (ARCHITECTURE.md §8 step 2)."""

    def insert(self, session: Session, row: Interaction) -> None:
        """Write a new interaction; ``row`` is then persistent in ``session``."""

    def get(self, session: Session, uid: str) -> Interaction | None:
        """The interaction ``uid``, whether or not it has expired (the caller decides)."""

    def lock(self, session: Session, uid: str) -> Interaction | None:
        """As :meth:`get`, read from the database with the row locked until ``session``'s
        transaction ends: another transaction locking it waits, and then finds what this one
        committed (None if it deleted the row). Requests on one login take turns."""

    def save(self, session: Session, row: Interaction, state: dict[str, Any]) -> None:
        """Write ``state`` as the interaction's record now (no flush left for the ORM)."""

    def delete(self, session: Session, row: Interaction) -> None:
        """Delete the interaction's row; ``row`` leaves ``session``."""


class LoginSessionStore(Protocol):
    """Server-side login sessions (SSO), keyed by the SHA-256 of the cookie value."""

    def get(self, session: Session, id_hash: str) -> LoginSession | None:
        """The session with that key, ended or expired included (the caller decides)."""

    def insert(self, session: Session, row: LoginSession) -> None:
        """Write a new login session, its column defaults applied (``amr``: ``[]``); ``row``
        is then persistent in ``session``."""


class CodeStore(Protocol):
    """Authorization codes (RFC 6749 §4.1.2), keyed by the SHA-256 of the code."""

    def insert(self, session: Session, row: AuthorizationCode) -> None:
        """Write a new, unused code; ``row`` is then persistent in ``session``."""

    def claim(
        self, session: Session, code_hash: str, client_id: str, now: int
    ) -> AuthorizationCode | None:
        """Mark the code used at ``now`` and return it, if it is ``client_id``'s, unused and
        not expired at ``now``; else None and nothing changes. One atomic conditional update
        (SECURITY.md §3.1): of any number of concurrent claims of a code, in any sessions,
        exactly one gets it back, which makes redemption single-use (RFC 6749 §4.1.2)."""


class AccessTokenStore(Protocol):
    """The ``jti`` records of user access tokens (RFC 9068 §2.2), for revocation by grant."""

    def insert(self, session: Session, row: AccessTokenRecord) -> None:
        """Write a new record; ``row`` is then persistent in ``session``."""


class UserStore(Protocol):
    """The users of the database connection."""

    def get(self, session: Session, user_id: str) -> User | None:
        """The user ``user_id``, as ``session.get`` would give it."""

    def find_by_email(self, session: Session, email: str) -> User | None:
        """The user whose stored email is exactly ``email``. Emails are stored normalised
        (``idp.identity.service.normalise_email``) and the caller normalises what it asks
        for: the store folds no case and matches no pattern."""

    def count_login(self, session: Session, user: User) -> None:
        """One more login on the user's row, added by the database itself, so that
        concurrent calls all count. ``user.logins_count`` is then the row's new value, as
        committed state (not a change the ORM would write back). No row: nothing happens."""


class AuditStore(Protocol):
    """Tenant log events."""

    def insert(self, session: Session, event: LogEvent) -> None:
        """Write a new event, its column defaults applied (``details``: ``{}``). Its id is
        the database's and is not read back: ``event`` is not kept in ``session``."""


class FactorStore(Protocol):
    """Second factors, as the login's adaptive MFA policy asks about them."""

    def has_confirmed(self, session: Session, user_id: str) -> bool:
        """Whether the user has a confirmed factor of any kind (a pending enrolment does not
        count). No factor is loaded."""


class ProtectionCounterStore(Protocol):
    """The SQL rows of attack protection's counters and blocks (``idp.protection.stores``)."""

    def blocked_until(self, session: Session, keys: Sequence[str]) -> dict[str, int]:
        """For each of ``keys`` that has a row, the time its block ends (0 or past: not
        blocked); keys without a row are absent. One read, whatever the number of keys."""


class ConnectionStore(Protocol):
    """Connections and identities, as an upstream login reads them."""

    def by_name(self, session: Session, name: str) -> Connection | None:
        """The connection named ``name`` (names are unique)."""

    def identity(
        self, session: Session, connection_id: str, upstream_user_id: str
    ) -> Identity | None:
        """The identity of that upstream account at that connection (the pair is unique)."""


@dataclass
class Stores:
    """The stores of the login's hot path, each typed by its contract (``idp.stores.STORES``)."""

    interactions: InteractionStore
    login_sessions: LoginSessionStore
    codes: CodeStore
    access_tokens: AccessTokenStore
    users: UserStore
    audit: AuditStore
    factors: FactorStore
    counters: ProtectionCounterStore
    connections: ConnectionStore
