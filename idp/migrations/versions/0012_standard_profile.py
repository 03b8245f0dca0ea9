"""Users carry the OIDC standard claims (OIDC Core §5.1) in one JSON column, users.profile

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and without a server default: existing users have no standard claims yet, and
    # idp.identity.profile reads NULL as {} (no rewrite of every row on upgrade).
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("profile")
