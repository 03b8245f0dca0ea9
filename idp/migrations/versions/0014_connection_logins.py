"""Logins through connections: a session records the connection it came through
(login_sessions.connection; NULL for sessions older than this, which were all the database
connection's), and an identity may keep the upstream's tokens, sealed (identities.tokens),
records whether its upstream vouched for the email (identities.email_verified) and when its
upstream profile was last refreshed (identities.updated_at)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("connection", sa.String(length=63), nullable=True))
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tokens", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("email_verified", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("email_verified")
        batch_op.drop_column("tokens")
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.drop_column("connection")
