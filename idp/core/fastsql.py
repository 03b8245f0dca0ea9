"""Plain DBAPI statements inside the ORM session's transaction, for the login's hot path.

A login runs about fifteen statements. Through the ORM's unit of work each costs 0.15-0.3 ms of
Python; the same statement sent to the DBAPI connection costs ~0.02 ms (docs/design-notes.md,
"A thin SQL layer on the login path"). The rows stay ORM instances: ``insert`` writes a new one
and ``get``/``load`` read one, and both leave it persistent in the session, so a later change
to an attribute is flushed by the ORM as usual and ``session.get`` finds it in the identity
map. Only columns are handled (no relationships, no ORM events), which is all these models
have. Statements are written once with ``:name`` parameters; psycopg spells them
``%(name)s``. Pending ORM changes are flushed before a statement, as autoflush would, and
driver errors are raised as SQLAlchemy's. One difference: ``None`` in a JSON column is stored
as SQL NULL, where the ORM writes JSON ``null``; both read back as ``None``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import JSON, Boolean, event, exc, inspect
from sqlalchemy.orm import Session, make_transient, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from idp.core import tracing

T = TypeVar("T")

_NAMED = re.compile(r"(?<![:\w]):(\w+)")
_PYFORMAT: dict[str, str] = {}


def _sql(session: Session, sql: str) -> str:
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        return sql  # sqlite3 takes :name itself
    text = _PYFORMAT.get(sql)
    if text is None:
        text = _PYFORMAT[sql] = _NAMED.sub(r"%(\1)s", sql)
    return text


def execute(session: Session, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Run ``sql`` on the connection of the session's transaction (begun if need be) and
    return the DBAPI cursor."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    conn = session.connection()
    raw = conn.connection.driver_connection
    assert raw is not None
    text = _sql(session, sql)
    if tracing.ON:  # the engine's events do not see this connection: the span is made here
        with tracing.statement(text, conn.dialect.name):
            return _execute(conn, raw, text, params)
    return _execute(conn, raw, text, params)


def _execute(conn: Any, raw: Any, text: str, params: dict[str, Any] | None) -> Any:
    try:
        return raw.execute(text, params or {})
    except conn.dialect.loaded_dbapi.Error as err:
        # Raised as SQLAlchemy would, so that the app's handlers answer as for the ORM (503
        # for a database that is down or locked, 409 for a conflict) and a dead connection
        # leaves the pool. Parameters stay out of the message: they hold code and token hashes.
        gone = conn.dialect.is_disconnect(err, raw, None)
        if gone:
            conn.invalidate(err)
        raise exc.DBAPIError.instance(
            text,
            None,
            err,
            conn.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=gone,
            dialect=conn.dialect,
        ) from err


@dataclass(frozen=True)
class _Column:
    key: str  # attribute
    name: str  # column
    json: bool
    boolean: bool
    default: Any  # sqlalchemy ColumnDefault or None
    autoincrement: bool


@dataclass(frozen=True)
class _Table:
    mapper: Any
    name: str
    columns: tuple[_Column, ...]
    primary_key: tuple[_Column, ...]
    select: str  # "SELECT <columns> FROM <table>"


_TABLES: dict[type, _Table] = {}


def _table(model: type) -> _Table:
    found = _TABLES.get(model)
    if found is not None:
        return found
    mapper: Any = inspect(model)
    table = mapper.local_table
    columns = []
    for prop in mapper.column_attrs:
        col = prop.columns[0]
        columns.append(
            _Column(
                key=prop.key,
                name=col.name,
                json=isinstance(col.type, JSON),
                boolean=isinstance(col.type, Boolean),
                default=col.default,
                autoincrement=col.primary_key and col.autoincrement is True,
            )
        )
    names = ", ".join(f'"{c.name}"' for c in columns)
    pk_names = {c.name for c in table.primary_key.columns}
    found = _Table(
        mapper=mapper,
        name=table.name,
        columns=tuple(columns),
        primary_key=tuple(c for c in columns if c.name in pk_names),
        select=f"SELECT {names} FROM {table.name}",  # noqa: S608 - names from the mapper
    )
    _TABLES[model] = found
    return found


def _from_db(column: _Column, value: Any, text_json: bool) -> Any:
    """``text_json``: the driver hands JSON back as text (sqlite3; psycopg decodes it)."""
    if value is None:
        return None
    if column.json and text_json:
        return json.loads(value)
    if column.boolean:
        return bool(value)
    return value


def _values(session: Session, table: _Table, row: Any) -> tuple[Any, ...]:
    text_json = session.bind is not None and session.bind.dialect.name == "sqlite"
    return tuple(_from_db(c, v, text_json) for c, v in zip(table.columns, row, strict=True))


def _attach(session: Session, table: _Table, values: tuple[Any, ...], changed: bool = False) -> Any:
    """The persistent instance for a row: the one in the identity map if the session has it
    (as ``session.get`` would), refreshed from the row if the statement ``changed`` it or a
    commit or rollback expired it; else a new one added to the session without any SQL.
    Pending changes were flushed before the statement, so the row has them."""
    key = table.mapper.identity_key_from_primary_key(
        [values[table.columns.index(c)] for c in table.primary_key]
    )
    known = session.identity_map.get(key)
    if known is not None:
        if changed or inspect(known).expired_attributes:
            for column, value in zip(table.columns, values, strict=True):
                set_committed_value(known, column.key, value)
        return known
    obj = table.mapper.class_manager.new_instance()
    for column, value in zip(table.columns, values, strict=True):
        set_committed_value(obj, column.key, value)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def load(
    session: Session, model: type[T], where: str, params: dict[str, Any], *, fresh: bool = False
) -> T | None:
    """The first row of ``model`` matching the SQL condition ``where``; ``fresh``: the row
    read wins over an instance the session already holds (a locking read)."""
    table = _table(model)
    row = execute(session, f"{table.select} WHERE {where}", params).fetchone()
    if row is None:
        return None
    return _attach(session, table, _values(session, table, row), changed=fresh)


def get(session: Session, model: type[T], pk: Any) -> T | None:
    """``session.get`` for a single-column primary key."""
    table = _table(model)
    column = table.primary_key[0]
    known = session.identity_map.get(table.mapper.identity_key_from_primary_key([pk]))
    if known is not None and not inspect(known).expired_attributes:
        return known
    return load(session, model, f'"{column.name}" = :pk', {"pk": pk})


def returning(session: Session, model: type[T], sql: str, params: dict[str, Any]) -> T | None:
    """Run ``sql`` (an UPDATE or DELETE ... RETURNING); the row it returns as an instance."""
    table = _table(model)
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    row = execute(session, f"{sql} RETURNING {columns}", params).fetchone()
    if row is None:
        return None
    return _attach(session, table, _values(session, table, row), changed=True)


def insert(session: Session, obj: Any) -> None:
    """INSERT a new instance, applying its columns' Python defaults as a flush would. It is
    then persistent in the session, unless its key is generated by the database (it is left
    out of the session then: nothing on the hot path reads such a row back)."""
    table = _table(type(obj))
    names, params = [], {}
    for column in table.columns:
        value = getattr(obj, column.key)
        if value is None and column.default is not None:
            arg = column.default.arg
            value = arg(None) if column.default.is_callable else arg
            set_committed_value(obj, column.key, value)
        if value is None and column.autoincrement:
            continue
        names.append(column.name)
        params[column.name] = json.dumps(value) if column.json and value is not None else value
    quoted = ", ".join(f'"{n}"' for n in names)
    placeholders = ", ".join(f":{n}" for n in names)
    sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({placeholders})"  # noqa: S608 - mapper
    execute(session, sql, params)
    if any(getattr(obj, c.key) is None for c in table.primary_key):
        return
    make_transient_to_detached(obj)
    session.add(obj)
    session.info.setdefault(_INSERTED, []).append(obj)


# A row the ORM inserts is dropped from the session if its transaction rolls back; one added
# here would stay, expired, and fail on its next read. These events keep the ORM's behaviour.
_INSERTED = "fastsql.inserted"


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_INSERTED, None)


@event.listens_for(Session, "after_rollback")  # before the session expires what it holds
def _rolled_back(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint: the outer transaction still holds the rows
    for obj in session.info.pop(_INSERTED, []):
        if obj in session:
            make_transient(obj)


def update(session: Session, obj: Any, values: dict[str, Any]) -> None:
    """UPDATE the columns ``values`` names (attribute: new value) of a persistent instance, by
    its primary key, as the ORM's flush of those attributes would (``StaleDataError`` when the
    row is gone); they are then the instance's committed values, nothing left to flush. As a
    flush, nothing is sent when every value equals the one loaded."""
    state = inspect(obj)
    values = {k: v for k, v in values.items() if state.attrs[k].loaded_value != v}
    if not values:
        return
    table = _table(type(obj))
    by_key = {c.key: c for c in table.columns}
    sets, params = [], {}
    for key, value in values.items():
        column = by_key[key]
        sets.append(f'"{column.name}" = :{column.name}')
        params[column.name] = json.dumps(value) if column.json and value is not None else value
    # the identity key, not the attributes: an instance expired by a commit is not reloaded
    pk = state.identity
    where = " AND ".join(f'"{c.name}" = :pk_{c.name}' for c in table.primary_key)
    params.update({f"pk_{c.name}": v for c, v in zip(table.primary_key, pk, strict=True)})
    sql = f"UPDATE {table.name} SET {', '.join(sets)} WHERE {where}"  # noqa: S608 - mapper
    if execute(session, sql, params).rowcount != 1:
        raise StaleDataError(f"UPDATE of {table.name} matched no row")
    for key, value in values.items():
        set_committed_value(obj, key, value)


def delete(session: Session, obj: Any) -> None:
    """DELETE a persistent instance by its primary key and drop it from the session."""
    table = _table(type(obj))
    where = " AND ".join(f'"{c.name}" = :{c.name}' for c in table.primary_key)
    params = {c.name: getattr(obj, c.key) for c in table.primary_key}
    execute(session, f"DELETE FROM {table.name} WHERE {where}", params)  # noqa: S608 - mapper
    if obj in session:
        session.expunge(obj)
