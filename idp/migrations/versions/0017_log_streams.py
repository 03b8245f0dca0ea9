"""Log streams (log_streams): an HTTPS webhook per stream, its sealed secrets, and its delivery
state in the row (the checkpoint, the failure count, the lease of the worker delivering it)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_streams",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("auth_header", sa.LargeBinary(), nullable=True),
        sa.Column("checkpoint", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("last_error_at", sa.Integer(), nullable=True),
        sa.Column("delivered_at", sa.Integer(), nullable=True),
        sa.Column("retry_at", sa.Float(), nullable=False),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("leased_until", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("log_streams")
