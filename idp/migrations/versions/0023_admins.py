"""The admin role of the console: one row per idp user who may use /admin

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("added_at", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("admins")
