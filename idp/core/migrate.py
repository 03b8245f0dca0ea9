"""Apply Alembic migrations programmatically (``idp init``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # idp's connections stop a statement after 10 s (idp.core.db), which is for requests:
            # a migration's backfill of a large table may take minutes (0037 on a million users)
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration (developers only)."""
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.revision(cfg, message=message, autogenerate=True)
