"""post-login actions: codes carry the chain's effects; interactions carry a paused chain

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 20:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("action_effects", sa.JSON(), nullable=True))
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_column("data")
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("action_effects")
