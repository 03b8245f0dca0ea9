"""Database engine and per-request session.

SQLite: WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every transaction, so that
read-modify-write sequences serialise instead of failing with "database is locked"
(SECURITY.md §3.2). PostgreSQL: psycopg 3 with ``pool_pre_ping`` so a restarted server is
survived transparently (SECURITY.md §3.4), and READ COMMITTED with conditional updates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every idp model."""


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": 10, "check_same_thread": False, "isolation_level": None},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` with the per-backend settings described above."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_size=5,
        max_overflow=10,
        pool_timeout=5,
        connect_args={"connect_timeout": 3, "options": "-c statement_timeout=10000"},
    )


class Database:
    """Unbound extension: ``db.init_app(app)``; ``db.session`` is per app context."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["idp.db"] = (engine, sessionmaker(engine, expire_on_commit=False))
        app.teardown_appcontext(self._close)

    @staticmethod
    def _state() -> tuple[Engine, sessionmaker[Session]]:
        from flask import current_app

        state: tuple[Engine, sessionmaker[Session]] = current_app.extensions["idp.db"]
        return state

    @property
    def engine(self) -> Engine:
        return self._state()[0]

    @property
    def session(self) -> Session:
        sess: Session | None = g.get("_idp_db_session")
        if sess is None:
            sess = self._state()[1]()
            g._idp_db_session = sess
        return sess

    def commit_if_used(self) -> None:
        """Commit the request's session if one was opened (hot paths may never open one)."""
        sess: Session | None = g.get("_idp_db_session")
        if sess is not None:
            sess.commit()

    @staticmethod
    def _close(_exc: BaseException | None) -> None:
        sess: Session | None = g.pop("_idp_db_session", None)
        if sess is not None:
            sess.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A fresh session whose work commits as one unit (or rolls back on error)."""
        sess = self._state()[1]()
        try:
            with sess.begin():
                yield sess
        finally:
            sess.close()
