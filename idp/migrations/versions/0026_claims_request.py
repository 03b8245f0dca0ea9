"""The claims requested by name (OIDC Core §5.5) on codes, refresh tokens and access tokens

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

TABLES = ("authorization_codes", "refresh_tokens", "access_tokens")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("claims", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("claims")
