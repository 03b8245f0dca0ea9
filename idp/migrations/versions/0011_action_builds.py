"""Action versions carry their dependency build: status, reason of a failure, pip's output

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Versions deployed so far installed their dependencies inside the deploy: all built.
    with op.batch_alter_table("action_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("build_status", sa.String(length=16), nullable=False, server_default="built")
        )
        batch_op.add_column(sa.Column("build_error", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("build_output", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_versions", schema=None) as batch_op:
        batch_op.drop_column("build_output")
        batch_op.drop_column("build_error")
        batch_op.drop_column("build_status")
