"""Bulk writes for ``idp dev seed``: PostgreSQL's ``COPY ... FROM STDIN`` through psycopg
where the session's connection is psycopg's, Core ``executemany`` elsewhere (SQLite, other
drivers). The statement is composed from the SQLAlchemy table (its name and columns, quoted
by psycopg), so no table or column name is written here by hand.

Rows go in through the session's own connection and transaction: the caller commits. ORM
events do not fire (no ``after_flush``): whoever writes users this way writes their
``user_metadata_terms`` too (``idp.dev.seed`` does, with the listener's own function).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Table, insert
from sqlalchemy.orm import Session


def write_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> str:
    """Insert ``rows`` (every row with the same keys) into ``table``; return the method used
    (``copy`` or ``executemany``)."""
    if not rows:
        return "none"
    driver = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql" and hasattr(driver, "cursor"):
        try:
            from psycopg import sql
        except ImportError:  # another PostgreSQL driver: the portable path
            pass
        else:
            _copy(driver, sql, table, rows)
            return "copy"
    session.execute(insert(table), list(rows))
    return "executemany"


def _copy(driver: Any, sql: Any, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    names = list(rows[0])
    as_json = [isinstance(table.c[name].type, JSON) for name in names]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(n) for n in names)
    )
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[n]) if j and row[n] is not None else row[n]
                    for n, j in zip(names, as_json, strict=True)
                ]
            )
