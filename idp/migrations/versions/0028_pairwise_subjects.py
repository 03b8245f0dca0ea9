"""Pairwise subject identifiers per client (OIDC Core §8): subject_type, sector_identifier_uri

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 09:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("subject_type", sa.String(length=16), nullable=False, server_default="public")
        )
        batch.add_column(sa.Column("sector_identifier_uri", sa.String(length=2048)))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("sector_identifier_uri")
        batch.drop_column("subject_type")
