"""Migration 0013 turns the database connection into the connection named ``database``: every
existing application gets it enabled and every existing user an identity through it, and
nothing else changes; 0038 gives each identity its user's created_at; all downgrade. Runs on PostgreSQL too when ``IDP_TEST_DATABASE_URL`` names it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from idp.core import migrate
from tests.conftest import TEST_DB_URL, reset_database

USERS = ("usr_old1", "usr_old2")
CLIENTS = ("cli_old1", "cli_old2")


def test_existing_users_and_clients_keep_their_logins(tmp_path: Path) -> None:
    url = TEST_DB_URL or f"sqlite:///{tmp_path / 'old.sqlite3'}"
    reset_database(url)
    engine = create_engine(url)
    cfg = migrate.alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0011")
            for n, user_id in enumerate(USERS):
                conn.execute(
                    text(
                        "INSERT INTO users (id, email, email_verified, password_hash, name,"
                        " app_metadata, user_metadata, logins_count, created_at, updated_at)"
                        " VALUES (:id, :email, true, 'h', NULL, '{}', '{}', 3, :at, :at)"
                    ),
                    {"id": user_id, "email": f"old{n}@example.test", "at": 1000 + n},
                )
            for client_id in CLIENTS:
                conn.execute(
                    text(
                        "INSERT INTO clients (client_id, name, app_type, secret_digest,"
                        " token_endpoint_auth_method, redirect_uris, post_logout_redirect_uris,"
                        " grant_types, first_party, created_at) VALUES (:id, 'old', 'spa', NULL,"
                        " 'none', '[]', '[]', '[\"authorization_code\"]', true, 0)"
                    ),
                    {"id": client_id},
                )
            command.upgrade(cfg, "0013")
            connections = conn.execute(text("SELECT id, name, strategy FROM connections")).all()
            enabled = conn.execute(
                text("SELECT connection_id, client_id FROM connection_clients ORDER BY client_id")
            ).all()
            identities = conn.execute(
                text(
                    "SELECT user_id, connection_id, provider, upstream_user_id, created_at"
                    " FROM identities ORDER BY user_id"
                )
            ).all()
            users = conn.execute(text("SELECT id, logins_count FROM users ORDER BY id")).all()
            command.upgrade(cfg, "0038")  # identities carry their user's created_at
            carried = conn.execute(
                text("SELECT user_id, user_created_at FROM identities ORDER BY user_id")
            ).all()

            command.downgrade(cfg, "0011")
            tables = set(
                conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables"
                        if engine.dialect.name == "postgresql"
                        else "SELECT name FROM sqlite_master WHERE type = 'table'"
                    )
                ).scalars()
            )
            users_after_downgrade = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    finally:
        engine.dispose()
        reset_database(url)

    assert [tuple(c) for c in connections] == [("con_database", "database", "database")]
    assert [tuple(e) for e in enabled] == [("con_database", c) for c in CLIENTS]
    assert [tuple(i) for i in identities] == [
        (user_id, "con_database", "database", user_id, 1000 + n) for n, user_id in enumerate(USERS)
    ]
    assert [tuple(c) for c in carried] == [(u, 1000 + n) for n, u in enumerate(USERS)]
    assert [tuple(u) for u in users] == [(u, 3) for u in USERS]  # nothing lost
    assert not {"connections", "connection_clients", "identities"} & tables
    assert users_after_downgrade == len(USERS)
