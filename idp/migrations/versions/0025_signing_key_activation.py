"""Staged signing key rotation: when a key starts signing (published before, OIDC Core §10.1.1)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 09:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("activate_at", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("activate_at")
