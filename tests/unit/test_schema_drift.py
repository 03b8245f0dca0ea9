"""The migrations build exactly the schema the models declare: after ``upgrade`` to head, an
Alembic autogenerate comparison finds nothing to add or drop (a model change without its
migration, or a migration the models do not know, fails here rather than in production)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idp import create_app
from idp.core import migrate
from idp.core.db import Base
from idp.extensions import db
from tests.conftest import TEST_DB_URL, reset_database

# Declared for PostgreSQL only (``ddl_if``): a LIKE-prefix index SQLite has no use for.
POSTGRES_ONLY = {"ix_users_email_pattern"}


def _name(diff: Any) -> str:
    item = diff[1] if isinstance(diff, tuple) and len(diff) > 1 else None
    return str(getattr(item, "name", ""))


def test_the_migrations_build_the_models_schema(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text(secrets.token_urlsafe(48))
    url = TEST_DB_URL or f"sqlite:///{tmp_path / 'drift.sqlite3'}"
    reset_database(url)
    app = create_app({"DATABASE_URL": url, "ISSUER": "http://127.0.0.1:5000"}, tmp_path)
    with app.app_context():
        migrate.upgrade(db.engine)
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        db.engine.dispose()
    sqlite = not url.startswith("postgresql")
    left = [d for d in diffs if not (sqlite and _name(d) in POSTGRES_ONLY)]
    assert left == [], left
