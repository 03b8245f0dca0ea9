"""The stores of ``idp.stores.contracts`` on plain DBAPI statements (``idp.core.fastsql``).

The login's statements are sent to the DBAPI connection of the session's own transaction: an
ORM statement cost 0.15-0.3 ms of Python, the same statement sent this way ~0.02 ms
(docs/design-notes.md, "A thin SQL layer on the login path"). This is the one module that
writes table and column names by hand; ``tests/unit/test_import_graph.py`` keeps it so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from idp.audit.models import LogEvent
from idp.connections.models import Connection, Identity
from idp.core import fastsql
from idp.flows.models import Interaction, LoginSession
from idp.identity.models import User
from idp.oauth.models import AccessTokenRecord, AuthorizationCode
from idp.stores.contracts import Stores


class SqlInteractions:
    """``InteractionStore`` on the ``interactions`` table."""

    def insert(self, session: Session, row: Interaction) -> None:
        fastsql.insert(session, row)

    def get(self, session: Session, uid: str) -> Interaction | None:
        return fastsql.get(session, Interaction, uid)

    def lock(self, session: Session, uid: str) -> Interaction | None:
        # SQLite has no row locks and needs none: BEGIN IMMEDIATE holds the database's one
        # write lock for the whole transaction, so the writers take turns already.
        lock = "" if session.get_bind().dialect.name == "sqlite" else " FOR UPDATE"
        return fastsql.load(session, Interaction, f'"uid" = :uid{lock}', {"uid": uid}, fresh=True)

    def save(self, session: Session, row: Interaction, state: dict[str, Any]) -> None:
        fastsql.update(session, row, {"state": state})

    def delete(self, session: Session, row: Interaction) -> None:
        fastsql.delete(session, row)


class SqlLoginSessions:
    """``LoginSessionStore`` on the ``login_sessions`` table."""

    def get(self, session: Session, id_hash: str) -> LoginSession | None:
        return fastsql.get(session, LoginSession, id_hash)

    def insert(self, session: Session, row: LoginSession) -> None:
        fastsql.insert(session, row)


# The WHERE clause is the whole of single use: the row lock taken by the UPDATE makes a
# concurrent claim wait and then re-check ``used_at IS NULL`` on the committed row (READ
# COMMITTED on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises the transactions outright).
_CLAIM_CODE = (
    "UPDATE authorization_codes SET used_at = :now WHERE code_hash = :code_hash"
    " AND client_id = :client_id AND used_at IS NULL AND expires_at > :now"
)


class SqlCodes:
    """``CodeStore`` on the ``authorization_codes`` table."""

    def insert(self, session: Session, row: AuthorizationCode) -> None:
        fastsql.insert(session, row)

    def claim(
        self, session: Session, code_hash: str, client_id: str, now: int
    ) -> AuthorizationCode | None:
        params = {"now": now, "code_hash": code_hash, "client_id": client_id}
        return fastsql.returning(session, AuthorizationCode, _CLAIM_CODE, params)


class SqlAccessTokens:
    """``AccessTokenStore`` on the ``access_tokens`` table."""

    def insert(self, session: Session, row: AccessTokenRecord) -> None:
        fastsql.insert(session, row)


# The increment is the database's (not a read-modify-write of the instance): two logins at
# once both count.
_COUNT_LOGIN = (
    "UPDATE users SET logins_count = logins_count + 1 WHERE id = :id RETURNING logins_count"
)


class SqlUsers:
    """``UserStore`` on the ``users`` table."""

    def get(self, session: Session, user_id: str) -> User | None:
        return fastsql.get(session, User, user_id)

    def find_by_email(self, session: Session, email: str) -> User | None:
        return fastsql.load(session, User, "email = :email", {"email": email})

    def count_login(self, session: Session, user: User) -> None:
        row = fastsql.execute(session, _COUNT_LOGIN, {"id": user.id}).fetchone()
        if row is not None:
            set_committed_value(user, "logins_count", row[0])


class SqlAudit:
    """``AuditStore`` on the ``log_events`` table."""

    def insert(self, session: Session, event: LogEvent) -> None:
        fastsql.insert(session, event)


# An index probe (mfa_factors.user_id): no row is loaded.
_HAS_CONFIRMED_FACTOR = (
    "SELECT 1 FROM mfa_factors WHERE user_id = :user_id AND confirmed = :yes LIMIT 1"
)


class SqlFactors:
    """``FactorStore`` on the ``mfa_factors`` table."""

    def has_confirmed(self, session: Session, user_id: str) -> bool:
        params = {"user_id": user_id, "yes": True}
        return fastsql.execute(session, _HAS_CONFIRMED_FACTOR, params).fetchone() is not None


class SqlProtectionCounters:
    """``ProtectionCounterStore`` on the ``protection_counters`` table."""

    def blocked_until(self, session: Session, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        names = {f"k{i}": key for i, key in enumerate(keys)}
        placeholders = ", ".join(f":{name}" for name in names)  # the keys stay parameters
        sql = (
            f'SELECT "key", blocked_until FROM protection_counters WHERE "key" IN ({placeholders})'  # noqa: S608
        )
        rows = fastsql.execute(session, sql, names).fetchall()
        return {key: until or 0 for key, until in rows}


class SqlConnections:
    """``ConnectionStore`` on the ``connections`` and ``identities`` tables."""

    def by_name(self, session: Session, name: str) -> Connection | None:
        return fastsql.load(session, Connection, '"name" = :name', {"name": name})

    def identity(
        self, session: Session, connection_id: str, upstream_user_id: str
    ) -> Identity | None:
        where = '"connection_id" = :connection_id AND "upstream_user_id" = :upstream_user_id'
        params = {"connection_id": connection_id, "upstream_user_id": upstream_user_id}
        return fastsql.load(session, Identity, where, params)


def sql_stores() -> Stores:
    """Every store on SQL (SQLite or PostgreSQL, the session's own database)."""
    return Stores(
        interactions=SqlInteractions(),
        login_sessions=SqlLoginSessions(),
        codes=SqlCodes(),
        access_tokens=SqlAccessTokens(),
        users=SqlUsers(),
        audit=SqlAudit(),
        factors=SqlFactors(),
        counters=SqlProtectionCounters(),
        connections=SqlConnections(),
    )
