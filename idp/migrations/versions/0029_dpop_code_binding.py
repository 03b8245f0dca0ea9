"""DPoP authorization code binding (RFC 9449 §10): authorization_codes.dpop_jkt, the key the
code must be redeemed with when /authorize was given dpop_jkt

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 10:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dpop_jkt", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
