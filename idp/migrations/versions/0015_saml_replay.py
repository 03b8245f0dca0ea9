"""SAML assertions already used (saml_seen_assertions), kept until they expire: a replayed
response is refused on every worker and instance

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saml_seen_assertions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index(
        "ix_saml_seen_assertions_expires_at", "saml_seen_assertions", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_saml_seen_assertions_expires_at", table_name="saml_seen_assertions")
    op.drop_table("saml_seen_assertions")
