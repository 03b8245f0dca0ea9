"""A user's own label on each second factor (``mfa_factors.label``): several factors of one
kind (two phones, three keys) need telling apart on the account page and at the login.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 12:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mfa_factors") as batch:
        batch.add_column(sa.Column("label", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mfa_factors") as batch:
        batch.drop_column("label")
