"""Scope descriptions of an API (Auth0's resource server scopes[].description, by scope value)
and the revocation time of a signing key (out of the JWKS at once, never published again)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-09 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resource_servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope_descriptions", sa.JSON(), nullable=True))
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("resource_servers", schema=None) as batch_op:
        batch_op.drop_column("scope_descriptions")
