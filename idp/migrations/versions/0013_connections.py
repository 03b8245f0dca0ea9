"""Connections: the connections table, which applications each is enabled for, and users'
identities; the database connection becomes the connection named ``database``, enabled for
every application, and every user gets an identity through it (nothing lost)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:30:00.000000
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

DATABASE_ID = "con_" + "database"  # stable, so that logs before and after agree


def upgrade() -> None:
    connections = op.create_table(
        "connections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "connection_clients",
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.client_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("connection_id", "client_id"),
    )
    op.create_index(
        "ix_connection_clients_client_id", "connection_clients", ["client_id"], unique=False
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("upstream_user_id", sa.String(length=255), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "upstream_user_id"),
    )
    op.create_index("ix_identities_user_id", "identities", ["user_id"], unique=False)

    now = int(time.time())
    op.bulk_insert(
        connections,
        [
            {
                "id": DATABASE_ID,
                "name": "database",
                "strategy": "database",
                "display_name": None,
                "options": {},
                "position": 0,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    bind = op.get_bind()
    # Every application keeps its logins; every user keeps their account, now an identity.
    bind.execute(
        sa.text(
            "INSERT INTO connection_clients (connection_id, client_id)"
            " SELECT :con, client_id FROM clients"
        ),
        {"con": DATABASE_ID},
    )
    identities = sa.table(
        "identities",
        sa.column("id", sa.String),
        sa.column("user_id", sa.String),
        sa.column("connection_id", sa.String),
        sa.column("provider", sa.String),
        sa.column("upstream_user_id", sa.String),
        sa.column("profile", sa.JSON),
        sa.column("created_at", sa.Integer),
    )
    users = bind.execute(sa.text("SELECT id, created_at FROM users")).all()
    rows = [
        {
            "id": "idn_" + secrets.token_urlsafe(12),
            "user_id": user_id,
            "connection_id": DATABASE_ID,
            "provider": "database",
            "upstream_user_id": user_id,
            "profile": {},
            "created_at": created_at,
        }
        for user_id, created_at in users
    ]
    if rows:
        op.bulk_insert(identities, rows)


def downgrade() -> None:
    op.drop_index("ix_identities_user_id", table_name="identities")
    op.drop_table("identities")
    op.drop_index("ix_connection_clients_client_id", table_name="connection_clients")
    op.drop_table("connection_clients")
    op.drop_table("connections")
