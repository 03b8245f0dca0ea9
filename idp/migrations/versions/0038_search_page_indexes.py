"""Two users search pages that grew with the table (issue 17, "Scale"; on a million users):

- identities carry their user's created_at, indexed after the connection (``connection_id,
  user_created_at, user_id``): a page of one connection in the default order is one index range
  that stops after the page (a connection held by 3 % of the users walked ~1,700 users for 50),
  as migration 0037 did for app_metadata terms;
- on PostgreSQL ``ix_users_email_pattern`` includes ``created_at`` and ``id``: a page of an email
  prefix finds and orders its keys from the index alone (a prefix 1,900 users match read 1,900
  user rows for 50).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-06 14:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("user_created_at", sa.Integer(), nullable=True))
    identities = sa.table("identities", sa.column("user_id"), sa.column("user_created_at"))
    users = sa.table("users", sa.column("id"), sa.column("created_at"))
    op.execute(
        identities.update().values(
            user_created_at=sa.select(users.c.created_at)
            .where(users.c.id == identities.c.user_id)
            .scalar_subquery()
        )
    )
    with op.batch_alter_table("identities") as batch:  # every identity has its user (FK)
        batch.alter_column("user_created_at", existing_type=sa.Integer(), nullable=False)
    op.create_index(
        "ix_identities_connection_page",
        "identities",
        ["connection_id", "user_created_at", "user_id"],
    )

    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_users_email_pattern", table_name="users")
        op.execute(
            "CREATE INDEX ix_users_email_pattern ON users (email text_pattern_ops)"
            " INCLUDE (created_at, id)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_users_email_pattern", table_name="users")
        op.execute("CREATE INDEX ix_users_email_pattern ON users (email text_pattern_ops)")
    op.drop_index("ix_identities_connection_page", table_name="identities")
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("user_created_at")
