"""interactions: index the browser binding and the expiry (every /authorize looks up by both)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 20:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index("ix_interactions_browser_hash", ["browser_hash"], unique=False)
        batch_op.create_index("ix_interactions_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_expires_at")
        batch_op.drop_index("ix_interactions_browser_hash")
