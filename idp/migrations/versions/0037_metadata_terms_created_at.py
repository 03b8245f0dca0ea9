"""The users search's app_metadata terms carry their user's created_at, indexed after the term
(``key, digest, created_at, user_id``): a page of one term in the default order is then one
index range that stops after the page, whatever the number of users (issue 17, "Scale": on a
million users a term held by 0.5 % of them walked ~21,000 users for 50)

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_metadata_terms") as batch:
        batch.add_column(sa.Column("created_at", sa.Integer(), nullable=True))
    terms = sa.table("user_metadata_terms", sa.column("user_id"), sa.column("created_at"))
    users = sa.table("users", sa.column("id"), sa.column("created_at"))
    op.execute(
        terms.update().values(
            created_at=sa.select(users.c.created_at)
            .where(users.c.id == terms.c.user_id)
            .scalar_subquery()
        )
    )
    op.create_index(
        "ix_user_metadata_terms_page",
        "user_metadata_terms",
        ["key", "digest", "created_at", "user_id"],
    )
    op.drop_index("ix_user_metadata_terms_lookup", table_name="user_metadata_terms")


def downgrade() -> None:
    op.create_index(
        "ix_user_metadata_terms_lookup", "user_metadata_terms", ["key", "digest", "user_id"]
    )
    op.drop_index("ix_user_metadata_terms_page", table_name="user_metadata_terms")
    with op.batch_alter_table("user_metadata_terms") as batch:
        batch.drop_column("created_at")
