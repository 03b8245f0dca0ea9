"""The app_metadata index of the users search (``user_metadata_terms``, migration 0022): filled
from the users stored before it, rewritten by every flush that changes a user's app_metadata,
gone with the user; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from idp.core import migrate
from idp.core.db import make_engine
from idp.identity.models import User, UserMetadataTerm
from idp.identity.search import search_users
from tests.conftest import TEST_DB_URL, reset_database

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not TEST_DB_URL.startswith("postgresql"), reason="IDP_TEST_DATABASE_URL names no PostgreSQL"))]  # fmt: skip


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'idp.sqlite3'}" if request.param == "sqlite" else TEST_DB_URL
    reset_database(url)
    yield url
    reset_database(url)


def upgrade(engine: Engine, to: str) -> None:
    config = migrate.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, to)


def user(user_id: str, app_metadata: dict[str, Any]) -> User:
    return User(id=user_id, email=f"{user_id}@example.com", app_metadata=app_metadata,
                user_metadata={}, profile={}, created_at=1, updated_at=1)  # fmt: skip


def found(engine: Engine, q: str) -> set[str]:
    with Session(engine) as session:
        page = search_users(session, q, per_page=100, include_totals=True)
        assert page.total == len(page.users)
        return {u.id for u in page.users}


def test_the_migration_indexes_the_users_already_stored(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine, "0021")
    insert = text(
        "INSERT INTO users (id, email, email_verified, app_metadata, user_metadata, profile,"
        " logins_count, blocked, created_at, updated_at)"
        " VALUES (:id, :email, false, :md, '{}', '{}', 0, false, 1, 1)"
    )
    with engine.begin() as connection:
        for n in range(2500):  # more than one batch of the migration's
            plan = '{"plan": "pro", "n": 2}' if n % 1000 == 0 else '{"plan": "free"}'
            connection.execute(insert, {"id": f"usr_{n:05}", "email": f"{n}@x.test", "md": plan})
        odd = '{"plan": ["pro"], "a b": "pro"}'
        connection.execute(insert, {"id": "usr_odd", "email": "odd@x.test", "md": odd})
    upgrade(engine, "head")
    assert found(engine, "app_metadata.plan:pro") == {"usr_00000", "usr_01000", "usr_02000"}
    assert found(engine, "app_metadata.n:2.0") == {"usr_00000", "usr_01000", "usr_02000"}
    with Session(engine) as session:
        assert session.query(UserMetadataTerm).count() == 2500 + 3  # no array, no "a b" key
    engine.dispose()


def test_every_flush_that_changes_app_metadata_rewrites_the_users_terms(url: str) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        session.add_all([user("usr_a", {"plan": "pro", "vip": True}), user("usr_b", {})])
    assert found(engine, "app_metadata.plan:pro") == {"usr_a"}
    assert found(engine, "app_metadata.vip:true") == {"usr_a"}

    with Session(engine) as session, session.begin():
        a, b = session.get(User, "usr_a"), session.get(User, "usr_b")
        assert a is not None and b is not None
        a.app_metadata = {"plan": "free"}  # vip removed, plan changed
        b.app_metadata = {"plan": "pro", "nested": {"plan": "pro"}}
    assert found(engine, "app_metadata.plan:pro") == {"usr_b"}
    assert found(engine, "app_metadata.plan:free") == {"usr_a"}
    assert found(engine, "app_metadata.vip:true") == set()

    with Session(engine) as session, session.begin():  # a login: app_metadata untouched
        a = session.get(User, "usr_a")
        assert a is not None
        a.logins_count += 1
    assert found(engine, "app_metadata.plan:free") == {"usr_a"}

    with Session(engine) as session, session.begin():  # a rolled-back change leaves nothing
        b = session.get(User, "usr_b")
        assert b is not None
        b.app_metadata = {"plan": "enterprise"}
        session.flush()
        session.rollback()
    assert found(engine, "app_metadata.plan:pro") == {"usr_b"}

    with Session(engine) as session, session.begin():
        session.delete(session.get(User, "usr_b"))
    assert found(engine, "app_metadata.plan:pro") == set()
    with Session(engine) as session:
        left = session.scalars(select(UserMetadataTerm.user_id)).all()
    assert set(left) == {"usr_a"}
    engine.dispose()
