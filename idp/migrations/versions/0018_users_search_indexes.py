"""Indexes for the users search (idp.identity.search, GET /api/v2/users?q=): created_at with
the id (date ranges, the default order and its tie-break); identities by connection with the
user id (the connection filter, both ways, reads no identity row); on PostgreSQL the email in
byte order (text_pattern_ops) for LIKE prefixes, which its collation's index cannot serve

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_created_at_id", "users", ["created_at", "id"])
    op.create_index(
        "ix_identities_connection_id_user_id", "identities", ["connection_id", "user_id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_users_email_pattern ON users (email text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_users_email_pattern", table_name="users")
    op.drop_index("ix_identities_connection_id_user_id", table_name="identities")
    op.drop_index("ix_users_created_at_id", table_name="users")
