"""Clients' ``id_token_signed_response_alg`` (OIDC Registration §2): the algorithm of their ID
tokens, one the tenant signs with; NULL is RS256, the default.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06 12:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("id_token_signed_response_alg", sa.String(length=16)))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("id_token_signed_response_alg")
